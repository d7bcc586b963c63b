"""Compiled kernels of the PCM device model: pure functions of state arrays.

Each kernel works on the flattened struct-of-arrays state of one array and on
``n`` selected devices: ``idx[k]`` are their flat indices, or ``idx`` is empty and
the selection is all devices in order (no index array of 8 bytes per device).
Randomness comes in as a 64-bit ``key`` drawn by the caller from the chip's
seeded Generator; normals are computed in the kernel with
:mod:`xbarlab.emulator.rng`, so kernels are deterministic, independent of thread
count, and testable against numpy references that regenerate the same normals
(tests/emulator/test_pcm_kernels.py).

Time enters through programming *events*: every device stores the id of the
pulse call that last programmed it, and the caller passes per-event tables
(:func:`time_tables`) of the drift log-time and the 1/f noise width. All devices
programmed by one call share those, so a read costs one ``exp`` per device
instead of three logarithms.

Post-programming relaxation enters the same way: per event a progress ``h`` in [0, 1]
(:func:`relax_progress`); device ``i`` of event ``e`` relaxes by the relative amount
``h[e] (relax_mean + relax_std z_i)``, with ``z_i`` the first normal of
``normal_pair(ekey, i)`` and ``ekey`` a hash of the chip's relaxation key and the time of
the device's programming event (:func:`event_keys`). So ``z`` is a pure function of the
saved state (no state of its own); the chip keeps it per device in ``rz`` (written by
the pulse kernel for the devices it programs, rebuilt by :func:`relax_z_kernel` after a
state restore) so a read costs one multiply-add more, not a normal.

Conventions: conductances float32 in S, times float64 in s. Per-device pulse
parameters (``amp``, ``drive``) have length 1 (same for all) or len(idx).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from xbarlab.emulator.device_kernels import device, pairs_per_device, pulse_normal
from xbarlab.emulator.rng import normal_pair, splitmix64

STUCK_SET = np.uint8(1)
STUCK_RESET = np.uint8(2)
STUCK = np.uint8(3)
#: endurance failure mode of the device: sticks at SET (bit set) or at RESET
WEARS_TO_SET = np.uint8(4)

# Model constants are passed as one float32 vector (see pcm._consts) in this order;
# float32 keeps the per-device math in single precision (faster exp/log).
C_G_MAX, C_G_MIN, C_SET_STEP, C_SET_EXP, C_SET_C2C = 0, 1, 2, 3, 4
C_V_RESET, C_NU_SLOPE, C_NU_OFFSET, C_NU_MIN, C_NU_MAX = 5, 6, 7, 8, 9
C_NUS_SLOPE, C_NUS_OFFSET, C_NUS_MIN, C_NUS_MAX = 10, 11, 12, 13
C_QS_COEFF, C_QS_EXP, C_QS_MAX, C_RESET_MEAN, C_RESET_STD = 14, 15, 16, 17, 18
C_RELAX_MEAN, C_RELAX_STD = 19, 20
N_CONSTS = 21
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


def time_tables(
    event_times: np.ndarray, now: float, t0: float, t_read: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per programming event: drift log-time and 1/f noise width at time ``now``.

    log_t[e] = ln(max(dt, t0)/t0), so G = G_prog exp(-nu log_t) = G_prog (dt/t0)^-nu
    after t0 and G_prog before (the published law is referenced at t0).
    width[e] = sqrt(ln((dt + t_read)/(2 t_read))), 0 for dt <= t_read.
    """
    dt = now - event_times
    log_t = np.log(np.maximum(dt, t0) / t0).astype(np.float32)
    arg = np.maximum((dt + t_read) / (2.0 * t_read), 1.0)
    width = np.sqrt(np.log(arg)).astype(np.float32)
    return log_t, width


