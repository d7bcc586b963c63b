"""AnalogTile: weights on differential pairs, splitting over cores, scaling, bound management.

Exactness is checked against the weights the devices actually hold (read back on a
noise-free chip), and those against W within the programming tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.chipdrivers.tile_layout import arrays_needed, core_spec, plan_layout
from xbarlab.chipdrivers.tiles import AnalogTile
from xbarlab.errors import ConfigError

IDEAL = "emulator:pcm?rows=64&cols=64&seed=1&periphery=ideal&device_noise=0&preset=ideal"
PATHS = {"differential": "&differential=1", "subtracted": ""}


def _rel(a, b) -> float:
    """Max error relative to the largest reference value."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _rms_rel(a, b) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2) / np.mean(b**2)))


def _assert_exact(tile, w_hat, rng):
    """forward/backward equal X @ W_hat.T and D @ W_hat to float32 precision."""
    n_out, n_in = w_hat.shape
    x = rng.uniform(-1, 1, (40, n_in))
    d = rng.uniform(-1, 1, (40, n_out))
    ref_y, ref_b = x @ w_hat.T, d @ w_hat
    np.testing.assert_allclose(tile.forward(x), ref_y, rtol=1e-5, atol=1e-5 * np.abs(ref_y).max())
    np.testing.assert_allclose(tile.backward(d), ref_b, rtol=1e-5, atol=1e-5 * np.abs(ref_b).max())
    assert tile.last_saturated == 0 and tile.last_retries == 0


# -- layout ---------------------------------------------------------------------------
def test_layout_counts_and_covers_every_slot_once():
    assert arrays_needed((600, 700), 256, 256) == 3 * 5
    assert arrays_needed((600, 700), 256, 256, pairs_per_weight=2) == 3 * 10
    # the 64-core 256 x 256 chip of seed 004 holds a 512 x 4096 layer exactly
    assert arrays_needed((512, 4096), 256, 256) == 64
    blocks = plan_layout((50, 70), 32, 16, pairs=3)
    assert len(blocks) == arrays_needed((50, 70), 32, 16, 3) == 3 * 19
    hits = np.zeros((3, 50, 70), dtype=int)
    for b in blocks:
        for s in b.segments:
            assert 0 <= s.s0 and s.s0 + s.size <= 16 // 2
            hits[s.pair, s.j0 : s.j1, b.row0 : b.row1] += 1
    np.testing.assert_array_equal(hits, 1)


def test_core_spec_derives_distinct_seeds_or_fills_placeholder():
    base = "emulator:pcm?rows=8&cols=8&seed=5&periphery=ideal"
    specs = [core_spec(base, c) for c in range(4)]
    seeds = [open_crossbar(s).info.details["seed"] for s in specs]
    assert len(set(seeds)) == 4 and specs == [core_spec(base, c) for c in range(4)]
    assert core_spec("emulator:pcm?seed=6", 0) != core_spec(base, 0)
    assert all("periphery=ideal" in s for s in specs)
    assert core_spec("board:socket://127.0.0.1:5555?core={core}", 3).endswith("core=3")
    with pytest.raises(ConfigError, match=r"\{core\}"):
        core_spec("board:socket://127.0.0.1:5555", 1)


# -- exactness with every non-ideality off ----------------------------------------------
@pytest.mark.parametrize("path", PATHS)
def test_ideal_chip_computes_with_the_held_weights(path):
    rng = np.random.default_rng(11)
    xbar = open_crossbar(IDEAL + PATHS[path])
    w = rng.uniform(-1.5, 1.5, (32, 64))
    tile = AnalogTile([xbar])
    report = tile.program(w)
    assert report.converged_fraction == 1.0 and report.unresponsive == 0
    info = xbar.info
    g_scale = 0.8 * (info.g_max - info.g_min) / np.abs(w).max()
    assert tile.g_scale == pytest.approx(g_scale)
    # the documented mapping, read from the raw conductances
    g = xbar.read().astype(np.float64)
    plus, minus = (g[:, 0::2], g[:, 1::2]) if path == "differential" else (g[:, :32], g[:, 32:])
    tol = 0.02 * info.g_max  # write_verify's default tolerance
    assert np.all(np.abs(plus - (info.g_min + np.maximum(w.T, 0) * g_scale)) <= tol * 1.001)
    assert np.all(np.abs(minus - (info.g_min + np.maximum(-w.T, 0) * g_scale)) <= tol * 1.001)
    w_hat = tile.read_weights()
    np.testing.assert_allclose(w_hat, (plus - minus).T / g_scale, rtol=1e-6, atol=1e-6)
    assert np.max(np.abs(w_hat - w)) <= 2 * tol / g_scale
    assert report.max_abs_error == pytest.approx(np.max(np.abs(w_hat - w)), rel=1e-4)
    _assert_exact(tile, w_hat, rng)


