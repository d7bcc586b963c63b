"""The main window of ``xbarlab gui``: connection, heatmap, launcher, queue, plots, log, runs.

The window only composes views and routes events: the chip is opened by the
connection panel, procedures are built by their generated forms and run by the
:class:`~xbarlab.gui.worker.RunQueue` on its worker thread, and every event the run
emits arrives here on the UI thread. Records that carry a conductance map (fields in
:data:`MAP_FIELDS`) update the heatmap; nothing is read from the chip for display.
Each record also goes to the live plot registered for the running procedure
(:data:`xbarlab.gui.plots.PLOT_REGISTRY`). The launcher lists training next to the
procedures (:mod:`xbarlab.gui.training_launcher`), with its own live plot.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import QEventLoop, Qt
from PyQt5.QtGui import QImage
from PyQt5.QtWidgets import (
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from xbarlab.errors import ConfigError
from xbarlab.events import Progress, Record, Status
from xbarlab.gui import training_plot  # noqa: F401  (registers the train-* live plot)
from xbarlab.gui.connection import ConnectionPanel
from xbarlab.gui.forms import ProcedureForm
from xbarlab.gui.heatmap import Heatmap
from xbarlab.gui.logpane import LogPane
from xbarlab.gui.plots import make_live_plot
from xbarlab.gui.runs import RunBrowser
from xbarlab.gui.training_launcher import Train
from xbarlab.gui.worker import RunQueue
from xbarlab.procedures.base import Region
from xbarlab.procedures.registry import PROCEDURES

#: record fields holding a conductance map in S, most informative first
MAP_FIELDS = ("g_after", "g_mean", "g")
#: most selected devices drawn as separate history curves
MAX_HISTORY_CURVES = 16
#: the launcher's entries by name: every registered procedure, then training
LAUNCHER = {**PROCEDURES, Train.name: Train}


def record_map(data) -> np.ndarray | None:
    """The conductance map (2-D array in S) a record carries, or None."""
    for name in MAP_FIELDS:
        g = data.get(name)
        if isinstance(g, np.ndarray) and g.ndim == 2:
            return g
    return None


def map_origin(procedure) -> tuple[int, int]:
    """Where a procedure's maps sit on the chip: its region's corner, else (0, 0)."""
    return _region_origin(getattr(procedure.params, "region", None))


def _region_origin(region: str | None) -> tuple[int, int]:
    if region is None:
        return (0, 0)
    r = Region.parse(region)
    return (r.rows.start, r.cols.start)


class MainWindow(QMainWindow):
    """The xbarlab GUI over one run store (an open :class:`~xbarlab.store.RunStore`)."""

    def __init__(self, store, spec: str | None = None):
        super().__init__()
        self.setWindowTitle("xbarlab")
        self.store = store
        self.xbar = None
        self.spec = ""
        self.running = None  # the Procedure of the job in flight
        self.shown_run: str | None = None  # run whose records the plots and history show
        self.queue = RunQueue(store, self)
        self.log = LogPane()
        self.connection = ConnectionPanel(spec=spec)
        self.heatmap = Heatmap()
        self.forms: dict[str, ProcedureForm] = {}
        self._build()
        self._wire()
        self._update_controls()

    # -- layout ------------------------------------------------------------------------

    def _build(self) -> None:
        self.plot_area = QTabWidget()
        self.plot_stack = QStackedWidget()
        self.plots: dict[str, object] = {}  # procedure name -> its LivePlot, built once
        self.plot_area.addTab(self.plot_stack, "live plot")
        self.history = pg.PlotWidget(title="Selected devices")
        self.history.setBackground("w")
        self.history.setLabel("left", "G", units="S")
        self.history.setLabel("bottom", "record")
        self.plot_area.addTab(self.history, "device history")
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.heatmap)
        split.addWidget(self.plot_area)
        split.setSizes([430, 570])
        self.runs = RunBrowser(self.store)
        bottom = QTabWidget()
        bottom.addTab(self.log, "log")
        bottom.addTab(self.runs, "runs")
        central = QSplitter(Qt.Vertical)  # a splitter, not a dock: the plots get the height
        central.addWidget(split)
        central.addWidget(bottom)
        central.setStretchFactor(0, 4)
        central.setStretchFactor(1, 1)
        self.setCentralWidget(central)
        self._dock("Chip", self.connection, Qt.TopDockWidgetArea)
        self._dock("Procedures", self._launcher(), Qt.LeftDockWidgetArea)

    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _launcher(self) -> QWidget:
        self.procedure_box = QComboBox()
        self.procedure_box.addItems(list(LAUNCHER))
        self.form_stack = QStackedWidget()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form_stack)
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.abort_button = QPushButton("Abort")
        self.progress = QProgressBar()
        self.state_label = QLabel("idle")
        # a changing message must not re-lay out the window (and re-draw every plot's axes)
        self.state_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        buttons = QHBoxLayout()
        for b in (self.pause_button, self.resume_button, self.abort_button):
            buttons.addWidget(b)
        box = QWidget()
        box.setMinimumWidth(360)  # the forms' labels and fields fit without scrolling sideways
        box.setMaximumWidth(400)
        lay = QVBoxLayout(box)
        lay.addWidget(self.procedure_box)
        lay.addWidget(scroll, 1)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.state_label)
        return box

    def _wire(self) -> None:
        self.connection.connected.connect(self._on_connected)
        self.connection.disconnected.connect(self._on_disconnected)
        self.procedure_box.currentTextChanged.connect(self.show_procedure)
        self.pause_button.clicked.connect(self.queue.pause)
        self.resume_button.clicked.connect(self.queue.resume)
        self.abort_button.clicked.connect(self.queue.abort)
        self.queue.run_event.connect(self._on_event)
        self.queue.started.connect(self._on_started)
        self.queue.finished.connect(self._on_finished)
        self.queue.failed.connect(self._on_failed)
        self.queue.changed.connect(self._update_controls)
        self.heatmap.devices_selected.connect(self.show_history)
        self.runs.run_opened.connect(self.open_run)
        self.show_procedure(self.procedure_box.currentText())

    # -- chip and procedures ----------------------------------------------------------

    def show_procedure(self, name: str) -> ProcedureForm:
        """Show (creating it on first use) the form of procedure ``name``."""
        form = self.forms.get(name)
        if form is None:
            info = self.xbar.info if self.xbar is not None else None
            form = ProcedureForm(LAUNCHER[name], info)
            form.run_requested.connect(self.submit)
            self.forms[name] = form
            self.form_stack.addWidget(form)
        self.form_stack.setCurrentWidget(form)
        self.show_plot(name)
        self.procedure_box.setCurrentText(name)
        return form

    def submit(self, procedure) -> None:
        """Queue a validated procedure on the connected chip."""
        if self.xbar is None:
            self.log.append(f"{procedure.name}: connect a chip first", "ERROR")
            return
        self.queue.submit(procedure, self.xbar, self.spec)
        self.log.append(f"{procedure.name}: queued")

    def _on_connected(self, xbar, spec: str) -> None:
        self.xbar, self.spec = xbar, spec
        info = xbar.info
        self.heatmap.set_shape(info.rows, info.cols, (info.g_min, info.g_max))
        for form in self.forms.values():
            form.set_chip_info(info)
        self.log.append(f"connected {spec} ({info.rows} x {info.cols} {info.technology})")
        self._update_controls()

    def _on_disconnected(self) -> None:
        self.xbar = None
        for form in self.forms.values():
            form.set_chip_info(None)
        self.log.append("disconnected")
        self._update_controls()

    # -- runs ------------------------------------------------------------------------------

    def _on_started(self, job) -> None:
        self.running = job.procedure
        self.show_plot(job.procedure.name).clear()
        self.progress.setValue(0)

    def _on_event(self, event) -> None:
        if isinstance(event, Record):
            self.shown_run = event.source
            g = record_map(event.data)
            if g is not None and self.running is not None:
                self.heatmap.set_data(g, map_origin(self.running))
            self.live_plot.on_record(event.step_id, event.data)
        elif isinstance(event, Progress):
            self.progress.setMaximum(max(event.total, 1))
            self.progress.setValue(event.done)
            self.state_label.setText(event.message)
        elif isinstance(event, Status):
            self.shown_run = event.source
            text = f"run {event.source}: {event.state}"
            self.log.append(f"{text} {event.message}".strip())
            self.state_label.setText(text)

    def _on_finished(self, job, outcome) -> None:
        self.running = None
        self.log.append(f"{job.procedure.name} {outcome.run_id} ended {outcome.status}")
        self.runs.refresh()

    def _on_failed(self, job, message: str) -> None:
        self.running = None
        self.log.append(message, "ERROR")
        self.runs.refresh()

    def _update_controls(self) -> None:
        state = self.queue.state
        self.pause_button.setEnabled(state == "running")
        self.resume_button.setEnabled(state == "paused")
        self.abort_button.setEnabled(self.queue.busy)
        self.connection.set_busy(self.queue.busy)

    def show_plot(self, name: str):
        """Show the live plot of procedure ``name`` (built on first use, then reused:
        building pyqtgraph plots takes long enough to stall the UI at a run's start)."""
        plot = self.plots.get(name)
        if plot is None:
            plot = self.plots[name] = make_live_plot(name, self)
            self.plot_stack.addWidget(plot)
        self.plot_stack.setCurrentWidget(plot)
        self.plot_area.setCurrentIndex(0)
        return plot

    @property
    def live_plot(self):
        """The live plot shown now."""
        return self.plot_stack.currentWidget()

    def open_run(self, run_id: str) -> None:
        """Show a stored run: its plot, and its last conductance map on the heatmap."""
        info = self.store.run(run_id)
        self.show_plot(info.procedure).load_run(self.store, info.run_id)
        self.shown_run = info.run_id
        for rec in reversed(self.store.records(run_id)):
            g = record_map(rec.data)
            if g is not None:
                if self.heatmap.data is None or self.heatmap.data.shape != g.shape:
                    self.heatmap.set_shape(*g.shape, self.heatmap.window)
                self.heatmap.set_data(g)
                break
        self.log.append(f"opened run {run_id}")

    def show_history(self, rows, cols) -> None:
        """Plot the selected devices' conductance over the shown run's records."""
        self.history.clear()
        if self.shown_run is None:
            return
        region = self.store.run(self.shown_run).parameters.get("region")
        r0, c0 = _region_origin(region)
        xs, ys = [], []
        for k, rec in enumerate(self.store.records(self.shown_run)):
            g = record_map(rec.data)
            if g is None:
                continue
            inside = (
                (rows >= r0) & (rows < r0 + g.shape[0]) & (cols >= c0) & (cols < c0 + g.shape[1])
            )
            if inside.any():
                xs.append(float(rec.data.get("t_s", k)))
                ys.append(g[rows[inside] - r0, cols[inside] - c0])
        if not ys:
            return
        x, y = np.array(xs), np.stack(ys)
        self.history.setLabel("bottom", "t (s) or record index")
        for j in range(min(y.shape[1], MAX_HISTORY_CURVES)):
            self.history.plot(x, y[:, j], pen=pg.intColor(j), symbol="o", symbolSize=4)
        self.plot_area.setCurrentWidget(self.history)

    def closeEvent(self, event) -> None:
        """Abort the run in flight, stop the worker thread, close the chip."""
        self.queue.shutdown()
        self.connection.disconnect_chip()
        super().closeEvent(event)


def launch(
    spec: str | None,
    store_path: str,
    run: str | None = None,
    values: dict | None = None,
    screenshot: str | None = None,
    size: tuple[int, int] = (1200, 800),
) -> int:
    """Open the window; optionally connect, run procedure ``run`` with form ``values``.

    screenshot: a PNG path; the window is drawn (offscreen is fine) once the run
    ended, saved there, and the application quits. Returns the exit code.
    """
    from PyQt5.QtWidgets import QApplication

    from xbarlab.store import RunStore

    app = QApplication.instance() or QApplication(["xbarlab"])
    with RunStore(store_path) as store:
        win = MainWindow(store, spec)
        win.resize(*size)
        win.show()
        if spec and not win.connection.connect_to(spec):
            win.log.append(win.connection.error.text(), "ERROR")
        if run:
            form = win.show_procedure(run)
            form.set_values(values or {})
            if not form.is_valid():
                win.close()
                raise ConfigError(f"{run}: {'; '.join(form.errors().values())}")
            form.run_button.click()
        if screenshot:
            return _screenshot(app, win, screenshot)
        app.exec_()
    return 0


def _screenshot(app, win: MainWindow, path: str) -> int:
    """Wait for the queue to drain, repaint, save ``path``, close; 1 if the run failed."""
    failures = []
    win.queue.failed.connect(lambda job, msg: failures.append(msg))
    loop = QEventLoop()
    win.queue.changed.connect(lambda: None if win.queue.busy else loop.quit())
    if win.queue.busy:
        loop.exec_()
    app.processEvents()
    win.heatmap.flush()
    app.processEvents()
    # a label text set last (run state) can widen a dock after the window's layout ran;
    # lay out again so the central widget does not sit under the dock in the image
    win.layout().activate()
    # 256 colours keep the PNG small; a UI has few colours, so text stays sharp
    image = win.grab().toImage().convertToFormat(QImage.Format_Indexed8, Qt.ThresholdDither)
    ok = image.save(path)
    win.close()
    return 0 if ok and not failures else 1
