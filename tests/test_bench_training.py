"""bench_training prints one JSON object with the issue's keys (tiny run, no timing asserted)."""

import json

import numpy as np

KEYS = (
    "fp_accuracy",
    "mp_accuracy",
    "hwa_accuracy_25s",
    "hwa_accuracy_1d_gdc",
    "hwa_accuracy_1d_raw",
    "mp_epoch_s",
)


def test_tiny_run_prints_the_documented_keys_as_means_over_seeds(load_bench, capsys):
    bench = load_bench("bench_training")
    result = bench.main(["--seeds", "0,1", "--epochs", "1", "--hidden", "8"])
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result))
    assert [r["seed"] for r in result["per_seed"]] == [0, 1]
    for key in KEYS:
        assert isinstance(result[key], float), key
        assert result[key] == np.mean([r[key] for r in result["per_seed"]])
        assert result[key] > 0
    for key in KEYS[:5]:
        assert result[key] <= 1