@pytest.mark.parametrize("path", PATHS)
def test_two_pairs_with_significance_shrink_the_programming_error(path):
    rng = np.random.default_rng(12)
    w = rng.uniform(-1, 1, (16, 64))
    errors = {}
    for k in (1, 2):
        tile = AnalogTile([open_crossbar(IDEAL + PATHS[path])], pairs_per_weight=k, significance=4)
        tile.program(w)
        w_hat = tile.read_weights()
        errors[k] = float(np.sqrt(np.mean((w_hat - w) ** 2)))
        _assert_exact(tile, w_hat, rng)
    # the less significant pair corrects the residual: about 1/(1 + 4) of the error left
    tol_w = 0.02 * 25e-6 / tile.g_scale / (1 + 4)
    assert np.max(np.abs(w_hat - w)) <= 2 * tol_w
    assert errors[2] < 0.35 * errors[1]


def test_zero_vectors_give_zero_and_do_not_disturb_others():
    rng = np.random.default_rng(13)
    tile = AnalogTile([open_crossbar(IDEAL + "&differential=1")])
    tile.program(rng.uniform(-1, 1, (8, 64)))
    w_hat = tile.read_weights()
    x = rng.uniform(-1, 1, (3, 64))
    x[1] = 0
    y = tile.forward(x)
    assert np.all(np.isfinite(y)) and np.all(y[1] == 0)
    np.testing.assert_allclose(y[[0, 2]], x[[0, 2]] @ w_hat.T, rtol=1e-5, atol=1e-5)
    assert np.all(tile.forward(np.zeros(64)) == 0) and np.all(tile.backward(np.zeros(8)) == 0)
    assert tile.forward(np.zeros((0, 64))).shape == (0, 8)


# -- bound management -----------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
def test_bound_management_recovers_saturated_outputs(path):
    # near-full positive weights and all-ones inputs: 64 rows give about 46 weight units
    # of current per column, almost 4x the ADC bound of 12
    xbar = open_crossbar(
        "emulator:pcm?rows=64&cols=64&seed=2&periphery=default&preset=ideal" + PATHS[path]
    )
    rng = np.random.default_rng(14)
    w = rng.uniform(0.8, 1.0, (32, 64))
    tile = AnalogTile([xbar])
    tile.program(w)
    w_hat = tile.read_weights()
    x = np.vstack([np.ones((4, 64)), rng.uniform(0.5, 1.0, (4, 64))])
    d = np.ones((4, 32))  # 32 pairs driven: about 23 units per row

    tile.max_bound_retries = 0
    y0, b0 = tile.forward(x), None
    assert tile.last_saturated == y0.size and tile.last_retries == 0
    assert _rms_rel(y0, x @ w.T) > 0.5
    b0 = tile.backward(d)
    assert tile.last_saturated == b0.size
    assert _rms_rel(b0, d @ w) > 0.3

    tile.max_bound_retries = 3
    y = tile.forward(x)
    assert tile.last_saturated == 0 and tile.last_retries >= 8
    assert _rms_rel(y, x @ w_hat.T) < 0.02  # ADC step and output noise at 1/8 input
    assert _rms_rel(y, x @ w.T) < 0.06  # plus the programming error
    b = tile.backward(d)
    assert tile.last_saturated == 0 and tile.last_retries >= 4
    assert _rms_rel(b, d @ w_hat) < 0.02


def test_too_few_retries_leaves_outputs_flagged():
    xbar = open_crossbar("emulator:pcm?rows=64&cols=64&seed=2&periphery=default&preset=ideal")
    tile = AnalogTile([xbar], max_bound_retries=1)
    tile.program(np.full((4, 64), 0.9), tolerance=1e-6)
    tile.forward(np.ones(64))
    assert tile.last_saturated == 4 and tile.last_retries == 1


