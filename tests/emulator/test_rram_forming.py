"""Forming of pristine RRAM devices: the pristine state, the forming-voltage law, the
compliance-set formed state, over-forming into shorts, the form kernel against a numpy
reference, state round trips and the backend's compliance setting."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import norm

from xbarlab.chipdrivers import open_crossbar
from xbarlab.emulator import rram_kernels as K
from xbarlab.emulator.rng import fill_normals
from xbarlab.emulator.rram import RRAMArray
from xbarlab.emulator.rram_params import FULL_RESET_FRACTION, RRAMParams
from xbarlab.errors import ConfigError, SafetyError

P = RRAMParams()
#: the forming reference width: a pulse of this width forms at v_form exactly
W_FORM = np.array([P.form_width_ref])
W = np.array([100e-9])
KEY = np.uint64(0x0F0F_1234_5678_9ABC)
#: the chip's full RESET pulse height (info.reset_pulse of the backend)
V_RESET = P.amplitude_for(-1, FULL_RESET_FRACTION)


def form_all(c: RRAMArray, v: float = 4.0) -> None:
    c.pulse(None, np.array([v]), W_FORM, polarity=1)


def test_pristine_devices_are_high_resistance_with_read_noise():
    c = RRAMArray(100, 100, seed=1)
    assert not c.formed.any() and c.pristine.all()
    g_true, sigma = c.conductance()
    log_g = np.log(g_true.ravel())
    assert np.exp(np.median(log_g)) == pytest.approx(P.g_pristine, rel=0.03)
    assert log_g.std() == pytest.approx(P.g_pristine_spread, rel=0.03)
    assert g_true.max() < P.g_min  # far below the window: 1-10+ MOhm
    reads = np.stack([c.read() for _ in range(50)])
    rel = (reads / g_true.ravel() - 1).std()
    assert rel == pytest.approx(P.read_noise, rel=0.03)


def test_pristine_devices_ignore_set_and_reset_below_the_forming_voltage():
    c = RRAMArray(50, 50, seed=2)
    g0 = c.g_prog.copy()
    c.pulse(None, np.array([1.8]), W_FORM, count=20, polarity=1)  # SET, below v_form
    c.pulse(None, np.array([3.9]), W_FORM, count=5, polarity=-1)  # RESET never forms
    c.pulse(None, np.array([1.2]), W, count=100, polarity=1)
    assert_array_equal(c.g_prog, g0)
    assert not c.formed.any()
    assert np.all(c.pulse_count == 125)
    # the same 2.0 V SET pulse on a formed chip switches every working device
    formed = RRAMArray(50, 50, RRAMParams(pristine=False), seed=2)
    g1 = formed.g_prog.copy()
    formed.pulse(None, np.array([2.0]), W, polarity=1)
    assert np.mean(formed.g_prog > g1) > 0.99


def test_forming_voltages_follow_the_normal_law_and_a_ramp_forms_each_device_at_its_own():
    c = RRAMArray(200, 200, RRAMParams(stuck_off_fraction=0.0, stuck_on_fraction=0.0), seed=3)
    assert c.v_form.mean() == pytest.approx(P.v_form, abs=0.005)
    assert c.v_form.std() == pytest.approx(P.v_form_std, rel=0.02)
    small = RRAMArray(40, 50, RRAMParams(stuck_off_fraction=0.0), seed=3)
    first = np.full(small.size, np.nan)
    for v in np.round(np.arange(1.3, 4.0001, 0.05), 6):
        before = small.formed.copy()
        small.pulse(np.flatnonzero(~before), np.array([v]), W_FORM, polarity=1)
        first[small.formed & ~before] = v
    assert small.formed.all()
    # formed at the first ramp voltage at or above its forming voltage (float32 slack)
    assert np.all(first >= small.v_form - 1e-6)
    assert np.all(first - 0.05 < small.v_form + 1e-6)


def test_longer_stress_forms_at_lower_voltage():
    """v_eff = v_form - v_form_per_decade log10(count width / form_width_ref)."""
    c = RRAMArray(1, 400, RRAMParams(stuck_off_fraction=0.0), seed=4)
    v = c.v_form.astype(np.float64) - 0.05  # 0.05 V below each device's v_form
    c.pulse(None, v, W_FORM, polarity=1)
    assert not c.formed.any()
    c.pulse(None, v, W_FORM, count=10, polarity=1)  # one decade more stress: 0.1 V lower
    assert c.formed.all()
    d = RRAMArray(1, 400, RRAMParams(stuck_off_fraction=0.0), seed=4)
    d.pulse(None, d.v_form.astype(np.float64) + 0.05, W_FORM / 10, polarity=1)
    assert not d.formed.any()  # a tenth of the width needs 0.1 V more


def test_formed_conductance_is_compliance_over_v_c_with_its_spread():
    for compliance in (10e-6, 20e-6, 40e-6):
        c = RRAMArray(100, 100, RRAMParams(stuck_on_fraction=0, stuck_off_fraction=0), seed=5)
        c.set_compliance(compliance)
        form_all(c)
        g, _ = c.conductance()
        log_g = np.log(g.ravel())
        assert np.exp(np.median(log_g)) == pytest.approx(compliance / P.form_v_c, rel=0.01)
        assert log_g.std() == pytest.approx(P.form_spread, rel=0.03)
        assert not c.shorted.any()
    # the default compliance forms above the window (<= 50 kOhm), the first RESET brings
    # every device into it, and the device then switches normally
    assert np.all(g.ravel() > 1 / 50e3) and np.all(g.ravel() > c.g_hi)
    c.pulse(None, np.array([V_RESET]), W, polarity=-1)
    g_reset, _ = c.conductance()
    assert np.all(g_reset.ravel() <= c.g_hi) and np.all(g_reset.ravel() >= c.g_lo)
    assert not np.any(c.flags & K.UNBOUND)
    assert np.mean(g_reset.ravel() < 0.2 * g.ravel()) > 0.995  # a few miss (c2c: f = 0)
    c.pulse(None, np.array([P.v_set_ref]), W, count=5, polarity=1)
    assert np.mean(c.conductance()[0] > g_reset) > 0.995


def test_too_much_compliance_over_forms_devices_into_shorts_that_ignore_reset():
    c = RRAMArray(100, 100, RRAMParams(stuck_on_fraction=0, stuck_off_fraction=0), seed=6)
    compliance = 400e-6
    c.set_compliance(compliance)
    form_all(c)
    expected = c.i_short < compliance
    assert_array_equal(c.shorted.ravel(), expected)
    # the per-device threshold is log-normal around i_short
    share = norm.cdf(np.log(compliance / P.i_short) / P.i_short_spread)
    assert expected.mean() == pytest.approx(share, abs=0.005)
    g, _ = c.conductance()
    g_short = g.ravel()[expected]
    assert np.exp(np.median(np.log(g_short))) == pytest.approx(P.g_short, rel=0.02)
    assert np.all(1 / g_short < 2e3 * 2)  # about 1 kOhm
    c.pulse(None, np.array([2.5]), W, count=10, polarity=-1)
    c.pulse(None, np.array([2.5]), W, count=10, polarity=1)
    assert_array_equal(c.conductance()[0].ravel()[expected], g_short)
    # the default compliance shorts nothing on the same devices
    d = RRAMArray(100, 100, RRAMParams(stuck_on_fraction=0, stuck_off_fraction=0), seed=6)
    form_all(d)
    assert not d.shorted.any()


def test_stuck_off_devices_never_form_and_stuck_on_devices_form_then_ignore_pulses():
    c = RRAMArray(100, 100, RRAMParams(stuck_on_fraction=0.05, stuck_off_fraction=0.05), seed=7)
    on, off = c.flags & K.STUCK == K.STUCK_ON, c.flags & K.STUCK == K.STUCK_OFF
    form_all(c)
    assert_array_equal(c.formed, ~off)
    g_formed = c.conductance()[0].ravel()
    c.pulse(None, np.array([V_RESET]), W, polarity=-1)
    g = c.conductance()[0].ravel()
    assert_array_equal(g[on], g_formed[on])  # stuck at SET: RESET does nothing
    assert np.all(g[off] < P.g_min)  # still pristine
    # every working device but the rare pulse whose c2c draw gives f = 0
    assert np.mean(g[~on & ~off] < 0.5 * g_formed[~on & ~off]) > 0.995


def test_pristine_false_gives_the_formed_chip_with_the_same_draws():
    formed = RRAMArray(20, 30, RRAMParams(pristine=False), seed=8)
    pristine = RRAMArray(20, 30, seed=8)
    assert formed.formed.all() and not np.any(formed.flags & K.UNBOUND)
    for name in ("g_lo", "g_hi", "sens", "v_form", "i_short"):
        assert_array_equal(getattr(formed, name), getattr(pristine, name))
    assert_array_equal(formed.flags & K.STUCK, pristine.flags & K.STUCK)


def test_forming_is_bit_identical_per_seed_and_the_state_keeps_it():
    def run(seed):
        c = RRAMArray(16, 12, seed=seed)
        c.set_compliance(250e-6)
        c.pulse(np.arange(100), np.array([2.9]), W_FORM, polarity=1)
        return c

    a, b, other = run(9), run(9), run(10)
    assert_array_equal(a.read(), b.read())
    assert not np.array_equal(a.formed, other.formed)
    state = a.get_state()
    assert state["meta"]["compliance_A"] == 250e-6
    after = (a.read(), a.formed.copy())
    a.set_compliance(1e-6)
    form_all(a)
    a.set_state(state)
    assert a.compliance == 250e-6
    assert_array_equal(a.read(), after[0])
    assert_array_equal(a.formed, after[1])
    assert a._n_pristine == np.count_nonzero(~after[1])
    bad = {**state, "meta": {**state["meta"], "compliance_A": -1.0}}
    with pytest.raises(ConfigError, match="compliance"):
        a.set_state(bad)
    with pytest.raises(ConfigError, match="compliance current"):
        a.set_compliance(0.0)


def test_form_kernel_matches_a_numpy_reference():
    c = RRAMArray(30, 40, RRAMParams(stuck_on_fraction=0.02, stuck_off_fraction=0.02), seed=11)
    idx = np.flatnonzero(np.random.default_rng(0).random(c.size) < 0.7)
    amp = np.random.default_rng(1).uniform(2.3, 3.3, idx.size)
    width = np.array([2e-6])
    compliance = 180e-6
    before = {k: v.copy() for k, v in c.state_arrays().items()}
    ev = c._new_event(0.0)
    done = K.form_kernel(
        idx, idx.size, amp, width, 3, compliance, ev, c._c, KEY, c.g_prog, c.event,
        c.relax, c.g_lo, c.g_hi, c.flags, c.formed, c.v_form, c.i_short,
    )  # fmt: skip
    z = np.empty(2 * idx.size, np.float32)
    fill_normals(KEY, z)
    z0, z1 = z[0::2].astype(np.float64), z[1::2].astype(np.float64)
    v_eff = before["v_form"][idx] - P.v_form_per_decade * np.log10(3 * 2e-6 / P.form_width_ref)
    off = before["flags"][idx] & K.STUCK_OFF != 0
    forms = (amp >= v_eff) & ~off
    assert done == forms.sum() > 100
    short = forms & (compliance > before["i_short"][idx])
    good = forms & ~short
    assert 10 < short.sum() < good.sum()
    i = idx[good]
    g = compliance / P.form_v_c * np.exp(P.form_spread * z0[good])
    assert_allclose(c.g_prog[i], g, rtol=2e-5)
    span = before["g_hi"][i] - before["g_lo"][i]
    relax = (
        P.relax_rate * (before["g_lo"][i] + P.relax_eq * span - g) + P.relax_std * span * z1[good]
    )
    assert_allclose(c.relax[i], relax, rtol=1e-4, atol=1e-12)
    g_short = P.g_short * np.exp(P.g_short_spread * z0[short])
    assert_allclose(c.g_prog[idx[short]], g_short, rtol=2e-5)
    assert np.all(c.flags[idx[short]] & K.SHORTED) and np.all(c.relax[idx[short]] == 0)
    assert np.all(c.flags[idx[forms]] & K.UNBOUND)
    assert np.all(c.event[idx[forms]] == ev) and c.formed[idx].sum() == forms.sum()
    untouched = np.setdiff1d(np.arange(c.size), idx[forms])
    for name in ("g_prog", "event", "relax", "flags", "formed"):
        assert_array_equal(c.state_arrays()[name][untouched], before[name][untouched])


def test_backend_sets_compliance_within_the_limit_and_allows_forming_pulses_to_4_V():
    with open_crossbar("emulator:rram?rows=4&cols=4&seed=1") as xbar:
        assert xbar.info.limits.max_voltage == 4.0
        forming = xbar.info.details["forming"]
        assert forming["pristine"] is True and forming["settable_compliance"] is True
        assert xbar.compliance == P.forming_compliance
        xbar.set_compliance(100e-6)
        assert xbar.chip.compliance == 100e-6
        with pytest.raises(SafetyError, match="compliance_current"):
            xbar.set_compliance(xbar.info.limits.compliance_current * 1.01)
        with pytest.raises(ConfigError, match="compliance"):
            xbar.set_compliance(-1e-6)
        assert xbar.compliance == 100e-6  # unchanged by the refused calls
        with pytest.raises(SafetyError, match="max_voltage"):
            xbar.pulse(None, polarity=1, amplitude=4.05, width=1e-6)
        xbar.pulse(None, polarity=1, amplitude=4.0, width=1e-6)
        assert xbar.chip.formed.sum() >= 15
        blob = xbar.save_state()
    with open_crossbar("emulator:rram?rows=4&cols=4&seed=1") as other:
        other.load_state(blob)
        assert other.compliance == 100e-6
    with open_crossbar("emulator:rram?rows=4&cols=4&seed=1&pristine=0") as formed:
        assert formed.chip.formed.all() and formed.info.details["forming"]["pristine"] is False


def test_warm_up_compiles_every_rram_kernel_including_forming():
    """In a fresh process (here the other tests have compiled the kernels already)."""
    import subprocess
    import sys

    code = (
        "import numba\n"
        "from xbarlab.emulator.warmup import warm_up\n"
        "from xbarlab.emulator import rram_kernels as K\n"
        "warm_up()\n"
        "ks = [getattr(K, n) for n in dir(K) if n.endswith('kernel')\n"
        "      and isinstance(getattr(K, n), numba.core.registry.CPUDispatcher)]\n"
        "print(sorted(k.py_func.__name__ for k in ks if not k.signatures), len(ks))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "4"]  # read, mean_sigma, pulse, form: all compiled
