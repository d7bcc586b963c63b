"""Compiled peripheral kernels of the analog MVM: DAC before and ADC after a BLAS product.

The product itself is numpy's float32 GEMM (OpenBLAS); these kernels are the
passes around it, each a pure function of arrays checked against a numpy
reference in tests/emulator/test_mvm_kernels.py. They run on one thread on
purpose: a parallel numba kernel started right after a multi-threaded BLAS call
waits about 8 ms for the BLAS threads to stop spinning (DESIGN.md), far longer
than these passes take. Noise comes from the counter-based ziggurat of
:mod:`xbarlab.emulator.rng`, keyed per call, element (b, k) at counter b*m + k.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from xbarlab.emulator.rng import normal, splitmix64

_INV53 = 1.0 / (1 << 53)
_S11 = np.uint64(11)
_UNIFORM_SALT = np.uint64(0x8CB92BA72F3D8DD7)


@njit(cache=True, inline="always")
def _quantise(v, levels):
    """Round v (in units of full scale, already clipped to [-1, 1]) to levels per polarity."""
    return math.floor(v * levels + 0.5) / levels


@njit(cache=True)
def dac_kernel(x, v_range, levels, stochastic, noise, key, out):
    """Quantised input voltages in V.

    x: (batch, n) float32 input voltages in V; v_range: DAC full scale in V; levels: levels per
    polarity (0 = ideal: no clipping, no quantisation); stochastic: round up with
    probability equal to the fraction; noise: additive input noise std relative to
    v_range. out: (batch, n) float32.
    """
    batch, n = x.shape
    inv = 1.0 / v_range
    ukey = key ^ _UNIFORM_SALT
    for b in range(batch):
        for j in range(n):
            v = x[b, j] * inv
            if levels > 0:
                v = min(max(v, -1.0), 1.0)
                if stochastic:
                    u = np.float64(splitmix64(ukey, np.uint64(b * n + j)) >> _S11) * _INV53
                    v = math.floor(v * levels + u) / levels
                else:
                    v = _quantise(v, levels)
            if noise > 0.0:
                v += noise * normal(key, b * n + j)
            out[b, j] = v * v_range


@njit(cache=True)
def adc_kernel(y, var, gain, offset, noise_std, lsb, codes, key, out, saturated):
    """Noisy, mismatched, quantised output currents in A, and per-output saturation flags.

    y: (batch, m) noise-free currents from the GEMM (A); var: (batch, m) device read-noise
    variance (A^2) or an empty array for none; gain, offset: (m,) per-output mismatch
    (dimensionless, A); noise_std: output noise std in A; lsb: ADC step in A; codes:
    2^(bits-1), the ADC outputs codes -codes .. codes - 1 times lsb (two's complement:
    2^bits levels); 0 = ideal ADC, no quantisation and no saturation.
    out: (batch, m) float32; saturated: (batch, m) bool, True where the ADC clipped.
    Single precision throughout; the rounding is branch-free so the loop vectorises.
    """
    batch, m = y.shape
    with_var = var.size > 0
    n2 = np.float32(noise_std * noise_std)
    noisy = with_var or noise_std > 0
    quantise = codes > 0
    inv = np.float32(1.0 / lsb)
    step = np.float32(lsb)
    low = np.float32(-codes)
    top = np.float32(codes - 1)
    half = np.float32(0.5)
    z = np.zeros(m, dtype=np.float32)
    for b in range(batch):
        if noisy:
            for k in range(m):
                s2 = n2 + var[b, k] if with_var else n2
                z[k] = math.sqrt(s2) * normal(key, b * m + k)
        for k in range(m):
            v = gain[k] * (y[b, k] + z[k]) + offset[k]
            if quantise:
                q = np.float32(math.floor(v * inv + half))
                saturated[b, k] = (q > top) | (q < low)
                v = min(max(q, low), top) * step
            else:
                saturated[b, k] = False
            out[b, k] = v
