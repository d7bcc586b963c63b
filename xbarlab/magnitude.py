"""Largest magnitude of a float32 array in one compiled pass.

The safety check runs on every MVM input batch, so it must cost less than one
pass over the batch: numpy needs two reductions (max and min). Cleared of the
sign bit, float32 bit patterns order like the magnitudes; infinity is 0x7f800000
and NaNs lie above it, so an integer max (which vectorises) finds them too.
Imported lazily by :mod:`xbarlab.limits`, so that importing the core does not load numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_ABS = np.int32(0x7FFFFFFF)
_INF_BITS = 0x7F800000


@njit(cache=True, error_model="numpy")
def _peak_bits(bits):
    top = np.int32(0)
    for i in range(bits.size):
        top = max(top, bits[i] & _ABS)
    return top


def peak_magnitude(x: np.ndarray) -> float:
    """max |x| of a C-contiguous float32 array: inf if it holds infinity, NaN if NaN."""
    top = int(_peak_bits(x.reshape(-1).view(np.int32)))
    if top > _INF_BITS:
        return float("nan")
    return float(np.array(top, dtype=np.int32).view(np.float32))
