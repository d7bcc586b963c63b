"""Quantisation-aware training for ternary analog tiles: 3-level weights, 7-level activations.

The recipe of seed 000 (imec: "3-level weight, 7-level activation ... and additive
noise"; seed 002: ternary weights on a device pair of an analog in-memory array):

1. :func:`ternary_mlp`: a network whose inputs and hidden activations are quantised
   to ``levels`` equally spaced values in [-1, 1] (7: three per polarity and zero,
   the levels a signed 7-level DAC drives). The hidden non-linearity is the quantiser
   itself (a quantised hard tanh: clip to [-1, 1], round), so every activation a tile
   receives is one of the DAC's levels. Inputs are expected in [-1, 1]:
   :func:`bipolar` maps the digits pixels [0, 1] there (background pixels then drive
   -1 instead of nothing; on the digits set that is worth about 1.5 points of
   ternary accuracy over 4-level unipolar inputs).
2. :func:`train_ternary`: :func:`~xbarlab.training.hwa.train_hwa` with ternary
   weights (straight-through to the latent weights) and additive weight noise; each
   epoch's ``test_accuracy`` is that of the ternarised weights (what is deployed),
   ``latent_accuracy`` that of the latent ones.
3. :func:`deploy_ternary`: every weight layer on an
   :class:`~xbarlab.chipdrivers.tiles.AnalogTile` with ``weight_levels=3`` (one
   device pair per weight at g_off / g_on) and ``input_levels`` fixed to the
   activation range, through :func:`~xbarlab.training.hwa.deploy`, so accuracy over
   time and drift compensation work as for hardware-aware training.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from xbarlab.errors import ConfigError
from xbarlab.training.data import Dataset
from xbarlab.training.hwa import DeployedModel, deploy, ternarize, train_hwa
from xbarlab.training.layers import Linear, Quantize, Sequential

#: activation levels of seed 000 (three per polarity and zero)
ACTIVATION_LEVELS = 7
#: activations and inputs span [-ACTIVATION_RANGE, ACTIVATION_RANGE]; the ternary
#: magnitude a of each layer and its bias absorb any other scale
ACTIVATION_RANGE = 1.0
#: training defaults measured on the digits MLP 64-64-10, seeds 0, 1, 2: weight noise
#: 0.1 of max |W| (seed 000's "up to 10% noise on weights"), learning rate 0.05 (0.1
#: lost about 1 point of ternary accuracy, 0.02 was as good as 0.05)
DEFAULT_NOISE, DEFAULT_LR = 0.1, 0.05
#: fraction of the conductance window ternary weights use: g_on = g_min + G_RANGE *
#: (g_max - g_min), near the top of the window for the largest signal over read noise
#: and output noise, below it by enough that devices with a low saturation
#: conductance (g_max spread 5%) still reach g_on
G_RANGE = 0.9


def ternary_mlp(sizes, rng: np.random.Generator, *, levels: int = ACTIVATION_LEVELS) -> Sequential:
    """Quantize(levels) -> Linear -> Quantize(levels) -> ... -> Linear, levels over [-1, 1].

    sizes: layer widths, inputs first, classes last (at least two); rng: draws the
    initial weights; levels: odd, >= 3, the input and hidden activation levels.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2:
        raise ConfigError(f"a ternary MLP needs at least input and output sizes, got {sizes}")
    if int(levels) != levels or levels < 3 or levels % 2 == 0:
        raise ConfigError(f"levels must be an odd integer >= 3 (signed DAC), got {levels!r}")
    r = ACTIVATION_RANGE
    layers: list = [Quantize(int(levels), -r, r)]
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(Linear(n_in, n_out, rng))
        if k < len(sizes) - 2:
            layers.append(Quantize(int(levels), -r, r))
    return Sequential(layers)


def bipolar(data: Dataset) -> Dataset:
    """The data set with inputs mapped from [0, 1] to [-1, 1] (x -> 2 x - 1)."""
    return replace(data, x_train=2 * data.x_train - 1, x_test=2 * data.x_test - 1)


def ternary_accuracy(model: Sequential, x, y) -> float:
    """Accuracy of ``model`` with every digital weight layer ternarised (software)."""
    layers = [layer for layer in model.weight_layers if isinstance(layer, Linear)]
    latent = [layer.W for layer in layers]
    try:
        for layer in layers:
            layer.W = ternarize(layer.W)
        return model.accuracy(x, y)
    finally:
        for layer, w in zip(layers, latent, strict=True):
            layer.W = w


def ternary_weights(model: Sequential) -> list[np.ndarray]:
    """The ternarised weights {-a, 0, +a} (out, in) of each weight layer (what is deployed)."""
    return [ternarize(layer.W) for layer in model.weight_layers]


def train_ternary(
    model: Sequential,
    data: Dataset,
    *,
    noise: float = DEFAULT_NOISE,
    lr: float = DEFAULT_LR,
    on_epoch=None,
    **options,
) -> list[dict]:
    """Quantisation-aware training with ternary weights and additive weight noise.

    model: e.g. :func:`ternary_mlp`; data: inputs in [-1, 1] (see :func:`bipolar`);
    noise: weight-noise std as a fraction of the ternary magnitude a, >= 0; lr: initial
    learning rate; on_epoch, options: as for :func:`~xbarlab.training.fp.train_fp`
    (epochs, batch, seed, momentum). Returns the per-epoch statistics; test_accuracy is
    that of the ternarised weights, latent_accuracy that of the latent weights.
    """

    def epoch(stats: dict) -> None:
        stats["latent_accuracy"] = stats["test_accuracy"]
        stats["test_accuracy"] = ternary_accuracy(model, data.x_test, data.y_test)
        if on_epoch is not None:
            on_epoch(stats)

    return train_hwa(model, data, noise=noise, ternary=True, lr=lr, on_epoch=epoch, **options)


def deploy_ternary(
    model: Sequential,
    target,
    *,
    g_range: float = G_RANGE,
    levels: int = ACTIVATION_LEVELS,
    **options,
) -> DeployedModel:
    """Program the ternarised weights of ``model`` onto ternary tiles.

    target: a backend spec or arrays per layer, as for
    :func:`~xbarlab.training.hwa.deploy`; g_range: g_on as a fraction of the window
    above g_min, 0 < g_range <= 1; levels: the input levels of each tile (those of
    the model's quantisers); options: tolerance, max_iterations, seed and other
    AnalogTile options. Inputs are quantised in the tiles over [-1, 1] (fixed), so
    the chip computes exactly with the activations the model produced.
    """
    return deploy(
        model,
        target,
        ternary=True,
        pairs_per_weight=1,
        weight_levels=3,
        input_levels=levels,
        input_range=ACTIVATION_RANGE,
        g_range=g_range,
        **options,
    )
