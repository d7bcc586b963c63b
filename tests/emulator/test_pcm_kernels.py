"""Compiled PCM kernels against slow numpy references that regenerate the same normals."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from xbarlab.emulator import PCMArray, PCMParams
from xbarlab.emulator import pcm_kernels as K
from xbarlab.emulator.rng import fill_normals

KEY = np.uint64(0x1234_5678_9ABC_DEF0)


def stream(n: int) -> np.ndarray:
    z = np.empty(n, dtype=np.float32)
    fill_normals(KEY, z)
    return z


def nu_law(p: PCMParams, g):
    lnr = np.log(np.maximum(g, p.g_min) / p.g_max)
    mean = np.clip(p.nu_slope * lnr + p.nu_offset, p.nu_min, p.nu_max)
    std = np.clip(p.nu_std_slope * lnr + p.nu_std_offset, p.nu_std_min, p.nu_std_max)
    return mean, std


def q_s_law(p: PCMParams, g):
    return np.minimum(p.q_s_coeff / (np.maximum(g, p.g_min) / p.g_max) ** p.q_s_exponent, p.q_s_max)


@pytest.fixture
def chip():
    """A 40x50 chip with devices spread over the window and over programming times."""
    c = PCMArray(40, 50, seed=3)
    rng = np.random.default_rng(1)
    for t in (5.0, 50.0, 500.0):
        c.clock.sleep(t)
        sel = np.flatnonzero(rng.random(c.size) < 0.4)
        c.pulse(sel, np.array([1.2]), np.array([50e-9]), count=int(rng.integers(1, 6)))
    c.clock.sleep(1000.0)
    # a last group programmed 3 s ago: still relaxing (relax_t_end = 10 s)
    c.pulse(np.flatnonzero(rng.random(c.size) < 0.3), np.array([1.1]), np.array([50e-9]))
    c.clock.sleep(3.0)
    return c


def splitmix64_ref(key, counter):
    """SplitMix64 output ``counter`` of the stream ``key`` in numpy uint64 arithmetic."""
    with np.errstate(over="ignore"):
        z = np.uint64(key) + (np.asarray(counter, np.uint64) + np.uint64(1)) * np.uint64(
            0x9E3779B97F4A7C15
        )
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def relax_z_ref(c: PCMArray, idx):
    """Each device's relaxation normal: Box-Muller of SplitMix64(key of its event, index)."""
    ekey = splitmix64_ref(c._relax_key, c.t_prog[idx].view(np.uint64))
    bits = splitmix64_ref(ekey, np.asarray(idx, np.uint64))
    u1 = ((bits >> np.uint64(40)) + np.uint64(1)).astype(np.float64) / 2**24
    u2 = ((bits >> np.uint64(16)) & np.uint64(0xFFFFFF)).astype(np.float64) / 2**24
    return np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)


def relax_ref(c: PCMArray, idx, now):
    """Relaxation factor 1 + h (relax_mean + relax_std z) written out from pcm_params."""
    p = c.params
    dt = np.maximum(now - c.t_prog[idx], 0.0)
    h = np.minimum(np.log1p(dt / p.relax_tau) / np.log1p(p.relax_t_end / p.relax_tau), 1.0)
    return 1 + h * (p.relax_mean + p.relax_std * relax_z_ref(c, idx))


def ref_read(c: PCMArray, idx, now):
    p = c.params
    dt = now - c.t_prog[idx]
    g = c.g_prog[idx] * (np.maximum(dt, p.t0) / p.t0) ** -c.nu[idx].astype(np.float64)
    g = g * relax_ref(c, idx, now)
    width = np.sqrt(np.log(np.maximum((dt + p.t_read) / (2 * p.t_read), 1.0)))
    return g, g * c.q_s[idx] * width


def test_read_kernel_matches_reference(chip):
    idx = np.arange(3, chip.size, 2, dtype=np.intp)
    now = chip.clock.now()
    log_t, width = chip._tables(now)
    relax = chip._relax_h(now)
    out = np.empty(idx.size, dtype=np.float32)
    state = (chip.g_prog, chip.event, chip.nu, chip.q_s)
    K.read_kernel(idx, idx.size, KEY, *state, log_t, width, relax, chip._relax_z, chip._c, out)
    mean, sigma = ref_read(chip, idx, now)
    assert_allclose(out, mean + sigma * stream(idx.size), rtol=2e-5, atol=1e-12)


def test_mean_sigma_kernel_matches_reference(chip):
    g, s = chip.conductance()
    mean, sigma = ref_read(chip, np.arange(chip.size), chip.clock.now())
    assert_allclose(g.ravel(), mean, rtol=2e-5)
    assert_allclose(s.ravel(), sigma, rtol=2e-5, atol=1e-15)
    assert np.all(sigma > 0)


