"""Post-programming relaxation of the emulated PCM (pcm_params: relax_*), against its law.

The law, written out again from the PCMParams docstring: a device programmed at t_p
reads G_drift(t) (1 + h(t - t_p) (relax_mean + relax_std z)), z ~ N(0, 1) per device
and programming event, h(dt) = min(ln(1 + dt/tau) / ln(1 + t_end/tau), 1).
"""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.emulator import PCMArray, PCMParams

SPEC = "emulator:pcm?rows=100&cols=100&seed=21&stuck_set_fraction=0&stuck_reset_fraction=0"


def h_law(dt, p: PCMParams):
    return np.minimum(np.log1p(dt / p.relax_tau) / np.log1p(p.relax_t_end / p.relax_tau), 1.0)


def _set_all(xbar, amplitude=1.0, count=3):
    sp = xbar.info.set_pulse
    xbar.pulse(None, polarity=sp.polarity, amplitude=amplitude, width=sp.width, count=count)


def test_relaxation_spread_grows_with_log_time_and_settles():
    xbar = open_crossbar(SPEC)
    chip, p = xbar.chip, xbar.chip.params
    assert p.relax_std > 0 and p.relax_t_end < p.t0  # relaxation ends before drift starts
    _set_all(xbar)
    g_prog = chip.g_prog.reshape(chip.shape).astype(np.float64)
    t_p = chip.t_prog.max()
    stds, means = [], []
    for dt in (0.01, 0.1, 1.0, 10.0, 15.0):
        xbar.clock.sleep(t_p + dt - xbar.clock.now())
        g, _ = chip.conductance()  # before t0: no drift, only relaxation
        rel = g / g_prog - 1
        h = h_law(dt, p)
        assert rel.mean() == pytest.approx(h * p.relax_mean, abs=0.1 * h * p.relax_std + 1e-6)
        assert rel.std() == pytest.approx(h * p.relax_std, rel=0.05), dt
        stds.append(rel.std())
        means.append(rel.mean())
    assert stds[0] < stds[1] < stds[2] < stds[3]  # grows with log time
    assert stds[3] == pytest.approx(stds[4], rel=1e-6)  # complete after t_end


def test_relaxation_is_redrawn_per_programming_event_and_independent_of_neighbours():
    xbar = open_crossbar(SPEC)
    chip, p = xbar.chip, xbar.chip.params
    _set_all(xbar)
    xbar.clock.sleep(30.0)
    first = chip.conductance()[0] / chip.g_prog.reshape(chip.shape) - 1
    _set_all(xbar, count=1)
    xbar.clock.sleep(15.0)
    second = chip.conductance()[0] / chip.g_prog.reshape(chip.shape) - 1
    r = np.corrcoef(first.ravel(), second.ravel())[0, 1]
    assert abs(r) < 0.05  # a new pulse draws a new relaxation
    r_neighbour = np.corrcoef(first[:, :-1].ravel(), first[:, 1:].ravel())[0, 1]
    assert abs(r_neighbour) < 0.05
    assert first.std() == pytest.approx(p.relax_std, rel=0.05)


def test_relaxation_is_deterministic_per_seed_and_survives_save_restore():
    a, b = PCMArray(30, 30, seed=4), PCMArray(30, 30, seed=4)
    for chip in (a, b):
        chip.pulse(None, np.array([1.0]), np.array([50e-9]), count=2)
        chip.clock.sleep(0.5)
    np.testing.assert_array_equal(a.conductance()[0], b.conductance()[0])
    saved = a.get_state()
    c = PCMArray(30, 30, seed=4)
    c.set_state(saved)
    for chip in (a, c):
        chip.clock.sleep(2.0)  # still relaxing
    np.testing.assert_array_equal(a.conductance()[0], c.conductance()[0])
    np.testing.assert_array_equal(a.read(), c.read())
    other = PCMArray(30, 30, seed=5)
    other.set_state({**saved, "meta": {**saved["meta"], "seed": 5}})
    assert not np.array_equal(a.conductance()[0], other.conductance()[0])


def test_relaxation_off_leaves_the_drift_law():
    xbar = open_crossbar(SPEC + "&relax_mean=0&relax_std=0")
    chip = xbar.chip
    _set_all(xbar)
    xbar.clock.sleep(5.0)
    g, _ = chip.conductance()
    np.testing.assert_array_equal(g.ravel(), chip.g_prog)


def test_verify_read_right_after_a_pulse_carries_read_noise():
    xbar = open_crossbar(SPEC)
    chip, p = xbar.chip, xbar.chip.params
    _set_all(xbar)
    g, _ = chip.conductance()
    r = xbar.read()
    # programmed at the end of the pulse; read after the trailing gap, mid-way through a read
    dt = p.t_pulse_gap + 0.5 * p.t_array_read
    width = np.sqrt(np.log((dt + p.t_read) / (2 * p.t_read)))
    z = (r - g) / (g * chip.q_s.reshape(chip.shape) * width)
    assert z.std() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize(
    "changes, name",
    [
        ({"relax_std": -0.1}, "relax_std"),
        ({"relax_mean": 0.7}, "relax_mean"),
        ({"relax_t_end": 0.0}, "relax_t_end"),
    ],
)
def test_bad_relaxation_parameters_are_refused(changes, name):
    from xbarlab.errors import ConfigError

    with pytest.raises(ConfigError, match=name):
        PCMParams(**changes)
