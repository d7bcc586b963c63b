"""The fit report: one PNG per fitted law, measured points over the fitted curve.

Drawn with pyqtgraph's image exporter (matplotlib is not a dependency). Without a
display the Qt "offscreen" platform is used, so the report also works on a headless
lab server.
"""

from __future__ import annotations

import os
from pathlib import Path

from xbarlab.calibration.fit import Law
from xbarlab.errors import ConfigError

_SIZE = (640, 480)  # pixels


def write_report(laws: list[Law], out_dir: str | Path) -> list[Path]:
    """Write ``<law>.png`` for every law into ``out_dir`` (created); the paths written."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create report directory {out}: {exc.strerror}") from None
    app = _qt_app()  # held: a collected QApplication would take the widgets down
    paths = [_plot(law, out / f"{law.name}.png") for law in laws]
    app.processEvents()
    return paths


def _qt_app():
    """The running QApplication, or a new one (offscreen when there is no display)."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt5.QtWidgets import QApplication

    return QApplication.instance() or QApplication(["xbarlab-calibrate"])


def _plot(law: Law, path: Path) -> Path:
    import pyqtgraph as pg
    from pyqtgraph.exporters import ImageExporter

    plot = pg.PlotWidget(background="w")
    plot.resize(*_SIZE)
    item = plot.getPlotItem()
    item.setTitle(law.name)
    item.setLabel("bottom", law.x_label)
    item.setLabel("left", law.y_label)
    for side in ("bottom", "left"):
        item.getAxis(side).enableAutoSIPrefix(False)  # the units are in the labels
    item.addLegend()
    item.plot(law.x, law.y, pen=None, symbol="o", symbolBrush="b", name="measured")
    item.plot(law.x_fit, law.y_fit, pen=pg.mkPen("r", width=2), name="fitted law")
    exporter = ImageExporter(item)
    exporter.parameters()["width"] = _SIZE[0]
    exporter.export(str(path))
    plot.deleteLater()
    return path
