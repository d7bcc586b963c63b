"""Compiled kernels of the RRAM device model: pure functions of state arrays.

Same conventions as :mod:`xbarlab.emulator.pcm_kernels`: ``n`` selected devices at
flat indices ``idx[k]`` (``idx`` empty: all devices in order); randomness from a
64-bit ``key`` through :func:`xbarlab.emulator.rng.normal_pair`, so results are
deterministic and independent of thread count; conductances float32 in S.

Time enters through programming events: each device holds the id of the pulse call
that last programmed it, and the caller passes the per-event relaxation log-time
table (:func:`time_table`). The relaxed conductance of device i is

    G = clip(g_prog[i] + relax[i] * L[event[i]], g_lo[i], g_hi[i]),
    L = log10(1 + t / relax_t0), t since the programming event,

except for devices flagged UNBOUND (pristine, shorted, or formed and not pulsed
since), whose conductance lies outside their window and is not clipped to it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from xbarlab.emulator.device_kernels import device, pairs_per_device, pulse_normal
from xbarlab.emulator.rng import normal_pair

STUCK_ON = np.uint8(1)
STUCK_OFF = np.uint8(2)
STUCK = np.uint8(3)
#: over-formed into a permanent short: ignores pulses
SHORTED = np.uint8(4)
#: conductance outside the device's window (pristine, shorted, freshly formed): not clipped
UNBOUND = np.uint8(8)
#: devices with any of these flags ignore SET and RESET pulses
IGNORES_PULSES = np.uint8(STUCK | SHORTED)
_KEEP_BOUND = np.uint8(0xFF ^ UNBOUND)

# Model constants, one float32 vector (see rram._consts) in this order.
C_SET_STEP, C_RESET_STEP, C_SET_GAMMA, C_RESET_GAMMA, C_C2C = 0, 1, 2, 3, 4
C_RELAX_RATE, C_RELAX_EQ, C_RELAX_STD = 5, 6, 7
C_FORM_PER_DECADE, C_FORM_WIDTH_REF, C_FORM_V_C, C_FORM_SPREAD = 8, 9, 10, 11
C_G_SHORT, C_SHORT_SPREAD = 12, 13
N_CONSTS = 14
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


def time_table(event_times: np.ndarray, now: float, t0: float) -> np.ndarray:
    """Relaxation log-time log10(1 + dt / t0) per programming event at time ``now`` (s)."""
    dt = np.maximum(now - event_times, 0.0)
    return np.log10(1.0 + dt / t0).astype(np.float32)


@njit(cache=True, inline="always")
def _relaxed(i, g_prog, event, relax, g_lo, g_hi, flags, log_t):
    g = g_prog[i] + relax[i] * log_t[event[i]]
    if flags[i] & UNBOUND:
        return max(g, _ZERO)
    return min(max(g, g_lo[i]), g_hi[i])


@njit(cache=True, inline="always")
def _slope(g, lo, span, z, c):
    """Relaxation slope (S per unit L) of a device just programmed to ``g`` in its window
    [lo, lo + span]: relax_rate (g_eq - g) + relax_std span z, g_eq = lo + relax_eq span."""
    g_eq = lo + c[C_RELAX_EQ] * span
    return c[C_RELAX_RATE] * (g_eq - g) + c[C_RELAX_STD] * span * z


@njit(cache=True, nogil=True, parallel=True)
def read_kernel(idx, n, key, noise, g_prog, event, relax, g_lo, g_hi, flags, log_t, out):
    """out[k] = G (1 + noise z) for selected device k; z from normal pair k // 2."""
    for c in prange((n + 1) // 2):
        z0, z1 = normal_pair(key, c)
        k = 2 * c
        i = device(idx, k)
        g = _relaxed(i, g_prog, event, relax, g_lo, g_hi, flags, log_t)
        out[k] = g + g * noise * z0
        if k + 1 < n:
            i = device(idx, k + 1)
            g = _relaxed(i, g_prog, event, relax, g_lo, g_hi, flags, log_t)
            out[k + 1] = g + g * noise * z1


@njit(cache=True, nogil=True, parallel=True)
def mean_sigma_kernel(noise, g_prog, event, relax, g_lo, g_hi, flags, log_t, g_out, s_out):
    """Noise-free relaxed conductance and absolute read-noise std of every device."""
    for i in prange(g_prog.size):
        g = _relaxed(i, g_prog, event, relax, g_lo, g_hi, flags, log_t)
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
    relaxation slope, normal p + 1 the spread of pulse p. Stuck, shorted and unformed
    devices ignore pulses (and keep relaxing); every device counts them. A device that
    switches starts from its state clipped to [0, 1] and is back in its window
    (UNBOUND cleared).
    """
    sd = 1 if drive.size > 1 else 0
    up = polarity > 0
    step = c[C_SET_STEP] if up else c[C_RESET_STEP]
    gamma = c[C_SET_GAMMA] if up else c[C_RESET_GAMMA]
    linear = gamma == 1.0
    m = pairs_per_device(count)
    for k in prange(n):
        i = device(idx, k)
        pulse_count[i] += count
        if flags[i] & IGNORES_PULSES or not formed[i]:
            continue
        d = drive[k * sd] * sens[i]
        if d <= _ZERO:
            continue
        rate = step * d
        lo, hi = g_lo[i], g_hi[i]
        span = hi - lo
        x = (_relaxed(i, g_prog, event, relax, g_lo, g_hi, flags, log_t) - lo) / span
        x = min(max(x, _ZERO), _ONE)
        flags[i] &= _KEEP_BOUND
        base = k * m
        z_relax, z_next = normal_pair(key, base)
        for p in range(count):
            z, z_next = pulse_normal(key, base, p, z_next)
            room = (_ONE - x) if up else x
            if not linear:
                room = room**gamma
            f = _ONE - np.float32(math.exp(-rate * max(_ONE + c[C_C2C] * z, _ZERO)))
            x = x + f * room if up else x - f * room
            x = min(max(x, _ZERO), _ONE)
        g = np.float32(lo + x * span)
        g_prog[i] = g
        event[i] = ev
        relax[i] = _slope(g, lo, span, z_relax, c)


@njit(cache=True, nogil=True, parallel=True)
def form_kernel(
    idx,
    n,
    amplitude,
    width,
    count,
    compliance,
    ev,
    c,
    key,
    g_prog,
    event,
    relax,
    g_lo,
    g_hi,
    flags,
    formed,
    v_form,
    i_short,
):
    """Form the unformed devices among the selected ones that a polarity +1 pulse train
    of ``amplitude`` (V) and ``width`` (s; each length 1 or n) reaches; return how many.

    Forming happens when amplitude >= v_form[i] - per_decade log10(count width /
    form_width_ref) (time-dependent breakdown: longer stress forms at lower voltage).
    Stuck-off devices never form. A formed device holds programming event ``ev`` and is
    flagged UNBOUND (outside its window until its next switching pulse). With the
    compliance current ``compliance`` (A) at most i_short[i], its conductance is
    compliance / form_v_c exp(form_spread z0) with the usual relaxation slope (normal
    z1); above i_short[i] it is over-formed: a permanent short at g_short
    exp(short_spread z0), flagged SHORTED. Device k draws normal pair k.
    """
    sa = 1 if amplitude.size > 1 else 0
    sw = 1 if width.size > 1 else 0
    g_formed = compliance / c[C_FORM_V_C]
    done = 0
    for k in prange(n):
        i = device(idx, k)
        if formed[i] or flags[i] & STUCK_OFF:
            continue
        stress = width[k * sw] * count / c[C_FORM_WIDTH_REF]
        v_eff = v_form[i] - c[C_FORM_PER_DECADE] * math.log10(stress)
        if amplitude[k * sa] < v_eff:
            continue
        z0, z1 = normal_pair(key, k)
        formed[i] = True
        event[i] = ev
        if compliance > i_short[i]:
            g_prog[i] = np.float32(c[C_G_SHORT] * math.exp(c[C_SHORT_SPREAD] * z0))
            relax[i] = _ZERO
            flags[i] |= SHORTED | UNBOUND
        else:
            g = np.float32(g_formed * math.exp(c[C_FORM_SPREAD] * z0))
            lo, span = g_lo[i], g_hi[i] - g_lo[i]
            g_prog[i] = g
            relax[i] = _slope(g, lo, span, z1, c)
            flags[i] |= UNBOUND
        done += 1
    return done
