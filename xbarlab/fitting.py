"""Vectorised fits used across layers (pure numpy, SI units)."""

from __future__ import annotations

import numpy as np

from xbarlab.errors import ConfigError


def fit_drift_exponent(t: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares fit of G(t) = G1 * t^-nu for every device at once.

    Parameters
    ----------
    t : array, shape (n_reads,)
        Read times in s after programming, all > 0.
    g : array, shape (n_reads, ...)
        Conductances in S read at those times; trailing axes are devices. Values <= 0
        (noise around zero conductance) are floored at 1e-12 S before taking logs.

    Returns
    -------
    nu : array
        Drift exponent per device (float64).
    g1 : array
        Fitted conductance in S at t = 1 s (float64).
    """
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or t.size < 2 or np.any(t <= 0):
        raise ConfigError("drift fit needs at least two read times, all > 0 s")
    g = np.asarray(g, dtype=np.float64)
    if g.shape[0] != t.size:
        raise ConfigError(f"{g.shape[0]} conductance reads for {t.size} read times")
    x = np.log(t)
    xc = x - x.mean()
    y = np.log(np.maximum(g, 1e-12))
    slope = np.tensordot(xc, y, axes=(0, 0)) / np.dot(xc, xc)
    intercept = y.mean(axis=0) - slope * x.mean()
    return -slope, np.exp(intercept)
