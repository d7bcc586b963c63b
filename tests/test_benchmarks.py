"""The benchmark scripts print the keys their users' scripts read (no timing asserted)."""

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_emulator.py"


def test_bench_emulator_entry_has_the_documented_keys():
    spec = importlib.util.spec_from_file_location("bench_emulator", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    entry = module.bench_size(16, 24, repeats=1)
    assert {
        "rows",
        "cols",
        "read_all_ms",
        "pulse_all_ms",
        "mvm_ms",
        "normals_ms",
        "gemv_ms",
        "bytes_per_device",
    } <= set(entry)
    assert (entry["rows"], entry["cols"]) == (16, 24)
    assert 0 < entry["bytes_per_device"] <= 40
