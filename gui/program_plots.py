"""Views of the programming-quality procedures: ``forming``, ``level-capacity`` and
``program-report``.

Registered in the plot registry of :mod:`xbarlab.gui.plots` (imported at its end), so
the window shows them live and the run browser draws stored runs with them.

- :class:`LevelCapacityPlot`: bit-error rate against the number of levels L (log
  axis) with the BER threshold, and the read conductance of each level of the
  latest L as histograms, so the overlap of neighbouring levels is visible.
- :class:`FormingPlot`: devices still unformed against the ramp voltage, live; then
  the histogram of forming voltages and the map of each device's forming status.
- :class:`ProgramReportPlot`: the four panels of the program report (pulses to
  converge, success per level, defect map, BER per level), drawn by the same code
  that writes the report PNG (:func:`xbarlab.procedures.program_report.draw_report`).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore

from xbarlab.gui.plots import US_PER_S, LivePlot, Series, new_plot, register_plot
from xbarlab.procedures.forming import STATUS_CODES
from xbarlab.procedures.program_report import draw_report, report_title

#: histogram bins per level of the level-capacity read
_BINS_PER_LEVEL = 12


class LevelCapacityPlot(LivePlot):
    """BER against L, and the read distribution of every level of the latest L."""

    title = "level capacity"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.ber_plot = new_plot("bit-error rate", ("levels L", ""), ("BER", ""), log_y=True)
        self.hist_plot = new_plot("read conductance per level", ("G", "µS"), ("devices", ""))
        self.graphics.addItem(self.ber_plot, row=0, col=0)
        self.graphics.addItem(self.hist_plot, row=1, col=0)
        curve = self.ber_plot.plot(pen=pg.mkPen("r", width=2), symbol="o", name="BER")
        self.ber = Series(curve)
        self.threshold = self.ber_plot.plot(
            pen=pg.mkPen("k", style=QtCore.Qt.DashLine), name="threshold"
        )
        self.level_curves: list = []
        self.latest_levels = 0

    def clear(self) -> None:
        super().clear()
        self.ber.n = 0
        self.ber.curve.setData([], [])
        self.threshold.setData([], [])
        for c in self.level_curves:
            self.hist_plot.removeItem(c)
        self.level_curves = []
        self.latest_levels = 0

    def on_record(self, step_id: str, data: dict) -> None:
        self.records_seen += 1
        if "ber" not in data or "n_levels" not in data:
            return
        n_levels = int(data["n_levels"])
        # a zero BER cannot sit on a log axis: drawn at half of one error in the population
        n = max(int(np.size(data["g_read"])), 1)
        self.ber.append(n_levels, max(float(data["ber"]), 0.5 / n))
        self.latest_levels = n_levels
        if "ber_threshold" in data:
            self.set_threshold(float(data["ber_threshold"]))
        self._histograms(data)

    def set_threshold(self, threshold: float) -> None:
        """Draw the BER threshold over the L range seen so far."""
        xs = self.ber.x
        if xs.size:
            self.threshold.setData([xs.min(), xs.max()], [threshold, threshold])

    def _histograms(self, data: dict) -> None:
        for c in self.level_curves:
            self.hist_plot.removeItem(c)
        self.level_curves = []
        g = np.ravel(data["g_read"]).astype(np.float64) * US_PER_S
        level = np.ravel(data["level"])
        n_levels = int(data["n_levels"])
        edges = np.linspace(g.min(), g.max(), _BINS_PER_LEVEL * n_levels + 1)
        for k in range(n_levels):
            counts, _ = np.histogram(g[level == k], bins=edges)
            pen = pg.mkPen(pg.intColor(k, hues=max(n_levels, 2)), width=2)
            curve = pg.PlotDataItem(edges, counts, stepMode="center", pen=pen)
            self.hist_plot.addItem(curve)
            self.level_curves.append(curve)
        self.hist_plot.setTitle(f"read conductance per level, L = {n_levels}")


#: colour of each forming status in the map (formed, unformable, shorted, stuck at SET,
#: already formed)
_STATUS_COLOURS = {
    "formed": (60, 160, 60),
    "unformable": (40, 60, 200),
    "shorted": (210, 30, 30),
    "stuck_set": (240, 150, 0),
    "already_formed": (170, 170, 170),
}


class FormingPlot(LivePlot):
    """Forming progress, forming-voltage histogram and status map of a ``forming`` run."""

    title = "forming"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.ramp_plot = new_plot("devices still unformed", ("ramp voltage", "V"), ("devices", ""))
        self.hist_plot = new_plot("forming voltage", ("V_form", "V"), ("devices", ""))
        self.map_plot = new_plot("forming status", ("column", ""), ("row", ""))
        self.map_plot.invertY(True)
        self.map_plot.setAspectLocked(True)
        self.graphics.addItem(self.ramp_plot, row=0, col=0, colspan=2)
        self.graphics.addItem(self.hist_plot, row=1, col=0)
        self.graphics.addItem(self.map_plot, row=1, col=1)
        self.unformed = Series(self.ramp_plot.plot(pen=pg.mkPen("b", width=2), symbol="o"))
        self.hist = self.hist_plot.plot(stepMode="center", fillLevel=0, brush=(60, 160, 60, 150))
        lut = np.zeros((max(STATUS_CODES.values()) + 1, 3), dtype=np.uint8)
        for name, code in STATUS_CODES.items():
            lut[code] = _STATUS_COLOURS[name]
        self.image = pg.ImageItem(lut=lut, levels=(0, len(lut) - 1))
        self.map_plot.addItem(self.image)
        self.counts: dict[str, int] = {}

    def clear(self) -> None:
        super().clear()
        self.unformed.n = 0
        self.unformed.curve.setData([], [])
        self.hist.setData([0, 1], [0])
        self.image.clear()
        self.counts = {}
        self.map_plot.setTitle("forming status")

    def on_record(self, step_id: str, data: dict) -> None:
        self.records_seen += 1
        if step_id.startswith("ramp-"):
            self.unformed.append(float(data["v_V"]), int(np.size(data["pos"])))
        elif "status" in data and "hist_counts" in data:
            self.hist.setData(np.asarray(data["hist_edges_V"]), np.asarray(data["hist_counts"]))
            status = np.asarray(data["status"], dtype=np.uint8)
            # ImageItem axes are (x, y): columns along x
            self.image.setImage(status.T, autoLevels=False)
            self.counts = {
                name: int(np.count_nonzero(status == code)) for name, code in STATUS_CODES.items()
            }
            shown = ", ".join(f"{n.replace('_', ' ')} {c}" for n, c in self.counts.items() if c)
            self.map_plot.setTitle(f"forming status: {shown}")


class ProgramReportPlot(LivePlot):
    """The program report's four panels, from the record of a ``program-report`` run."""

    title = "program report"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.report: dict | None = None

    def clear(self) -> None:
        super().clear()
        self.graphics.clear()
        self.report = None

    def on_record(self, step_id: str, data: dict) -> None:
        self.records_seen += 1
        if "report_json" not in data:
            return
        report = dict(data["report_json"])
        report["defect_map"] = np.asarray(data["defect_map"])
        report["pulses_hist"] = np.asarray(data["pulses_hist"])
        self.graphics.clear()
        title = report_title(data.get("source_run", ""), data.get("source_step", ""), report)
        draw_report(self.graphics.ci, report, title)
        self.report = report


register_plot("forming", FormingPlot)
register_plot("level-capacity", LevelCapacityPlot)
register_plot("program-report", ProgramReportPlot)