def relax_progress(event_times: np.ndarray, now: float, tau: float, t_end: float) -> np.ndarray:
    """Per programming event: relaxation progress at time ``now`` (float32).

    h[e] = clip(ln(1 + dt/tau) / ln(1 + t_end/tau), 0, 1) with dt = now - t_event: the
    relaxation grows with log time and is complete at t_end. ``tau`` = 0 disables
    relaxation (h = 0).
    """
    times = np.asarray(event_times, dtype=np.float64)
    if tau <= 0:
        return np.zeros(times.size, np.float32)
    dt = np.maximum(now - times, 0.0)
    return np.minimum(np.log1p(dt / tau) / np.log1p(t_end / tau), 1.0).astype(np.float32)


def event_keys(key, event_times: np.ndarray) -> np.ndarray:
    """Relaxation key of each event: SplitMix64(key, bit pattern of its time) (uint64)."""
    times = np.ascontiguousarray(event_times, dtype=np.float64)
    return _event_keys(np.uint64(key), times.view(np.uint64))


@njit(cache=True)
def _event_keys(key, bits):
    out = np.empty(bits.size, dtype=np.uint64)
    for e in range(bits.size):
        out[e] = splitmix64(key, bits[e])
    return out


@njit(cache=True, inline="always")
def _relax_z(ekey, i):
    return normal_pair(ekey, np.uint64(i))[0]


@njit(cache=True, nogil=True, parallel=True)
def relax_z_kernel(event, ekeys, rz):
    """rz[i] = first normal of normal_pair(ekeys[event[i]], i) for every device."""
    for i in prange(event.size):
        rz[i] = _relax_z(ekeys[event[i]], i)


@njit(cache=True, inline="always")
def _relaxed(i, e, g, relax, rz, c):
    """G times the device's relaxation factor 1 + h (relax_mean + relax_std z)."""
    h = relax[e]
    if h == _ZERO:
        return g
    return g * (_ONE + h * (c[C_RELAX_MEAN] + c[C_RELAX_STD] * rz[i]))


@njit(cache=True, inline="always")
def _clip(x, lo, hi):
    return min(max(x, lo), hi)


@njit(cache=True, inline="always")
def _read_one(i, z, g_prog, event, nu, q_s, log_t, width, relax, rz, c):
    e = event[i]
    g = _relaxed(i, e, g_prog[i] * math.exp(-nu[i] * log_t[e]), relax, rz, c)
    return g + g * q_s[i] * width[e] * z


