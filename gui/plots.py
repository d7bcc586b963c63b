"""Live plots per procedure, looked up by name in a registry.

A :class:`LivePlot` is fed the records of one run, one at a time, as the runner
produces them (``on_record(step_id, data)``, the fields of
:class:`xbarlab.events.Record`), or all at once from the store (``load_run``). Each
record costs a few vectorised reductions and appends one point per curve: a plot never
re-reads earlier records, so a long run on a large chip stays cheap per step.

:data:`PLOT_REGISTRY` maps a procedure name to a plot factory. The window asks
:func:`make_live_plot` for the running procedure's plot, so a new run kind (training,
calibration) adds its live plot with :func:`register_plot` without touching window
code; names without an entry get :class:`GenericPlot`.

Units: code and records are SI; conductances are shown in µS, everything else in its
SI unit (pyqtgraph adds a prefix such as µA where it helps).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtWidgets

from xbarlab.errors import ConfigError
from xbarlab.fitting import fit_drift_exponent
from xbarlab.procedures.drift import level_index

#: S -> µS, the display unit of conductance
US_PER_S = 1e6
#: curves of single devices drawn by the IV plot (evenly spaced over the selection)
MAX_DEVICE_CURVES = 16


class Series:
    """A growing (x, y) curve: amortised O(1) append into preallocated buffers."""

    def __init__(self, curve: pg.PlotDataItem):
        self.curve = curve
        self._xy = np.empty((2, 64))
        self.n = 0

    def append(self, x: float, y: float) -> None:
        if self.n == self._xy.shape[1]:
            self._xy = np.concatenate([self._xy, np.empty_like(self._xy)], axis=1)
        self._xy[:, self.n] = (x, y)
        self.n += 1
        self.curve.setData(self._xy[0, : self.n], self._xy[1, : self.n])

    @property
    def x(self) -> np.ndarray:
        return self._xy[0, : self.n].copy()

    @property
    def y(self) -> np.ndarray:
        return self._xy[1, : self.n].copy()


def new_plot(title: str, x: tuple[str, str], y: tuple[str, str], *, log_x=False, log_y=False):
    """A PlotItem with a title, axis labels ``(text, unit)``, a grid and a legend.

    Units other than µS get pyqtgraph's SI prefix; µS values are already scaled.
    """
    logs = {"bottom": log_x, "left": log_y}
    item = pg.PlotItem(title=title, axisItems={s: LogAxis(s) for s, log in logs.items() if log})
    for side, (text, unit) in (("bottom", x), ("left", y)):
        item.setLabel(side, text, units=unit)
        if unit == "µS" or logs[side]:
            item.getAxis(side).enableAutoSIPrefix(False)
    item.setLogMode(x=log_x, y=log_y)
    item.showGrid(x=True, y=True, alpha=0.3)
    item.addLegend(offset=(-10, 10), brush=(255, 255, 255, 210), labelTextColor="k")
    return item


class LogAxis(pg.AxisItem):
    """A log axis labelling only 1, 2 and 5 times a power of ten (pyqtgraph labels every
    minor tick of a short log axis, and the labels overlap)."""

    def logTickStrings(self, values, scale, spacing):
        strings = super().logTickStrings(values, scale, spacing)
        mantissa = np.round(10 ** (np.asarray(values, dtype=float) % 1.0), 6)
        return [t if m in (1.0, 2.0, 5.0) else "" for t, m in zip(strings, mantissa, strict=True)]


class LivePlot(QtWidgets.QWidget):
    """Base class of live plots: a widget holding one pyqtgraph layout.

    Subclasses implement :meth:`clear` (empty curves, ready for a new run) and
    :meth:`on_record`; both must be cheap (see the module docstring).
    """

    title = "records"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)
        self.records_seen = 0

    def clear(self) -> None:
        """Forget everything plotted (a new run starts)."""
        self.records_seen = 0

    def on_record(self, step_id: str, data: dict) -> None:
        """Add one record (the ``step_id`` and ``data`` of a Record event)."""
        raise NotImplementedError

    def load_run(self, store, run_id: str) -> None:
        """Clear, then draw run ``run_id`` of ``store`` (a RunStore) from its records."""
        self.clear()
        for rec in store.records(run_id):
            self.on_record(rec.step_id, rec.data)


class ConvergencePlot(LivePlot):
    """Programming convergence: devices converged and mean |error| per iteration.

    Drawn from the ``trace_*`` fields of a ``program`` step (program-array, drift,
    retention); the tolerance is the dashed line.
    """

    title = "programming convergence"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.converged_plot = new_plot(
            "devices converged", ("iteration", ""), ("devices converged", "")
        )
        self.error_plot = new_plot(
            "mean |G - target|", ("iteration", ""), ("mean |error|", "µS"), log_y=True
        )
        self.graphics.addItem(self.converged_plot, row=0, col=0)
        self.graphics.addItem(self.error_plot, row=1, col=0)
        self.converged = self.converged_plot.plot(pen=pg.mkPen("b", width=2), name="converged")
        self.error = self.error_plot.plot(pen=pg.mkPen("r", width=2), name="mean |error|")
        self.tolerance = self.error_plot.plot(
            pen=pg.mkPen("k", style=QtCore.Qt.DashLine), name="tolerance"
        )
        self.devices = 0

    def clear(self) -> None:
        super().clear()
        for curve in (self.converged, self.error, self.tolerance):
            curve.setData([], [])
        self.devices = 0

    def on_record(self, step_id: str, data: dict) -> None:
        self.records_seen += 1
        if "trace_converged" not in data:
            return
        converged = np.asarray(data["trace_converged"])
        error_us = np.asarray(data["trace_mean_abs_error_S"]) * US_PER_S
        iterations = np.arange(1, converged.size + 1)
        self.devices = int(np.size(data["targets"]))
        self.converged.setData(iterations, converged)
        self.converged_plot.legend.getLabel(self.converged).setText(
            f"converged (of {self.devices} devices)"
        )
        self.error.setData(iterations, error_us)
        if iterations.size:
            tol = float(data["tolerance_S"]) * US_PER_S
            self.tolerance.setData([iterations[0], iterations[-1]], [tol, tol])


class DriftPlot(LivePlot):
    """Drift: mean conductance per programmed level vs log time, nu in the legend.

    The ``program`` step fixes the levels (devices converged and responsive only, as in
    the procedure's summary) and feeds the convergence panel; each ``read-*`` step adds
    one point per level, and the legend shows nu fitted to the level's mean curve so
    far; the ``fit`` step replaces it by the mean of the per-device fits.
    """

    title = "drift"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.convergence = ConvergencePlot()
        self.plot = new_plot(
            "drift: G(t) = G1 · t^-ν",
            ("time after programming", "s"),
            ("conductance", "µS"),
            log_x=True,
        )
        self.graphics.addItem(self.plot)
        self.layout().removeWidget(self.graphics)
        split = QtWidgets.QSplitter()
        split.addWidget(self.convergence)
        split.addWidget(self.graphics)
        split.setSizes([1000, 2000])  # proportions: the drift panel gets two thirds
        self.layout().addWidget(split)
        self.clear()

    def clear(self) -> None:
        super().clear()
        self.convergence.clear()
        self.plot.clear()
        self.plot.legend.clear()
        self.series: list[Series] = []
        self.level_targets = np.empty(0)
        self._good = self._level_of_good = None
        self.nu = np.empty(0)

    def on_record(self, step_id: str, data: dict) -> None:
        self.records_seen += 1
        if step_id == "program":
            self.convergence.on_record(step_id, data)
            good = np.asarray(data["converged"]) & ~np.asarray(data["unresponsive"])
            self._set_levels(np.asarray(data["targets"]), good)
        elif "t_s" in data and "g" in data:
            self._add_read(float(data["t_s"]), np.asarray(data["g"]))
        elif "nu" in data and self._level_of_good is not None:
            nu = np.asarray(data["nu"], dtype=np.float64).ravel()[self._good]
            sums = np.bincount(self._level_of_good, weights=nu, minlength=len(self.series))
            self._show_nu(sums / np.maximum(self._counts, 1), "fit")

    def _set_levels(self, targets: np.ndarray, good: np.ndarray) -> None:
        """One curve per level; which devices count (``good``) and their levels."""
        level, self.level_targets = level_index(targets)
        # the good devices: all of them (a view, no copy per read), or their flat indices
        self._good = slice(None) if good.all() else np.flatnonzero(good)
        self._level_of_good = level.ravel()[self._good]
        n = self.level_targets.size
        self._counts = np.bincount(self._level_of_good, minlength=n)
        self.series = []
        for k, target in enumerate(self.level_targets):
            pen = pg.mkPen(pg.intColor(k, max(n, 2)), width=2)
            name = f"{target * US_PER_S:.3g} µS"
            curve = self.plot.plot(pen=pen, symbol="o", symbolSize=5, symbolBrush=pen.color())
            curve.opts["name"] = name
            if self._counts[k]:
                self.plot.legend.addItem(curve, name)
            self.series.append(Series(curve))

    def _add_read(self, t: float, g: np.ndarray) -> None:
        if self._level_of_good is None:  # no program step seen: all devices form one level
            self._set_levels(np.zeros(g.shape), np.ones(g.shape, dtype=bool))
        sums = np.bincount(
            self._level_of_good, weights=g.ravel()[self._good], minlength=len(self.series)
        )
        means = sums / np.maximum(self._counts, 1) * US_PER_S
        for k, s in enumerate(self.series):
            if self._counts[k]:
                s.append(t, means[k])
        first = next((s for s in self.series if s.n), None)
        if first is not None and first.n >= 2 and np.all(first.x > 0):
            y = np.stack([s.y if s.n else np.ones(first.n) for s in self.series], axis=1)
            nu, _ = fit_drift_exponent(first.x, y)
            self._show_nu(nu, "live")

    def _show_nu(self, nu: np.ndarray, how: str) -> None:
        """Legend text per level: its target and nu (``how``: live level fit or final)."""
        self.nu = np.asarray(nu, dtype=np.float64)
        for k, s in enumerate(self.series):
            label = self.plot.legend.getLabel(s.curve)
            if label is not None:
                label.setText(f"{s.curve.opts['name']}: ν = {self.nu[k]:.4f} ({how})")


class IVSweepPlot(LivePlot):
    """I vs V: the mean current and up to MAX_DEVICE_CURVES single devices."""

    title = "IV sweep"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = new_plot("IV sweep", ("read voltage", "V"), ("current", "A"))
        self.graphics.addItem(self.plot)
        self.clear()

    def clear(self) -> None:
        super().clear()
        self.plot.clear()
        self.plot.legend.clear()
        self.mean: Series | None = None
        self.devices: list[Series] = []
        self._pick = None

    def on_record(self, step_id: str, data: dict) -> None:
        self.records_seen += 1
        if "v_V" not in data or "i_A" not in data:
            return
        v, i = float(data["v_V"]), np.asarray(data["i_A"], dtype=np.float64).ravel()
        if self.mean is None:
            self._pick = np.unique(np.linspace(0, i.size - 1, min(i.size, MAX_DEVICE_CURVES)))
            self._pick = self._pick.astype(np.int64)
            thin = pg.mkPen((120, 120, 120), width=1)
            for k in range(self._pick.size):
                name = f"devices (sample of {self._pick.size})" if k == 0 else None
                self.devices.append(Series(self.plot.plot(pen=thin, name=name)))
            self.mean = Series(
                self.plot.plot(pen=pg.mkPen("b", width=3), symbol="o", name=f"mean of {i.size}")
            )
        for s, value in zip(self.devices, i[self._pick], strict=True):
            s.append(v, value)
        self.mean.append(v, i.mean())


class PulseResponsePlot(LivePlot):
    """Conductance vs pulse number (0 = after the RESET): mean and mean ± 1 std."""

    title = "pulse response"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = new_plot("pulse response", ("SET pulses", ""), ("conductance", "µS"))
        self.graphics.addItem(self.plot)
        band = pg.mkPen((90, 90, 200), width=1, style=QtCore.Qt.DashLine)
        self.mean = Series(
            self.plot.plot(pen=pg.mkPen("b", width=2), symbol="o", symbolSize=5, name="mean")
        )
        self.upper = Series(self.plot.plot(pen=band, name="mean ± 1 std"))
        self.lower = Series(self.plot.plot(pen=band))
        self.clear()

    def clear(self) -> None:
        super().clear()
        for s in (self.mean, self.upper, self.lower):
            s.n = 0
            s.curve.setData([], [])

    def on_record(self, step_id: str, data: dict) -> None:
        self.records_seen += 1
        if "g" not in data:
            return
        g = np.asarray(data["g"], dtype=np.float64)
        n = self.mean.n  # the start record is pulse 0, each pulse-* record one more
        mean, std = g.mean() * US_PER_S, g.std() * US_PER_S
        self.mean.append(n, mean)
        self.upper.append(n, mean + std)
        self.lower.append(n, mean - std)
        label = self.plot.legend.getLabel(self.mean.curve)
        label.setText(f"mean of {g.size} devices")


def field_unit(name: str) -> tuple[str, float]:
    """(display unit, factor from the stored SI value) guessed from a field name.

    Records name units by suffix (``mean_abs_error_S``, ``t_s``, ``v_V``, ``i_A``);
    ``g...`` fields are conductances.
    """
    if name.endswith("_S") or name == "g" or name.startswith("g_"):
        return "µS", US_PER_S
    for suffix, unit in (("_s", "s"), ("_V", "V"), ("_A", "A")):
        if name.endswith(suffix):
            return unit, 1.0
    return "", 1.0


class GenericPlot(LivePlot):
    """Fallback: any numeric field vs record number; the combo box picks the field.

    Scalars are plotted as they are, arrays by their mean (``mean g``).
    """

    title = "records"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = new_plot("records", ("record", ""), ("value", ""))
        self.graphics.addItem(self.plot)
        self.choice = QtWidgets.QComboBox()
        self.choice.setToolTip("the record field to plot (arrays: their mean)")
        self.choice.currentTextChanged.connect(self._show)
        self.layout().insertWidget(0, self.choice)
        self.curve = self.plot.plot(pen=pg.mkPen("b", width=2), symbol="o", symbolSize=4)
        self.clear()

    def clear(self) -> None:
        super().clear()
        self.values: dict[str, tuple[list, list]] = {}
        self.choice.clear()
        self.curve.setData([], [])

    def on_record(self, step_id: str, data: dict) -> None:
        step = self.records_seen
        self.records_seen += 1
        default = None
        for name, value in data.items():
            v = np.asarray(value)
            if v.dtype.kind not in "iuf" or v.size == 0:
                continue
            key = name if v.ndim == 0 else f"mean {name}"
            if key not in self.values:
                self.values[key] = ([], [])
                self.choice.addItem(key)
                default = key if v.ndim == 0 or default is None else default
            xs, ys = self.values[key]
            xs.append(step)
            ys.append(float(v) if v.ndim == 0 else float(v.mean()))
        if default is not None and step == 0:
            self.choice.setCurrentText(default)
        self._show(self.choice.currentText())

    def _show(self, key: str) -> None:
        if key not in self.values:
            return
        unit, factor = field_unit(key.removeprefix("mean "))
        xs, ys = self.values[key]
        self.curve.setData(xs, np.asarray(ys) * factor)
        self.plot.setLabel("left", key, units=unit)
        self.plot.getAxis("left").enableAutoSIPrefix(unit != "µS")


PlotFactory = Callable[..., LivePlot]

#: procedure name -> factory(parent=None) of its live plot
PLOT_REGISTRY: dict[str, PlotFactory] = {}


def register_plot(name: str, factory: PlotFactory) -> PlotFactory:
    """Use ``factory(parent)`` for runs of procedure ``name`` (replacing an earlier entry).

    Returns the factory, so it also works as ``register_plot(name, cls)`` at class level.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"plot registry: procedure name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise ConfigError(f"plot registry: factory for {name!r} must be callable, got {factory!r}")
    PLOT_REGISTRY[name] = factory
    return factory


def make_live_plot(procedure_name: str, parent=None) -> LivePlot:
    """A new live plot for runs of ``procedure_name`` (GenericPlot if none is registered)."""
    return PLOT_REGISTRY.get(procedure_name, GenericPlot)(parent)


def plot_for_run(store, run_id: str, parent=None) -> LivePlot:
    """The registered plot of a stored run (RunStore ``store``), drawn from its records."""
    info = store.run(run_id)
    plot = make_live_plot(info.procedure, parent)
    plot.load_run(store, info.run_id)
    return plot


for _name, _factory in (
    ("program-array", ConvergencePlot),
    ("drift", DriftPlot),
    ("iv-sweep", IVSweepPlot),
    ("pulse-response", PulseResponsePlot),
):
    register_plot(_name, _factory)

# the programming-quality views register themselves (they import this module's helpers)
from xbarlab.gui import program_plots  # noqa: E402, F401
