"""Campaigns on Dask: a 2-worker LocalCluster gives the same records as the local executor
and is shut down after; a station worker (``xbarlab worker``) runs its station's steps on
its own chip; the CLI's executor option and progress lines."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from xbarlab.cli import main
from xbarlab.errors import ConfigError
from xbarlab.procedures.campaign import Campaign
from xbarlab.procedures.executors import DaskExecutor, LocalExecutor, make_executor
from xbarlab.procedures.runner import Runner
from xbarlab.store import RunStore

SPEC = "emulator:pcm?rows=8&cols=8&seed=3"
#: three chips of different seeds, then two short mixed-precision trainings
SWEEP = {
    "backend": SPEC,
    "steps": [
        {
            "procedure": "pulse-response",
            "params": {"n_pulses": 3},
            "backend_sweep": {"seed": [1, 2, 3]},
        },
        {
            "procedure": "train",
            "params": {"epochs": 1, "hidden": 8},
            "sweep": {"seed": [0, 1]},
            "backend": "emulator:pcm?differential=1&seed=1",
        },
    ],
}


def children(store: RunStore, run_id: str) -> dict[str, list]:
    """Each child's records (step id, data) by label."""
    out = {}
    for kid in store.run(run_id).summary["children"]:
        out[kid["label"]] = [(r.step_id, r.data) for r in store.records(kid["run_id"])]
    return out


