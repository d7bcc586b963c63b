"""Compiled peripheral kernels of the analog MVM: DAC before and ADC after a BLAS product.

The product itself is numpy's float32 GEMM (OpenBLAS); these kernels are the
passes around it, each a pure function of arrays checked against a numpy
reference in tests/emulator/test_mvm_kernels.py. Each pass is written once as a
body over a range of batch rows; a serial driver runs small batches (a thread
launch costs more than the work) and a parallel driver splits large ones over the
numba threads. ``tables`` is :data:`xbarlab.emulator.rng.ZIGGURAT`, passed as an argument
because numba cannot cache parallel functions that read global arrays.
Noise comes from the counter-based ziggurat of
:mod:`xbarlab.emulator.rng`, keyed per call: element (b, k) is a component of pair
``pair_counter(b, k, m)``, so results do not depend on the thread count.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from xbarlab.emulator.rng import fill_fast, redraw_rows, splitmix64

#: batches with fewer elements than this run on one thread
PARALLEL_MIN_ELEMENTS = 1 << 15

_INV24 = np.float32(1.0 / (1 << 24))
_S40 = np.uint64(40)
_UNIFORM_SALT = np.uint64(0x8CB92BA72F3D8DD7)
_HALF = np.float32(0.5)
#: rows of the ADC pass are processed in chunks of about this many outputs (16 KB)
_CHUNK_ELEMENTS = 4096


@njit(cache=True, inline="always", error_model="numpy")
def _dac_rows(lo, hi, x, v_range, levels, stochastic, noise, key, out, tables):
    n = x.shape[1]
    kn, wn, _ = tables
    inv = np.float32(1.0 / v_range)
    vr = np.float32(v_range)
    lv = np.float32(levels)
    step = np.float32(1.0 / levels) if levels > 0 else np.float32(1.0)
    nv = np.float32(noise * v_range)
    ukey = key ^ _UNIFORM_SALT
    if noise > 0.0:  # the normals go into out first, then out is overwritten row by row
        for b in range(lo, hi):
            fill_fast(key, out, b, kn, wn)
        redraw_rows(key, out, lo, hi, *tables)
    for b in range(lo, hi):
        for j in range(n):
            v = x[b, j] * inv
            if levels > 0:
                v = min(max(v, np.float32(-1.0)), np.float32(1.0))
                if stochastic:
                    u = np.float32(splitmix64(ukey, np.uint64(b * n + j)) >> _S40) * _INV24
                    v = np.float32(math.floor(v * lv + u)) * step
                else:
                    v = np.float32(math.floor(v * lv + _HALF)) * step
            v *= vr
            if noise > 0.0:
                v += nv * out[b, j]
            out[b, j] = v


@njit(cache=True, error_model="numpy")
def dac_kernel(x, v_range, levels, stochastic, noise, key, out, tables):
    """Quantised input voltages in V.

    x: (batch, n) float32 input voltages in V; v_range: DAC full scale in V; levels:
    levels per polarity (0 = ideal: no clipping, no quantisation); stochastic: round up
    with probability equal to the fraction; noise: additive input noise std relative to
    v_range. out: (batch, n) float32. tables: rng.ZIGGURAT.
    """
    _dac_rows(0, x.shape[0], x, v_range, levels, stochastic, noise, key, out, tables)


@njit(cache=True, parallel=True, error_model="numpy")
def dac_kernel_parallel(x, v_range, levels, stochastic, noise, key, out, tables, parts):
    """:func:`dac_kernel` with the batch split into ``parts`` (one per numba thread)."""
    batch = x.shape[0]
    parts = max(min(batch, parts), 1)
    for c in prange(parts):
        lo, hi = c * batch // parts, (c + 1) * batch // parts
        _dac_rows(lo, hi, x, v_range, levels, stochastic, noise, key, out, tables)


@njit(cache=True, inline="always", error_model="numpy")
def _adc_rows(lo, hi, y, var, gain, offset, noise_std, lsb, codes, key, out, saturated, tables):
    m = y.shape[1]
    kn, wn, fn = tables
    with_var = var.size > 0
    n2 = np.float32(noise_std * noise_std)
    ns = np.float32(noise_std)
    noisy = with_var or noise_std > 0
    quantise = codes > 0
    inv = np.float32(1.0 / lsb)
    step = np.float32(lsb)
    low = np.float32(-codes)
    top = np.float32(codes - 1)
    # chunks of rows small enough to stay in cache between the passes
    chunk = max(1, _CHUNK_ELEMENTS // max(m, 1))
    for c0 in range(lo, hi, chunk):
        c1 = min(c0 + chunk, hi)
        if noisy:  # the normals go into out first, then out is overwritten
            for b in range(c0, c1):
                fill_fast(key, out, b, kn, wn)
            redraw_rows(key, out, c0, c1, kn, wn, fn)
        for b in range(c0, c1):
            for k in range(m):
                v = y[b, k]
                if noisy:
                    s = math.sqrt(n2 + var[b, k]) if with_var else ns
                    v += s * out[b, k]
                v = gain[k] * v + offset[k]
                if quantise:
                    q = np.float32(math.floor(v * inv + _HALF))
                    saturated[b, k] = (q > top) | (q < low)
                    v = min(max(q, low), top) * step
                else:
                    saturated[b, k] = False
                out[b, k] = v


@njit(cache=True, error_model="numpy")
def adc_kernel(y, var, gain, offset, noise_std, lsb, codes, key, out, saturated, tables):
    """Noisy, mismatched, quantised output currents in A, and per-output saturation flags.

    y: (batch, m) noise-free currents from the GEMM (A); var: (batch, m) device read-noise
    variance (A^2) or an empty (0, 0) array for none; gain, offset: (m,) per-output
    mismatch (dimensionless, A); noise_std: output noise std in A; lsb: ADC step in A;
    codes: 2^(bits-1), the ADC outputs codes -codes .. codes - 1 times lsb (two's
    complement: 2^bits levels); 0 = ideal ADC, no quantisation and no saturation.
    out: (batch, m) float32; saturated: (batch, m) bool, True where the ADC clipped.
    tables: rng.ZIGGURAT. Single precision throughout; the rounding is branch-free so the
    loop vectorises.
    """
    _adc_rows(
        0, y.shape[0], y, var, gain, offset, noise_std, lsb, codes, key, out, saturated, tables
    )


@njit(cache=True, parallel=True, error_model="numpy")
def adc_kernel_parallel(
    y, var, gain, offset, noise_std, lsb, codes, key, out, saturated, tables, parts
):
    """:func:`adc_kernel` with the batch split into ``parts`` (one per numba thread)."""
    batch = y.shape[0]
    parts = max(min(batch, parts), 1)
    for c in prange(parts):
        lo, hi = c * batch // parts, (c + 1) * batch // parts
        _adc_rows(lo, hi, y, var, gain, offset, noise_std, lsb, codes, key, out, saturated, tables)
