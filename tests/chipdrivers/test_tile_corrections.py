"""AnalogTile run-time correction hooks: per-output readout correction and output scale."""

import numpy as np
import pytest

from xbarlab.chipdrivers.tiles import AnalogTile
from xbarlab.errors import ConfigError

# noiseless and static (no post-programming relaxation): outputs compare to 1e-6
STATIC = "&relax_mean=0&relax_std=0"
SPEC = "emulator:pcm?rows=16&cols=16&seed=3&periphery=ideal&device_noise=0" + STATIC


@pytest.fixture
def tile():
    rng = np.random.default_rng(0)
    w = rng.uniform(-1, 1, (6, 10))
    with AnalogTile.from_spec(w, SPEC) as t:
        yield t


def test_readout_correction_scales_and_offsets_raw_currents(tile):
    x = np.random.default_rng(1).uniform(-1, 1, (4, 10))
    y0 = tile.forward(x)
    n = tile.info.mvm_shape[1]
    # doubling every raw current doubles the output; a common offset cancels in G+ - G-
    tile.set_readout_correction(0, False, np.full(n, 2.0), np.full(n, 1e-6))
    np.testing.assert_allclose(tile.forward(x), 2 * y0, rtol=1e-4, atol=1e-4)
    # an offset on a G+ column only shifts its output by offset * out_scale * max|x|
    off = np.zeros(n)
    off[0] = 1e-7
    tile.set_readout_correction(0, False, np.ones(n), off)
    shift = tile.forward(x) - y0
    want = 1e-7 * tile._out_scale[0] * np.abs(x).max(axis=1)
    np.testing.assert_allclose(shift[:, 0], want, rtol=1e-3)
    np.testing.assert_allclose(shift[:, 1:], 0, atol=1e-5)
    tile.clear_readout_correction()
    np.testing.assert_allclose(tile.forward(x), y0, rtol=1e-6)


def test_readout_correction_transposed_direction(tile):
    d = np.random.default_rng(2).uniform(-1, 1, (3, 6))
    b0 = tile.backward(d)
    rows = tile.info.mvm_shape[0]
    tile.set_readout_correction(0, True, np.full(rows, 0.5), np.zeros(rows))
    np.testing.assert_allclose(tile.backward(d), 0.5 * b0, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(tile.forward(np.ones(10)), tile.forward(np.ones(10)))


def test_output_scale_scales_rows_of_w_both_directions(tile):
    x = np.random.default_rng(3).uniform(-1, 1, (5, 10))
    d = np.random.default_rng(4).uniform(-1, 1, (5, 6))
    y0 = tile.forward(x)
    s = np.linspace(0.5, 1.5, 6)
    tile.set_output_scale(s)
    np.testing.assert_allclose(tile.forward(x), y0 * s, rtol=1e-5, atol=1e-6)
    # backward with diag(s) W equals backward of d * s
    tile.set_output_scale(None)
    want = tile.backward(d * s)
    tile.set_output_scale(s)
    np.testing.assert_allclose(tile.backward(d), want, rtol=1e-5, atol=1e-6)
    tile.program(tile.read_weights())
    assert tile.output_scale is None


def test_bad_corrections_name_the_problem(tile):
    with pytest.raises(ConfigError, match="shape"):
        tile.set_readout_correction(0, False, np.ones(3), np.zeros(3))
    with pytest.raises(ConfigError, match="array must be in 0..0"):
        tile.set_readout_correction(1, False, np.ones(16), np.zeros(16))
    with pytest.raises(ConfigError, match="finite and > 0"):
        tile.set_output_scale(np.zeros(6))
    assert tile.output_scale is None and tile._readout_fix == {}
