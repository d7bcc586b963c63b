"""Counter-based normal random numbers for compiled kernels.

Kernels cannot share numpy's ``Generator`` and drawing normals with it costs a
separate pass over memory (about 10-15 ns per number here). Instead a kernel
gets a 64-bit ``key``, drawn once per call from the chip's seeded Generator, and
computes normal number pairs at any position of the stream on the spot:
SplitMix64 (Steele, Lea & Flood, OOPSLA 2014) output ``counter`` of the stream
seeded with ``key``, turned into two standard normals by the Box-Muller
transform. Results are independent of thread count and order.

Accuracy: uniforms have 24 bits, so |z| <= sqrt(48 ln 2) = 5.77; the truncated
tail has probability 8e-9. Tests check moments and quantiles against N(0, 1).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S16, _S27, _S30, _S31, _S40 = (np.uint64(s) for s in (16, 27, 30, 31, 40))
_MASK24 = np.uint64(0xFFFFFF)
_ONE = np.uint64(1)
_INV24 = np.float32(1.0 / (1 << 24))
_TWO_PI = np.float32(2.0 * math.pi)
_MINUS_TWO = np.float32(-2.0)


@njit(cache=True, inline="always")
def splitmix64(key, counter):
    """Output number ``counter`` of the SplitMix64 stream seeded with ``key`` (uint64)."""
    z = key + (counter + _ONE) * _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def normal_pair(key, counter):
    """Two independent float32 standard normals at stream position ``counter``."""
    h = splitmix64(key, np.uint64(counter))
    u1 = np.float32((h >> _S40) + _ONE) * _INV24  # (0, 1]
    u2 = np.float32((h >> _S16) & _MASK24) * _INV24  # [0, 1)
    r = math.sqrt(_MINUS_TWO * math.log(u1))
    a = _TWO_PI * u2
    return r * math.cos(a), r * math.sin(a)


@njit(cache=True, parallel=True)
def fill_normals(key, out):
    """Fill a 1-D float32 array: out[2c], out[2c + 1] = normal_pair(key, c)."""
    n = out.size
    for c in prange((n + 1) // 2):
        z0, z1 = normal_pair(key, c)
        out[2 * c] = z0
        if 2 * c + 1 < n:
            out[2 * c + 1] = z1


def new_key(rng: np.random.Generator) -> np.uint64:
    """A fresh stream key from a seeded Generator."""
    return np.uint64(rng.integers(0, 2**64, dtype=np.uint64))
