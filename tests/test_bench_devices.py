"""benchmarks/bench_devices.py with short training: the JSON keys and the IMCE figures."""

from __future__ import annotations

import json


def test_bench_devices_keys_and_imce(load_bench):
    bench = load_bench("bench_devices")
    result = bench.main(["--seeds", "0", "--epochs", "2"])
    for key in ("fp_accuracy", "rram_mp_accuracy", "ternary_accuracy"):
        assert 0.5 < result[key] <= 1, key
        assert result[key] == result["per_seed"][0][key]
    assert result["imce_exact"] is True
    assert 0 < result["imce_error_rate"] < 1e-3
    margins = [p["sense_margin_and"] for p in result["imce_sense_margin_sweep"]]
    rates = [p["and_error_rate"] for p in result["imce_sense_margin_sweep"]]
    # smaller sense margin, more logic errors
    assert margins == sorted(margins, reverse=True) and rates[-1] > 10 * rates[0]
    json.dumps(result)
