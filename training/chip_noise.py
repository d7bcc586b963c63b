"""The weight noise a chip puts on a deployed layer: the hardware-aware training noise
that matches that chip.

Hardware-aware training (:mod:`xbarlab.training.hwa`) perturbs weights with Gaussian
noise of std ``noise * max|W|``. Which ``noise`` prepares a network for a given chip?
:func:`measure_weight_noise` answers by experiment: a random layer is deployed on the
chip exactly as :func:`~xbarlab.training.hwa.deploy` deploys a network (same tiles,
programming and global drift compensation), and after ``t`` seconds its outputs are
compared with the ideal product. For independent weight errors of std s_w the output
error variance of an input x is s_w^2 sum_j x_j^2, so
``s_w^2 = mean(err^2) / mean(sum_j x_j^2)``, and the noise is s_w / max|W|.

Measured on an emulator fitted to a chip (:mod:`xbarlab.calibration.fit`), it lets a
network be trained for that chip before the chip is touched.
"""

from __future__ import annotations

import numpy as np

from xbarlab.errors import ConfigError
from xbarlab.training.hwa import deploy
from xbarlab.training.layers import Linear, Sequential


def measure_weight_noise(
    target: str,
    *,
    shape: tuple[int, int] = (64, 64),
    t: float = 86400.0,
    seed: int = 0,
    n_vectors: int = 256,
    **deploy_options,
) -> float:
    """HWA noise (fraction of max|W|) equivalent to the chip ``target`` at ``t`` s.

    target: backend spec the probe layer is deployed on (its cores are opened and
    closed here). shape: (out, in) of the probe layer. t: time after programming in s,
    > 0 (virtual on an emulator). seed: of the probe weights and inputs. n_vectors:
    input vectors (uniform in [0, 1), like ReLU activations), >= 1. deploy_options:
    passed to :func:`~xbarlab.training.hwa.deploy` (tolerance, pairs_per_weight, ...).
    """
    if not (np.isfinite(t) and t > 0):
        raise ConfigError(f"t must be > 0 (s after programming), got {t!r}")
    if int(n_vectors) != n_vectors or n_vectors < 1:
        raise ConfigError(f"n_vectors must be an integer >= 1, got {n_vectors!r}")
    rng = np.random.default_rng(seed)
    n_out, n_in = (int(n) for n in shape)
    layer = Linear(n_in, n_out, rng)
    x = rng.random((int(n_vectors), n_in), dtype=np.float32)
    with deploy(Sequential([layer]), target, seed=seed, **deploy_options) as deployed:
        deployed.wait_until(float(t))
        deployed.set_gdc(True)
        y = deployed.model.forward(x)
    err = y.astype(np.float64) - x.astype(np.float64) @ layer.W.T.astype(np.float64)
    s_w = np.sqrt(np.mean(err**2) / np.mean(np.sum(x.astype(np.float64) ** 2, axis=1)))
    return float(s_w / np.max(np.abs(layer.W)))
