"""Compiled per-vector input scaling for tiles: max |x| per vector, the scaled copy, and
the per-vector output rescaling.

A tile divides every input vector by its largest magnitude so that it spans the
DAC's full scale. Done with numpy that is four passes (max, min, multiply, a
temporary); here it is one read of each vector while it sits in cache. The largest
magnitude is found on the float32 bit patterns: with the sign bit cleared they order
like the magnitudes, infinity is 0x7f800000 and NaNs lie above it, so an integer
max (which vectorises) also finds NaN and infinity.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from xbarlab.errors import ConfigError

_ABS = np.int32(0x7FFFFFFF)
_INF_BITS = np.int32(0x7F800000)
_F32_MAX = float(np.finfo(np.float32).max)
#: batches from this many values on are scaled on all numba threads: waking them costs
#: about 40 us (more on a virtual machine whose idle cores halt), which a serial pass of
#: about 0.08 ns a value only exceeds from about 2^21 values on (measured crossover)
_PARALLEL_MIN = 1 << 21


@njit(cache=True, inline="always", error_model="numpy")
def _normalise_span(lo, hi, x, v_full, out, norm):
    """norm[b] = max |x[b]|; out[b, :n] = x[b] * v_full / norm[b] (0 where norm is 0), for
    rows lo..hi.

    x: C-contiguous (its int32 bit patterns give the max). Returns False when x holds
    NaN or infinity (then out and norm are undefined).
    """
    n = x.shape[1]
    bits = x.view(np.int32)
    scratch = np.empty(1, dtype=np.int32)
    as_float = scratch.view(np.float32)
    for b in range(lo, hi):
        top = np.int32(0)
        for j in range(n):  # int32 throughout: a 64-bit max does not vectorise on AVX2
            v = np.int32(bits[b, j] & _ABS)
            top = v if v > top else top
        if top >= _INF_BITS:
            return False
        scratch[0] = top  # the bit pattern of max |x[b]|
        m = as_float[0]
        norm[b] = m
        f = np.float64(v_full) / np.float64(m) if m > 0 else 0.0
        if f < _F32_MAX:  # single precision vectorises twice as wide
            f32 = np.float32(f)
            for j in range(n):
                out[b, j] = x[b, j] * f32
        else:  # a subnormal max: the factor overflows float32
            for j in range(n):
                out[b, j] = np.float32(x[b, j] * f)
    return True


@njit(cache=True, nogil=True, error_model="numpy")
def _normalise_rows(x, v_full, out, norm):
    return _normalise_span(0, x.shape[0], x, v_full, out, norm)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _normalise_rows_parallel(x, v_full, out, norm, parts):
    batch = x.shape[0]
    parts = max(min(batch, parts), 1)
    ok = np.ones(parts, dtype=np.bool_)
    for c in prange(parts):
        lo, hi = c * batch // parts, (c + 1) * batch // parts
        ok[c] = _normalise_span(lo, hi, x, v_full, out, norm)
    return ok.all()


@njit(cache=True, nogil=True, error_model="numpy")
def scale_rows(y, factors, c):
    """y[b, :] *= factors[b] * c, in place: scaling outputs back per input vector in one
    vectorised pass (numpy's broadcast multiply is 2-3 times slower here). c: a common
    factor (float), folded in here rather than into a temporary array."""
    for b in range(y.shape[0]):
        f = np.float32(factors[b] * c)
        for k in range(y.shape[1]):
            y[b, k] *= f


def normalise(x: np.ndarray, v_full: float, width: int, what: str):
    """Scaled voltages (batch, width) float32, zero-padded beyond x's columns, and the
    per-vector max |x| (batch,) by which outputs are scaled back. x: (batch, n <= width)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = (np.empty if x.shape[1] == width else np.zeros)((x.shape[0], width), np.float32)
    norm = np.empty(x.shape[0], dtype=np.float32)
    args = (x, np.float32(v_full), out, norm)
    if x.size >= _PARALLEL_MIN:
        ok = _normalise_rows_parallel(*args, numba.config.NUMBA_NUM_THREADS)
    else:
        ok = _normalise_rows(*args)
    if not ok:
        raise ConfigError(f"{what} input holds NaN or infinity")
    return out, norm
