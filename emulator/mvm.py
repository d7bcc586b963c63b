"""The emulator's analog matrix-vector product: DAC -> array -> TIA/ADC.

Device read noise is Gaussian per device per read, so for one input vector the
output current I_k = sum_j (G_jk + sigma_jk z_jk) x_j is Gaussian with mean
(x G)_k and variance sum_j sigma_jk^2 x_j^2: one normal per output, from a second
GEMM with the squared inputs, is exact in distribution without materialising a
noisy G per vector. Output noise is independent and Gaussian too, so both share
that one normal. The array side is a cached matrix pair (:class:`ArrayMatrices`)
that the chip recomputes only when its state or drift has changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from xbarlab.emulator import kernels as K
from xbarlab.emulator.peripherals import Mismatch, PeripheralParams

_NO_VAR = np.empty((0, 0), dtype=np.float32)
_PARTS = numba.config.NUMBA_NUM_THREADS


@dataclass(frozen=True)
class ArrayMatrices:
    """What the array contributes to a forward MVM.

    g: (n_in, n_out) effective conductance in S (pairs already subtracted when
    differential, IR drop folded in); var: (n_in, n_out) read-noise variance in S^2
    of each device (pair), or None when device noise is off.
    """

    g: np.ndarray
    var: np.ndarray | None


@dataclass(frozen=True)
class Readout:
    """Fixed properties of one output direction: mismatch, ADC step and noise, in A."""

    mismatch: Mismatch
    lsb: float
    noise: float
    codes: int
    ideal: bool  # no noise, no mismatch, ideal ADC: skip the output pass

    @classmethod
    def build(cls, n_out: int, p: PeripheralParams, g_max: float, rng: np.random.Generator):
        lsb = p.adc_lsb(g_max)
        mismatch = Mismatch.draw(n_out, p, lsb, rng)
        ideal = p.adc_codes == 0 and p.out_noise == 0 and p.gain_std == 0 and p.offset_std == 0
        return cls(mismatch, lsb, p.out_noise * p.unit_current(g_max), p.adc_codes, ideal)


def analog_mvm(
    x: np.ndarray,
    mats: ArrayMatrices,
    transpose: bool,
    p: PeripheralParams,
    readout: Readout,
    key: np.uint64,
) -> tuple[np.ndarray, np.ndarray]:
    """Currents in A (float32, (batch, n_out)) and ADC saturation flags for inputs x in V.

    x: (batch, n_in) float32, C-contiguous. Forward drives the rows of ``mats.g``;
    transposed drives its columns.
    """
    g = mats.g.T if transpose else mats.g
    xq, xq2 = _dac(x, p, key, squares=mats.var is not None)
    y = xq @ g
    if readout.ideal and mats.var is None:
        return y, np.zeros(y.shape, dtype=bool)
    var = _NO_VAR
    if mats.var is not None:
        var = xq2 @ (mats.var.T if transpose else mats.var)
    out = np.empty_like(y)
    saturated = np.empty(y.shape, dtype=bool)
    m = readout.mismatch
    converter = (readout.noise, readout.lsb, readout.codes, key)
    data = (y, var, m.gain, m.offset)
    noisy = mats.var is not None or readout.noise > 0
    _run(K.adc_kernel, K.adc_kernel_parallel, y.size, noisy, *data, *converter, out, saturated)
    return out, saturated


def _dac(x: np.ndarray, p: PeripheralParams, key: np.uint64, squares: bool):
    """DAC output voltages (V) and, when ``squares``, their squares (V^2) from the same
    pass (else None)."""
    if p.dac_levels == 0 and p.input_noise == 0:
        return x, (x * x if squares else None)
    out = np.empty_like(x)
    out_sq = np.empty_like(x) if squares else _NO_VAR
    dac_key = key ^ np.uint64(0x5851F42D4C957F2D)
    converter = (p.dac_range, p.dac_levels, p.dac_stochastic, p.input_noise, dac_key)
    noisy = p.input_noise > 0
    _run(K.dac_kernel, K.dac_kernel_parallel, x.size, noisy, x, *converter, out, out_sq)
    return out, (out_sq if squares else None)


def _run(serial, parallel, size: int, noisy: bool, *args) -> None:
    """A kernel's serial driver for small work, its parallel driver for large work (from
    kernels.PARALLEL_MIN_NOISY elements on for passes that draw normals, from
    kernels.PARALLEL_MIN_CHEAP on for the others). The parallel driver splits the work
    into one part per numba thread at most (numba.get_num_threads() costs microseconds
    per call; results do not depend on the split)."""
    if size >= (K.PARALLEL_MIN_NOISY if noisy else K.PARALLEL_MIN_CHEAP):
        parallel(*args, _PARTS)
    else:
        serial(*args)