def assert_same_records(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for label in a:
        assert [s for s, _ in a[label]] == [s for s, _ in b[label]], label
        for (step, x), (_, y) in zip(a[label], b[label], strict=True):
            assert x.keys() == y.keys(), (label, step)
            for key in x:
                if key == "epoch_s" or key == "summary":  # wall times differ
                    continue
                np.testing.assert_array_equal(x[key], y[key], err_msg=f"{label} {step} {key}")


def run_campaign(path, executor) -> tuple[str, dict]:
    with RunStore(path) as store:
        out = Campaign(SWEEP).run(Runner(store), None, backend=SPEC, executor=executor)
        assert out.status == "completed", out.summary
        return out.run_id, children(store, out.run_id)


def test_dask_local_cluster_gives_the_local_records_and_is_shut_down(tmp_path):
    threads_before = {t.ident for t in threading.enumerate()}
    _, local = run_campaign(tmp_path / "local.sqlite", LocalExecutor())
    with make_executor("dask") as executor:  # LocalCluster, one worker per core
        assert isinstance(executor, DaskExecutor) and executor.cluster is not None
        workers = executor.client.scheduler_info()["workers"].values()
        assert all(w["nthreads"] == 1 for w in workers) and len(workers) >= 1
        assert executor.client.scheduler.address.startswith("tcp://127.0.0.1:")
        _, remote = run_campaign(tmp_path / "dask.sqlite", executor)
    assert_same_records(local, remote)
    assert len(local) == 5 and local["train[seed=1]"][-1][0] == "final"
    assert multiprocessing.active_children() == []
    left = [t for t in threading.enumerate() if t.ident not in threads_before]
    # distributed's process-wide offload pool (one daemon thread) is all that may remain
    assert all(t.daemon and t.name.startswith("Dask-Offload") for t in left), left


def test_executor_names_are_checked_before_anything_starts():
    for bad, part in (("spark", "unknown executor 'spark'"), ("dask:", "needs an address")):
        with pytest.raises(ConfigError, match=part):
            make_executor(bad)
    assert isinstance(make_executor("local"), LocalExecutor)


@pytest.fixture
def scheduler():
    """A Dask scheduler on loopback with no workers (in this process), closed after."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=0,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def test_a_station_worker_runs_its_steps_on_its_own_chip(scheduler, tmp_path):
    station_spec = "emulator:pcm?rows=4&cols=6&seed=9"
    worker = subprocess.Popen(
        [sys.executable, "-m", "xbarlab.cli", "worker", "--scheduler", scheduler]
        + ["--station", "lab1", "--backend", station_spec],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with DaskExecutor(scheduler) as executor:
            executor.client.wait_for_workers(1, timeout=60)
            (info,) = executor.client.scheduler_info()["workers"].values()
            assert info["resources"] == {"station-lab1": 1} and info["nthreads"] == 1
            doc = {"station": "lab1", "steps": [{"procedure": "iv-sweep", "params": {}}]}
            with RunStore(tmp_path / "runs.sqlite") as store:
                out = Campaign(doc).run(Runner(store), None, backend=None, executor=executor)
                assert out.status == "completed", out.summary
                (kid,) = store.runs(parent=out.run_id)
                assert kid.backend == station_spec and kid.chip_info["rows"] == 4
        # the same through the command line, with a fan-out emulator step beside it
        doc["steps"].append({"procedure": "iv-sweep", "backend_sweep": {"seed": [1, 2]}})
        doc["backend"] = SPEC
        (tmp_path / "lab.yaml").write_text(json.dumps(doc))
        args = ["campaign", str(tmp_path / "lab.yaml"), "--executor", f"dask:{scheduler}"]
        res = CliRunner().invoke(main, [*args, "--store", str(tmp_path / "cli.sqlite"), "--json"])
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        assert out["status"] == "completed" and len(out["summary"]["children"]) == 3
    finally:
        worker.terminate()
        _, err = worker.communicate(timeout=30)
    assert "station lab1" in err


def test_cli_runs_a_fanout_campaign_with_progress_lines_and_refuses_bad_executors(tmp_path):
    import yaml

    path = tmp_path / "sweep.yaml"
    doc = {**SWEEP, "steps": SWEEP["steps"][:1]}
    path.write_text(yaml.safe_dump(doc))
    store = str(tmp_path / "runs.sqlite")
    runner = CliRunner()
    res = runner.invoke(main, ["campaign", str(path), "--store", store, "--executor", "local"])
    assert res.exit_code == 0, res.output
    assert "step 1: 3 done, 0 failed, 0 running, 0 queued" in res.stderr
    assert "step 1: 1 done, 0 failed, 1 running, 1 queued" in res.stderr
    res = runner.invoke(main, ["campaign", str(path), "--store", store, "--executor", "ray"])
    assert res.exit_code == 1 and "unknown executor 'ray'" in res.stderr
    res = runner.invoke(main, ["resume", "nope", "--store", store, "--executor", "dask:"])
    assert res.exit_code == 1 and "needs an address" in res.stderr
    res = runner.invoke(main, ["runs", "list", "--store", store, "--json"])
    assert (
        sorted(r["procedure"] for r in json.loads(res.stdout))
        == ["campaign"] + ["pulse-response"] * 3
    )


def test_dask_refuses_hardware_without_a_station_and_stations_no_worker_serves(scheduler, tmp_path):
    doc = {
        "steps": [
            {"procedure": "iv-sweep", "backend": "board:socket://127.0.0.1:9", "fanout": True},
            {"procedure": "iv-sweep", "station": "lab7"},
        ]
    }
    with DaskExecutor(scheduler) as executor, RunStore(tmp_path / "runs.sqlite") as store:
        with pytest.raises(ConfigError) as err:
            Campaign(doc).run(Runner(store), None, backend=None, executor=executor)
        assert store.runs() == []
    text = str(err.value)
    assert "(2 problem(s))" in text and "names no station" in text
    assert "no worker of dask:tcp://127.0.0.1" in text and "--station lab7" in text


def test_worker_command_refuses_bad_station_names_and_specs_before_connecting():
    runner = CliRunner()
    args = ["worker", "--scheduler", "tcp://127.0.0.1:1", "--station"]
    res = runner.invoke(main, [*args, "lab 1", "--backend", SPEC])
    assert res.exit_code == 1 and "station 'lab 1' must be a name" in res.stderr
    res = runner.invoke(main, [*args, "lab1", "--backend", "nothing"])
    assert res.exit_code == 1 and "has no scheme" in res.stderr
