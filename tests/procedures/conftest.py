"""Fixtures of the procedure tests: small emulated chips, a temporary run store, a plan
driver, and an interrupted run with its resume."""

from __future__ import annotations

import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.events import EventBus, Record
from xbarlab.procedures.base import run_plan
from xbarlab.procedures.campaign import resume
from xbarlab.procedures.runner import RunControl, Runner
from xbarlab.store import RunStore

SMALL = "emulator:pcm?rows=16&cols=16&seed=1"


@pytest.fixture
def xbar():
    with open_crossbar(SMALL) as chip:
        yield chip


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path / "runs.sqlite") as s:
        yield s


@pytest.fixture
def drive():
    """Executes a plan without a runner: (step ids, step data by id, summary)."""

    def run(procedure, xbar):
        data, summary = run_plan(procedure, xbar)
        return list(data), data, summary

    return run


@pytest.fixture
def abort_at(store):
    """Runs a procedure into the store and aborts it once step ``step_id`` is recorded:
    ``abort_at(procedure, xbar, spec, step_id)`` -> run id (the run is "aborted")."""

    def run(procedure, xbar, spec, step_id):
        control, bus = RunControl(), EventBus()
        bus.subscribe(lambda ev: control.abort() if ev.step_id == step_id else None, Record)
        runner = Runner(store, bus, control)
        run_id = runner.create_run(procedure, xbar, backend=spec)
        out = runner.run(procedure, xbar, backend=spec, run_id=run_id, state_key=run_id)
        assert out.status == "aborted"
        return run_id

    return run


@pytest.fixture
def resume_run(store):
    """Resumes a stored run on a chip opened from its spec: ``resume_run(run_id)`` ->
    (outcome, every chip opened so far by this fixture)."""
    opened = []

    def opener(spec):
        opened.append(open_crossbar(spec))
        return opened[-1]

    def run(run_id):
        return resume(Runner(store), run_id, open_crossbar=opener), opened

    return run
