"""Compiled kernels of the RRAM device model: pure functions of state arrays.

Same conventions as :mod:`xbarlab.emulator.pcm_kernels`: ``n`` selected devices at
flat indices ``idx[k]`` (``idx`` empty: all devices in order); randomness from a
64-bit ``key`` through :func:`xbarlab.emulator.rng.normal_pair`, so results are
deterministic and independent of thread count; conductances float32 in S.

Time enters through programming events: each device holds the id of the pulse call
that last programmed it, and the caller passes the per-event relaxation log-time
table (:func:`time_table`). The relaxed conductance of device i is

    G = clip(g_prog[i] + relax[i] * L[event[i]], g_lo[i], g_hi[i]),
    L = log10(1 + t / relax_t0), t since the programming event.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from xbarlab.emulator.pcm_kernels import _device
from xbarlab.emulator.rng import normal_pair

STUCK_ON = np.uint8(1)
STUCK_OFF = np.uint8(2)
STUCK = np.uint8(3)

# Model constants, one float32 vector (see rram._consts) in this order.
C_SET_STEP, C_RESET_STEP, C_SET_GAMMA, C_RESET_GAMMA, C_C2C = 0, 1, 2, 3, 4
C_RELAX_RATE, C_RELAX_EQ, C_RELAX_STD = 5, 6, 7
N_CONSTS = 8
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


def time_table(event_times: np.ndarray, now: float, t0: float) -> np.ndarray:
    """Relaxation log-time log10(1 + dt / t0) per programming event at time ``now`` (s)."""
    dt = np.maximum(now - event_times, 0.0)
    return np.log10(1.0 + dt / t0).astype(np.float32)


def pairs_per_device(count: int) -> int:
    """Normal pairs each device draws in a pulse call: count + 1 normals, rounded up."""
    return (count + 2) // 2


@njit(cache=True, inline="always")
def _relaxed(i, g_prog, event, relax, g_lo, g_hi, log_t):
    g = g_prog[i] + relax[i] * log_t[event[i]]
    return min(max(g, g_lo[i]), g_hi[i])


@njit(cache=True, nogil=True, parallel=True)
def read_kernel(idx, n, key, noise, g_prog, event, relax, g_lo, g_hi, log_t, out):
    """out[k] = G (1 + noise z) for selected device k; z from normal pair k // 2."""
    for c in prange((n + 1) // 2):
        z0, z1 = normal_pair(key, c)
        k = 2 * c
        i = _device(idx, k)
        g = _relaxed(i, g_prog, event, relax, g_lo, g_hi, log_t)
        out[k] = g + g * noise * z0
        if k + 1 < n:
            i = _device(idx, k + 1)
            g = _relaxed(i, g_prog, event, relax, g_lo, g_hi, log_t)
            out[k + 1] = g + g * noise * z1


@njit(cache=True, nogil=True, parallel=True)
def mean_sigma_kernel(noise, g_prog, event, relax, g_lo, g_hi, log_t, g_out, s_out):
    """Noise-free relaxed conductance and absolute read-noise std of every device."""
    for i in prange(g_prog.size):
        g = _relaxed(i, g_prog, event, relax, g_lo, g_hi, log_t)
        g_out[i] = g
        s_out[i] = g * noise


@njit(cache=True, nogil=True, parallel=True)
def pulse_kernel(
    idx,
    n,
    polarity,
    drive,
    count,
    ev,
    log_t,
    c,
    key,
    g_prog,
    event,
    relax,
    g_lo,
    g_hi,
    sens,
    flags,
    formed,
    pulse_count,
):
    """Apply ``count`` identical pulses of ``polarity`` (+1 SET, -1 RESET) to each device.

    ``drive`` (length 1 or n, >= 0) holds the amplitude and width dependence. Per pulse,
    with x = (G - g_lo) / (g_hi - g_lo) and the switching fraction
    f = 1 - exp(-step * drive * sens * max(1 + c2c z, 0)) (cycle-to-cycle spread of the
    switching rate: about multiplicative on gentle steps, while a strong pulse still
    switches fully): SET x += f (1 - x)^set_gamma, RESET x -= f x^reset_gamma, x clipped
    to [0, 1]. The device then holds programming event ``ev`` and a new
    relaxation slope relax_rate (g_eq - G) + relax_std (g_hi - g_lo) z. Device k draws
    normals j = 0..count from pairs k * pairs_per_device(count) + j // 2: normal 0 the
    relaxation slope, normal p + 1 the spread of pulse p. Stuck and unformed devices
    ignore pulses (and keep relaxing); every device counts them.
    """
    sd = 1 if drive.size > 1 else 0
    up = polarity > 0
    step = c[C_SET_STEP] if up else c[C_RESET_STEP]
    gamma = c[C_SET_GAMMA] if up else c[C_RESET_GAMMA]
    linear = gamma == 1.0
    m = (count + 2) // 2
    for k in prange(n):
        i = _device(idx, k)
        pulse_count[i] += count
        if flags[i] & STUCK or not formed[i]:
            continue
        d = drive[k * sd] * sens[i]
        if d <= _ZERO:
            continue
        rate = step * d
        lo, hi = g_lo[i], g_hi[i]
        span = hi - lo
        x = (_relaxed(i, g_prog, event, relax, g_lo, g_hi, log_t) - lo) / span
        base = k * m
        z_relax, z_next = normal_pair(key, base)
        for p in range(count):
            j = p + 1
            if j % 2 == 0:
                z, z_next = normal_pair(key, base + j // 2)
            else:
                z = z_next
            room = (_ONE - x) if up else x
            if not linear:
                room = room**gamma
            f = _ONE - np.float32(math.exp(-rate * max(_ONE + c[C_C2C] * z, _ZERO)))
            x = x + f * room if up else x - f * room
            x = min(max(x, _ZERO), _ONE)
        g = np.float32(lo + x * span)
        g_prog[i] = g
        event[i] = ev
        g_eq = lo + c[C_RELAX_EQ] * span
        relax[i] = c[C_RELAX_RATE] * (g_eq - g) + c[C_RELAX_STD] * span * z_relax
