"""Ternary tiles: {-a, 0, +a} on one device pair at g_off / g_on, 7-level inputs in the tile.

Exactness is checked on a noise-free chip against the ternary weights themselves
(programmed to a tight tolerance) and against the weights read back.
"""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.chipdrivers.programming import program_iterative
from xbarlab.chipdrivers.tiles import AnalogTile
from xbarlab.errors import ConfigError

IDEAL = "emulator:pcm?rows=64&cols=64&seed=1&periphery=ideal&device_noise=0&preset=ideal"
PATHS = {"differential": "&differential=1", "subtracted": ""}
#: programming tolerance in S for the exactness tests: 1e-7 S of a 22.5 uS g_on
TIGHT = 1e-7


def _ternary(rng, shape, a=0.37):
    return (rng.integers(-1, 2, shape) * a).astype(np.float32)


def _levels(rng, shape, r):
    """Inputs on the 7-level grid {-3..3} * r / 3."""
    return (rng.integers(-3, 4, shape) * (r / 3)).astype(np.float32)


def _tile(spec, **options):
    return AnalogTile([open_crossbar(spec)], weight_levels=3, input_levels=7, **options)


@pytest.mark.parametrize("path", PATHS)
def test_ternary_tile_computes_x_times_w_exactly_for_7_level_inputs(path):
    rng = np.random.default_rng(1)
    w = _ternary(rng, (20, 64))
    tile = _tile(IDEAL + PATHS[path], input_range=1.5)
    report = tile.program(w, tolerance=TIGHT)
    assert report.converged_fraction == 1.0 and report.weight_scale == pytest.approx(0.37)
    w_hat = tile.read_weights()
    err = np.max(np.abs(w_hat - w))
    assert err <= 2.02 * TIGHT / tile.g_scale  # each device of the pair within TIGHT
    x = _levels(rng, (50, 64), 1.5)
    y = tile.forward(x)
    # the product with the weights the devices hold, to float32 precision
    held = x @ w_hat.T
    np.testing.assert_allclose(y, held, rtol=1e-5, atol=1e-6 * np.abs(held).max())
    # and with W itself up to what the programming tolerance allows: sum |x| * err
    ref = x.astype(np.float64) @ w.T.astype(np.float64)
    bound = np.abs(x).sum(axis=1, keepdims=True) * err
    assert np.all(np.abs(y - ref) <= bound * 1.001 + 1e-5)
    assert np.max(np.abs(y - ref)) < 0.01 * np.abs(ref).max()
    assert tile.last_saturated == 0 and tile.last_retries == 0
    # one vector at a time gives the same
    np.testing.assert_allclose(tile.forward(x[3]), y[3], rtol=1e-6, atol=1e-6)


def test_inputs_are_quantised_to_7_levels_in_the_tile():
    rng = np.random.default_rng(2)
    w = _ternary(rng, (12, 64))
    fixed = _tile(IDEAL + "&differential=1", input_range=2.0)
    fixed.program(w, tolerance=TIGHT)
    w_hat = fixed.read_weights()
    x = rng.uniform(-3, 3, (30, 64)).astype(np.float32)  # off the grid, partly beyond 2
    q = np.clip(np.rint(x * 3 / 2.0), -3, 3) * 2.0 / 3
    assert len(np.unique(q)) == 7
    np.testing.assert_allclose(fixed.forward(x), q @ w_hat.T, rtol=1e-5, atol=1e-5)
    # without input_range each vector is scaled by its own max |x|
    per_vector = _tile(IDEAL + "&differential=1")
    per_vector.program(w, tolerance=TIGHT)
    w_hat = per_vector.read_weights()
    m = np.abs(x).max(axis=1, keepdims=True)
    q = np.rint(x / m * 3) * m / 3
    np.testing.assert_allclose(per_vector.forward(x), q @ w_hat.T, rtol=1e-5, atol=1e-5)
    # the unquantised product differs by far more than float32 precision
    assert np.max(np.abs(per_vector.forward(x) - x @ w_hat.T)) > 0.05


def test_chip_dac_on_a_multiple_of_3_levels_adds_no_rounding():
    rng = np.random.default_rng(3)
    w = _ternary(rng, (16, 64))
    x = _levels(rng, (40, 64), 1.0)
    out = {}
    for bits in (0, 3, 7):  # ideal DAC, 3 and 63 levels per polarity
        tile = _tile(IDEAL + f"&differential=1&dac_bits={bits}", input_range=1.0)
        tile.program(w, tolerance=TIGHT)
        out[bits] = (tile.forward(x), x @ tile.read_weights().T)
    for bits in (3, 7):
        np.testing.assert_allclose(out[bits][0], out[bits][1], rtol=1e-5, atol=1e-5)
    # an analog tile with the same inputs on the 3-level DAC does round (per-vector scale)
    analog = AnalogTile([open_crossbar(IDEAL + "&differential=1&dac_bits=3")])
    analog.program(w, tolerance=TIGHT)
    x2 = x.copy()
    x2[:, 0] = 0.5  # max |x| = 1, so 0.5 falls between DAC levels
    assert np.max(np.abs(analog.forward(x2) - x2 @ analog.read_weights().T)) > 0.05


