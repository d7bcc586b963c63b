"""Fan-out steps of a campaign: which steps become independent tasks, their chips, their
errors before anything runs, and the local executor's single-writer records, failures and
resume."""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.errors import ConfigError
from xbarlab.events import EventBus, Progress
from xbarlab.procedures.campaign import Campaign, resume, with_spec_params
from xbarlab.procedures.executors import (
    LocalExecutor,
    Task,
    check_executor,
    failed_result,
    run_task,
)
from xbarlab.procedures.runner import RunControl, Runner
from xbarlab.training.runs import MODES

SPEC = "emulator:pcm?rows=8&cols=8&seed=3"
TRAIN_SPEC = "emulator:pcm?differential=1&seed=1"
DOC = {
    "backend": SPEC,
    "steps": [
        {"procedure": "program-array", "params": {"pattern": "checkerboard"}},
        {
            "procedure": "pulse-response",
            "params": {"n_pulses": 2},
            "sweep": {"width": [5e-8, 1e-7]},
            "backend_sweep": {"seed": [1, 2]},
        },
        {"procedure": "conductance-map", "params": {"repeats": 2}},
    ],
}


def test_only_steps_with_fanout_keys_become_tasks_with_their_own_chips():
    c = Campaign(DOC)
    assert [e.fanout for e in c.entries] == [False, True, True, True, True, False]
    assert c.needs_chip and c.n_tasks == 4
    tasks = [c.task(i, SPEC) for i in range(1, 5)]
    assert [t.label for t in tasks] == [
        "pulse-response[width=5e-08, backend.seed=1]",
        "pulse-response[width=5e-08, backend.seed=2]",
        "pulse-response[width=1e-07, backend.seed=1]",
        "pulse-response[width=1e-07, backend.seed=2]",
    ]
    assert [t.backend for t in tasks] == [SPEC.replace("seed=3", f"seed={s}") for s in (1, 2, 1, 2)]
    assert tasks[2].values["width"] == 1e-7 and tasks[2].values["n_pulses"] == 2
    assert all(t.station is None and t.resources is None for t in tasks)


def test_spec_params_replace_or_add():
    assert with_spec_params(SPEC, {"seed": 9, "periphery": "hermes"}) == (
        "emulator:pcm?rows=8&cols=8&seed=9&periphery=hermes"
    )
    assert (
        with_spec_params("emulator:pcm", {"differential": True}) == "emulator:pcm?differential=true"
    )


def test_stations_pin_hardware_steps_and_the_station_chip_only():
    doc = {
        "station": "lab1",
        "steps": [
            {"procedure": "iv-sweep", "backend": "board:socket://127.0.0.1:5555"},
            {"procedure": "iv-sweep", "backend": SPEC},  # emulator: any worker
            {"procedure": "iv-sweep"},  # no backend: the station worker's chip
            {"procedure": "iv-sweep", "station": "lab2", "backend": "bench:st.yaml"},
        ],
    }
    c = Campaign(doc)
    assert all(e.fanout for e in c.entries) and not c.needs_chip
    tasks = [c.task(i, None) for i in range(4)]
    assert [t.station for t in tasks] == ["lab1", None, "lab1", "lab2"]
    assert tasks[2].backend is None and tasks[0].resources == {"station-lab1": 1}
    assert tasks[3].resources == {"station-lab2": 1}


def test_existing_campaigns_do_not_fan_out():
    doc = {"backend": SPEC, "steps": [{"procedure": "drift", "sweep": {"n_reads": [3, 4]}}]}
    assert not any(e.fanout for e in Campaign(doc).entries)
    # a campaign-wide station leaves the steps of an emulated campaign on its chip session
    assert not any(e.fanout for e in Campaign({**doc, "station": "lab1"}).entries)


