"""Reference inputs and least-squares factors for drift compensation.

Right after programming, a fixed set of reference inputs (the all-ones vector and
seeded random +-1 vectors) is run through an array or a tile and the outputs Y0 are
kept. Later the same inputs give Y(t); the factor ``a`` that best maps Y(t) back to
Y0 in the least-squares sense undoes the drift:

- global: one factor, ``a = sum(Y0 Y) / sum(Y Y)`` over all outputs;
- column: one factor per output j, the same sums over the reference inputs only
  (outputs whose devices drift faster or slower than the average get their own).

Used by tiles (:mod:`xbarlab.calibration.drift`) and by the ``drift-compensation``
procedure on a raw array, so both compute the same factors.
"""

from __future__ import annotations

import numpy as np

from xbarlab.errors import ConfigError

#: ways to compensate
MODES = ("global", "column")


def check_mode(mode: str) -> None:
    """ConfigError unless ``mode`` is one of :data:`MODES`."""
    if mode not in MODES:
        raise ConfigError(
            f"drift compensation mode must be one of {', '.join(MODES)}, got {mode!r}"
        )


def reference_inputs(n_ref: int, n_in: int, seed: int = 0) -> np.ndarray:
    """(n_ref, n_in) float32 inputs in [-1, 1]: the all-ones vector, then random +-1 vectors.

    n_ref: number of vectors, an integer >= 1; seed: of the random vectors.
    """
    if int(n_ref) != n_ref or n_ref < 1:
        raise ConfigError(f"n_ref must be an integer >= 1, got {n_ref!r}")
    x = np.random.default_rng(seed).choice([-1.0, 1.0], size=(int(n_ref), int(n_in)))
    x[0] = 1.0
    return x.astype(np.float32)


def drift_factors(y0: np.ndarray, y: np.ndarray, mode: str = "global"):
    """Least-squares factor(s) mapping outputs ``y`` back to the reference ``y0``.

    y0, y: (n_ref, outputs) outputs for the same inputs at the reference time and now.
    Returns a float (global) or a float32 (outputs,) array (column). ConfigError when
    an output changed sign or vanished: no positive factor can then undo the drift.
    """
    check_mode(mode)
    y0 = np.asarray(y0, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y0.shape != y.shape or y0.ndim != 2:
        raise ConfigError(
            f"drift reference outputs of shape {y0.shape} do not match the new outputs {y.shape}"
        )
    axis = None if mode == "global" else 0
    num, den = (y0 * y).sum(axis=axis), (y * y).sum(axis=axis)
    if np.any(num <= 0) or np.any(den <= 0):
        raise ConfigError(
            "drift compensation: the reference outputs changed sign or vanished; "
            "re-measure the reference after programming"
        )
    factor = num / den
    return float(factor) if mode == "global" else factor.astype(np.float32)


def relative_error(y_ref: np.ndarray, y: np.ndarray) -> float:
    """||y - y_ref|| / ||y_ref|| (Frobenius), the error figure drift compensation reduces."""
    y_ref = np.asarray(y_ref, dtype=np.float64)
    diff = np.asarray(y, dtype=np.float64) - y_ref
    return float(np.linalg.norm(diff) / max(np.linalg.norm(y_ref), np.finfo(float).tiny))
