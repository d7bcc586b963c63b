"""The GUI's run engine: a queue of procedure jobs executed on ONE worker thread.

Procedures never run on the UI thread. :class:`RunQueue` lives in the UI thread and
owns a :class:`~PyQt5.QtCore.QThread` in which a small worker object runs each job
through the ordinary :class:`~xbarlab.procedures.runner.Runner`, so runs from the GUI
are recorded, paused, aborted and resumed exactly as from the CLI. The worker's
:class:`~xbarlab.events.EventBus` delivers events in the worker thread; the worker
re-emits them as a Qt signal, which Qt queues to the UI thread (a cross-thread
connection), so every slot the window connects runs on the UI thread.

Each job gets its own :class:`RunControl`: Pause, Resume and Abort act on the job in
flight, between two procedure steps (the runner polls the control there), and an
aborted run ends with status "aborted" and its completed steps stored.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from PyQt5.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from xbarlab.events import Event, EventBus
from xbarlab.procedures.base import Procedure
from xbarlab.procedures.runner import RunControl, Runner, RunOutcome


@dataclass
class Job:
    """One queued run: ``procedure`` on chip ``xbar`` opened from ``spec``.

    A launcher entry that is not a plan (training: :mod:`xbarlab.gui.training_launcher`)
    names a Job subclass in its ``job_class`` attribute; that subclass's :meth:`execute`
    runs it, with the same events, control and outcome.
    """

    procedure: Procedure
    xbar: object
    spec: str
    control: RunControl = field(default_factory=RunControl)

    def execute(self, store, bus: EventBus) -> RunOutcome:
        """Run the procedure's plan through the Runner, here (the worker thread)."""
        runner = Runner(store, bus, self.control)
        run_id = runner.create_run(self.procedure, self.xbar, backend=self.spec)
        return runner.run(
            self.procedure, self.xbar, backend=self.spec, run_id=run_id, state_key=run_id
        )


class _Worker(QObject):
    """Runs jobs in the worker thread; every signal it emits crosses to the UI thread."""

    run_event = pyqtSignal(object)
    finished = pyqtSignal(object, object)  # job, RunOutcome
    failed = pyqtSignal(object, str)  # job, error text

    def __init__(self, store):
        super().__init__()
        self.store = store

    @pyqtSlot(object)
    def run_job(self, job: Job) -> None:
        bus = EventBus()
        bus.subscribe(self.run_event.emit)
        try:
            outcome = job.execute(self.store, bus)
        except Exception as exc:  # shown in the GUI; the runner marked the run failed
            self.failed.emit(job, f"{job.procedure.name}: {type(exc).__name__}: {exc}")
        else:
            self.finished.emit(job, outcome)


class RunQueue(QObject):
    """Queue of procedure runs, executed one at a time on a single worker thread.

    Signals (all delivered on the UI thread)
    ----------------------------------------
    run_event(Event): every Progress, Record and Status event of the running job.
    started(Job): a job left the queue and is now running.
    finished(Job, RunOutcome): a job ended (completed or aborted).
    failed(Job, str): a job raised; the text says what went wrong.
    changed(): the queue or the running job changed (for buttons and labels).
    """

    run_event = pyqtSignal(object)
    started = pyqtSignal(object)
    finished = pyqtSignal(object, object)
    failed = pyqtSignal(object, str)
    changed = pyqtSignal()
    _dispatch = pyqtSignal(object)

    def __init__(self, store, parent: QObject | None = None):
        super().__init__(parent)
        self.pending: collections.deque[Job] = collections.deque()
        self.current: Job | None = None
        self.thread = QThread()
        self.thread.setObjectName("xbarlab-run-worker")
        self._worker = _Worker(store)
        self._worker.moveToThread(self.thread)
        self._dispatch.connect(self._worker.run_job)
        self._worker.run_event.connect(self._on_event)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self.thread.start()

    # -- commands (UI thread) ------------------------------------------------------

    def submit(self, procedure: Procedure, xbar, spec: str) -> Job:
        """Queue ``procedure`` to run on ``xbar``; it starts when the worker is free."""
        job = getattr(procedure, "job_class", Job)(procedure, xbar, spec)
        self.pending.append(job)
        self._next()
        self.changed.emit()
        return job

    def pause(self) -> None:
        """Hold the running job after its step in flight."""
        if self.current is not None:
            self.current.control.pause()
            self.changed.emit()

    def resume(self) -> None:
        """Continue the paused job."""
        if self.current is not None:
            self.current.control.resume()
            self.changed.emit()

    def abort(self) -> None:
        """Abort the running job after its step in flight and drop the queued ones."""
        self.pending.clear()
        if self.current is not None:
            self.current.control.abort()
        self.changed.emit()

    @property
    def busy(self) -> bool:
        """True while a job runs or waits."""
        return self.current is not None or bool(self.pending)

    @property
    def state(self) -> str:
        """ "idle", or the running job's control state ("running", "paused", "aborted")."""
        return "idle" if self.current is None else self.current.control.state

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Abort everything, stop the worker thread and wait for it; True if it ended."""
        self.abort()
        self.thread.quit()
        return self.thread.wait(timeout_ms)

    # -- worker replies (UI thread) --------------------------------------------------

    def _next(self) -> None:
        if self.current is None and self.pending:
            self.current = self.pending.popleft()
            self.started.emit(self.current)
            self._dispatch.emit(self.current)

    def _on_event(self, event: Event) -> None:
        self.run_event.emit(event)

    def _on_finished(self, job: Job, outcome) -> None:
        self.current = None
        self.finished.emit(job, outcome)
        self._next()
        self.changed.emit()

    def _on_failed(self, job: Job, message: str) -> None:
        self.current = None
        self.failed.emit(job, message)
        self._next()
        self.changed.emit()
