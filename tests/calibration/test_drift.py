"""Drift compensation: PCM one day after programming, global and per-column factors."""

import numpy as np
import pytest

from xbarlab.calibration.drift import DriftReference, compensate, measure_reference
from xbarlab.calibration.readout import held_weights, mvm_error
from xbarlab.chipdrivers.tiles import AnalogTile
from xbarlab.errors import ConfigError

DAY = 86400.0


@pytest.mark.parametrize("mode", ["global", "column"])
@pytest.mark.parametrize("differential", [False, True])
def test_one_day_drift_error_cut_to_a_third(mode, differential):
    rng = np.random.default_rng(5)
    w = rng.uniform(-1, 1, (32, 64))
    x = rng.uniform(-1, 1, (200, 64))
    spec = "emulator:pcm?rows=64&cols=64&seed=4" + ("&differential=1" if differential else "")
    with AnalogTile.from_spec(w, spec) as tile:
        ref = measure_reference(tile)
        w_prog = held_weights(tile)  # what compensation restores: the weights as programmed
        tile.arrays[0].clock.sleep(DAY)
        before = mvm_error(tile, x, repeats=4, weights=w_prog)
        factor = compensate(tile, ref, mode)
        after = mvm_error(tile, x, repeats=4, weights=w_prog)
    # (86400 s / 20 s)^-nu with nu ~ 0.05: outputs lose about a third
    assert before > 0.25
    assert after <= before / 3
    assert np.all((np.asarray(factor) > 1.3) & (np.asarray(factor) < 1.7))
    assert np.shape(factor) == (() if mode == "global" else (32,))


def test_output_scale_is_measured_without_the_previous_one():
    w = np.random.default_rng(6).uniform(-1, 1, (8, 16))
    with AnalogTile.from_spec(w, "emulator:pcm?rows=16&cols=16&seed=2") as tile:
        ref = measure_reference(tile)
        tile.arrays[0].clock.sleep(DAY)
        first = compensate(tile, ref)
        again = compensate(tile, ref)
    assert again == pytest.approx(first, rel=0.02)


def test_bad_arguments():
    w = np.random.default_rng(7).uniform(-1, 1, (4, 8))
    with AnalogTile.from_spec(w, "emulator:pcm?rows=8&cols=8") as tile:
        ref = measure_reference(tile, n_ref=4)
        with pytest.raises(ConfigError, match="one of global, column, got 'per-row'"):
            compensate(tile, ref, "per-row")
        with pytest.raises(ConfigError, match="does not fit"):
            compensate(tile, DriftReference(ref.x[:, :3], ref.y0))
        with pytest.raises(ConfigError, match="n_ref must be an integer >= 1, got 0"):
            measure_reference(tile, n_ref=0)
