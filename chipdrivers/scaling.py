"""Compiled per-vector input scaling for tiles: max |x| per vector and the scaled copy.

A tile divides every input vector by its largest magnitude so that it spans the
DAC's full scale. Done with numpy that is four passes (max, min, multiply, a
temporary); here it is one pass per vector while the vector sits in cache.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from xbarlab.errors import ConfigError


@njit(cache=True, error_model="numpy")
def _normalise_rows(x, v_full, out, norm):
    """norm[b] = max |x[b]|; out[b, :n] = x[b] * v_full / norm[b] (0 where norm is 0).

    Returns False when x holds NaN or infinity (then out and norm are undefined).
    """
    batch, n = x.shape
    check = np.float32(0.0)
    for b in range(batch):
        m = np.float32(0.0)
        for j in range(n):
            v = x[b, j]
            m = max(m, abs(v))
            check += v - v  # stays 0 unless x holds NaN or infinity
        norm[b] = m
        f = np.float32(v_full / m) if m > 0 else np.float32(0.0)
        for j in range(n):
            out[b, j] = x[b, j] * f
    return check == 0


def normalise(x: np.ndarray, v_full: float, width: int, what: str):
    """Scaled voltages (batch, width) float32, zero-padded beyond x's columns, and the
    per-vector max |x| (batch,) by which outputs are scaled back. x: (batch, n <= width)."""
    out = (np.empty if x.shape[1] == width else np.zeros)((x.shape[0], width), np.float32)
    norm = np.empty(x.shape[0], dtype=np.float32)
    if not _normalise_rows(x, np.float32(v_full), out, norm):
        raise ConfigError(f"{what} input holds NaN or infinity")
    return out, norm