def test_non_ternary_weights_are_refused_before_anything_is_programmed():
    xbar = open_crossbar(IDEAL)
    before = xbar.read().copy()
    tile = AnalogTile([xbar], weight_levels=3)
    w = np.random.default_rng(4).uniform(-1, 1, (8, 64))
    with pytest.raises(ConfigError, match=r"ternary weights \{-a, 0, \+a\}.*ternarize"):
        tile.program(w)
    two = np.array([[0.5, -0.5, 0.0], [0.5, 0.25, 0.0]])
    with pytest.raises(ConfigError, match=r"2 distinct non-zero magnitudes \(0.25 .. 0.5\)"):
        tile.program(two)
    with pytest.raises(ConfigError, match="weight_scale = 1 differs"):
        AnalogTile([xbar], weight_levels=3, weight_scale=1.0).program(two[:1])
    assert tile.shape is None
    np.testing.assert_allclose(xbar.read(), before, rtol=1e-5)  # not a pulse (only drift)
    # an exact ternary matrix and an all-zero one with weight_scale are accepted
    AnalogTile([xbar], weight_levels=3, weight_scale=0.5).program(np.zeros((2, 3)))


def test_ternary_and_input_options_are_validated():
    xbar = open_crossbar(IDEAL)
    cases = [
        ({"weight_levels": 5}, "weight_levels must be None .* or 3"),
        ({"weight_levels": 3, "pairs_per_weight": 2}, "use pairs_per_weight=1"),
        ({"input_levels": 6}, "odd integer >= 3"),
        ({"input_levels": 1}, "odd integer >= 3"),
        ({"input_range": 1.0}, "give input_levels"),
        ({"input_levels": 7, "input_range": 0.0}, "input_range must be > 0"),
    ]
    for options, message in cases:
        with pytest.raises(ConfigError, match=message):
            AnalogTile([xbar], **options)
    # 127 DAC levels per polarity (8 bits) cannot hold 3 levels per polarity exactly
    hermes_dac = open_crossbar(IDEAL + "&dac_bits=8")
    with pytest.raises(ConfigError, match=r"\(127 levels per polarity\).*multiple of 3"):
        AnalogTile([hermes_dac], input_levels=7)
    AnalogTile([hermes_dac], input_levels=255)  # 127 per polarity: fits


def test_programming_targets_only_g_off_and_g_on_and_reaches_them():
    spec = "emulator:pcm?rows=64&cols=64&seed=5&differential=1"
    rng = np.random.default_rng(5)
    w = _ternary(rng, (32, 64), a=0.8)
    targets = []

    def recording(xbar, g, sel, **kw):
        targets.append(np.asarray(g))
        return program_iterative(xbar, g, sel, **kw)

    tile = AnalogTile([open_crossbar(spec)], weight_levels=3, g_range=0.9)
    report = tile.program(w, algorithm=recording)
    info = tile.info
    g_off, g_on = info.g_min, info.g_min + 0.9 * (info.g_max - info.g_min)
    np.testing.assert_allclose(np.unique(np.concatenate(targets)), [g_off, g_on], rtol=1e-6)
    (part,) = report.parts
    res = part.result
    tol = res.tolerance
    assert tol == pytest.approx(0.05 * (g_on - g_off))  # the ternary default band
    ok = res.converged & ~res.unresponsive
    assert ok.mean() > 0.99  # the rest: stuck devices of the default PCM (0.1% each way)
    target = targets[0]
    assert np.all(np.abs(res.g_verify[ok] - target[ok]) <= tol)
    # read back (read noise on), the ternary level of nearly every weight is recovered
    levels = np.rint(tile.read_weights() / 0.8)
    assert np.mean(levels == w / 0.8) > 0.99
    # the wider band (5% of the level spacing instead of 2% of g_max) saves iterations
    narrow = AnalogTile([open_crossbar(spec)], weight_levels=3, g_range=0.9)
    tight = narrow.program(w, tolerance=0.02 * info.g_max, algorithm=program_iterative)
    assert res.mean_iterations < 0.95 * tight.parts[0].result.mean_iterations


def test_bound_management_keeps_the_input_grid():
    # all +a weights and full-scale inputs: about 57 weight units per column, above the
    # default ADC bound of 12; retries use scales that are whole multiples of 3 / 63
    spec = "emulator:pcm?rows=64&cols=64&seed=6&periphery=default&preset=ideal&differential=1"
    tile = _tile(spec, input_range=1.0)
    assert np.allclose(tile._scales * 21, np.rint(tile._scales * 21))
    assert np.all(np.diff(tile._scales) < 0) and tile._scales[0] == 1
    tile.program(np.full((8, 64), 0.5, np.float32))
    w_hat = tile.read_weights()
    x = np.ones((4, 64), np.float32)
    x[2:, ::2] = 2 / 3
    y = tile.forward(x)
    assert tile.last_saturated == 0 and tile.last_retries >= 4
    ref = x @ w_hat.T
    assert np.max(np.abs(y - ref) / np.abs(ref)) < 0.02  # ADC step and output noise
    # a DAC with only 3 levels per polarity has no smaller exact scale: no retries
    three = _tile(spec + "&dac_bits=3", input_range=1.0)
    assert list(three._scales) == [1.0]
