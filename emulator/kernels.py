"""Compiled peripheral kernels of the analog MVM: DAC before and ADC after a BLAS product.

The product itself is numpy's float32 GEMM (OpenBLAS); these kernels are the
passes around it, each a pure function of arrays checked against a numpy
reference in tests/emulator/test_mvm_kernels.py. Each pass is written once as a
body over a range of batch rows; a serial driver runs small batches (a thread
launch costs more than the work) and a parallel driver splits large ones over the
numba threads. Noise comes from the vectorisable counter-based Box-Muller generator
of :mod:`xbarlab.emulator.rng` (``normal_pair_fast``), keyed per call: element (b, k)
is a component of pair ``pair_counter(b, k, m)``, so results do not depend on the
thread count. Each row's normals are drawn into the output row first and consumed
from there while the row is in cache.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from xbarlab.emulator.rng import fill_row, split_key, uniform_fast

#: a pass that draws normals (about 0.8 ns an element on one core of the 2-core Zen 5
#: test machine) runs on all numba threads from this many elements on; a quantisation-only
#: pass (about 0.3 ns an element) from PARALLEL_MIN_CHEAP on. Waking the sleeping threads
#: costs about 40 us on a virtual machine whose idle cores halt, so the parallel drivers
#: only pay from about 100 us of serial work on (measured crossovers: 2^17 and 2^19). Right
#: after a product, OpenBLAS's spinning worker shares the second core for a while
#: (xbarlab/__init__.py); the whole MVM still gains: 512 x 512, 1024 vectors, device
#: mode took 2.31-2.49 times numpy's product with these thresholds, 2.45-2.56 all serial
PARALLEL_MIN_NOISY = 1 << 17
PARALLEL_MIN_CHEAP = 1 << 19

_UNIFORM_SALT = np.uint64(0x8CB92BA72F3D8DD7)
_HALF = np.float32(0.5)
#: adding then subtracting 1.5 * 2^23 rounds a float32 of magnitude below 2^22 to an integer
_ROUNDER = np.float32(1.5 * 2**23)


@njit(cache=True, inline="always", error_model="numpy")
def _floor(t):
    """floor(t) for float32 |t| < 2^22, branch-free: math.floor compiles to a call that
    keeps the loops around it from vectorising (five times slower here)."""
    r = (t + _ROUNDER) - _ROUNDER
    return r - np.float32(r > t)


@njit(cache=True, inline="always", error_model="numpy")
def _dac_rows(lo, hi, x, v_range, levels, stochastic, noise, key, out, out_sq):
    n = x.shape[1]
    squares = out_sq.size > 0
    inv = np.float32(1.0 / v_range)
    vr = np.float32(v_range)
    lv = np.float32(levels)
    step = np.float32(1.0 / levels) if levels > 0 else np.float32(1.0)
    nv = np.float32(noise * v_range)
    ka, kb = split_key(key)
    ku = split_key(key ^ _UNIFORM_SALT)[0]
    for b in range(lo, hi):
        if noise > 0.0:  # the row's normals go into out first, then out is overwritten
            fill_row(ka, kb, out, b)
        for j in range(n):
            v = x[b, j] * inv
            if levels > 0:
                v = min(max(v, np.float32(-1.0)), np.float32(1.0))
                if stochastic:
                    u = uniform_fast(ku, b * n + j)
                    v = _floor(v * lv + u) * step
                else:
                    v = _floor(v * lv + _HALF) * step
            v *= vr
            if noise > 0.0:
                v += nv * out[b, j]
            out[b, j] = v
            if squares:
                out_sq[b, j] = v * v


@njit(cache=True, nogil=True, error_model="numpy")
def dac_kernel(x, v_range, levels, stochastic, noise, key, out, out_sq):
    """Quantised input voltages in V.

    x: (batch, n) float32 input voltages in V; v_range: DAC full scale in V; levels:
    levels per polarity (0 = ideal: no clipping, no quantisation); stochastic: round up
    with probability equal to the fraction; noise: additive input noise std relative to
    v_range. out: (batch, n) float32; out_sq: (batch, n) float32 receiving out**2 (V^2,
    what the device-noise variance product needs) or an empty (0, 0) array for none.
    """
    _dac_rows(0, x.shape[0], x, v_range, levels, stochastic, noise, key, out, out_sq)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def dac_kernel_parallel(x, v_range, levels, stochastic, noise, key, out, out_sq, parts):
    """:func:`dac_kernel` with the batch split into ``parts`` (one per numba thread)."""
    batch = x.shape[0]
    parts = max(min(batch, parts), 1)
    for c in prange(parts):
        lo, hi = c * batch // parts, (c + 1) * batch // parts
        _dac_rows(lo, hi, x, v_range, levels, stochastic, noise, key, out, out_sq)


@njit(cache=True, inline="always", error_model="numpy")
def _adc_rows(lo, hi, y, var, gain, offset, noise_std, lsb, codes, key, out, saturated):
    m = y.shape[1]
    ka, kb = split_key(key)
    with_var = var.size > 0
    n2 = np.float32(noise_std * noise_std)
    ns = np.float32(noise_std)
    noisy = with_var or noise_std > 0
    quantise = codes > 0
    inv = np.float32(1.0 / lsb)
    step = np.float32(lsb)
    low = np.float32(-codes)
    top = np.float32(codes - 1)
    # clamped to just outside the code range first, so _floor's argument stays small
    t_low, t_high = low - np.float32(1), top + np.float32(2)
    for b in range(lo, hi):
        if noisy:  # the row's normals go into out first, then out is overwritten
            fill_row(ka, kb, out, b)
        for k in range(m):
            v = y[b, k]
            if noisy:
                s = math.sqrt(n2 + var[b, k]) if with_var else ns
                v += s * out[b, k]
            v = gain[k] * v + offset[k]
            if quantise:
                q = _floor(min(max(v * inv + _HALF, t_low), t_high))
                saturated[b, k] = (q > top) | (q < low)
                v = min(max(q, low), top) * step
            else:
                saturated[b, k] = False
            out[b, k] = v


@njit(cache=True, nogil=True, error_model="numpy")
def adc_kernel(y, var, gain, offset, noise_std, lsb, codes, key, out, saturated):
    """Noisy, mismatched, quantised output currents in A, and per-output saturation flags.

    y: (batch, m) noise-free currents from the GEMM (A); var: (batch, m) device read-noise
    variance (A^2) or an empty (0, 0) array for none; gain, offset: (m,) per-output
    mismatch (dimensionless, A); noise_std: output noise std in A; lsb: ADC step in A;
    codes: 2^(bits-1), the ADC outputs codes -codes .. codes - 1 times lsb (two's
    complement: 2^bits levels); 0 = ideal ADC, no quantisation and no saturation.
    out: (batch, m) float32; saturated: (batch, m) bool, True where the ADC clipped.
    Single precision throughout; rounding and noise are branch-free so the loops vectorise.
    """
    _adc_rows(0, y.shape[0], y, var, gain, offset, noise_std, lsb, codes, key, out, saturated)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def adc_kernel_parallel(y, var, gain, offset, noise_std, lsb, codes, key, out, saturated, parts):
    """:func:`adc_kernel` with the batch split into ``parts`` (one per numba thread)."""
    batch = y.shape[0]
    parts = max(min(batch, parts), 1)
    for c in prange(parts):
        lo, hi = c * batch // parts, (c + 1) * batch // parts
        _adc_rows(lo, hi, y, var, gain, offset, noise_std, lsb, codes, key, out, saturated)
