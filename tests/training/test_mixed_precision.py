"""Mixed-precision training: device map, chi-to-pulse updates, refresh, epsilon, training."""

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.chipdrivers.tiles import AnalogTile
from xbarlab.errors import ConfigError
from xbarlab.training.data import load_digits
from xbarlab.training.mixed_precision import MixedPrecisionTrainer, device_map

IDEAL = "emulator:pcm?preset=ideal&periphery=ideal&rows={r}&cols={c}&seed={s}"


class CountingCrossbar:
    """A Crossbar wrapper that records every pulse call (selection size and count)."""

    def __init__(self, xbar):
        self.inner, self.calls = xbar, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def pulse(self, sel, **kw):
        self.calls.append((np.size(sel[0]), kw["count"], kw["amplitude"]))
        self.inner.pulse(sel, **kw)


@pytest.mark.parametrize("differential", [0, 1])
def test_device_map_reads_the_weights_the_tile_holds(differential):
    # 5 x 12 weights on 8 x 8 arrays: 2 row blocks x 2 slot blocks (4 slots per array)
    spec = IDEAL.format(r=8, c=8, s=3) + f"&differential={differential}"
    w = np.random.default_rng(0).uniform(-1, 1, (5, 12))
    with AnalogTile.from_spec(w, spec, weight_scale=1.0) as tile:
        dmap = device_map(tile, w.shape)
        assert sorted(set(dmap.array)) == [0, 1, 2, 3]
        got = np.empty(w.size)
        for a, xbar in enumerate(tile.arrays):
            k = dmap.array == a
            gp = xbar.read((dmap.row[k], dmap.plus[k])).astype(float)
            gm = xbar.read((dmap.row[k], dmap.minus[k])).astype(float)
            got[k] = (gp - gm) / tile.g_scale
        np.testing.assert_allclose(got.reshape(w.shape), tile.read_weights(), atol=1e-6)
        np.testing.assert_allclose(got.reshape(w.shape), w, atol=0.05)  # write-verify tolerance


def test_device_map_needs_one_pair_per_weight():
    with AnalogTile.from_spec((2, 3), IDEAL.format(r=8, c=8, s=1), pairs_per_weight=2) as t:
        with pytest.raises(ConfigError, match="one device pair per weight"):
            device_map(t, (2, 3))


@pytest.fixture
def trainer():
    arrays = [open_crossbar(IDEAL.format(r=16, c=16, s=s) + "&differential=1") for s in (1, 2)]
    t = MixedPrecisionTrainer((6, 5, 3), arrays, seed=0, characterise_pulses=10)
    yield t
    for a in arrays:
        a.close()


def test_epsilon_is_the_measured_mean_set_increment_over_g_scale(trainer):
    c = trainer.characterisation
    tile = trainer.layers[0].tile
    assert trainer.epsilons == [c["mean_increment_S"] / s.tile.g_scale for s in trainer.layers]
    # ideal preset: mean step set_step * g_sat * (1 - G/g_sat) = 2 uS at G = 0, shrinking
    # linearly; over [0, 0.85 g_max) the mean lies between the ends, 0.3 and 2 uS
    assert 0.3e-6 < c["mean_increment_S"] < 2.0e-6
    assert c["devices"] == 2 * 6 * 5 and len(c["mean_g_S"]) == 11
    assert np.all(np.diff(c["mean_g_S"]) > 0)  # SET pulses only climb
    assert c["amplitude_V"] == tile.info.set_pulse.amplitude


