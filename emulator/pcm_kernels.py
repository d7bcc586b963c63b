"""Compiled kernels of the PCM device model: pure functions of state arrays.

Each kernel works on the flattened struct-of-arrays state of one array and on
``idx``, the flat indices of the selected devices. Randomness comes in as arrays
of standard normals drawn by the caller's ``numpy.random.Generator`` (seeded once
per chip), so kernels are deterministic and testable against numpy references
(tests/emulator/test_pcm_kernels.py).

Conventions: conductances float32 in S, times float64 in s. Per-device pulse
parameters (``amp``, ``width``) have length 1 (same for all) or len(idx).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

STUCK_SET = np.uint8(1)
STUCK_RESET = np.uint8(2)
STUCK = np.uint8(3)
#: endurance failure mode of the device: sticks at SET (bit set) or at RESET
WEARS_TO_SET = np.uint8(4)

# Model constants are passed as one float64 vector (see PCMArray._consts) in this order.
C_G_MAX, C_G_MIN, C_SET_STEP, C_SET_EXP, C_SET_C2C = 0, 1, 2, 3, 4
C_V_SET_MIN, C_V_SET_REF, C_V_RESET, C_WIDTH_REF, C_WIDTH_EXP = 5, 6, 7, 8, 9
C_T0, C_NU_SLOPE, C_NU_OFFSET, C_NU_MIN, C_NU_MAX = 10, 11, 12, 13, 14
C_NUS_SLOPE, C_NUS_OFFSET, C_NUS_MIN, C_NUS_MAX = 15, 16, 17, 18
C_QS_COEFF, C_QS_EXP, C_QS_MAX, C_T_READ, C_RESET_MEAN, C_RESET_STD = 19, 20, 21, 22, 23, 24
N_CONSTS = 25


@njit(cache=True, inline="always")
def _clip(x, lo, hi):
    return min(max(x, lo), hi)


@njit(cache=True, inline="always")
def _drift_factor(dt, nu, t0):
    """(dt/t0)^-nu for dt > t0, else 1: the published law is referenced at t0."""
    if dt > t0:
        return math.exp(-nu * math.log(dt / t0))
    return 1.0


@njit(cache=True, inline="always")
def _noise_width(dt, t_read):
    """sqrt(ln((dt + t_read)/(2 t_read))): accumulated 1/f noise, 0 for dt <= t_read."""
    arg = (dt + t_read) / (2.0 * t_read)
    if arg > 1.0:
        return math.sqrt(math.log(arg))
    return 0.0


@njit(cache=True, parallel=True)
def read_kernel(idx, g_prog, t_prog, nu, q_s, now, c, z, out):
    """out[k] = G(t) (1 + sigma_rel z[k]) for device idx[k] at time ``now``."""
    t0 = c[C_T0]
    t_read = c[C_T_READ]
    for k in prange(idx.size):
        i = idx[k]
        dt = now - t_prog[i]
        g = g_prog[i] * _drift_factor(dt, nu[i], t0)
        out[k] = g + g * q_s[i] * _noise_width(dt, t_read) * z[k]


@njit(cache=True, parallel=True)
def mean_sigma_kernel(g_prog, t_prog, nu, q_s, now, c, g_out, s_out):
    """Noise-free drifted conductance and absolute read-noise std of every device."""
    t0 = c[C_T0]
    t_read = c[C_T_READ]
    for i in prange(g_prog.size):
        dt = now - t_prog[i]
        g = g_prog[i] * _drift_factor(dt, nu[i], t0)
        g_out[i] = g
        s_out[i] = g * q_s[i] * _noise_width(dt, t_read)


@njit(cache=True, inline="always")
def _reprogrammed(i, g, now, c, z_nu, g_prog, t_prog, nu, q_s):
    """Store a freshly programmed conductance: restart drift, draw nu, update Q_s."""
    g_prog[i] = g
    t_prog[i] = now
    lnr = math.log(max(g, c[C_G_MIN]) / c[C_G_MAX])
    nu_mean = _clip(c[C_NU_SLOPE] * lnr + c[C_NU_OFFSET], c[C_NU_MIN], c[C_NU_MAX])
    nu_std = _clip(c[C_NUS_SLOPE] * lnr + c[C_NUS_OFFSET], c[C_NUS_MIN], c[C_NUS_MAX])
    nu[i] = max(nu_mean + nu_std * z_nu, 0.0)
    q_s[i] = min(c[C_QS_COEFF] * math.exp(-c[C_QS_EXP] * lnr), c[C_QS_MAX])


@njit(cache=True, parallel=True)
def pulse_kernel(idx, amp, width, count, now, t_end, c, z, g_prog, t_prog, nu, q_s,
                 g_sat, sens, flags, cycles_left, pulse_count):
    """Apply ``count`` identical pulses to each selected device.

    |amp| >= v_reset: RESET (melt-quench to near g_min, restart drift, one endurance
    cycle per pulse). v_set_min < |amp| < v_reset: ``count`` partial-crystallisation
    steps. Below v_set_min: no change. ``z`` has shape (count + 1, len(idx)): row 0
    draws nu, rows 1.. the cycle-to-cycle spread of each SET step (row 1 also the
    RESET level). Stuck devices ignore pulses; every device counts them.
    """
    n = idx.size
    sa = 1 if amp.size > 1 else 0  # stride: one value for all, or one per device
    sw = 1 if width.size > 1 else 0
    for k in prange(n):
        i = idx[k]
        pulse_count[i] += count
        if flags[i] & STUCK:
            continue
        a = abs(amp[k * sa])
        w = width[k * sw]
        if a >= c[C_V_RESET]:
            _reset_device(i, k, count, t_end, c, z, g_prog, t_prog, nu, q_s, g_sat, flags,
                          cycles_left)
        elif a > c[C_V_SET_MIN]:
            drive = (sens[i] * (a - c[C_V_SET_MIN]) / (c[C_V_SET_REF] - c[C_V_SET_MIN])
                     * (w / c[C_WIDTH_REF]) ** c[C_WIDTH_EXP])
            gs = g_sat[i]
            g = g_prog[i] * _drift_factor(now - t_prog[i], nu[i], c[C_T0])
            for p in range(count):
                frac = max(1.0 - g / gs, 0.0)
                mean = c[C_SET_STEP] * gs * drive * frac ** c[C_SET_EXP]
                g = _clip(g + mean * (1.0 + c[C_SET_C2C] * z[p + 1, k]), c[C_G_MIN], gs)
            _reprogrammed(i, g, t_end, c, z[0, k], g_prog, t_prog, nu, q_s)


@njit(cache=True, inline="always")
def _reset_device(i, k, count, t_end, c, z, g_prog, t_prog, nu, q_s, g_sat, flags,
                  cycles_left):
    left = cycles_left[i]
    if left <= count:
        cycles_left[i] = 0
        if flags[i] & WEARS_TO_SET:
            flags[i] |= STUCK_SET
            _reprogrammed(i, g_sat[i], t_end, c, z[0, k], g_prog, t_prog, nu, q_s)
            return
        flags[i] |= STUCK_RESET
    else:
        cycles_left[i] = left - count
    g = max(c[C_RESET_MEAN] + c[C_RESET_STD] * z[1, k], c[C_G_MIN])
    _reprogrammed(i, g, t_end, c, z[0, k], g_prog, t_prog, nu, q_s)
