"""Named target patterns: conductance maps in S for programming and demos."""

from __future__ import annotations

import numpy as np

from xbarlab.errors import ConfigError


def levels(
    shape, g_max: float, n_levels: int = 8, lo: float = 0.1, hi: float = 0.8, seed: int = 0
) -> np.ndarray:
    """``n_levels`` equally spaced levels between lo*g_max and hi*g_max, placed at random.

    Every level gets the same number of devices (up to one), so per-level statistics
    are balanced.
    """
    if n_levels < 1 or not 0 < lo <= hi <= 1:
        raise ConfigError(f"need n_levels >= 1 and 0 < lo <= hi <= 1, got {n_levels}, {lo}, {hi}")
    values = np.linspace(lo, hi, n_levels) * g_max
    n = int(np.prod(shape))
    idx = np.random.default_rng(seed).permutation(n) % n_levels
    return values[idx].reshape(shape).astype(np.float32)


def gradient(shape, g_max: float, lo: float = 0.1, hi: float = 0.8) -> np.ndarray:
    """A linear ramp across the columns from lo*g_max to hi*g_max."""
    row = np.linspace(lo, hi, shape[1]) * g_max
    return np.broadcast_to(row, shape).astype(np.float32)


def checkerboard(shape, g_max: float, lo: float = 0.1, hi: float = 0.8) -> np.ndarray:
    """Alternating lo*g_max and hi*g_max devices."""
    r, c = np.indices(shape)
    return np.where((r + c) % 2 == 0, lo * g_max, hi * g_max).astype(np.float32)


PATTERNS = {"levels": levels, "gradient": gradient, "checkerboard": checkerboard}


def make_pattern(name: str, shape, g_max: float, **kwargs) -> np.ndarray:
    """The named pattern; an unknown name lists the valid ones."""
    try:
        fn = PATTERNS[name]
    except KeyError:
        raise ConfigError(f"unknown pattern {name!r}; valid: {', '.join(PATTERNS)}") from None
    return fn(shape, g_max, **kwargs)
