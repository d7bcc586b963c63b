"""Fixtures of the procedure tests: small emulated chips, a temporary run store, a plan driver."""

from __future__ import annotations

import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.procedures.base import run_plan
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
