"""The connection panel: choose a backend spec, open the chip, show its info and limits.

The spec is the same string the CLI and YAML take (``emulator:pcm?rows=256&cols=256``,
``board:socket://127.0.0.1:5555``, ``bench:station.yaml``); presets fill it in, and
"station.yaml..." picks a bench station file. The chip's shape, window and safety
limits are shown in SI-prefixed units, because the forms refuse values beyond them.
"""

from __future__ import annotations

from PyQt5.QtCore import pyqtSignal
from PyQt5.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from xbarlab.chipdrivers import open_crossbar
from xbarlab.errors import XbarlabError

#: specs offered in the combo box; any other spec can be typed in
PRESETS = (
    "emulator:pcm?rows=64&cols=64&seed=1",
    "emulator:pcm?rows=256&cols=256&seed=1",
    "emulator:pcm?rows=1024&cols=1024&seed=1",
    "emulator:pcm?rows=64&cols=64&seed=1&periphery=hermes&differential=1",
    "board:socket://127.0.0.1:5555",
    "bench:station.yaml",
)

#: label/value pairs per row of the chip description
INFO_COLUMNS = 3


def chip_rows(info) -> list[tuple[str, str]]:
    """(label, value) pairs describing a ChipInfo and its safety limits, units shown."""
    lim = info.limits
    return [
        ("backend", info.backend),
        ("array", f"{info.rows} x {info.cols} {info.technology}"),
        ("window", f"{info.g_min * 1e6:.3g} .. {info.g_max * 1e6:.3g} uS"),
        ("read voltage", f"{info.v_read:g} V"),
        ("max pulse voltage", f"{lim.max_voltage:g} V"),
        ("max read voltage", f"{lim.max_read_voltage:g} V"),
        ("pulse width", f"{lim.min_pulse_width * 1e9:g} ns .. {lim.max_pulse_width * 1e6:g} us"),
        ("max pulse count", f"{lim.max_pulse_count}"),
        ("compliance", f"{lim.compliance_current * 1e6:g} uA"),
    ]


class ConnectionPanel(QWidget):
    """Spec entry with presets, Connect/Disconnect, and the open chip's info.

    Signals
    -------
    connected(xbar, spec): a chip was opened.
    disconnected(): the chip was closed.
    """

    connected = pyqtSignal(object, str)
    disconnected = pyqtSignal()

    def __init__(self, parent: QWidget | None = None, spec: str | None = None):
        super().__init__(parent)
        self.xbar = None
        self.spec_box = QComboBox()
        self.spec_box.setEditable(True)
        self.spec_box.addItems(PRESETS)
        self.spec_box.setCurrentText(spec or PRESETS[1])
        self.spec_box.setToolTip("backend spec: emulator:..., board:URL or bench:station.yaml")
        self.browse = QPushButton("station.yaml...")
        self.browse.clicked.connect(self._browse)
        self.button = QPushButton("Connect")
        self.button.clicked.connect(self.toggle)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #c00")
        self.error.setWordWrap(True)
        self.info_grid = QGridLayout()
        self.info_grid.setHorizontalSpacing(12)
        row = QHBoxLayout()
        row.addWidget(self.spec_box, 1)
        row.addWidget(self.browse)
        row.addWidget(self.button)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.error)
        lay.addLayout(self.info_grid)

    @property
    def spec(self) -> str:
        return self.spec_box.currentText().strip()

    def toggle(self) -> None:
        """Connect, or disconnect when a chip is open."""
        if self.xbar is None:
            self.connect_to(self.spec)
        else:
            self.disconnect_chip()

    def connect_to(self, spec: str) -> bool:
        """Open the chip ``spec`` names; on error show it and return False."""
        self.spec_box.setCurrentText(spec)
        try:
            xbar = open_crossbar(spec)
        except (XbarlabError, OSError) as exc:
            self.error.setText(str(exc))
            return False
        self.error.setText("")
        self.xbar = xbar
        self._show_info(xbar.info)
        self.button.setText("Disconnect")
        self.spec_box.setEnabled(False)
        self.connected.emit(xbar, spec)
        return True

    def disconnect_chip(self) -> None:
        """Close the open chip (safe state is the backend's job)."""
        if self.xbar is None:
            return
        self.xbar.close()
        self.xbar = None
        self._show_info(None)
        self.button.setText("Connect")
        self.spec_box.setEnabled(True)
        self.disconnected.emit()

    def set_busy(self, busy: bool) -> None:
        """No disconnecting while a run uses the chip."""
        self.button.setEnabled(not busy)

    def _show_info(self, info) -> None:
        """The chip's description as a compact grid of label/value pairs, three per row."""
        while self.info_grid.count():
            self.info_grid.takeAt(0).widget().deleteLater()
        for k, (label, value) in enumerate(chip_rows(info) if info is not None else []):
            row, col = divmod(k, INFO_COLUMNS)
            self.info_grid.addWidget(QLabel(f"<b>{label}</b>"), row, 2 * col)
            self.info_grid.addWidget(QLabel(value), row, 2 * col + 1)

    def info_text(self) -> dict[str, str]:
        """The shown chip description, label -> value (for tests)."""
        items = [self.info_grid.itemAt(i).widget().text() for i in range(self.info_grid.count())]
        return {
            k.removeprefix("<b>").removesuffix("</b>"): v
            for k, v in zip(items[::2], items[1::2], strict=True)
        }

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Bench station", "", "YAML (*.yaml *.yml)")
        if path:
            self.spec_box.setCurrentText(f"bench:{path}")
