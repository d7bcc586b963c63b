"""benchmarks/bench_hardware.py prints the keys its users read (small sizes, no timing asserted)."""

import math


def test_bench_hardware_reports_the_documented_keys(load_bench):
    module = load_bench("bench_hardware")
    report = module.run(size=8, batch=4, repeats=1, smu_reads=5)
    assert {"board_read_ratio", "board_mvm_ratio", "smu_reads_per_s"} <= set(report)
    assert (report["size"], report["batch"]) == (8, 4)
    for key in ("board_read_ms", "emulator_read_ms", "board_mvm_ms", "emulator_mvm_ms"):
        assert report[key] > 0
    assert math.isclose(
        report["board_read_ratio"], report["board_read_ms"] / report["emulator_read_ms"]
    )
    assert math.isclose(
        report["board_mvm_ratio"], report["board_mvm_ms"] / report["emulator_mvm_ms"]
    )
    assert report["smu_reads_per_s"] > 0
