"""The drift-compensation procedure: steps, factors against the emulator, refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.chipdrivers.drift_reference import drift_factors, reference_inputs, relative_error
from xbarlab.errors import ConfigError
from xbarlab.procedures import registry

SPEC = "emulator:pcm?rows=32&cols=32&seed=2"


def make(**values):
    return registry.get("drift-compensation").from_values(values)


def test_steps_and_factors_undo_a_day_of_drift(drive):
    with open_crossbar(SPEC) as xbar:
        ids, data, summary = drive(make(n_times=3), xbar)
    assert ids == ["program", "reference", "measure-000", "measure-001", "measure-002"]
    times = [row["t_s"] for row in summary["times"]]
    assert times == pytest.approx([60.0, np.sqrt(60.0 * 86400.0), 86400.0], rel=1e-6)
    factors = [row["factor_global"] for row in summary["times"]]
    # PCM drift only shrinks conductances: the factor grows with time, > 1
    assert 1.0 < factors[0] < factors[1] < factors[2] < 2.0
    assert summary["error_global"] < 0.6 * summary["error_raw"]
    assert summary["error_column"] < 0.6 * summary["error_raw"]
    last = data["measure-002"]
    assert last["factor_column"].shape == (32,)
    assert np.all(last["factor_column"] > 1.0)
    assert summary["factor_global"] == factors[2]


def test_without_programming_the_reference_is_taken_now(drive):
    with open_crossbar(SPEC) as xbar:
        xbar.clock.sleep(10.0)
        ids, data, _ = drive(make(program=False, n_times=1, duration=3600.0), xbar)
        assert ids == ["reference", "measure-000"]
        assert data["reference"]["t_s"] == pytest.approx(10.0)
        assert data["measure-000"]["t_s"] == pytest.approx(3600.0)
        assert xbar.chip.pulse_count.sum() == 0


def test_refuses_a_chip_without_mvm():
    with open_crossbar(SPEC) as xbar:
        info = dataclasses.replace(xbar.info, capabilities=frozenset({"read", "pulse"}))
    with pytest.raises(ConfigError, match="needs a chip with the 'mvm' capability"):
        make().check(info)


def test_refuses_inverted_times():
    with pytest.raises(ConfigError, match="t_first"):
        make(t_first=100.0, duration=10.0)


def test_factors_are_least_squares_and_refuse_sign_changes():
    y0 = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert drift_factors(y0, y0 / 1.25, "global") == pytest.approx(1.25)
    assert drift_factors(y0, y0 * [0.5, 0.8], "column") == pytest.approx([2.0, 1.25])
    with pytest.raises(ConfigError, match="changed sign"):
        drift_factors(y0, -y0, "global")
    with pytest.raises(ConfigError, match="mode must be one of global, column"):
        drift_factors(y0, y0, "row")
    assert relative_error(y0, y0) == 0.0
    x = reference_inputs(4, 5, seed=1)
    assert np.all(x[0] == 1) and set(np.unique(x)) <= {-1.0, 1.0}
