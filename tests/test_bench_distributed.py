"""bench_distributed prints one JSON object with the issue's keys (tiny run, no timing asserted)."""

import json

import numpy as np

KEYS = ("serial_s", "dask_local_s", "startup_s", "speedup", "identical")


def test_tiny_run_prints_the_documented_keys_and_both_executors_agree(load_bench, capsys):
    result = load_bench("bench_distributed").main(
        ["--tasks", "2", "--epochs", "1", "--hidden", "8", "--workers", "2"]
    )
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result))
    assert all(key in result for key in KEYS)
    assert result["identical"] is True and result["tasks"] == 2 and result["workers"] == 2
    assert result["speedup"] == result["serial_s"] / result["dask_local_s"]
    assert all(result[k] > 0 for k in ("serial_s", "dask_local_s", "startup_s", "task_s_min"))


def test_records_that_differ_in_a_value_or_an_array_are_not_identical(load_bench):
    same = load_bench("bench_distributed").same_records
    a = {"t": [("epoch-0001", {"loss": 0.5, "epoch_s": 1.0, "w": np.zeros(3)})]}
    b = {"t": [("epoch-0001", {"loss": 0.5, "epoch_s": 2.0, "w": np.zeros(3)})]}
    assert same(a, b)  # wall times aside
    assert not same(a, {"t": [("epoch-0001", {**b["t"][0][1], "loss": 0.4})]})
    assert not same(a, {"t": [("epoch-0001", {**b["t"][0][1], "w": np.ones(3)})]})
    assert not same(a, {"u": a["t"]})
