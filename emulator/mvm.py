"""The emulator's analog matrix-vector product (the one replaceable function).

Device read noise is Gaussian per device per read, so for one input vector the
column current I_k = sum_j (G_jk + sigma_jk z_jk) x_j is Gaussian with mean
(x G)_k and variance sum_j sigma_jk^2 x_j^2. Drawing one normal per output is
therefore exact in distribution without materialising a noisy G per vector.
Peripheral circuits (DAC, ADC, mismatch, IR drop) are not modelled here yet.
"""

from __future__ import annotations

import numpy as np


def noisy_mvm(
    g: np.ndarray, sigma: np.ndarray, x: np.ndarray, transpose: bool, rng: np.random.Generator
) -> np.ndarray:
    """Currents in A (float32, shape (batch, m)) for voltages x in V, shape (batch, n).

    g: conductance in S, (rows, cols); sigma: its read-noise std in S, same shape.
    Forward (transpose=False): x drives the rows, currents sum on the columns.
    """
    if transpose:
        g, sigma = g.T, sigma.T
    mean = x @ g
    std = np.sqrt((x * x) @ (sigma * sigma))
    return mean + std * rng.standard_normal(mean.shape, dtype=np.float32)
