"""Compiled RRAM kernels against slow numpy references that regenerate the same normals."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from xbarlab.emulator import rram_kernels as K
from xbarlab.emulator.rng import fill_normals
from xbarlab.emulator.rram import RRAMArray, _consts
from xbarlab.emulator.rram_params import RRAMParams

KEY = np.uint64(0x1234_5678_9ABC_DEF0)


def stream(n: int) -> np.ndarray:
    z = np.empty(n, dtype=np.float32)
    fill_normals(KEY, z)
    return z


@pytest.fixture
def chip():
    """A 30 x 40 chip with devices spread over the window and over programming times."""
    c = RRAMArray(30, 40, RRAMParams(set_gamma=1.5, reset_gamma=0.7, pristine=False), seed=3)
    rng = np.random.default_rng(1)
    for t, polarity in ((5.0, 1), (50.0, 1), (500.0, -1)):
        c.clock.sleep(t)
        sel = np.flatnonzero(rng.random(c.size) < 0.5)
        c.pulse(sel, np.array([1.2]), np.array([100e-9]), int(rng.integers(1, 6)), polarity)
    c.clock.sleep(100.0)
    return c


def relaxed_ref(c: RRAMArray, idx, now):
    dt = np.maximum(now - c.t_prog[idx], 0.0)
    g = c.g_prog[idx] + c.relax[idx] * np.log10(1 + dt / c.params.relax_t0)
    return np.clip(g, c.g_lo[idx], c.g_hi[idx])


def test_read_kernel_matches_reference(chip):
    idx = np.flatnonzero(np.random.default_rng(2).random(chip.size) < 0.6)
    log_t = chip._table(chip.clock.now())
    out = np.empty(idx.size, np.float32)
    noise = np.float32(chip.params.read_noise)
    state = (chip.g_prog, chip.event, chip.relax, chip.g_lo, chip.g_hi, chip.flags, log_t)
    K.read_kernel(idx, idx.size, KEY, noise, *state, out)
    g = relaxed_ref(chip, idx, chip.clock.now())
    assert_allclose(out, g * (1 + chip.params.read_noise * stream(idx.size)), rtol=2e-5)


def test_mean_sigma_kernel_matches_reference(chip):
    g, s = chip.conductance()
    ref = relaxed_ref(chip, np.arange(chip.size), chip.clock.now())
    assert_allclose(g.ravel(), ref, rtol=2e-5)
    assert_allclose(s.ravel(), ref * chip.params.read_noise, rtol=2e-5)


def pulse_ref(c: RRAMArray, idx, polarity, drive, count):
    """The soft-bounds update of rram_kernels.pulse_kernel written out in float64."""
    p = c.params
    m = K.pairs_per_device(count)
    z = stream(idx.size * 2 * m).reshape(idx.size, 2 * m).astype(np.float64)
    g0 = relaxed_ref(c, idx, c.clock.now())
    lo, hi = c.g_lo[idx].astype(np.float64), c.g_hi[idx].astype(np.float64)
    x = (g0 - lo) / (hi - lo)
    rate = (p.set_step if polarity > 0 else p.reset_step) * drive * c.sens[idx]
    gamma = p.set_gamma if polarity > 0 else p.reset_gamma
    for j in range(count):
        f = 1 - np.exp(-rate * np.maximum(1 + p.c2c * z[:, j + 1], 0))
        room = (1 - x) ** gamma if polarity > 0 else x**gamma
        x = np.clip(x + polarity * f * room, 0, 1)
    g = lo + x * (hi - lo)
    relax = p.relax_rate * (lo + p.relax_eq * (hi - lo) - g) + p.relax_std * (hi - lo) * z[:, 0]
    stuck = (c.flags[idx] & K.STUCK) != 0
    return np.where(stuck, c.g_prog[idx], g), np.where(stuck, c.relax[idx], relax)


@pytest.mark.parametrize(("polarity", "count"), [(1, 1), (1, 4), (-1, 3)])
def test_pulse_kernel_matches_reference(chip, polarity, count):
    chip.flags[:7] = K.STUCK_ON  # some stuck devices among the selected
    idx = np.flatnonzero(np.random.default_rng(4).random(chip.size) < 0.5)
    drive = np.array([0.8], np.float32)
    g_ref, relax_ref = pulse_ref(chip, idx, polarity, 0.8, count)
    before = chip.pulse_count.copy()
    log_t = chip._table(chip.clock.now())
    state = (chip.g_prog, chip.event, chip.relax, chip.g_lo, chip.g_hi, chip.sens)
    ev = chip._new_event(chip.clock.now())
    K.pulse_kernel(
        idx, idx.size, polarity, drive, count, ev, log_t, _consts(chip.params), KEY,
        *state, chip.flags, chip.formed, chip.pulse_count,
    )  # fmt: skip
    assert_allclose(chip.g_prog[idx], g_ref, rtol=2e-4)
    assert_allclose(chip.relax[idx], relax_ref, rtol=2e-3, atol=1e-12)
    assert_array_equal(chip.pulse_count[idx] - before[idx], count)
    moved = (chip.flags[idx] & K.STUCK) == 0
    assert np.all(chip.event[idx][moved] == ev)
    assert np.all(chip.event[idx][~moved] != ev)


def test_unformed_devices_ignore_pulses():
    c = RRAMArray(4, 5, RRAMParams(pristine=False), seed=1)
    c.formed[:10] = False
    g0 = c.g_prog.copy()
    c.pulse(None, np.array([1.2]), np.array([100e-9]), count=5, polarity=1)
    assert_array_equal(c.g_prog[:10], g0[:10])
    assert np.all(c.g_prog[10:] > g0[10:])
    assert np.all(c.pulse_count == 5)


def test_time_table_is_log10_of_time_since_the_event():
    t = K.time_table(np.array([0.0, 9.0, 10.0, 20.0]), 10.0, 1.0)
    assert_allclose(t, [np.log10(11.0), np.log10(2.0), 0.0, 0.0], rtol=1e-6)