def test_every_fanout_error_is_reported_together():
    doc = {
        "station": "lab 1",
        "steps": [
            {"procedure": "drift", "fanout": "yes"},
            {"procedure": "drift", "backend_sweep": {"seed": 3}},
            {"procedure": "train", "params": {"mode": "sgd", "hidden": 0}},
            {"procedure": "drift", "backend": "nothing"},
            {"procedure": "drift", "station": "a/b"},
        ],
    }
    with pytest.raises(ConfigError) as err:
        Campaign(doc)
    text = str(err.value)
    assert "(6 problem(s))" in text
    for part in (
        "station 'lab 1'",
        "step 1 (drift): fanout must be true or false",
        "step 2 (drift): sweep of seed",
        "step 3 (train): parameter mode",
        "parameter hidden",
        "step 4 (drift): backend spec 'nothing' has no scheme",
        "step 5 (drift): station 'a/b'",
    ):
        assert part in text


def test_train_steps_declare_the_modes_of_training():
    entries = Campaign({"steps": [{"procedure": "train", "sweep": {"mode": list(MODES)}}]}).entries
    assert [e.values["mode"] for e in entries] == list(MODES)
    assert entries[0].values == {"mode": "fp", "epochs": None, "hidden": 64, "seed": 0}
    # a training seed and a chip seed of the same name sweep independently
    step = {"procedure": "train", "sweep": {"seed": [0, 1]}, "backend_sweep": {"seed": [7, 8]}}
    c = Campaign({"backend": TRAIN_SPEC, "steps": [step]})
    assert [
        (t.values["seed"], t.backend[-6:]) for t in (c.task(i, TRAIN_SPEC) for i in range(4))
    ] == [
        (0, "seed=7"),
        (0, "seed=8"),
        (1, "seed=7"),
        (1, "seed=8"),
    ]
    assert c.entries[1].label == "train[seed=0, backend.seed=8]"


def test_task_checks_on_emulated_chips_come_before_anything_runs(store):
    region = {"region": "0:6,0:2"}
    doc = {
        "backend": SPEC,
        "steps": [
            {"procedure": "endurance", "params": {"region": "0:12,0:2"}, "fanout": True},
            {"procedure": "endurance", "backend_sweep": {"rows": [4, 8]}, "params": region},
            {"procedure": "train", "params": {"epochs": 1}},
        ],
    }
    with pytest.raises(ConfigError) as err:
        Campaign(doc).run(Runner(store), None, backend=SPEC)
    text = str(err.value)
    assert "(2 problem(s))" in text and "step 1 (endurance): parameter region" in text
    assert "step 2 (endurance[backend.rows=4]): parameter region: rows 0:6" in text
    assert store.runs() == []


def test_a_task_returns_plain_records_equal_to_a_direct_run(store):
    task = Task(0, "pr", "pulse-response", {"n_pulses": 2}, SPEC)
    result = run_task(task)
    assert result["status"] == "completed" and result["error"] is None
    assert result["backend"] == SPEC and result["seed"] == 3
    with open_crossbar(SPEC) as xbar:
        procedure = Campaign({"steps": [{"procedure": "pulse-response"}]}).entries[0].procedure
        procedure = type(procedure).from_values({"n_pulses": 2})
        direct = Runner(store).run(procedure, xbar, backend=SPEC)
    assert [s for s, _ in result["records"]] == store.step_ids(direct.run_id)
    for (_, data), rec in zip(result["records"], store.records(direct.run_id), strict=True):
        assert data.keys() == rec.data.keys()
        for key, value in data.items():
            np.testing.assert_array_equal(value, rec.data[key])
    assert result["summary"] == direct.summary


def test_a_failing_task_returns_its_error_instead_of_raising():
    result = run_task(
        Task(
            2,
            "bad",
            "train",
            {"mode": "mixed-precision", "epochs": 1, "hidden": 4, "seed": 0},
            "emulator:sram",
        )
    )
    assert result["status"] == "failed" and result["records"] == []
    assert "sram" in result["error"] and result["procedure"] == "train-mixed-precision"
    station = run_task(Task(3, "st", "iv-sweep", {}, None, "lab1"))
    assert station["status"] == "failed" and "xbarlab worker" in station["error"]


class FlakyExecutor(LocalExecutor):
    """Runs tasks in this process; the labels in ``fail`` fail once; remembers what ran."""

    def __init__(self, fail=()):
        self.fail, self.ran = set(fail), []

    def run(self, tasks):
        for task in tasks:
            self.ran.append(task.label)
            if task.label in self.fail:
                self.fail.discard(task.label)
                yield task, failed_result(task, "KilledWorker: worker lost")
            else:
                yield task, run_task(task)


