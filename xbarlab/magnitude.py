"""Largest magnitude of a float32 array in one compiled pass.

The safety check runs on every MVM input batch, so it must cost less than one
pass over the batch: numpy needs two reductions (max and min). Cleared of the
sign bit, float32 bit patterns order like the magnitudes; infinity is 0x7f800000
and NaNs lie above it, so an integer max (which vectorises) finds them too.
Imported lazily by :mod:`xbarlab.limits`, so that importing the core does not load numba.
"""

from __future__ import annotations

import struct

import numpy as np
from numba import njit

_ABS = np.int32(0x7FFFFFFF)
_INF_BITS = 0x7F800000


@njit(cache=True, nogil=True, error_model="numpy")
def _peak_bits(bits):
    """Largest sign-cleared bit pattern of a 2-D int32 view (int32 throughout: a 64-bit
    max does not vectorise on AVX2)."""
    top = np.int32(0)
    for b in range(bits.shape[0]):
        for j in range(bits.shape[1]):
            v = np.int32(bits[b, j] & _ABS)
            top = v if v > top else top
    return top


def peak_bits(x: np.ndarray) -> int:
    """The largest sign-cleared bit pattern of a C-contiguous float32 array: it orders
    like max |x|, and exceeds 0x7f800000 (infinity) only when x holds NaN."""
    rows = x.reshape(1, -1) if x.ndim != 2 else x
    return int(_peak_bits(rows.view(np.int32)))


def float32_bits(value: float) -> int:
    """The bit pattern of a non-negative value rounded to float32, to compare with
    :func:`peak_bits`."""
    return struct.unpack("<i", struct.pack("<f", value))[0]


def peak_magnitude(x: np.ndarray) -> float:
    """max |x| of a C-contiguous float32 array: inf if it holds infinity, NaN if NaN."""
    top = peak_bits(x)
    if top > _INF_BITS:
        return float("nan")
    return struct.unpack("<f", struct.pack("<i", top))[0]
