"""Layers: gradients against finite differences, quantisation, analog layers, save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xbarlab.chipdrivers.tiles import AnalogTile
from xbarlab.errors import ConfigError
from xbarlab.training.layers import (
    MLP,
    AnalogLinear,
    Linear,
    Quantize,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
)

IDEAL = "emulator:pcm?rows=16&cols=16&preset=ideal&periphery=ideal&seed=1"


def _loss(layers, x, y):
    """Loss of a float64 pass through layers (no float32 cast, for finite differences)."""
    h = x
    for layer in layers:
        h = layer.forward(h)
    return SoftmaxCrossEntropy().forward(h, y)


def _float64_mlp(rng):
    layers = [Linear(5, 7, rng), ReLU(), Linear(7, 3, rng)]
    for layer in (layers[0], layers[2]):
        layer.W = layer.W.astype(np.float64)
        layer.b = rng.standard_normal(layer.b.shape) * 0.1
    return layers


def _numeric(f, a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        up = f()
        a[i] = old - eps
        down = f()
        a[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    layers = _float64_mlp(rng)
    x, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    loss = SoftmaxCrossEntropy()
    h = x
    for layer in layers:
        h = layer.forward(h)
    loss.forward(h, y)
    g = loss.backward()
    for layer in reversed(layers):
        g = layer.backward(g)
    f = lambda: _loss(layers, x, y)  # noqa: E731
    for layer in (layers[0], layers[2]):
        np.testing.assert_allclose(layer.grad_W, _numeric(f, layer.W), rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(layer.grad_b, _numeric(f, layer.b), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(g, _numeric(f, x), rtol=1e-4, atol=1e-7)


def test_softmax_cross_entropy_values():
    loss = SoftmaxCrossEntropy()
    # equal logits over 4 classes: loss ln 4, gradient (1/4 - onehot) / n
    assert loss.forward(np.zeros((2, 4)), np.array([0, 3])) == pytest.approx(np.log(4))
    g = loss.backward()
    np.testing.assert_allclose(g[0], [-0.375, 0.125, 0.125, 0.125])
    # huge logits do not overflow
    assert loss.forward(np.array([[1000.0, 0.0]]), np.array([0])) == pytest.approx(0, abs=1e-12)


def test_quantize_levels_and_straight_through_gradient():
    q = Quantize(7, 0.0, 1.2)
    x = np.array([-0.5, 0.0, 0.09, 0.11, 0.65, 1.2, 3.0], dtype=np.float32)
    out = q.forward(x)
    np.testing.assert_allclose(out, [0, 0, 0, 0.2, 0.6, 1.2, 1.2], atol=1e-6)
    np.testing.assert_array_equal(q.backward(np.ones(7, np.float32)), [0, 1, 1, 1, 1, 1, 0])
    assert len(np.unique(q.forward(np.linspace(-1, 2, 1000)))) == 7
    with pytest.raises(ConfigError, match="levels"):
        Quantize(1)


def test_mlp_structure_and_first_layer_input_grad_skipped():
    rng = np.random.default_rng(1)
    m = MLP([4, 8, 3], rng, activation_levels=7, activation_max=2.0)
    assert [d["type"] for d in m.describe()] == ["Linear", "ReLU", "Quantize", "Linear"]
    assert [layer.shape for layer in m.weight_layers] == [(8, 4), (3, 8)]
    x = rng.random((5, 4), dtype=np.float32)
    out = m.forward(x)
    assert out.shape == (5, 3) and out.dtype == np.float32
    m.backward(np.ones((5, 3), np.float32))
    assert m.layers[0].grad_W.shape == (8, 4)
    with pytest.raises(ConfigError, match="before forward"):
        ReLU().backward(np.ones(2))


def test_accuracy_counts_argmax_matches():
    layer = Linear(2, 2, np.random.default_rng(0))
    layer.W[...] = np.eye(2)
    m = Sequential([layer])
    x = np.array([[1, 0], [0, 1], [1, 0], [0, 2]], dtype=np.float32)
    assert m.accuracy(x, [0, 1, 1, 1]) == 0.75


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    m = MLP([6, 5, 4], rng, activation_levels=7, activation_max=1.5)
    m.layers[0].b[...] = rng.standard_normal(5)
    m.save(tmp_path / "m.npz")
    back = Sequential.load(tmp_path / "m.npz")
    assert back.describe() == m.describe()
    x = rng.random((9, 6), dtype=np.float32)
    np.testing.assert_array_equal(back.forward(x), m.forward(x))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        meta = json.loads(npz["architecture"].tobytes())
    assert meta["layers"][2] == {"type": "Quantize", "levels": 7, "lo": 0.0, "hi": 1.5}


def test_load_rejects_other_files(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(ConfigError, match="not a saved xbarlab model"):
        Sequential.load(tmp_path / "x.npz")


@pytest.fixture
def tile():
    rng = np.random.default_rng(3)
    w = rng.uniform(-1, 1, (5, 7))
    with AnalogTile.from_spec(w, IDEAL, tolerance=0.05e-6) as t:
        yield t


def test_analog_linear_products_on_the_tile(tile):
    rng = np.random.default_rng(4)
    w_hat = tile.read_weights()
    layer = AnalogLinear(tile, bias=np.arange(5.0))
    x = rng.uniform(-1, 1, (3, 7)).astype(np.float32)
    y = layer.forward(x)
    np.testing.assert_allclose(y, x @ w_hat.T + np.arange(5.0), atol=0.02)
    g = rng.standard_normal((3, 5)).astype(np.float32)
    gin = layer.backward(g)
    np.testing.assert_allclose(gin, g @ w_hat, atol=0.05)
    np.testing.assert_allclose(layer.grad_W, g.T @ x, rtol=1e-5)
    np.testing.assert_allclose(layer.grad_b, g.sum(0), rtol=1e-5)
    assert layer.backward(g, input_grad=False) is None
    assert set(layer.params) == {"b"}


def test_analog_model_saves_weights_read_from_chip(tile, tmp_path):
    m = Sequential([AnalogLinear(tile), ReLU()])
    m.save(tmp_path / "a.npz")
    back = Sequential.load(tmp_path / "a.npz")
    np.testing.assert_allclose(back.layers[0].W, tile.read_weights(), rtol=1e-5, atol=1e-6)


def test_analog_linear_needs_programmed_tile_and_right_bias(tile):
    with pytest.raises(ConfigError, match="bias must have shape"):
        AnalogLinear(tile, bias=np.zeros(3))