# -- splitting over cores ---------------------------------------------------------------
def test_600x700_on_256x256_cores():
    rng = np.random.default_rng(15)
    w = rng.uniform(-1, 1, (600, 700))
    spec = "emulator:pcm?rows=256&cols=256&seed=3&preset=ideal&periphery=ideal&device_noise=0"
    with AnalogTile.from_spec(w, spec, tolerance=1e-6) as tile:
        assert len(tile.arrays) == 15
        assert len({a.info.details["seed"] for a in tile.arrays}) == 15
        assert tile.report.converged_fraction == 1.0
        assert len(tile.report.per_array()) == 15
        w_hat = tile.read_weights()
        assert np.max(np.abs(w_hat - w)) <= 2 * 1e-6 / tile.g_scale
        _assert_exact(tile, w_hat, rng)
        # a vector that is zero on a whole row block of inputs
        x = rng.uniform(-1, 1, 700)
        x[:256] = 0
        np.testing.assert_allclose(tile.forward(x), w_hat @ x, rtol=1e-5, atol=1e-5)


def test_64_cores_of_a_hermes_chip_are_one_line():
    spec = "emulator:pcm?rows=256&cols=256&seed=4&periphery=hermes&differential=1"
    with AnalogTile.from_spec((512, 4096), spec) as tile:
        assert len(tile.arrays) == 64
        assert tile.differential and tile.info.mvm_shape == (256, 128)


def test_not_enough_arrays_says_how_many_are_needed():
    tile = AnalogTile([open_crossbar("emulator:pcm?rows=256&cols=256&seed=1")] * 2)
    with pytest.raises(ConfigError, match="needs 15 arrays of 256 x 256; the tile has 2"):
        tile.program(np.ones((600, 700)))


# -- validation -------------------------------------------------------------------------
def test_shape_errors_name_the_expected_shape():
    tile = AnalogTile([open_crossbar(IDEAL)])
    with pytest.raises(ConfigError, match="program"):
        tile.forward(np.ones(64))
    tile.program(np.ones((10, 64)))
    with pytest.raises(
        ConfigError, match=r"forward input must have shape \(64,\) or \(batch, 64\)"
    ):
        tile.forward(np.ones((2, 10)))
    with pytest.raises(
        ConfigError, match=r"backward input must have shape \(10,\) or \(batch, 10\)"
    ):
        tile.backward(np.ones(64))
    with pytest.raises(ConfigError, match="NaN"):
        tile.forward(np.full(64, np.nan))


def test_bad_options_and_weights_raise():
    a = open_crossbar(IDEAL)
    with pytest.raises(ConfigError, match="identical arrays"):
        AnalogTile([a, open_crossbar("emulator:pcm?rows=32&cols=64")])
    for bad in (
        dict(pairs_per_weight=0),
        dict(significance=0.5),
        dict(g_range=1.5),
        dict(weight_scale=-1.0),
        dict(max_bound_retries=-1),
    ):
        with pytest.raises(ConfigError):
            AnalogTile([a], **bad)
    with pytest.raises(ConfigError):
        AnalogTile([])
    with pytest.raises(ConfigError, match="exceeds weight_scale"):
        AnalogTile([a], weight_scale=0.5).program(np.ones((4, 64)))
    with pytest.raises(ConfigError, match="all zeros"):
        AnalogTile([a]).program(np.zeros((4, 64)))


def test_report_counts_stuck_devices():
    spec = "emulator:pcm?rows=64&cols=64&seed=6&stuck_set_fraction=0.05&stuck_reset_fraction=0"
    xbar = open_crossbar(spec)
    tile = AnalogTile([xbar])
    report = tile.program(np.random.default_rng(16).uniform(-1, 1, (32, 64)), max_iterations=60)
    stuck = int(xbar.chip.stuck.sum())  # all stuck at SET, above every target: all flagged
    assert 100 < stuck <= report.unresponsive <= stuck + 0.005 * xbar.chip.size
    assert report.converged_fraction > 0.99
    (summary,) = report.per_array()
    assert summary["unresponsive"] == report.unresponsive and summary["devices"] == 64 * 64


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_refused_in_both_directions(bad):
    tile = AnalogTile([open_crossbar(IDEAL + "&differential=1")])
    tile.program(np.full((8, 64), 0.5))
    x, d = np.zeros(64), np.zeros(8)
    x[3] = d[5] = bad
    with pytest.raises(ConfigError, match="NaN or infinity"):
        tile.forward(x)
    with pytest.raises(ConfigError, match="NaN or infinity"):
        tile.backward(d)
