"""The launcher's ``train`` entry: training runs started from the GUI like procedures.

Training is not a plan of steps: :func:`xbarlab.training.runs.run_training` (shared
with ``xbarlab train`` and the benchmark) loops over the epochs itself. So :class:`Train`
declares its options as procedure parameters, and the generated
:class:`~xbarlab.gui.forms.ProcedureForm` serves it unchanged, while its
``job_class``, :class:`TrainingJob`, runs it on the RunQueue's worker thread.
``run_training`` records the run in the store as ``train-<mode>``, exactly as the CLI
does; each epoch, once recorded, is re-posted to the window as a Record and a Progress
event, which feed the live :class:`~xbarlab.gui.training_plot.TrainingPlot`. Pause and
Abort act between epochs through the job's RunControl; an aborted run keeps the epochs
done and is stored "aborted".

The backend is the connection panel's spec: training opens the arrays its layers need
from it, core by core (:func:`xbarlab.chipdrivers.tile_layout.core_spec`); fp mode opens
none.
"""

from __future__ import annotations

from dataclasses import dataclass

from xbarlab.events import Progress, Record, Status
from xbarlab.gui.worker import Job
from xbarlab.procedures.base import Procedure
from xbarlab.procedures.params import param
from xbarlab.procedures.runner import ABORTED, RunOutcome
from xbarlab.training.runs import (
    DEFAULT_EPOCHS,
    MODES,
    TrainingStopped,
    epoch_step_id,
    run_training,
)


@dataclass(frozen=True)
class TrainParameters:
    """The options of ``xbarlab train`` other than the backend (the connected chip's)."""

    mode: str = param(
        "mixed-precision",
        choices=MODES,
        help="fp: software only; mixed-precision: products on the chip, updates as SET "
        "pulses; hwa: noise-aware software training, then programmed onto the chip and "
        "evaluated over time",
    )
    epochs: int | None = param(
        None,
        lo=1,
        hi=1000,
        help="training epochs (empty: the mode's default: fp 40, mixed-precision 20, hwa 40)",
    )
    hidden: int = param(64, lo=1, hi=1024, help="hidden layer width of the 64-H-10 MLP")
    seed: int = param(0, lo=0, help="seeds the data split, the initial weights and the order")


class TrainingJob(Job):
    """Runs a :class:`Train` entry with :func:`run_training` in the worker thread."""

    def execute(self, store, bus) -> RunOutcome:
        p = self.procedure.params
        epochs = _EpochReporter(store, bus, self.control, p.epochs or DEFAULT_EPOCHS[p.mode])
        try:
            run_training(
                p.mode,
                self.spec,
                epochs=p.epochs,
                hidden=p.hidden,
                seed=p.seed,
                store=store,
                on_start=epochs.start,
                on_epoch=epochs.epoch,
            )
        except TrainingStopped:
            return epochs.end("aborted")
        except Exception as exc:  # run_training marked the run failed
            bus.emit(Status(epochs.run_id, "failed", str(exc)))
            raise
        return epochs.end("completed")


class Train(Procedure):
    """Launcher entry for training (not a plan: its :class:`TrainingJob` runs it)."""

    name = "train"
    Parameters = TrainParameters
    summary_doc = (
        "Train a 64-H-10 MLP on the digits set with the chip in the loop; "
        "stored as run train-<mode>."
    )
    job_class = TrainingJob

    def __init__(self, params):
        super().__init__(params)
        # named after the run it records, so the window shows that run's live plot
        self.name = f"train-{params.mode}"


class _EpochReporter:
    """run_training's callbacks in the worker thread: events out, pause and abort in."""

    def __init__(self, store, bus, control, total: int):
        self.store, self.bus, self.control, self.total = store, bus, control, total
        self.run_id: str | None = None
        self.done = 0

    def start(self, run_id: str | None) -> None:
        self.run_id = run_id
        self._status("running", "started")
        self._checkpoint()

    def epoch(self, stats: dict) -> None:
        self.done += 1
        self.bus.emit(Record(self.run_id, epoch_step_id(self.done), stats))
        message = f"epoch {self.done}/{self.total}"
        self.bus.emit(Progress(self.run_id, self.done, self.total, message))
        self._checkpoint()

    def end(self, status: str) -> RunOutcome:
        """The outcome of the run run_training stored (its status and summary)."""
        self.bus.emit(Status(self.run_id, status, ""))
        return RunOutcome(self.run_id, status, self.store.run(self.run_id).summary)

    def _checkpoint(self) -> None:
        """Hold while paused; TrainingStopped once aborted (between epochs, as the
        Runner does between steps)."""
        paused = []

        def on_pause():
            paused.append(True)
            self._status("paused", "")

        if self.control.wait_while_paused(on_pause=on_pause) == ABORTED:
            raise TrainingStopped(f"aborted from the GUI after {self.done} epoch(s)")
        if paused:
            self._status("running", "resumed")

    def _status(self, status: str, message: str) -> None:
        self.store.set_status(self.run_id, status)
        self.bus.emit(Status(self.run_id, status, message))
