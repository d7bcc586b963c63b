"""Campaigns: YAML parsing and sweeps, all errors before anything runs, child runs in
order on one chip, resume that skips completed children and restores the chip."""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.errors import ConfigError
from xbarlab.events import EventBus, Record
from xbarlab.procedures.campaign import Campaign, resume
from xbarlab.procedures.runner import RunControl, Runner

SPEC = "emulator:pcm?rows=16&cols=16&seed=3"
DOC = {
    "backend": SPEC,
    "steps": [
        {"procedure": "program-array", "params": {"pattern": "checkerboard"}},
        {
            "procedure": "pulse-response",
            "params": {"n_pulses": 3},
            "sweep": {"width": [50e-9, 1e-7]},
        },
        {"procedure": "conductance-map", "params": {"repeats": 2}},
    ],
}


def test_yaml_file_expands_sweeps_in_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "backend: emulator:pcm?rows=8&cols=8\n"
        "steps:\n"
        "  - procedure: drift\n"
        "    params: {n_reads: 3}\n"
        "    sweep: {tolerance: [1.0e-7, 5.0e-7], n_levels: [2, 4]}\n"
    )
    c = Campaign.from_file(path)
    assert c.backend == "emulator:pcm?rows=8&cols=8"
    assert [e.label for e in c.entries] == [
        "drift[tolerance=1e-07, n_levels=2]",
        "drift[tolerance=1e-07, n_levels=4]",
        "drift[tolerance=5e-07, n_levels=2]",
        "drift[tolerance=5e-07, n_levels=4]",
    ]
    assert [(e.procedure.params.tolerance, e.procedure.params.n_reads) for e in c.entries][1] == (
        1e-7,
        3,
    )


def test_every_error_of_every_step_is_reported_together():
    doc = {
        "steps": [
            {"procedure": "drift", "params": {"n_reads": 1}},
            {"procedure": "nope"},
            {"procedure": "iv-sweep", "sweep": {"voltages": "0.1"}},
            {"procedure": "endurance", "params": {"block_cycles": 0}, "extra": 1},
        ],
        "colour": "red",
    }
    with pytest.raises(ConfigError) as err:
        Campaign(doc)
    text = str(err.value)
    assert "nothing was run (5 problem(s))" in text
    for part in (
        "colour",
        "step 1 (drift): parameter n_reads",
        "step 2 (nope)",
        "sweep of voltages",
        "step 4 (endurance): unknown key(s) extra",
    ):
        assert part in text


def test_chip_checks_of_all_steps_come_before_anything_runs(store):
    doc = {
        "steps": [
            {"procedure": "pulse-response", "params": {"n_pulses": 2}},
            {"procedure": "iv-sweep", "params": {"voltages": [0.1, 0.4]}},
            {"procedure": "endurance", "params": {"region": "0:99,0:2"}},
        ]
    }
    with open_crossbar(SPEC) as xbar:
        with pytest.raises(ConfigError) as err:
            Campaign(doc).run(Runner(store), xbar, backend=SPEC)
        assert xbar.chip.pulse_count.sum() == 0
    assert "step 2 (iv-sweep)" in str(err.value) and "step 3 (endurance)" in str(err.value)
    assert store.runs() == []


def test_campaign_runs_children_in_order_on_one_chip(store):
    with open_crossbar(SPEC) as xbar:
        out = Campaign(DOC).run(Runner(store), xbar, backend=SPEC)
    assert out.status == "completed"
    kids = out.summary["children"]
    assert [k["label"] for k in kids] == [
        "program-array",
        "pulse-response[width=5e-08]",
        "pulse-response[width=1e-07]",
        "conductance-map",
    ]
    info = store.run(out.run_id)
    assert info.procedure == "campaign" and info.parameters == DOC and info.parent is None
    children = store.runs(parent=out.run_id)
    assert sorted(c.run_id for c in children) == sorted(k["run_id"] for k in kids)
    assert all(c.status == "completed" for c in children)
    assert [c.run_id for c in store.runs(top_level=True)] == [out.run_id]


def test_resume_skips_completed_children_and_continues_the_unfinished_one(store):
    control, bus = RunControl(), EventBus()
    # abort in the middle of the second child (first pulse-response, after its 2nd pulse)
    bus.subscribe(lambda ev: control.abort() if ev.step_id == "pulse-0001" else None, Record)
    with open_crossbar(SPEC) as xbar:
        out = Campaign(DOC).run(Runner(store, bus, control), xbar, backend=SPEC)
        counts_at_abort = xbar.chip.pulse_count.copy()
    assert out.status == "aborted" and len(out.summary["children"]) == 1
    assert store.run(out.run_id).status == "aborted"
    opened = []

    def opener(spec):
        opened.append(open_crossbar(spec))
        return opened[-1]

    # resuming by a child's id resumes its campaign
    child = out.summary["stopped_at"]
    final = resume(Runner(store), child, open_crossbar=opener)
    assert final.run_id == out.run_id and final.status == "completed"
    assert len(final.summary["children"]) == 4 and len(store.runs(parent=out.run_id)) == 4
    if "state" in opened[0].info.capabilities:
        # restored chip: 1 more SET pulse for child 2, then 1 RESET + 3 SET for child 3
        assert np.array_equal(opened[0].chip.pulse_count, counts_at_abort + 5)


def test_resume_aborts_a_child_that_a_killed_campaign_created_but_never_started(store):
    """A kill between creating a child and recording its start leaves an orphan run with no
    records; resume marks it aborted and runs that entry in a fresh child."""
    control, bus = RunControl(), EventBus()
    bus.subscribe(lambda ev: control.abort() if ev.step_id == "pulse-0001" else None, Record)
    with open_crossbar(SPEC) as xbar:
        out = Campaign(DOC).run(Runner(store, bus, control), xbar, backend=SPEC)
        orphan = Runner(store).create_run(
            Campaign(DOC).entries[2].procedure, xbar, backend=SPEC, parent=out.run_id
        )
    final = resume(Runner(store), out.run_id)
    assert final.status == "completed"
    assert store.run(orphan).status == "aborted" and store.run(orphan).n_records == 0
    kids = [k["run_id"] for k in final.summary["children"]]
    assert orphan not in kids and len(kids) == 4
    assert all(store.run(k).status == "completed" for k in kids)
