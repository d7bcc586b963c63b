"""CLI commands of procedures and the run store: run, campaign, resume, runs, procedures."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from xbarlab.cli import main
from xbarlab.events import EventBus, Record
from xbarlab.procedures import registry
from xbarlab.procedures.runner import RunControl, Runner
from xbarlab.store import RunStore

SPEC = "emulator:pcm?rows=16&cols=16&seed=2"


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("XBARLAB_STORE", str(tmp_path / "runs.sqlite"))
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args))


def _error(result) -> str:
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result.stderr


def test_run_json_prints_one_object_and_records_the_run(cli, tmp_path):
    res = cli("run", "pulse-response", "--backend", SPEC, "-p", "n_pulses=3", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["status"] == "completed" and out["procedure"] == "pulse-response"
    assert len(out["summary"]["mean_g_S"]) == 4
    with RunStore(tmp_path / "runs.sqlite") as store:
        assert store.run(out["run_id"]).n_records == 4


def test_run_text_output_and_store_option(cli, tmp_path):
    path = tmp_path / "other.sqlite"
    res = cli("run", "iv-sweep", "--backend", SPEC, "--store", str(path), "-p", "voltages=0.1")
    assert res.exit_code == 0 and "iv-sweep run " in res.stdout and "completed" in res.stdout
    assert path.exists() and not (tmp_path / "runs.sqlite").exists()


@pytest.mark.parametrize(
    "args, words",
    [
        (["run", "drift", "-p", "n_reads=1"], ["n_reads", "'1'", "2 <= value <= 1000"]),
        (["run", "iv-sweep", "-p", "voltages=0.2,0.9"], ["max_read_voltage", "0.9"]),
        (["run", "pulse-response", "-p", "amplitude=9"], ["max_voltage", "9"]),
        (["run", "nope"], ["unknown procedure 'nope'"]),
        (["run", "drift", "-p", "bogus=1"], ["unknown parameter(s) bogus"]),
        (["run", "drift", "-p", "n_reads"], ["KEY=VALUE"]),
    ],
)
def test_parameter_errors_run_nothing(cli, tmp_path, args, words):
    res = cli(*args, "--backend", SPEC)
    err = _error(res)
    for word in words:
        assert word in err
    assert not (tmp_path / "runs.sqlite").exists()


def test_campaign_json_and_errors(cli, tmp_path):
    good = tmp_path / "c.yaml"
    good.write_text(
        f"backend: {SPEC}\n"
        "steps:\n"
        "  - procedure: program-array\n"
        "    params: {pattern: checkerboard}\n"
        "  - procedure: conductance-map\n"
        "    params: {repeats: 2}\n"
        "    sweep: {region: ['0:2,0:2', all]}\n"
    )
    res = cli("campaign", str(good), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["status"] == "completed" and out["procedure"] == "campaign"
    assert [c["summary"].get("devices") for c in out["summary"]["children"]] == [256, 4, 256]
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - procedure: drift\n    params: {n_reads: 0}\n  - procedure: x\n")
    err = _error(cli("campaign", str(bad), "--backend", SPEC))
    assert "2 problem(s)" in err and "n_reads" in err and "'x'" in err
    nob = tmp_path / "nob.yaml"
    nob.write_text("steps:\n  - procedure: iv-sweep\n")
    assert "no backend" in _error(cli("campaign", str(nob)))


def test_runs_list_show_and_export(cli, tmp_path):
    h5py = pytest.importorskip("h5py")
    run_id = json.loads(cli("run", "iv-sweep", "--backend", SPEC, "--json").stdout)["run_id"]
    listed = json.loads(cli("runs", "list", "--json").stdout)
    assert [(r["run_id"], r["procedure"], r["status"]) for r in listed] == [
        (run_id, "iv-sweep", "completed")
    ]
    assert run_id in cli("runs", "list").stdout
    shown = json.loads(cli("runs", "show", run_id[:-1], "--json").stdout)
    assert shown["run_id"] == run_id and shown["steps"] == ["v-000", "v-001", "v-002", "v-003"]
    assert "v-000" in cli("runs", "show", run_id).stdout
    assert "unknown run id" in _error(cli("runs", "show", "1999"))
    path = tmp_path / "run.h5"
    res = cli("runs", "export", run_id, "--format", "hdf5", str(path))
    assert res.exit_code == 0, res.output
    with h5py.File(path) as f:
        assert len(f["records"]) == 4


def test_runs_list_without_store_is_an_error(cli, tmp_path):
    assert "no run store" in _error(cli("runs", "list", "--store", str(tmp_path / "x.sqlite")))


def test_resume_completes_an_aborted_run(cli, tmp_path):
    control, bus = RunControl(), EventBus()
    bus.subscribe(lambda ev: control.abort() if ev.step_id == "pulse-0001" else None, Record)
    from xbarlab.chipdrivers import open_crossbar

    proc = registry.get("pulse-response").from_values({"n_pulses": 5})
    with RunStore(tmp_path / "runs.sqlite") as store, open_crossbar(SPEC) as xbar:
        runner = Runner(store, bus, control)
        run_id = runner.create_run(proc, xbar, backend=SPEC)
        assert runner.run(proc, xbar, backend=SPEC, run_id=run_id, state_key=run_id).status == (
            "aborted"
        )
    res = cli("resume", run_id, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["run_id"] == run_id and out["status"] == "completed"
    assert len(out["summary"]["mean_g_S"]) == 6
    with RunStore(tmp_path / "runs.sqlite") as store:
        assert store.run(run_id).n_records == 6
    assert "unknown run id" in _error(cli("resume", "nope"))


def test_procedures_listing(cli):
    doc = json.loads(cli("procedures", "--json").stdout)
    assert {p["name"] for p in doc} == set(registry.PROCEDURES)
    drift = next(p for p in doc if p["name"] == "drift")
    n_reads = next(p for p in drift["parameters"] if p["name"] == "n_reads")
    assert (n_reads["default"], n_reads["lo"], n_reads["hi"]) == (30, 2, 1000)
    assert cli("procedures", "--markdown").stdout.startswith("| procedure |")
    assert "iv-sweep:" in cli("procedures").stdout
