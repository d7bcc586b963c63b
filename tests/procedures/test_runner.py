"""The runner with a real run store: records, events, pause/abort from another thread,
resume without repeating pulses (emulator pulse counters), failures and Ctrl+C."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.events import EventBus, Progress, Record, Status
from xbarlab.procedures import registry
from xbarlab.procedures.base import Procedure, Step, run_plan
from xbarlab.procedures.params import param
from xbarlab.procedures.runner import RunControl, Runner

SPEC = "emulator:pcm?rows=16&cols=16&seed=1"


@dataclass(frozen=True)
class FakeParams:
    n: int = param(4, lo=1)
    fail_at: int = param(-1)
    interrupt_at: int = param(-1)


class Fake(Procedure):
    """Counts its executed steps; fails or raises KeyboardInterrupt where told."""

    name = "fake"
    Parameters = FakeParams
    summary_doc = "test double"
    executed: list

    def n_steps(self, info):
        return self.params.n

    def plan(self, xbar):
        total = 0
        for k in range(self.params.n):

            def act(k=k):
                if k == self.params.fail_at:
                    raise RuntimeError("boom")
                if k == self.params.interrupt_at:
                    raise KeyboardInterrupt
                self.executed.append(k)
                return {"k": k, "x": np.full(3, k, dtype=np.float32)}

            data = yield Step(f"s-{k}", act)
            total += int(data["k"])
        return {"total": total}


def fake(**values):
    proc = Fake.from_values(values)
    proc.executed = []
    return proc


def test_run_records_every_step_and_emits_events(store, xbar):
    bus = EventBus()
    events = []
    bus.subscribe(events.append)
    out = Runner(store, bus).run(fake(), xbar, backend=SPEC)
    assert out.status == "completed" and out.summary == {"total": 6}
    info = store.run(out.run_id)
    assert info.status == "completed" and info.summary == {"total": 6} and info.procedure == "fake"
    assert info.parameters == {"n": 4, "fail_at": -1, "interrupt_at": -1}
    assert store.step_ids(out.run_id) == ["s-0", "s-1", "s-2", "s-3"]
    assert np.array_equal(store.arrays(out.run_id, "x")[:, 0], [0, 1, 2, 3])
    assert [e.step_id for e in events if isinstance(e, Record)] == ["s-0", "s-1", "s-2", "s-3"]
    assert [(e.done, e.total) for e in events if isinstance(e, Progress)][-1] == (4, 4)
    assert [e.state for e in events if isinstance(e, Status)] == ["running", "completed"]


def test_failure_marks_the_run_failed_and_propagates(store, xbar):
    proc = fake(fail_at=2)
    with pytest.raises(RuntimeError, match="boom"):
        Runner(store).run(proc, xbar, backend=SPEC)
    (info,) = store.runs()
    assert info.status == "failed" and "boom" in info.error and info.n_records == 2
    proc.params = FakeParams()  # the cause fixed: resume completes without redoing s-0, s-1
    out = Runner(store).run(proc, xbar, backend=SPEC, run_id=info.run_id)
    assert out.status == "completed" and proc.executed == [0, 1, 2, 3]


def test_keyboard_interrupt_marks_interrupted_and_resume_completes(store, xbar):
    proc = fake(interrupt_at=1)
    with pytest.raises(KeyboardInterrupt):
        Runner(store).run(proc, xbar, backend=SPEC)
    (info,) = store.runs()
    assert info.status == "interrupted" and info.n_records == 1
    proc.params = FakeParams()
    out = Runner(store).run(proc, xbar, backend=SPEC, run_id=info.run_id)
    assert out.summary == {"total": 6} and proc.executed == [0, 1, 2, 3]


def test_check_failure_creates_no_run(store, xbar):
    proc = registry.get("iv-sweep").from_values({"voltages": "0.5"})
    with pytest.raises(Exception, match="max_read_voltage"):
        Runner(store).run(proc, xbar, backend=SPEC)
    assert store.runs() == []


def _pause_then_abort(store, xbar, proc, after: int) -> tuple[str, list[str]]:
    """Run in a worker thread; pause after ``after`` records, check, abort."""
    bus, control = EventBus(), RunControl()
    paused, seen = threading.Event(), []
    records = []

    def on_record(ev):
        records.append(ev.step_id)
        if len(records) == after:
            control.pause()

    def on_status(ev):
        seen.append(ev.state)
        if ev.state == "paused":
            paused.set()

    bus.subscribe(on_record, Record)
    bus.subscribe(on_status, Status)
    runner = Runner(store, bus, control)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(o=runner.run(proc, xbar, backend=SPEC)))
    worker.start()
    assert paused.wait(30)
    (info,) = store.runs()
    assert info.status == "paused" and info.n_records == after
    control.abort()
    worker.join(30)
    assert not worker.is_alive()
    out = outcome["o"]
    assert out.status == "aborted" and out.summary["steps_done"] == after
    assert store.run(out.run_id).status == "aborted"
    assert store.step_ids(out.run_id) == records
    return out.run_id, seen


def test_pause_and_abort_from_another_thread_then_resume_applies_no_pulse_twice(store, xbar):
    proc = registry.get("pulse-response").from_values({"n_pulses": 8})
    run_id, states = _pause_then_abort(store, xbar, proc, after=4)
    assert states == ["running", "paused", "aborted"]
    assert np.all(xbar.chip.pulse_count == 4)  # RESET + 3 SET pulses so far
    out = Runner(store).run(proc, xbar, backend=SPEC, run_id=run_id)
    assert out.status == "completed" and store.run(run_id).n_records == 9
    assert np.all(xbar.chip.pulse_count == 9)  # RESET + 8 SET, none repeated
    assert len(out.summary["mean_g_S"]) == 9


def test_pause_then_resume_continues(store, xbar):
    bus, control = EventBus(), RunControl()

    def on_status(ev):
        if ev.state == "paused":
            threading.Timer(0.01, control.resume).start()

    bus.subscribe(lambda ev: control.pause() if ev.step_id == "s-1" else None, Record)
    bus.subscribe(on_status, Status)
    out = Runner(store, bus, control).run(fake(), xbar, backend=SPEC)
    assert out.status == "completed"


def test_resume_restores_the_emulated_chip_from_the_store(abort_at, resume_run):
    if "state" not in open_crossbar(SPEC).info.capabilities:
        pytest.skip("emulator without save_state/load_state")
    proc = registry.get("pulse-response").from_values({"n_pulses": 6})
    with open_crossbar(SPEC) as xbar:
        run_id = abort_at(proc, xbar, SPEC, "pulse-0002")
        expected = xbar.chip.pulse_count.copy()
    assert np.all(expected == 4)
    final, opened = resume_run(run_id)
    assert final.status == "completed"
    assert np.all(opened[0].chip.pulse_count == 7)  # restored 4, then 3 more; none repeated
    # a completed run is reported, nothing runs
    assert resume_run(run_id)[0].status == "completed"
    assert len(opened) == 1


def test_run_plan_runs_every_step_once_and_returns_data_and_summary(xbar):
    proc = fake(n=3)
    data, summary = run_plan(proc, xbar)
    assert list(data) == ["s-0", "s-1", "s-2"] and proc.executed == [0, 1, 2]
    assert data["s-2"]["k"] == 2 and summary == {"total": 3}


def test_run_plan_refuses_a_step_id_given_twice(xbar):
    class Twice(Fake):
        def plan(self, xbar):
            yield Step("same", lambda: {"k": 0})
            yield Step("same", lambda: {"k": 1})
            return {}

    proc = Twice.from_values({})
    with pytest.raises(ValueError, match="yielded step id 'same' twice"):
        run_plan(proc, xbar)
