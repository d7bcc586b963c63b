"""benchmarks/bench_calibration.py at a small size: the JSON keys and the calibration targets."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def result(load_bench):
    bench = load_bench("bench_calibration")
    return bench.main(["--seeds", "0", "--chips", "1", "--rows", "64"])


def test_calibration_targets_hold(result):
    assert result["readout_error_reduction"] >= 5
    assert result["drift_error_ratio"] <= 1 / 3
    assert set(result["fit_rel_errors"]) == {
        "nu_mean_2.5uS",
        "nu_mean_8uS",
        "nu_mean_20uS",
        "q_s_coeff",
        "set_step",
    }
    assert all(abs(e) <= 0.1 for e in result["fit_rel_errors"].values())


def test_transfer_figures_are_reported(result):
    [seed] = result["transfer"]
    assert seed["gap"] == pytest.approx(seed["true_accuracy"] - seed["fitted_accuracy"])
    assert result["transfer_accuracy_gap"] == seed["gap"]
    assert result["transfer_gap_stderr"] is None
    # the fitted emulator asks for nearly the same training noise as the true model
    assert seed["fitted_noise"] == pytest.approx(seed["true_noise"], rel=0.1)
    assert 0.5 < seed["true_accuracy"] <= 1 and 0.5 < seed["fitted_accuracy"] <= 1
    json.dumps(result)
