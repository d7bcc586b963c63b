"""Fixtures of the procedure tests: small emulated chips, a temporary run store, a plan driver."""

from __future__ import annotations

import pytest

from xbarlab.chipdrivers import open_crossbar
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
    return run_plan


def run_plan(procedure, xbar):
    plan = procedure.plan(xbar)
    ids, data = [], {}
    try:
        step = next(plan)
        while True:
            ids.append(step.step_id)
            data[step.step_id] = dict(step.action())
            step = plan.send(data[step.step_id])
    except StopIteration as stop:
        return ids, data, stop.value
