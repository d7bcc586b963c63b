"""xbarlab train: JSON output per mode, the run and its arrays in the store, errors."""

import json

import pytest
from click.testing import CliRunner

from xbarlab.cli import main
from xbarlab.store import RunStore

SMALL = "emulator:pcm?differential=1&rows=64&cols=64&seed=2"


def _train(tmp_path, *args):
    store = str(tmp_path / "runs.sqlite")
    res = CliRunner().invoke(
        main, ["train", *args, "--backend", SMALL, "--hidden", "8", "--store", store, "--json"]
    )
    return res, store


def test_mixed_precision_json_and_stored_run(tmp_path):
    res, store = _train(tmp_path, "--mode", "mixed-precision", "--epochs", "2", "--seed", "1")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["mode"] == "mixed-precision" and out["epochs"] == 2 and out["seed"] == 1
    assert 0.5 < out["test_accuracy"] <= 1
    assert out["pulses"] == sum(h["pulses"] for h in out["history"]) > 0
    with RunStore(store) as s:
        info = s.run(out["run_id"])
        assert info.procedure == "train-mixed-precision" and info.status == "completed"
        assert s.step_ids(out["run_id"]) == ["setup", "epoch-0001", "epoch-0002", "final"]
        setup = s.record(out["run_id"], "setup")
        assert setup["characterisation"]["mean_increment_S"] > 0
        final = s.record(out["run_id"], "final")
        assert final["0.W"].shape == (8, 64) and final["1.W"].shape == (10, 8)
        assert final["pulses_per_epoch"].tolist() == [h["pulses"] for h in out["history"]]
        assert final["curve.test_accuracy"][-1] == out["test_accuracy"]


def test_hwa_reports_accuracy_vs_time_in_seconds(tmp_path):
    res, _ = _train(tmp_path, "--mode", "hwa", "--epochs", "3")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert list(out["accuracy_vs_time"]) == ["25", "3600", "86400", "31536000"]
    for acc in out["accuracy_vs_time"].values():
        assert 0 <= acc["gdc"] <= 1 and 0 <= acc["raw"] <= 1
    assert out["test_accuracy"] == out["accuracy_vs_time"]["25"]["gdc"]


def test_fp_trains_in_software(tmp_path):
    res, store = _train(tmp_path, "--mode", "fp", "--epochs", "5")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["test_accuracy"] > 0.85 and len(out["history"]) == 5
    assert "pulses" not in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mode", "sgd"], "'sgd' is not one of"),
        (["--mode", "fp", "--epochs", "0"], "0 is not in the range x>=1"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, args, message):
    res, _ = _train(tmp_path, *args)
    assert res.exit_code == 2 and message in res.output


def test_a_bad_backend_fails_the_run_cleanly(tmp_path):
    store = str(tmp_path / "runs.sqlite")
    res = CliRunner().invoke(
        main, ["train", "--mode", "mixed-precision", "--backend", "emulator:sram", "--store", store]
    )
    assert res.exit_code == 1 and "unknown emulated technology 'sram'" in res.output
    assert "Traceback" not in res.output
    with RunStore(store) as s:
        (run,) = s.runs()
        assert run.status == "failed" and "sram" in run.error
