"""Quantisation-aware ternary training (3-level weights, 7-level activations) and its
deployment on ternary tiles."""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.errors import ConfigError
from xbarlab.store import RunStore
from xbarlab.training.data import load_digits
from xbarlab.training.layers import Linear, Quantize
from xbarlab.training.runs import MODES, run_training
from xbarlab.training.ternary import (
    bipolar,
    deploy_ternary,
    ternary_accuracy,
    ternary_mlp,
    ternary_weights,
    train_ternary,
)

IDEAL = "emulator:pcm?rows=64&cols=64&seed={core}&periphery=ideal&device_noise=0&preset=ideal"
GRID = np.arange(-3, 4) / 3  # the 7 activation levels over [-1, 1]


@pytest.fixture(scope="module")
def digits():
    return bipolar(load_digits(0))


@pytest.fixture(scope="module")
def trained(digits):
    model = ternary_mlp((64, 32, 10), np.random.default_rng(0))
    history = train_ternary(model, digits, epochs=20, seed=0)
    return model, history


def test_bipolar_maps_pixels_to_minus_one_one():
    raw = load_digits(0)
    data = bipolar(raw)
    np.testing.assert_allclose(data.x_train, 2 * raw.x_train - 1)
    assert data.x_test.min() == -1 and data.x_test.max() == 1
    np.testing.assert_array_equal(data.y_test, raw.y_test)


def test_ternary_mlp_quantises_inputs_and_hidden_activations_to_7_levels(digits):
    model = ternary_mlp((64, 16, 8, 10), np.random.default_rng(1))
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [Quantize, Linear, Quantize, Linear, Quantize, Linear]
    h = digits.x_test[:50]
    seen = []
    for layer in model.layers:
        h = layer.forward(h)
        if isinstance(layer, Quantize):
            seen.append(h)
    for h in seen:  # every value a tile receives is one of the 7 levels
        assert np.all(np.min(np.abs(h[..., None] - GRID), axis=-1) < 1e-6)
    assert len(np.unique(seen[1])) > 3  # not collapsed to a few levels
    for bad in (6, 1):
        with pytest.raises(ConfigError, match="odd integer >= 3"):
            ternary_mlp((64, 10), np.random.default_rng(0), levels=bad)
    with pytest.raises(ConfigError, match="at least input and output"):
        ternary_mlp((64,), np.random.default_rng(0))


def test_training_reaches_accuracy_with_ternary_weights(trained, digits):
    model, history = trained
    last = history[-1]
    assert last["test_accuracy"] == ternary_accuracy(model, digits.x_test, digits.y_test)
    assert last["test_accuracy"] > 0.93 and "latent_accuracy" in last
    for w in ternary_weights(model):
        mags = np.unique(np.abs(w))
        assert len(mags) == 2 and mags[0] == 0  # {-a, 0, +a}
        assert 0.2 < np.mean(w == 0) < 0.8
    # the latent weights are not what is evaluated: they are not ternary
    assert len(np.unique(model.weight_layers[0].W)) > 100


def test_deployed_on_a_noise_free_chip_computes_like_software(trained, digits):
    model, _ = trained
    q_in, first, q_hidden, second = model.layers
    w1, w2 = ternary_weights(model)
    x = q_in.forward(digits.x_test)
    hidden_soft = q_hidden.forward(x @ w1.T + first.b)
    logits_soft = hidden_soft @ w2.T + second.b
    with deploy_ternary(model, IDEAL, tolerance=1e-7) as deployed:
        tiles = deployed.tiles
        for tile in tiles:
            assert (tile.weight_levels, tile.input_levels, tile.input_range) == (3, 7, 1.0)
            assert tile.pairs_per_weight == 1
        pre = tiles[0].forward(x) + first.b
        hidden_chip = q_hidden.forward(pre)
        logits_chip = deployed.model.forward(digits.x_test)
        second_chip = tiles[1].forward(hidden_chip)
        err = np.max(np.abs(tiles[0].read_weights() - w1))
        err2 = np.max(np.abs(tiles[1].read_weights() - w2))
    # programming within 1e-7 S of a ~20 uS g_on (err about 1% of a): pre-activations
    # within sum |x| * err of the software ones
    step = 1 / 3
    assert err < 0.01 * np.abs(w1).max()
    bound = np.abs(x).sum(axis=1, keepdims=True) * err
    assert np.all(np.abs(pre - (x @ w1.T + first.b)) <= bound * 1.001 + 1e-5)
    # so a hidden activation changes only next to a rounding boundary, by one level
    moved = hidden_soft != hidden_chip
    assert moved.mean() < 0.03
    np.testing.assert_allclose(np.abs(hidden_chip - hidden_soft)[moved], step, rtol=1e-5)
    # the second tile computes with the activations it gets
    bound2 = np.abs(hidden_chip).sum(axis=1, keepdims=True) * err2
    assert np.all(np.abs(second_chip - hidden_chip @ w2.T) <= bound2 * 1.001 + 1e-5)
    assert np.mean(logits_chip.argmax(1) == logits_soft.argmax(1)) > 0.98
    # the model itself is unchanged (latent weights)
    assert len(np.unique(model.weight_layers[0].W)) > 100


def test_run_training_ternary_mode_deploys_and_stores_ternary_weights(tmp_path):
    assert "ternary" in MODES
    with RunStore(tmp_path / "runs.sqlite") as store:
        out = run_training("ternary", epochs=12, hidden=32, seed=1, store=store)
        final = store.record(out["run_id"], "final")
        (run,) = store.runs()
    assert run.procedure == "train-ternary" and run.status == "completed"
    assert out["test_accuracy"] > 0.9 and out["software_accuracy"] > 0.93
    assert abs(out["test_accuracy"] - out["software_accuracy"]) < 0.05
    assert set(out["accuracy_vs_time"]) == {"25", "3600", "86400", "31536000"}
    assert out["test_accuracy"] == out["accuracy_vs_time"]["25"]["gdc"]
    assert 1 <= out["mean_iterations"] < 20
    for k, a in enumerate(out["weight_levels"]):
        w = np.asarray(final[f"{k}.W"])
        np.testing.assert_allclose(np.unique(np.abs(w)), [0, a], rtol=1e-6)
