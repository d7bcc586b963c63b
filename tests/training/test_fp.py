"""Floating-point training: accuracy on digits, statistics, determinism, validation."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from xbarlab.errors import ConfigError
from xbarlab.training.data import load_digits
from xbarlab.training.fp import train_fp
from xbarlab.training.layers import MLP


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


def test_trains_digits_mlp_above_95_percent(digits):
    seen = []
    m = MLP([64, 32, 10], np.random.default_rng(0))
    hist = train_fp(m, digits, epochs=12, lr=0.1, batch=32, seed=0, on_epoch=seen.append)
    assert seen == hist and [h["epoch"] for h in hist] == list(range(1, 13))
    assert hist[-1]["test_accuracy"] >= 0.95
    assert hist[-1]["test_accuracy"] == m.accuracy(digits.x_test, digits.y_test)
    assert hist[-1]["train_loss"] < 0.3 * hist[0]["train_loss"]
    # cosine decay: the rate falls every epoch, to near zero at the end
    lrs = [h["lr"] for h in hist]
    assert all(b < a for a, b in zip(lrs, lrs[1:], strict=False)) and lrs[-1] < 0.01


def test_same_seed_same_run_and_plain_sgd(digits):
    runs = []
    for _ in range(2):
        m = MLP([64, 16, 10], np.random.default_rng(5))
        runs.append(train_fp(m, digits, epochs=2, seed=3, momentum=0.0))
    assert runs[0] == runs[1]


def test_perturb_hook_wraps_every_batch(digits):
    calls = []

    @contextlib.contextmanager
    def hook(model, rng):
        calls.append(rng)
        yield

    m = MLP([64, 8, 10], np.random.default_rng(0))
    train_fp(m, digits, epochs=1, batch=100, perturb=hook)
    assert len(calls) == -(-len(digits.y_train) // 100)


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"epochs": 0}, "epochs"),
        ({"lr": -1}, "lr"),
        ({"batch": 0}, "batch"),
        ({"momentum": 1}, "momentum"),
    ],
)
def test_rejects_bad_settings(digits, kw, name):
    with pytest.raises(ConfigError, match=name):
        train_fp(MLP([64, 4, 10], np.random.default_rng(0)), digits, **kw)