def ref_pulse(c: PCMArray, idx, amp, drive, count, t_start, t_end):
    """numpy version of pulse_kernel; returns the expected state arrays."""
    p = c.params
    m = K.pairs_per_device(count)
    z = stream(idx.size * 2 * m).reshape(idx.size, 2 * m)
    g_prog, nu, q_s = c.g_prog.copy(), c.nu.copy(), c.q_s.copy()
    t_prog, flags, left = c.t_prog.copy(), c.flags.copy(), c.cycles_left.astype(np.int64)
    stuck = (flags[idx] & K.STUCK) != 0
    reset = ~stuck & (np.abs(amp) >= p.v_reset)
    d = drive * c.sens[idx]
    setting = ~stuck & ~reset & (d > 0)
    g = g_prog[idx] * (np.maximum(t_start - t_prog[idx], p.t0) / p.t0) ** -nu[idx].astype(
        np.float64
    )
    g = g * relax_ref(c, idx, t_start)
    gs = c.g_sat[idx].astype(np.float64)
    for step in range(count):
        mean = p.set_step * gs * d * np.maximum(1 - g / gs, 0) ** p.set_state_exponent
        g = np.where(setting, np.clip(g + mean * (1 + p.set_c2c * z[:, step + 1]), p.g_min, gs), g)
    g_reset = np.maximum(p.reset_g_mean + p.reset_g_std * z[:, 1], p.g_min)
    worn = reset & (left[idx] <= count)
    to_set = worn & ((flags[idx] & K.WEARS_TO_SET) != 0)
    g = np.where(reset, np.where(to_set, gs, g_reset), g)
    new = setting | reset
    nu_mean, nu_std = nu_law(p, g)
    sel = idx[new]
    g_prog[sel] = g[new]
    t_prog[sel] = t_end
    nu[sel] = np.maximum(nu_mean + nu_std * z[:, 0], 0)[new]
    q_s[sel] = q_s_law(p, g)[new]
    left[idx[reset]] = np.maximum(left[idx[reset]] - count, 0)
    flags[idx[to_set]] |= K.STUCK_SET
    flags[idx[worn & ~to_set]] |= K.STUCK_RESET
    return g_prog, t_prog, nu, q_s, flags, left


@pytest.mark.parametrize("count", [1, 2, 5])
def test_pulse_kernel_matches_reference(chip, count):
    rng = np.random.default_rng(count)
    idx = np.sort(rng.choice(chip.size, 900, replace=False)).astype(np.intp)
    # per-device heights: no-op, SET range and RESET, widths around the reference
    amp = rng.choice([0.3, 0.8, 1.0, 1.4, 2.0], idx.size)
    width = rng.uniform(20e-9, 200e-9, idx.size)
    drive = chip.set_drive(amp, width).astype(np.float32)
    chip.cycles_left[idx[:50]] = rng.integers(1, 4, 50)  # some devices wear out now
    t_start = chip.clock.now()
    ev = chip._new_event(t_start + 1e-6)
    expected = ref_pulse(chip, idx, amp, drive, count, t_start, t_start + 1e-6)
    counts_before = chip.pulse_count.copy()
    log_t, _ = chip._tables(t_start)
    relax = chip._relax_h(t_start)
    assert 0 < relax[-2] < 1 and relax.max() == 1  # relaxation in progress and complete
    zkey = chip._event_key(t_start + 1e-6)
    K.pulse_kernel(
        idx,
        idx.size,
        amp,
        drive,
        count,
        ev,
        log_t,
        relax,
        chip._relax_z,
        zkey,
        chip._c,
        KEY,
        chip.g_prog,
        chip.event,
        chip.nu,
        chip.q_s,
        chip.g_sat,
        chip.sens,
        chip.flags,
        chip.cycles_left,
        chip.pulse_count,
    )
    g_prog, t_prog, nu, q_s, flags, left = expected
    assert_allclose(chip.g_prog, g_prog, rtol=5e-5, atol=1e-12)
    assert_allclose(chip.t_prog, t_prog)
    assert_allclose(chip.nu, nu, rtol=1e-4, atol=1e-6)
    assert_allclose(chip.q_s, q_s, rtol=1e-4)
    assert_array_equal(chip.flags, flags)
    assert_array_equal(chip.cycles_left, left)
    assert_array_equal(chip.pulse_count - counts_before, np.isin(np.arange(chip.size), idx) * count)
    # the kept relaxation normals are those of every device's (new) programming event
    assert_allclose(chip._relax_z, relax_z_ref(chip, np.arange(chip.size)), rtol=1e-5, atol=1e-6)


def test_time_tables_follow_the_published_law():
    t0, t_read = 20.0, 250e-9
    times = np.array([0.0, 10.0, 100.0])
    log_t, width = K.time_tables(times, 200.0, t0, t_read)
    expected = (np.array([200.0, 190.0, 100.0]) / 20) ** -0.05
    assert_allclose(np.exp(-0.05 * log_t), expected, rtol=1e-6)
    assert_allclose(width[0], np.sqrt(np.log((200 + t_read) / (2 * t_read))), rtol=1e-6)
    # before t0 no drift; within t_read no noise
    log_t, width = K.time_tables(np.array([199.0, 200.0]), 200.0, t0, t_read)
    assert_array_equal(log_t, [0, 0])
    assert width[1] == 0


def test_relax_tables_grow_with_log_time_and_saturate():
    times = np.array([0.0, 99.5, 99.9, 100.0, 200.0])
    h = K.relax_progress(times, 100.0, 0.5, 30.0)
    expected = np.log1p(np.array([100.0, 0.5, 0.1, 0.0, 0.0]) / 0.5) / np.log1p(60.0)
    assert_allclose(h, np.minimum(expected, 1.0), rtol=1e-6)
    assert h[0] == 1 and h[-1] == 0  # complete after t_end; nothing before the event
    ekey = K.event_keys(np.uint64(7), times)
    assert_array_equal(ekey, splitmix64_ref(np.uint64(7), times.view(np.uint64)))
    assert not K.relax_progress(times, 100.0, 0.0, 30.0).any()  # tau = 0: no relaxation


def test_relax_z_kernel_rebuilds_the_kept_normals(chip):
    kept = chip._relax_z.copy()
    assert_allclose(kept, relax_z_ref(chip, np.arange(chip.size)), rtol=1e-5, atol=1e-6)
    chip._relax_z[:] = 0
    chip._refresh_relax_z()
    assert_array_equal(chip._relax_z, kept)
