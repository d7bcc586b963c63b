"""bench_distributed prints one JSON object with the issue's keys (tiny run, no timing asserted)."""

import importlib.util
import json
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_distributed.py"
KEYS = ("serial_s", "dask_local_s", "startup_s", "speedup", "identical")


def load():
    spec = importlib.util.spec_from_file_location("bench_distributed", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_tiny_run_prints_the_documented_keys_and_both_executors_agree(capsys):
    result = load().main(["--tasks", "2", "--epochs", "1", "--hidden", "8", "--workers", "2"])
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result))
    assert all(key in result for key in KEYS)
    assert result["identical"] is True and result["tasks"] == 2 and result["workers"] == 2
    assert result["speedup"] == result["serial_s"] / result["dask_local_s"]
    assert all(result[k] > 0 for k in ("serial_s", "dask_local_s", "startup_s", "task_s_min"))


def test_records_that_differ_in_a_value_or_an_array_are_not_identical():
    same = load().same_records
    a = {"t": [("epoch-0001", {"loss": 0.5, "epoch_s": 1.0, "w": np.zeros(3)})]}
    b = {"t": [("epoch-0001", {"loss": 0.5, "epoch_s": 2.0, "w": np.zeros(3)})]}
    assert same(a, b)  # wall times aside
    assert not same(a, {"t": [("epoch-0001", {**b["t"][0][1], "loss": 0.4})]})
    assert not same(a, {"t": [("epoch-0001", {**b["t"][0][1], "w": np.ones(3)})]})
    assert not same(a, {"u": a["t"]})
