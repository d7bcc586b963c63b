"""The RRAM model against its laws: soft bounds, asymmetry, voltage dependence, spreads,
read noise, relaxation, defects, determinism and state round trips (large N, fixed seeds)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from xbarlab.emulator.peripherals import PRESETS as PERIPHERALS
from xbarlab.emulator.rram import RRAMArray
from xbarlab.emulator.rram_params import PRESETS, RRAMParams
from xbarlab.errors import ConfigError

W = np.array([100e-9])
#: the default device, formed (these tests are about a formed array's switching)
FORMED = RRAMParams(pristine=False)
#: no variation, noise or relaxation: every device follows the mean law exactly
CLEAN = PRESETS["ideal"].with_overrides(read_noise=0.0)


def x_of(c: RRAMArray) -> np.ndarray:
    g, _ = c.conductance()
    return (g.ravel() - c.g_lo) / (c.g_hi - c.g_lo)


def test_set_and_reset_follow_the_soft_bounds_law():
    """SET: 1 - x_n = (1 - x_0)(1 - f_set)^n; RESET: x_n = x_0 (1 - f_reset)^n."""
    p = CLEAN
    c = RRAMArray(10, 10, p, seed=1)
    x0 = x_of(c)
    f_set, f_reset = 1 - np.exp(-p.set_step), 1 - np.exp(-p.reset_step)
    c.pulse(None, np.array([p.v_set_ref]), W, count=12, polarity=1)
    x12 = x_of(c)
    assert_allclose(1 - x12, (1 - x0) * (1 - f_set) ** 12, rtol=1e-4)
    c.pulse(None, np.array([p.v_reset_ref]), W, count=7, polarity=-1)
    assert_allclose(x_of(c), x12 * (1 - f_reset) ** 7, rtol=1e-4)


def test_updates_are_asymmetric_and_state_dependent():
    """Default device: at mid-window a reference RESET moves G more than a reference SET
    (reset_step > set_step), and a SET step shrinks as G nears the upper bound."""
    p = CLEAN.with_overrides(set_step=0.05, reset_step=0.08)
    c = RRAMArray(1, 200, p, seed=2)
    c.pulse(None, np.array([p.v_set_ref]), W, count=13, polarity=1)  # x about 0.5
    x = x_of(c)
    c.pulse(None, np.array([p.v_set_ref]), W, polarity=1)
    up = x_of(c) - x
    c.pulse(None, np.array([p.v_reset_ref]), W, polarity=-1)
    down = x + up - x_of(c)
    assert np.all(down > 1.3 * up)
    c.pulse(None, np.array([p.v_set_ref]), W, count=40, polarity=1)
    x_hi = x_of(c)
    c.pulse(None, np.array([p.v_set_ref]), W, polarity=1)
    assert np.all(x_of(c) - x_hi < 0.2 * up)


def test_pulses_below_threshold_do_nothing_and_drive_grows_exponentially():
    p = CLEAN
    c = RRAMArray(1, 100, p, seed=3)
    g0 = c.g_prog.copy()
    c.pulse(None, np.array([p.v_set_th - 0.01]), W, count=50, polarity=1)
    c.pulse(None, np.array([p.v_reset_th - 0.01]), W, count=50, polarity=-1)
    assert_array_equal(c.g_prog, g0)
    rates = []
    for v in (0.9, 1.1):
        c = RRAMArray(1, 100, p, seed=3)
        x0 = x_of(c)
        c.pulse(None, np.array([v]), W, polarity=1)
        rates.append(-np.log1p(-(x_of(c) - x0) / (1 - x0)).mean())
    expected = np.expm1(np.array([0.2, 0.4]) / p.v_slope) / np.expm1(0.3 / p.v_slope)
    assert_allclose(rates, p.set_step * expected, rtol=1e-3)
    assert rates[1] / rates[0] > np.exp(0.2 / p.v_slope) * 0.95  # e-fold per v_slope


def test_longer_pulses_switch_more():
    p = CLEAN
    steps = []
    for width in (100e-9, 400e-9):
        c = RRAMArray(1, 50, p, seed=4)
        x0 = x_of(c)
        c.pulse(None, np.array([p.v_set_ref]), np.array([width]), polarity=1)
        steps.append(-np.log1p(-(x_of(c) - x0) / (1 - x0)).mean())
    assert steps[1] / steps[0] == pytest.approx(4**p.width_exponent, rel=1e-3)


def test_cycle_to_cycle_spread_of_gentle_steps_is_c2c():
    p = CLEAN.with_overrides(c2c=0.3, set_step=0.02)
    c = RRAMArray(100, 200, p, seed=5)
    x0 = x_of(c)
    c.pulse(None, np.array([p.v_set_ref]), W, polarity=1)
    rel = (x_of(c) - x0) / (1 - x0)
    assert rel.std() / rel.mean() == pytest.approx(0.3, abs=0.01)
    assert rel.mean() == pytest.approx(p.set_step, rel=0.02)


def test_device_to_device_variation_matches_the_parameters():
    p = FORMED
    c = RRAMArray(200, 200, p, seed=6)
    ok = c.flags == 0
    assert c.g_hi.mean() == pytest.approx(p.g_max, rel=0.005)
    assert c.g_hi.std() / c.g_hi.mean() == pytest.approx(p.g_max_spread, rel=0.05)
    assert c.g_lo.std() / c.g_lo.mean() == pytest.approx(p.g_min_spread, rel=0.05)
    assert np.log(c.sens).std() == pytest.approx(p.step_spread, rel=0.03)
    assert np.all(c.formed)
    x = x_of(c)[ok]
    assert x.mean() == pytest.approx(p.init_state, abs=0.002)


def test_read_noise_is_gaussian_with_the_relative_sigma():
    p = RRAMParams(pristine=False, read_noise=0.02)
    c = RRAMArray(200, 200, p, seed=7)
    g, sigma = c.conductance()
    z = ((c.read() - g.ravel()) / sigma.ravel()).astype(np.float64)
    assert z.mean() == pytest.approx(0.0, abs=0.02)
    assert z.std() == pytest.approx(1.0, abs=0.02)
    assert_allclose(sigma, 0.02 * g, rtol=1e-6)
    # independent per read
    z2 = (c.read() - g.ravel()) / sigma.ravel()
    assert np.corrcoef(z, z2)[0, 1] == pytest.approx(0.0, abs=0.025)


def test_relaxation_moves_toward_the_equilibrium_with_log_time():
    p = CLEAN.with_overrides(relax_rate=0.02, relax_eq=0.5)
    c = RRAMArray(20, 20, p, seed=8)
    c.pulse(None, np.array([1.3]), W, count=20, polarity=1)  # near the top
    g0, _ = c.conductance()
    c.clock.sleep(1e4 - c.clock.now() + c.t_prog.max())
    g1, _ = c.conductance()
    g_eq = c.g_lo + 0.5 * (c.g_hi - c.g_lo)
    expected = g0.ravel() + 0.02 * (g_eq - g0.ravel()) * np.log10(1 + 1e4)
    assert_allclose(g1.ravel(), expected, rtol=1e-4)
    assert np.all(g1 < g0)


def test_relaxation_spread_grows_with_log_time():
    p = PRESETS["ideal"].with_overrides(relax_std=0.01, relax_rate=0.0)
    c = RRAMArray(100, 100, p, seed=9)
    c.pulse(None, np.array([1.0]), W, count=14, polarity=1)
    g0, _ = c.conductance()
    spans = []
    for t in (1e2, 1e6):
        c.clock.sleep(t - (c.clock.now() - c.t_prog.max()))
        g, _ = c.conductance()
        spans.append(((g - g0).ravel() / (c.g_hi - c.g_lo)).std())
    assert spans[0] == pytest.approx(0.01 * np.log10(1 + 1e2), rel=0.05)
    assert spans[1] == pytest.approx(0.01 * np.log10(1 + 1e6), rel=0.05)


def test_stuck_devices_sit_at_a_bound_and_ignore_pulses():
    p = RRAMParams(pristine=False, stuck_on_fraction=0.05, stuck_off_fraction=0.03)
    c = RRAMArray(100, 200, p, seed=10)
    on, off = c.flags == 1, c.flags == 2
    assert on.mean() == pytest.approx(0.05, abs=0.005)
    assert off.mean() == pytest.approx(0.03, abs=0.005)
    assert_array_equal(c.stuck.ravel(), on | off)
    g_before = c.conductance()[0].ravel()
    c.pulse(None, np.array([1.6]), W, polarity=-1)
    c.pulse(None, np.array([1.0]), W, count=5, polarity=1)
    g = c.conductance()[0].ravel()
    assert_allclose(g[on], c.g_hi[on], rtol=1e-6)
    assert_allclose(g[off], c.g_lo[off], rtol=1e-6)
    assert_array_equal(g[on | off], g_before[on | off])


def test_same_seed_same_calls_give_identical_results_and_other_seeds_differ():
    def run(seed):
        c = RRAMArray(16, 12, FORMED, seed=seed)
        c.pulse(np.arange(50), np.array([1.1]), W, count=3, polarity=1)
        c.clock.sleep(100.0)
        c.pulse(np.arange(20, 90), np.array([1.3]), W, polarity=-1)
        y, _ = c.mvm(np.full((4, 16), 0.1, np.float32))
        return c.read(), y

    a, b, other = run(11), run(11), run(12)
    assert_array_equal(a[0], b[0])
    assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], other[0])


def test_state_round_trip_continues_bit_identically():
    c = RRAMArray(16, 12, FORMED, seed=13, periphery=PERIPHERALS["default"])
    c.pulse(np.arange(40), np.array([1.1]), W, count=2, polarity=1)
    state = c.get_state()
    after = [c.read(), c.mvm(np.full((2, 16), 0.1, np.float32))[0]]
    c.pulse(None, np.array([1.3]), W, polarity=-1)
    c.set_state(state)
    again = [c.read(), c.mvm(np.full((2, 16), 0.1, np.float32))[0]]
    assert_array_equal(after[0], again[0])
    assert_array_equal(after[1], again[1])
    assert set(state) >= {"g_prog", "relax", "g_lo", "g_hi", "formed", "event_times"}
    other = RRAMArray(16, 12, FORMED, seed=14)
    with pytest.raises(ConfigError, match="seed"):
        other.set_state(state)


def test_mvm_uses_the_relaxed_conductance_and_the_read_noise():
    ideal = PERIPHERALS["ideal"]
    c = RRAMArray(8, 6, FORMED, seed=15, periphery=ideal)
    c.pulse(np.arange(0, 48, 2), np.array([1.1]), W, count=6, polarity=1)
    c.clock.sleep(1000.0)
    g, sigma = c.conductance()
    x = np.random.default_rng(0).uniform(0, 0.2, (4000, 8)).astype(np.float32)
    y, _ = c.mvm(x)
    resid = (y - x @ g) / np.sqrt((x * x) @ (sigma * sigma))
    assert resid.mean() == pytest.approx(0.0, abs=0.05)
    assert resid.std() == pytest.approx(1.0, abs=0.05)


def test_state_is_38_bytes_per_device():
    c = RRAMArray(10, 10, seed=0)
    assert c.state_bytes() == 38 * 100
