"""Hardware-aware training, deployment on tiles and accuracy over time (raw and GDC)."""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.errors import ConfigError
from xbarlab.training.data import load_digits
from xbarlab.training.hwa import (
    WeightNoise,
    deploy,
    evaluate_over_time,
    ternarize,
    train_hwa,
)
from xbarlab.training.layers import MLP, AnalogLinear, Linear, Sequential

IDEAL = "emulator:pcm?rows=64&cols=64&preset=ideal&periphery=ideal&seed=2"
#: ideal chip except for one drift exponent for every device (no spread)
DRIFTING = IDEAL + "&nu_min=0.05&nu_max=0.05&nu_offset=0.05&nu_slope=0"


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


@pytest.fixture(scope="module")
def trained(digits):
    m = MLP([64, 16, 10], np.random.default_rng(0))
    hist = train_hwa(m, digits, noise=0.1, epochs=10, seed=0)
    return m, hist


def test_weight_noise_std_relative_to_max_and_restored():
    layer = Linear(400, 300, np.random.default_rng(0))
    model = Sequential([layer])
    clean = layer.W.copy()
    with WeightNoise(0.05)(model, np.random.default_rng(1)):
        seen = layer.W.copy()
    np.testing.assert_array_equal(layer.W, clean)
    assert np.std(seen - clean) == pytest.approx(0.05 * np.abs(clean).max(), rel=0.02)
    with pytest.raises(RuntimeError), WeightNoise(0.05)(model, np.random.default_rng(1)):
        raise RuntimeError("boom")
    np.testing.assert_array_equal(layer.W, clean)
    with pytest.raises(ConfigError, match="noise"):
        WeightNoise(-0.1)


def test_ternarize_three_levels():
    w = np.array([[-1.0, -0.2, 0.05, 0.3, 2.0]])  # mean |w| 0.71, threshold 0.497
    np.testing.assert_allclose(ternarize(w), [[-1.5, 0, 0, 0, 1.5]])
    layer = Linear(20, 30, np.random.default_rng(0))
    with WeightNoise(0.0, ternary=True)(Sequential([layer]), np.random.default_rng(0)):
        assert len(np.unique(layer.W)) == 3


def test_hwa_training_reaches_accuracy(trained):
    _, hist = trained
    assert hist[-1]["test_accuracy"] >= 0.9


def test_deploy_on_ideal_chip_matches_digital(trained, digits):
    m, _ = trained
    with deploy(m, IDEAL, tolerance=0.1e-6) as dep:
        assert [type(layer) for layer in dep.model.weight_layers] == [AnalogLinear] * 2
        assert [t.pairs_per_weight for t in dep.tiles] == [2, 2]
        assert len(dep.crossbars) == 2  # one 64 x 64 core per layer
        for t, layer in zip(dep.tiles, m.weight_layers, strict=True):
            np.testing.assert_allclose(t.read_weights(), layer.W, atol=0.02 * np.abs(layer.W).max())
        digital = m.accuracy(digits.x_test, digits.y_test)
        assert abs(dep.model.accuracy(digits.x_test, digits.y_test) - digital) <= 0.01
        assert isinstance(m.layers[0], Linear)  # the trained model is left as it was
    assert dep.crossbars == []


def test_gdc_factor_follows_drift_law_and_restores_accuracy(trained, digits):
    m, _ = trained
    with deploy(m, DRIFTING, tolerance=0.1e-6) as dep:
        res = evaluate_over_time(dep, digits, times=(25, 86400, 31536000))
        assert dep.elapsed() >= 31536000
    # G(t) = G_prog (t / t0)^-nu, t0 = 20 s, nu = 0.05: the tile's output scales alike
    for t in (86400.0, 31536000.0):
        np.testing.assert_allclose(res[t]["drift_factors"], (t / 20) ** -0.05, rtol=0.03)
    # one exponent for every device: GDC undoes drift, raw accuracy falls after a year
    assert res[31536000.0]["gdc"] >= res[25.0]["gdc"] - 0.01
    assert res[31536000.0]["raw"] < res[31536000.0]["gdc"] - 0.05


def test_deploy_onto_given_arrays_and_validation(trained, digits):
    m, _ = trained
    chips = [[open_crossbar(IDEAL)], [open_crossbar(IDEAL.replace("seed=2", "seed=3"))]]
    try:
        with pytest.raises(ConfigError, match="arrays for 1 layers; the model has 2"):
            deploy(m, chips[:1])
        dep = deploy(m, chips, tolerance=0.1e-6)
        assert dep.crossbars == []  # the caller's arrays stay the caller's
        assert dep.tiles[1].arrays[0] is chips[1][0]
        with pytest.raises(ConfigError, match="increasing"):
            evaluate_over_time(dep, digits, times=(100, 50))
        evaluate_over_time(dep, digits, times=(100,))
        with pytest.raises(ConfigError, match="cannot go back"):
            evaluate_over_time(dep, digits, times=(25,))
        with pytest.raises(ConfigError, match="digital Linear"):
            deploy(dep.model, IDEAL)
    finally:
        for arrays in chips:
            arrays[0].close()