@njit(cache=True, nogil=True, parallel=True)
def read_kernel(idx, n, key, g_prog, event, nu, q_s, log_t, width, relax, rz, c, out):
    """out[k] = G(t) (1 + sigma_rel z) for selected device k; z from normal pair k // 2.

    G(t) is the drifted and relaxed conductance (``relax``: relax_progress; ``rz``: the
    devices' relaxation normals; ``c``: model constants).
    """
    for p in prange((n + 1) // 2):
        z0, z1 = normal_pair(key, p)
        for j in range(2):
            k = 2 * p + j
            if k < n:
                i = device(idx, k)
                out[k] = _read_one(
                    i, z0 if j == 0 else z1, g_prog, event, nu, q_s, log_t, width, relax, rz, c
                )


@njit(cache=True, nogil=True, parallel=True)
def mean_sigma_kernel(g_prog, event, nu, q_s, log_t, width, relax, rz, c, g_out, s_out):
    """Noise-free drifted and relaxed conductance and absolute read-noise std of every device."""
    for i in prange(g_prog.size):
        e = event[i]
        g = _relaxed(i, e, g_prog[i] * math.exp(-nu[i] * log_t[e]), relax, rz, c)
        g_out[i] = g
        s_out[i] = g * q_s[i] * width[e]


@njit(cache=True, inline="always")
def _reprogrammed(i, g, ev, c, z_nu, g_prog, event, nu, q_s):
    """Store a freshly programmed conductance: restart drift, draw nu, update Q_s."""
    g = np.float32(g)  # single precision from here on: logf/expf
    g_prog[i] = g
    event[i] = ev
    lnr = math.log(max(g, c[C_G_MIN]) / c[C_G_MAX])
    nu_mean = _clip(c[C_NU_SLOPE] * lnr + c[C_NU_OFFSET], c[C_NU_MIN], c[C_NU_MAX])
    nu_std = _clip(c[C_NUS_SLOPE] * lnr + c[C_NUS_OFFSET], c[C_NUS_MIN], c[C_NUS_MAX])
    nu[i] = max(nu_mean + nu_std * z_nu, _ZERO)
    q_s[i] = min(c[C_QS_COEFF] * math.exp(-c[C_QS_EXP] * lnr), c[C_QS_MAX])


@njit(cache=True, nogil=True, parallel=True)
def pulse_kernel(
    idx,
    n,
    amp,
    drive,
    count,
    ev,
    log_t,
    relax,
    rz,
    zkey,
    c,
    key,
    g_prog,
    event,
    nu,
    q_s,
    g_sat,
    sens,
    flags,
    cycles_left,
    pulse_count,
):
    """Apply ``count`` identical pulses to each selected device; programming event ``ev``.

    |amp| >= v_reset: RESET (melt-quench to near g_min, restart drift, one endurance
    cycle per pulse). Otherwise ``count`` partial-crystallisation steps with mean
    set_step * g_sat * sens * drive * (1 - G/g_sat)^set_state_exponent, where ``drive``
    (>= 0) already holds the amplitude and width dependence. ``log_t`` and ``relax`` are
    the drift and relaxation tables at the pulse's start: SET steps start from the
    drifted and relaxed conductance. Every device the call programs gets its new
    relaxation normal rz[i] from ``zkey``, the relaxation key of event ``ev``. Device k
    draws normals j = 0..count from pairs k * pairs_per_device(count) + j // 2: normal 0
    draws nu, normal 1 the RESET level or the spread of SET step 0, normal p + 1 the
    spread of SET step p.
    Stuck devices ignore pulses; every device counts them.
    """
    sa = 1 if amp.size > 1 else 0  # stride: one value for all, or one per device
    sd = 1 if drive.size > 1 else 0
    linear = c[C_SET_EXP] == 1.0
    m = pairs_per_device(count)
    for k in prange(n):
        i = device(idx, k)
        pulse_count[i] += count
        if flags[i] & STUCK:
            continue
        base = k * m
        z_nu, z_next = normal_pair(key, base)
        if abs(amp[k * sa]) >= c[C_V_RESET]:
            _reset_device(
                i, count, ev, c, z_nu, z_next, g_prog, event, nu, q_s, g_sat, flags, cycles_left
            )
            rz[i] = _relax_z(zkey, i)
            continue
        d = drive[k * sd] * sens[i]
        if d <= _ZERO:
            continue
        gs = g_sat[i]
        e = event[i]
        g = _relaxed(i, e, g_prog[i] * math.exp(-nu[i] * log_t[e]), relax, rz, c)
        for p in range(count):
            z, z_next = pulse_normal(key, base, p, z_next)
            frac = max(_ONE - g / gs, _ZERO)
            if not linear:
                frac = frac ** c[C_SET_EXP]
            mean = c[C_SET_STEP] * gs * d * frac
            g = _clip(g + mean * (_ONE + c[C_SET_C2C] * z), c[C_G_MIN], gs)
        _reprogrammed(i, g, ev, c, z_nu, g_prog, event, nu, q_s)
        rz[i] = _relax_z(zkey, i)


@njit(cache=True, inline="always")
def _reset_device(
    i, count, ev, c, z_nu, z_level, g_prog, event, nu, q_s, g_sat, flags, cycles_left
):
    left = cycles_left[i]
    if left <= count:
        cycles_left[i] = 0
        if flags[i] & WEARS_TO_SET:
            flags[i] |= STUCK_SET
            _reprogrammed(i, g_sat[i], ev, c, z_nu, g_prog, event, nu, q_s)
            return
        flags[i] |= STUCK_RESET
    else:
        cycles_left[i] = left - count
    g = max(c[C_RESET_MEAN] + c[C_RESET_STD] * z_level, c[C_G_MIN])
    _reprogrammed(i, g, ev, c, z_nu, g_prog, event, nu, q_s)