def test_update_sends_floor_chi_over_epsilon_pulses_to_the_right_device(trainer):
    state = trainer.layers[0]
    eps = state.epsilon
    chi = np.array([[2.5, -1.2, 0.4, 0, 0, 3.7]] + [[0] * 6] * 4) * eps  # (5, 6)
    xbar = CountingCrossbar(state.tile.arrays[0])
    state.tile.arrays[0] = xbar
    chip = xbar.inner.chip
    before = chip.pulse_count.copy()
    state.linear.grad_W = (-chi).astype(np.float32)  # chi -= lr * grad_W with lr = 1
    state.linear.grad_b = np.zeros(5, np.float32)
    assert state.update(1.0) == 2 + 1 + 3
    # one pulse call per distinct count: counts 1, 2 and 3
    assert sorted((n, c) for n, c, _ in xbar.calls) == [(1, 1), (1, 2), (1, 3)]
    pulsed = (chip.pulse_count - before).reshape(16, 16)
    d = state.dmap
    expect = np.zeros((16, 16), int)
    expect[d.row[0], d.plus[0]] = 2  # chi > 0: G+
    expect[d.row[1], d.minus[1]] = 1  # chi < 0: G-
    expect[d.row[5], d.plus[5]] = 3
    np.testing.assert_array_equal(pulsed, expect)
    residual = state.chi.ravel()[:6] / eps
    np.testing.assert_allclose(residual, [0.5, -0.2, 0.4, 0, 0, 0.7], atol=1e-6)
    assert state.touched[[0, 1, 5]].all() and state.touched.sum() == 3


def test_refresh_reprograms_saturating_pairs_and_keeps_the_difference(trainer):
    state = trainer.layers[0]
    tile, d = state.tile, state.dmap
    xbar = tile.arrays[0]
    threshold = 0.85 * tile.g_max
    # push weight 0's G+ and G- up (a saturating pair) keeping a positive difference
    for col, n in ((d.plus[0], 40), (d.minus[0], 3)):
        xbar.pulse(([d.row[0]], [col]), polarity=1, amplitude=1.0, width=50e-9, count=n)
    gp, gm = (float(xbar.read(([d.row[0]], [c]))[0]) for c in (d.plus[0], d.minus[0]))
    assert gp > threshold
    w_before = tile.read_weights()
    assert state.refresh(threshold, max_iterations=50) == 1
    gp2, gm2 = (float(xbar.read(([d.row[0]], [c]))[0]) for c in (d.plus[0], d.minus[0]))
    assert max(gp2, gm2) < threshold
    hi = tile.g_min + 0.9 * (threshold - tile.g_min)
    expect = min(gp - gm, hi - tile.g_min)  # the difference, clipped to the refresh window
    assert abs((gp2 - gm2) - expect) < 2 * 0.02 * tile.g_max  # program_iterative tolerance
    w_after = tile.read_weights()
    others = np.arange(w_after.size) != 0
    np.testing.assert_allclose(w_after.ravel()[others], w_before.ravel()[others], atol=1e-6)
    assert state.refresh(threshold, max_iterations=50) == 0  # nothing left to refresh


def test_training_learns_on_the_chip_and_reports_each_epoch():
    data = load_digits(0)
    seen = []
    spec = "emulator:pcm?differential=1&rows=64&cols=64&seed=4"
    with MixedPrecisionTrainer((64, 16, 10), spec, seed=0, refresh_every=5) as t:
        before = t.model.accuracy(data.x_test, data.y_test)
        history = t.train(data, 2, seen.append)
        weights = t.final_weights()
    assert seen == history and [s.epoch for s in history] == [1, 2]
    assert before < 0.3 and history[-1].test_accuracy > 0.8
    assert history[1].train_loss < history[0].train_loss
    for s in history:
        assert s.pulses > 0 and 0 < s.updated_fraction <= 1 and s.epoch_s > 0
    assert sum(s.refreshes for s in history) > 0
    assert weights["0.W"].shape == (16, 64) and weights["1.b"].shape == (10,)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"lr": 0}, "lr = 0"),
        ({"batch": 0}, "batch = 0"),
        ({"refresh_threshold": 1.5}, "refresh_threshold"),
        ({"amplitude": 1.6}, "amplitude = 1.6 V is outside the chip's gradual SET range"),
        ({"amplitude": 0.3}, "outside the chip's gradual SET range"),
    ],
)
def test_bad_options_raise_config_errors_naming_them(kw, match):
    with pytest.raises(ConfigError, match=match):
        MixedPrecisionTrainer((4, 3, 2), IDEAL.format(r=8, c=8, s=1), **kw)


def test_too_few_arrays_is_an_error_and_nothing_is_programmed():
    with open_crossbar(IDEAL.format(r=8, c=8, s=1)) as xbar:
        with pytest.raises(ConfigError, match="need 2 arrays of 8 x 8; got 1"):
            MixedPrecisionTrainer((4, 3, 2), [xbar])
        assert xbar.chip.pulse_count.sum() == 0
