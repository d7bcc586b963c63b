"""The one engine that executes procedure plans: record, checkpoint, pause, abort, resume.

For every step a plan yields, the runner either executes it and stores its data (one
durable store transaction per step, together with the emulated chip's state when the
backend keeps one), or, when resuming and the step id is already recorded, sends the
stored data back to the plan instead: no pulse is applied twice. Between steps it
honours :class:`RunControl` (pause, resume, abort from another thread, e.g. the GUI).
Status, progress and record events go to an :class:`~xbarlab.events.EventBus`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from xbarlab.chipdrivers.crossbar import Crossbar
from xbarlab.events import EventBus, Progress, Record, Status
from xbarlab.procedures.base import Procedure

#: run states of :class:`RunControl`
RUNNING, PAUSED, ABORTED = "running", "paused", "aborted"


class RunControl:
    """Thread-safe pause/resume/abort switch, polled by the runner between steps."""

    def __init__(self):
        self._state = RUNNING
        self._cond = threading.Condition()

    @property
    def state(self) -> str:
        return self._state

    def pause(self) -> None:
        """Hold the run after the step in flight (no effect once aborted)."""
        self._set(PAUSED, only_from=RUNNING)

    def resume(self) -> None:
        """Continue a paused run."""
        self._set(RUNNING, only_from=PAUSED)

    def abort(self) -> None:
        """Stop the run after the step in flight; it ends "aborted" and can be resumed."""
        self._set(ABORTED)

    def reset(self) -> None:
        """Back to running, for the next run driven by the same control."""
        self._set(RUNNING)

    def wait_while_paused(self, on_pause=None) -> str:
        """Block while paused (calling ``on_pause`` once); return the state that ended it."""
        with self._cond:
            if self._state == PAUSED and on_pause is not None:
                on_pause()
            while self._state == PAUSED:
                self._cond.wait()
            return self._state

    def _set(self, state: str, only_from: str | None = None) -> None:
        with self._cond:
            if only_from is None or self._state == only_from:
                self._state = state
                self._cond.notify_all()


@dataclass
class RunOutcome:
    """How a run ended: its id, final status and summary (JSON-able)."""

    run_id: str
    status: str
    summary: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "status": self.status, "summary": self.summary}


class Runner:
    """Executes procedure plans against a crossbar and records them in a run store."""

    def __init__(self, store, bus: EventBus | None = None, control: RunControl | None = None):
        self.store = store
        self.bus = bus or EventBus()
        self.control = control or RunControl()

    def create_run(
        self, procedure: Procedure, xbar: Crossbar, *, backend: str, parent: str | None = None
    ) -> str:
        """Check the procedure against the chip, then create its run (status "running").

        Raises ConfigError/SafetyError before anything is stored when the chip cannot
        run it.
        """
        procedure.check(xbar.info)
        return self.store.create_run(
            procedure.name,
            procedure.parameters_json(),
            backend=backend,
            chip_info=xbar.info.to_dict(),
            seed=xbar.info.details.get("seed"),
            parent=parent,
        )

    def run(
        self,
        procedure: Procedure,
        xbar: Crossbar,
        *,
        backend: str,
        parent: str | None = None,
        run_id: str | None = None,
        state_key: str | None = None,
    ) -> RunOutcome:
        """Run ``procedure`` to its end, or continue run ``run_id`` (resume).

        state_key: store the chip's state under this key after every step (backends with
        the "state" capability). Exceptions mark the run "failed" and propagate;
        KeyboardInterrupt marks it "interrupted".
        """
        if run_id is None:
            run_id = self.create_run(procedure, xbar, backend=backend, parent=parent)
        else:
            procedure.check(xbar.info)
        keeps_state = state_key is not None and "state" in xbar.info.capabilities
        execution = _Execution(self, procedure, xbar, run_id, state_key if keeps_state else None)
        return execution.run()


def restore_chip_state(store, xbar: Crossbar, key: str) -> bool:
    """Load the chip state stored under ``key`` into ``xbar``; False if none or unsupported."""
    if "state" not in xbar.info.capabilities:
        return False
    blob = store.chip_state(key)
    if blob is None:
        return False
    xbar.load_state(blob)
    return True


class _Execution:
    """One pass over a plan (fresh or resumed)."""

    def __init__(self, runner: Runner, procedure, xbar, run_id: str, state_key):
        self.store, self.bus, self.control = runner.store, runner.bus, runner.control
        self.procedure, self.xbar, self.run_id = procedure, xbar, run_id
        self.state_key = state_key
        self.recorded = set(self.store.step_ids(run_id))
        self.total = procedure.n_steps(xbar.info) or 0
        self.done = 0

    def run(self) -> RunOutcome:
        self._status("running", "resumed" if self.recorded else "started")
        plan = self.procedure.plan(self.xbar)
        try:
            summary = self._drive(plan)
        except KeyboardInterrupt:
            plan.close()
            return self._end("interrupted", self._partial(), raise_=KeyboardInterrupt)
        except BaseException as exc:
            plan.close()
            self.store.set_status(self.run_id, "failed", error=f"{type(exc).__name__}: {exc}")
            self.bus.emit(Status(self.run_id, "failed", str(exc)))
            raise
        if summary is None:
            plan.close()
            return self._end("aborted", self._partial())
        return self._end("completed", dict(summary))

    def _drive(self, plan) -> dict | None:
        """Feed the plan step by step; the summary, or None when aborted."""
        try:
            step = next(plan)
        except StopIteration as stop:
            return stop.value or {}
        while True:
            if self._should_stop():
                return None
            data = self._execute(step)
            try:
                step = plan.send(data)
            except StopIteration as stop:
                return stop.value or {}

    def _execute(self, step) -> dict:
        if step.step_id in self.recorded:
            data = self.store.record(self.run_id, step.step_id)
        else:
            data = dict(step.action())
            chip_state = None
            if self.state_key is not None:
                chip_state = (self.state_key, self.xbar.save_state())
            self.store.add_record(self.run_id, step.step_id, data, chip_state=chip_state)
            self.recorded.add(step.step_id)
            self.bus.emit(Record(self.run_id, step.step_id, data))
        self.done += 1
        total = max(self.total, self.done)
        self.bus.emit(Progress(self.run_id, self.done, total, step.message or step.step_id))
        return data

    def _should_stop(self) -> bool:
        paused = []

        def on_pause():
            paused.append(True)
            self._status("paused", "")

        state = self.control.wait_while_paused(on_pause=on_pause)
        if state == ABORTED:
            return True
        if paused:
            self._status("running", "resumed")
        return False

    def _partial(self) -> dict:
        return {"steps_done": self.done, "steps_total": self.total}

    def _status(self, status: str, message: str) -> None:
        self.store.set_status(self.run_id, status)
        self.bus.emit(Status(self.run_id, status, message))

    def _end(self, status: str, summary: dict, raise_=None) -> RunOutcome:
        self.store.set_status(self.run_id, status, summary=summary)
        self.bus.emit(Status(self.run_id, status, ""))
        if raise_ is not None:
            raise raise_
        return RunOutcome(self.run_id, status, summary)
