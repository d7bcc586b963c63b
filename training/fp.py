"""Floating-point (software) training: mini-batch SGD with momentum.

:func:`train_fp` trains any :class:`~xbarlab.training.layers.Sequential` whose
layers expose ``params`` / ``grads``; it is the baseline the chip-in-the-loop
methods are compared with, and the engine of hardware-aware training
(:mod:`xbarlab.training.hwa`), which passes a ``perturb`` hook that changes the
weights a batch sees (noise, ternarisation) and restores them before the update.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np

from xbarlab.errors import ConfigError
from xbarlab.training.data import Dataset
from xbarlab.training.layers import Sequential, SoftmaxCrossEntropy

#: a hook run around each batch's forward and backward pass: perturb(model, rng) is a
#: context manager (entered before forward, left before the update)
Perturb = Callable[[Sequential, np.random.Generator], contextlib.AbstractContextManager]


def train_fp(
    model: Sequential,
    data: Dataset,
    *,
    epochs: int = 40,
    lr: float = 0.1,
    batch: int = 32,
    seed: int = 0,
    momentum: float = 0.9,
    on_epoch: Callable[[dict], None] | None = None,
    perturb: Perturb | None = None,
) -> list[dict]:
    """Train ``model`` in place with mini-batch SGD and cosine learning-rate decay.

    Parameters
    ----------
    model : Sequential
        The network; its parameters are updated in place.
    data : Dataset
        Training and test data.
    epochs : int
        Passes over the training set, >= 1.
    lr : float
        Initial learning rate, > 0; decays to zero over the run along a half cosine
        (stable final epochs without tuning a step schedule).
    batch : int
        Samples per mini-batch, >= 1.
    seed : int
        Seeds the shuffling (and the perturbation's random draws).
    momentum : float
        Heavy-ball momentum, 0 <= momentum < 1 (0: plain SGD).
    on_epoch : callable, optional
        Called with each epoch's statistics as soon as they are known (progress).
    perturb : callable, optional
        See :data:`Perturb`; hardware-aware training injects weight noise with it.

    Returns
    -------
    list of dict
        Per epoch: ``epoch`` (1-based), ``train_loss`` (mean over batches, nats),
        ``test_accuracy`` (clean weights), ``lr``.
    """
    _check(epochs, lr, batch, momentum)
    rng = np.random.default_rng(seed)
    loss = SoftmaxCrossEntropy()
    velocity: dict[tuple[int, str], np.ndarray] = {}
    n = len(data.y_train)
    steps = -(-n // batch)
    history = []
    for epoch in range(int(epochs)):
        order = rng.permutation(n)
        losses = []
        for s in range(steps):
            step_lr = lr * 0.5 * (1 + np.cos(np.pi * (epoch * steps + s) / (epochs * steps)))
            idx = order[s * batch : (s + 1) * batch]
            with perturb(model, rng) if perturb else contextlib.nullcontext():
                losses.append(loss.forward(model.forward(data.x_train[idx]), data.y_train[idx]))
                model.backward(loss.backward())
            _sgd_step(model, velocity, step_lr, momentum)
        stats = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)),
            "test_accuracy": model.accuracy(data.x_test, data.y_test),
            "lr": float(step_lr),
        }
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
    return history


def _sgd_step(model: Sequential, velocity: dict, lr: float, momentum: float) -> None:
    """p <- p + v, v <- momentum * v - lr * grad, for every parameter of every layer."""
    for k, layer in enumerate(model.layers):
        grads = layer.grads
        for name, p in layer.params.items():
            v = velocity.get((k, name))
            v = -lr * grads[name] if v is None else momentum * v - lr * grads[name]
            velocity[(k, name)] = v
            p += v.astype(p.dtype)


def _check(epochs: int, lr: float, batch: int, momentum: float) -> None:
    if int(epochs) != epochs or epochs < 1:
        raise ConfigError(f"epochs must be an integer >= 1, got {epochs!r}")
    if not (np.isfinite(lr) and lr > 0):
        raise ConfigError(f"lr must be > 0, got {lr!r}")
    if int(batch) != batch or batch < 1:
        raise ConfigError(f"batch must be an integer >= 1, got {batch!r}")
    if not 0 <= momentum < 1:
        raise ConfigError(f"momentum must be in [0, 1), got {momentum!r}")
