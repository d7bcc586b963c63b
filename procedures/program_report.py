"""``program-report``: the report of a programming run, as JSON and PNG.

Works on any stored run whose records hold a programming result (the ``program`` step
of program-array, drift, retention or drift-compensation; a ``levels-L`` step of
level-capacity): the fields ``targets``, ``converged`` and ``unresponsive``, with
``pulses`` (pulses per device), ``stuck_set``, ``g_after``/``g_read`` when present.
It touches no hardware: the chip given to the runner is not accessed.

The report (:func:`build_report`):

- ``pulses_hist``: how many converged devices needed 1, 2, ... pulses (SET and RESET;
  verify iterations for runs recorded before pulses were counted);
- ``levels``: per target level (distinct targets, or 8 bins of continuous ones): its
  target, devices, success (converged and responsive), the fraction out of tolerance
  at the read after programming, and the bit-error rate of a Gray-coded cell decoded
  with per-level references (:func:`~xbarlab.procedures.level_capacity.decode_levels`;
  discrete levels only);
- ``comparison`` (with ``compare``): pulses and success of this and the other runs
  side by side, e.g. ISPP against fixed-pulse verify on the same population;
- ``defects``: a map (the programmed block's shape) with codes :data:`DEFECT_CODES`,
  classified from the run's data: stuck-at-SET (unresponsive, stayed above target after
  RESETs), stuck-at-RESET (unresponsive, did not rise), unformable and shorted (from
  the ``unformable`` / ``shorted`` fields of a forming run; only possible on RRAM),
  and not converged; with counts.

The PNG (:func:`draw_report`, pyqtgraph's image exporter, offscreen without a display)
shows the pulse histogram, success per level, the defect map and BER per level.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xbarlab.chipdrivers.crossbar import ChipInfo, Crossbar
from xbarlab.errors import ConfigError
from xbarlab.procedures.base import Plan, Procedure, Step
from xbarlab.procedures.drift import level_index
from xbarlab.procedures.level_capacity import decode_levels
from xbarlab.procedures.params import param

#: defect-map codes
DEFECT_CODES = {
    "ok": 0,
    "not_converged": 1,
    "stuck_set": 2,
    "stuck_reset": 3,
    "unformable": 4,
    "shorted": 5,
}
_REQUIRED = ("targets", "converged", "unresponsive")
_PNG_SIZE = (960, 720)  # pixels


@dataclass(frozen=True)
class ProgramReportParams:
    run: str = param("", help="id (or unique prefix) of the programming run to report on")
    store: str = param("", help="run store (SQLite file) holding that run")
    step: str = param("", help="step id of its programming record (default: the last one)")
    png: str = param(
        "", help="PNG to write (default: program-report-<run>.png beside the store; 'none': no PNG)"
    )
    compare: str = param(
        "", help="other programming runs in the store, comma-separated: pulses and success compared"
    )

    def require_source(self) -> None:
        """ConfigError unless ``run`` and ``store`` are given (checked before a run, so
        the defaults still make a valid form)."""
        if not self.run:
            raise ConfigError("parameter run: give the id of the programming run to report on")
        if not self.store:
            raise ConfigError("parameter store: give the run store file that holds the run")


def load_programming_record(store_path: str, run_id: str, step: str = "") -> tuple[str, str, dict]:
    """(full run id, step id, record data) of a programming record in a run store."""
    from xbarlab.store import RunStore

    path = Path(store_path)
    if not path.is_file():
        raise ConfigError(f"parameter store = {store_path!r}: no such run store file")
    with RunStore(path) as store:
        info = store.run(run_id)
        if step:
            return info.run_id, step, store.record(info.run_id, step)
        found = [r for r in store.records(info.run_id) if all(k in r.data for k in _REQUIRED)]
    if not found:
        raise ConfigError(
            f"run {info.run_id} ({info.procedure}) has no programming record (a record with "
            f"{', '.join(_REQUIRED)}); report on a program-array, drift, retention or "
            "level-capacity run"
        )
    return info.run_id, found[-1].step_id, found[-1].data


def _read_after(data: dict) -> np.ndarray:
    for key in ("g_read", "g_after", "g_verify"):
        if key in data:
            return np.asarray(data[key], dtype=np.float64)
    raise ConfigError("the programming record holds no read (g_read, g_after or g_verify)")


def classify_defects(data: dict) -> np.ndarray:
    """Defect-map codes (int8, the targets' shape) from a programming record."""
    tgt = np.asarray(data["targets"])
    unresp = np.asarray(data["unresponsive"], dtype=bool)
    conv = np.asarray(data["converged"], dtype=bool)
    if data.get("stuck_set") is not None:
        high = np.asarray(data["stuck_set"], dtype=bool)
    else:  # older records: an unresponsive device read above its target is stuck at SET
        high = _read_after(data) > tgt
    codes = np.zeros(tgt.shape, dtype=np.int8)
    codes[~conv] = DEFECT_CODES["not_converged"]
    codes[unresp & high] = DEFECT_CODES["stuck_set"]
    codes[unresp & ~high] = DEFECT_CODES["stuck_reset"]
    for name in ("unformable", "shorted"):
        if data.get(name) is not None:
            codes[np.asarray(data[name], dtype=bool)] = DEFECT_CODES[name]
    return codes


def build_report(data: dict) -> dict:
    """The report of one programming record (see the module docstring); JSON-able except
    ``defect_map`` (int8 array) and ``pulses_hist`` (int64 array)."""
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ConfigError(f"the record is not a programming result: no {', '.join(missing)}")
    tgt = np.asarray(data["targets"], dtype=np.float64)
    conv = np.asarray(data["converged"], dtype=bool)
    usable = ~np.asarray(data["unresponsive"], dtype=bool)
    g = _read_after(data)
    tol = float(data.get("tolerance_S", 0.02 * float(tgt.max()) if tgt.size else 0.0))
    if data.get("pulses") is not None:
        counts, what = np.asarray(data["pulses"], dtype=np.int64), "pulses"
    elif data.get("done_at") is not None:
        counts, what = np.asarray(data["done_at"], dtype=np.int64), "iterations"
    else:
        counts, what = np.zeros(0, dtype=np.int64), "none"
    ok = conv & usable
    hist = np.bincount(counts[ok].ravel()) if counts.size and ok.any() else np.zeros(1, np.int64)
    level, values = level_index(tgt)
    discrete = np.unique(tgt).size == values.size and values.size >= 2
    ber = None
    if discrete and usable.any():
        try:
            ber = decode_levels(g, level, usable, values.size)["ber_per_level"]
        except ConfigError:
            ber = None
    levels = []
    for k, value in enumerate(values):
        m = level == k
        n = int(m.sum())
        levels.append(
            {
                "target_S": float(value),
                "devices": n,
                "success": float(np.mean(ok[m])) if n else float("nan"),
                "out_of_tolerance": float(np.mean(np.abs(g[m & usable] - tgt[m & usable]) > tol))
                if np.any(m & usable)
                else float("nan"),
                "ber": None if ber is None else float(ber[k]),
            }
        )
    codes = classify_defects(data)
    defect_counts = {name: int(np.count_nonzero(codes == c)) for name, c in DEFECT_CODES.items()}
    conv_counts = counts[ok]
    return {
        "devices": int(tgt.size),
        "tolerance_S": tol,
        "success": float(np.mean(ok)) if tgt.size else 0.0,
        "pulses_counted": what,
        "mean_pulses": float(conv_counts.mean()) if conv_counts.size else float("nan"),
        "median_pulses": float(np.median(conv_counts)) if conv_counts.size else float("nan"),
        "pulses_hist": hist.astype(np.int64),
        "levels": levels,
        "defects": defect_counts,
        "defect_map": codes,
    }


def compare_runs(store_path: str, run_ids: list[str]) -> list[dict]:
    """Pulses and success of programming runs side by side (e.g. ISPP against fixed-pulse
    verify on the same population): one row per run with its procedure, algorithm,
    devices, mean and median pulses per converged device, and success."""
    from xbarlab.store import RunStore

    rows = []
    for run_id in run_ids:
        full, step, data = load_programming_record(store_path, run_id)
        with RunStore(Path(store_path)) as store:
            info = store.run(full)
        report = build_report(data)
        rows.append(
            {
                "run": full,
                "procedure": info.procedure,
                "algorithm": info.parameters.get("algorithm"),
                "devices": report["devices"],
                "mean_pulses": report["mean_pulses"],
                "median_pulses": report["median_pulses"],
                "success": report["success"],
            }
        )
    return rows


def report_title(run_id: str, step: str, report: dict) -> str:
    """The report's heading: the run and step, and the comparison when there is one."""
    title = f"run {run_id}, step {step}"
    rows = report.get("comparison") or []
    if rows:
        title += "<br>" + "; ".join(
            f"{r['algorithm'] or r['procedure']}: {r['mean_pulses']:.1f} pulses, "
            f"{100 * r['success']:.1f} % success"
            for r in rows
        )
    return title


def report_json(report: dict) -> dict:
    """The report without its arrays, plus the histogram as a list: JSON-ready."""
    out = {k: v for k, v in report.items() if k not in ("defect_map", "pulses_hist")}
    out["pulses_hist"] = [int(v) for v in np.ravel(report["pulses_hist"])]
    return out


# -- drawing (shared with the GUI's report view) ---------------------------------------
#: defect-map colours (RGB) by code: ok, not converged, stuck SET, stuck RESET, unformable,
#: shorted
DEFECT_COLOURS = np.array(
    [[235, 235, 235], [255, 190, 0], [200, 30, 30], [30, 60, 200], [120, 120, 120], [0, 0, 0]],
    dtype=np.ubyte,
)


def draw_report(layout, report: dict, title: str = "") -> None:
    """Add the four report panels to a pyqtgraph GraphicsLayout (widget or item)."""
    import pyqtgraph as pg

    if title:
        layout.addLabel(title, row=0, col=0, colspan=2, color="k")
    hist = np.ravel(report["pulses_hist"])
    p1 = layout.addPlot(row=1, col=0, title=f"{report['pulses_counted']} to converge")
    p1.addItem(pg.BarGraphItem(x=np.arange(hist.size), height=hist, width=0.8, brush="b"))
    p1.setLabel("bottom", report["pulses_counted"])
    p1.setLabel("left", "devices")
    lv = report["levels"]
    x = np.arange(len(lv))
    ticks = [[(i, f"{row['target_S'] * 1e6:.3g}") for i, row in enumerate(lv)]]
    p2 = layout.addPlot(row=1, col=1, title="success per level")
    p2.getAxis("bottom").setTicks(ticks)
    success = np.nan_to_num([row["success"] for row in lv])
    p2.addItem(pg.BarGraphItem(x=x, height=success, width=0.7, brush="g"))
    p2.setYRange(0, 1.05)
    p2.setLabel("bottom", "target (µS)")
    p2.setLabel("left", "success")
    p3 = layout.addPlot(row=2, col=0, title="defect map")
    codes = np.asarray(report["defect_map"], dtype=np.intp)
    rgb = DEFECT_COLOURS[np.clip(codes, 0, len(DEFECT_COLOURS) - 1)]
    img = pg.ImageItem(np.ascontiguousarray(np.transpose(rgb, (1, 0, 2))), levels=(0, 255))
    p3.addItem(img)
    p3.invertY(True)
    p3.setAspectLocked(True)
    p3.setLabel("bottom", "column")
    p3.setLabel("left", "row")
    legend = p3.addLegend(offset=(5, 5))
    for name, code in DEFECT_CODES.items():
        n = report["defects"][name]
        if n and code:
            item = pg.ScatterPlotItem(brush=pg.mkBrush(*DEFECT_COLOURS[code]), symbol="s")
            legend.addItem(item, f"{name.replace('_', ' ')}: {n}")
    p4 = layout.addPlot(row=2, col=1, title="bit-error rate per level")
    p4.getAxis("bottom").setTicks(ticks)
    if any(row["ber"] is not None for row in lv):
        ber = np.array([np.nan if row["ber"] is None else row["ber"] for row in lv])
        p4.addItem(pg.BarGraphItem(x=x, height=np.nan_to_num(ber), width=0.7, brush="r"))
        p4.setLabel("left", "BER")
    else:
        oot = np.nan_to_num([row["out_of_tolerance"] for row in lv])
        p4.addItem(pg.BarGraphItem(x=x, height=oot, width=0.7, brush="r"))
        p4.setLabel("left", "out of tolerance")
    p4.setLabel("bottom", "target (µS)")


def write_png(report: dict, path: str | Path, title: str = "") -> Path:
    """Render the report to a PNG at ``path`` (offscreen Qt without a display)."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg
    from PyQt5.QtWidgets import QApplication
    from pyqtgraph.exporters import ImageExporter

    app = QApplication.instance() or QApplication(["xbarlab-report"])
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the directory of {path}: {exc.strerror}") from None
    widget = pg.GraphicsLayoutWidget()
    widget.setBackground("w")
    widget.resize(*_PNG_SIZE)
    draw_report(widget.ci, report, title)
    widget.show()  # lay the panels out over the whole size before exporting
    app.processEvents()
    exporter = ImageExporter(widget.scene())
    exporter.parameters()["width"] = _PNG_SIZE[0]
    exporter.export(str(path))
    widget.close()
    widget.deleteLater()
    return path


def _ids(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


class ProgramReport(Procedure):
    name = "program-report"
    Parameters = ProgramReportParams
    summary_doc = (
        "Reports on a stored programming run: pulses-to-converge histogram, success and "
        "BER per level, defect map (stuck-at-SET/RESET, unformable, shorted); JSON and PNG."
    )

    def check(self, info: ChipInfo) -> None:
        """The source run must exist and hold a programming record. With both ``run``
        and ``store`` left empty (the form's defaults) the check passes and the run
        stops at its first step with the message asking for them (no hardware is
        touched either way)."""
        if not (self.params.run or self.params.store):
            return
        self.params.require_source()
        load_programming_record(self.params.store, self.params.run, self.params.step)
        for other in _ids(self.params.compare):
            load_programming_record(self.params.store, other)

    def n_steps(self, info: ChipInfo) -> int:
        return 1

    def plan(self, xbar: Crossbar) -> Plan:
        p = self.params

        def action() -> dict:
            p.require_source()
            run_id, step, data = load_programming_record(p.store, p.run, p.step)
            report = build_report(data)
            others = _ids(p.compare)
            if others:
                report["comparison"] = compare_runs(p.store, [run_id, *others])
            png = ""
            if p.png.lower() != "none":
                png = p.png or str(Path(p.store).parent / f"program-report-{run_id}.png")
                write_png(report, png, report_title(run_id, step, report))
            return {
                "source_run": run_id,
                "source_step": step,
                "png": png,
                "defect_map": report["defect_map"],
                "pulses_hist": report["pulses_hist"],
                "report_json": report_json(report),
            }

        data = yield Step("report", action, "report")
        return {
            "source_run": data["source_run"],
            "source_step": data["source_step"],
            "png": data["png"],
            **data["report_json"],
        }
