"""The crossbar heatmap: conductance per device, with hover read-out and selection.

Updates are coalesced: :meth:`Heatmap.set_data` only stores the newest map (a reference,
or a copy into the stored map for a block), and a timer repaints at most every
``refresh_ms`` when something changed. Events may arrive faster than the screen can
draw a 1024 x 1024 image; the UI thread then draws only the newest map instead of
queueing every one, which keeps it responsive. Values are stored in S and shown in uS.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from numba import njit
from PyQt5.QtCore import QPointF, QRectF, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QPen
from PyQt5.QtWidgets import QComboBox, QGraphicsRectItem, QHBoxLayout, QLabel, QVBoxLayout, QWidget

SCALES = ("linear", "log")
_UNIT = 1e6  # S -> uS for display
_ONE_PIXEL = np.empty((1, 1), np.uint8)


@njit(cache=True, nogil=True, error_model="numpy")
def _colour_indices(g, unit, log, lo, per_level, out):
    """out = clip((shown - lo) * per_level + 1, 1, 255) as uint8, 0 where g is NaN;
    shown = g * unit, or its log10 when ``log``."""
    rows, cols = g.shape
    for r in range(rows):
        for c in range(cols):
            v = g[r, c] * unit
            if log:
                v = math.log10(v) if v > 0 else -math.inf
            if v != v:
                out[r, c] = 0
            else:
                out[r, c] = np.uint8(min(max((v - lo) * per_level + 1.0, 1.0), 255.0))


def _lut(cmap) -> np.ndarray:
    """256 RGBA colours: index 0 (no data) light grey, 1..255 the colour map."""
    lut = np.empty((256, 4), dtype=np.uint8)
    lut[0] = (220, 220, 220, 255)
    lut[1:] = cmap.getLookupTable(nPts=255, alpha=True)
    return lut


class _SelectableImage(pg.ImageItem):
    """An ImageItem that reports left clicks and left drags in image coordinates."""

    def __init__(self, on_select, on_drag, **kwargs):
        super().__init__(**kwargs)
        self._on_select, self._on_drag = on_select, on_drag

    def mouseClickEvent(self, ev):
        if ev.button() == Qt.LeftButton:
            ev.accept()
            p = ev.pos()
            self._on_select(p, p)

    def mouseDragEvent(self, ev):
        if ev.button() != Qt.LeftButton:
            ev.ignore()
            return
        ev.accept()
        start, now = ev.buttonDownPos(), ev.pos()
        if ev.isFinish():
            self._on_select(start, now)
        else:
            self._on_drag(start, now)


class Heatmap(QWidget):
    """Conductance map of the chip with a colour bar, linear or log scale.

    Signals
    -------
    devices_selected(rows, cols): int arrays of the devices selected by a click (one
        device) or a drag (a rectangle), row-major.
    """

    devices_selected = pyqtSignal(object, object)

    def __init__(self, parent: QWidget | None = None, refresh_ms: int = 50):
        super().__init__(parent)
        self.frames = 0  # repaints done (the benchmark counts them)
        self.scale = "linear"
        self.window = (0.0, 1e-4)  # conductance window in S for the colour range
        self._map: np.ndarray | None = None
        self._dirty = False
        self._build()
        self._timer = QTimer(self)
        self._timer.setInterval(refresh_ms)
        self._timer.timeout.connect(self._refresh)
        self._timer.start()
        # compile (or load) the colour kernel now, not on the first frame of a run
        _colour_indices(np.zeros((1, 1), np.float32), _UNIT, False, 0.0, 1.0, _ONE_PIXEL)

    def _build(self) -> None:
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.plot = self.view.addPlot(title="Conductance")
        self.plot.setLabel("bottom", "column")
        self.plot.setLabel("left", "row")
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        self.image = _SelectableImage(self._select, self._drag, axisOrder="row-major")
        self.plot.addItem(self.image)
        self.bar = pg.ColorBarItem(
            values=(0, 100), colorMap=pg.colormap.get("viridis"), interactive=False, width=16
        )
        self.view.addItem(self.bar)  # beside the plot; the image gets its own 8-bit LUT
        self._lut = _lut(self.bar.colorMap())
        self.bar.axis.setLabel("G (uS)")
        self._box = QGraphicsRectItem()
        self._box.setPen(QPen(Qt.red, 0))
        self._box.setVisible(False)
        self.plot.addItem(self._box)
        self.scale_box = QComboBox()
        self.scale_box.addItems(SCALES)
        self.scale_box.currentTextChanged.connect(self.set_scale)
        self.hover = QLabel("row -, col -")
        self.hover.setTextInteractionFlags(Qt.TextSelectableByMouse)
        top = QHBoxLayout()
        top.addWidget(QLabel("scale"))
        top.addWidget(self.scale_box)
        top.addStretch(1)
        top.addWidget(self.hover)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.view, 1)
        self.view.scene().sigMouseMoved.connect(self._hovered)

    # -- data ------------------------------------------------------------------------

    def set_shape(self, rows: int, cols: int, window: tuple[float, float]) -> None:
        """Start an empty (NaN) map for a chip of ``rows`` x ``cols`` devices.

        window: (g_min, g_max) in S, the fixed colour range of both scales.
        """
        self.window = (float(window[0]), float(window[1]))
        self._map = np.full((rows, cols), np.nan, dtype=np.float32)
        self._dirty = True
        self._apply_levels()

    def set_data(self, g: np.ndarray, origin: tuple[int, int] = (0, 0)) -> None:
        """Show conductances ``g`` in S: the whole map, or a block at ``origin`` (row, col).

        Only stores the data; the next timer tick repaints (coalesced updates).
        """
        g = np.asarray(g, dtype=np.float32)
        if g.ndim != 2:
            raise ValueError(f"heatmap data must be 2-D (rows, cols), got shape {g.shape}")
        r0, c0 = origin
        if self._map is None or (origin == (0, 0) and g.shape == self._map.shape):
            self._map = g  # a reference: never written in place
        else:
            self._map = self._map.copy()  # it may be a caller's array: never write into it
            r1 = min(r0 + g.shape[0], self._map.shape[0])
            c1 = min(c0 + g.shape[1], self._map.shape[1])
            self._map[r0:r1, c0:c1] = g[: r1 - r0, : c1 - c0]
        self._dirty = True

    @property
    def data(self) -> np.ndarray | None:
        """The stored map in S (what the next repaint shows)."""
        return self._map

    def set_scale(self, scale: str) -> None:
        """Colour by G ("linear", uS) or by log10 G ("log")."""
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        self.scale = scale
        if self.scale_box.currentText() != scale:
            self.scale_box.setCurrentText(scale)
        self.bar.axis.setLabel("G (uS)" if scale == "linear" else "log10 G (uS)")
        self._apply_levels()
        self._dirty = True

    def flush(self) -> None:
        """Repaint now if something changed (tests, screenshots)."""
        self._refresh()

    def _apply_levels(self) -> None:
        lo, hi = (w * _UNIT for w in self.window)
        if self.scale == "log":
            lo, hi = np.log10(max(lo, hi * 1e-3)), np.log10(hi)
        self.bar.setLevels((lo, hi))

    def _refresh(self) -> None:
        if not self._dirty or self._map is None:
            return
        self._dirty = False
        self.image.setImage(self._indices(), autoLevels=False, levels=(0, 255), lut=self._lut)
        self.frames += 1

    def _indices(self) -> np.ndarray:
        """The map as uint8 colour indices: 1..255 over the colour range, 0 for NaN.

        One compiled pass that releases the GIL (a million devices in about a
        millisecond), handing Qt an 8-bit indexed image: pyqtgraph's float path, or a
        chain of numpy passes, costs ten times more on the UI thread.
        """
        lo, hi = self.bar.levels()
        out = np.empty(self._map.shape, dtype=np.uint8)
        g = np.require(self._map, np.float32, ["C", "W"])  # the one compiled signature
        _colour_indices(g, _UNIT, self.scale == "log", lo, 254 / (hi - lo), out)
        return out

    # -- mouse -----------------------------------------------------------------------

    def _index(self, p: QPointF) -> tuple[int, int] | None:
        if self._map is None:
            return None
        r, c = int(np.floor(p.y())), int(np.floor(p.x()))
        rows, cols = self._map.shape
        return (min(max(r, 0), rows - 1), min(max(c, 0), cols - 1))

    def _hovered(self, pos) -> None:
        if self._map is None or not self.plot.sceneBoundingRect().contains(pos):
            return
        p = self.image.mapFromScene(pos)
        r, c = int(np.floor(p.y())), int(np.floor(p.x()))
        rows, cols = self._map.shape
        if 0 <= r < rows and 0 <= c < cols:
            self.hover.setText(f"row {r}, col {c}: G = {self._map[r, c] * _UNIT:.3f} uS")

    def _drag(self, start: QPointF, now: QPointF) -> None:
        self._box.setRect(QRectF(start, now).normalized())
        self._box.setVisible(True)

    def _select(self, start: QPointF, end: QPointF) -> None:
        a, b = self._index(start), self._index(end)
        if a is None:
            return
        self.select(min(a[0], b[0]), max(a[0], b[0]) + 1, min(a[1], b[1]), max(a[1], b[1]) + 1)

    def select(self, r0: int, r1: int, c0: int, c1: int) -> None:
        """Select rows r0:r1 and columns c0:c1; emits ``devices_selected``."""
        self._box.setRect(QRectF(c0, r0, c1 - c0, r1 - r0))
        self._box.setVisible(True)
        rows, cols = np.meshgrid(np.arange(r0, r1), np.arange(c0, c1), indexing="ij")
        self.devices_selected.emit(rows.ravel(), cols.ravel())

    def closeEvent(self, event) -> None:
        self._timer.stop()
        super().closeEvent(event)