def test_failed_tasks_let_the_others_finish_and_resume_runs_only_them(store):
    bad = "pulse-response[width=5e-08, backend.seed=2]"
    flaky = FlakyExecutor(fail=[bad])
    with open_crossbar(SPEC) as xbar:
        out = Campaign(DOC).run(Runner(store), xbar, backend=SPEC, executor=flaky)
    assert out.status == "failed" and out.summary["failed"] == [bad]
    info = store.run(out.run_id)
    assert "1 of 4 tasks of step 2 failed" in info.error and "KilledWorker" in info.error
    assert len(flaky.ran) == 4  # the others went on; the last step never started
    kids = {k["label"]: k for k in out.summary["children"]}
    assert kids[bad]["status"] == "failed" and store.run(kids[bad]["run_id"]).status == "failed"
    assert "failed-002-00" in store.step_ids(out.run_id)
    flaky.ran.clear()
    final = resume(Runner(store), out.run_id, executor=flaky)
    assert final.status == "completed" and flaky.ran == [bad]
    labels = [k["label"] for k in final.summary["children"]]
    assert labels == [e.label for e in Campaign(DOC).entries]
    assert all(k["status"] == "completed" for k in final.summary["children"])
    # the failed attempt stays in the store as a failed child; 6 completed children
    statuses = sorted(c.status for c in store.runs(parent=out.run_id))
    assert statuses == ["completed"] * 6 + ["failed"]


def test_a_task_result_killed_while_being_written_is_aborted_and_run_again(store):
    doc = {"backend": SPEC, "steps": [DOC["steps"][1]]}
    flaky = FlakyExecutor()
    out = Campaign(doc).run(Runner(store), None, backend=SPEC, executor=flaky)
    assert out.status == "completed" and not Campaign(doc).needs_chip
    # what a kill between store_result and the child-NNN record leaves: a running child
    orphan = store.create_run("pulse-response", {}, backend=SPEC, parent=out.run_id)
    store.set_status(out.run_id, "interrupted")
    flaky.ran.clear()
    assert resume(Runner(store), out.run_id, executor=flaky).status == "completed"
    assert flaky.ran == [] and store.run(orphan).status == "aborted"


def test_abort_between_task_results_stops_the_step_and_resume_finishes_it(store):
    control, bus = RunControl(), EventBus()
    bus.subscribe(lambda ev: control.abort() if ev.done == 1 else None, Progress)
    flaky = FlakyExecutor()
    doc = {"backend": SPEC, "steps": [DOC["steps"][1], DOC["steps"][2]]}
    with open_crossbar(SPEC) as xbar:
        out = Campaign(doc).run(Runner(store, bus, control), xbar, backend=SPEC, executor=flaky)
    assert out.status == "aborted" and len(out.summary["children"]) == 1
    assert len(flaky.ran) == 1  # locally the next task never starts
    assert len(store.runs(parent=out.run_id)) == 1 and store.run(out.run_id).status == "aborted"
    flaky.ran.clear()
    final = resume(Runner(store), out.run_id, executor=flaky)
    assert final.status == "completed" and len(flaky.ran) == 3
    assert [k["label"] for k in final.summary["children"]][-1] == "conductance-map"
    assert len(final.summary["children"]) == 5


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("foo", "unknown executor 'foo'"),
        ("dask:", "needs an address"),
        ("dask:notanaddress", "PROTOCOL://HOST:PORT"),
        ("dask:tcp://host", "PROTOCOL://HOST:PORT"),
        ("dask:tcp://host:port", "PROTOCOL://HOST:PORT"),
    ],
)
def test_bad_executor_texts_are_refused_before_anything_starts(text, words):
    with pytest.raises(ConfigError, match=words):
        check_executor(text)


def test_executor_texts_parse():
    assert check_executor(None) == ("local", None)
    assert check_executor("dask") == ("dask", None)
    assert check_executor(" dask:tcp://10.0.0.5:8786 ") == ("dask", "tcp://10.0.0.5:8786")
