"""Verify options of every algorithm, ISPP and fixed-pulse verify, programming in rounds.

Checked against the emulator's ground truth (noise-free conductance, pulse counters).
"""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.chipdrivers.patterns import levels
from xbarlab.chipdrivers.programming import ALGORITHMS, program_rounds
from xbarlab.errors import ConfigError

SPEC = "emulator:pcm?rows=48&cols=48&seed=9"


def _targets(info, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.1, 0.9, info.shape) * info.g_max).astype(np.float32)


class Spy:
    """A crossbar wrapper recording read and pulse calls."""

    def __init__(self, xbar):
        self._x = xbar
        self.reads = 0
        self.pulses = []

    def __getattr__(self, name):
        return getattr(self._x, name)

    def read(self, sel=None, **kw):
        self.reads += 1
        return self._x.read(sel, **kw)

    def pulse(self, sel, **kw):
        self.pulses.append((sel, kw))
        return self._x.pulse(sel, **kw)


def _false_pass(verify_reads, confirm_reads):
    with open_crossbar(SPEC) as xbar:
        t = _targets(xbar.info)
        r = ALGORITHMS["iterative"](xbar, t, verify_reads=verify_reads, confirm_reads=confirm_reads)
        g_true, _ = xbar.chip.conductance()
    acc = r.converged & ~r.unresponsive
    return np.mean(np.abs(g_true - t)[acc] > r.tolerance), np.mean((g_true - t)[acc])


def test_averaged_and_confirmed_verify_passes_fewer_devices_out_of_tolerance():
    single, bias_single = _false_pass(1, 0)
    averaged, _ = _false_pass(8, 0)
    confirmed, bias_confirmed = _false_pass(4, 4)
    assert single > 0.15  # one noisy read passes many devices that are out
    assert averaged < 0.75 * single
    assert confirmed < 0.5 * single
    assert abs(bias_confirmed) < 0.8 * abs(bias_single)  # early acceptance bias shrinks


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_every_algorithm_reads_verify_reads_times_and_confirms(name):
    with open_crossbar("emulator:pcm?rows=8&cols=8&seed=2") as xbar:
        spy = Spy(xbar)
        r = ALGORITHMS[name](spy, _targets(xbar.info), verify_reads=3, max_iterations=1)
        assert spy.reads == 3  # one iteration: three reads, nothing passes at the start
        assert r.iterations == 1
        spy.reads = 0
        r = ALGORITHMS[name](spy, _targets(xbar.info), verify_reads=2, confirm_reads=5)
        assert r.converged_fraction > 0.9
        assert spy.reads >= 2 * r.iterations + 5  # confirm reads happened
        # the per-device pulse count: the trace's pulses plus the first RESET of each
        assert int(r.pulses.sum()) == r.total_pulses + r.pulses.size


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"verify_reads": 0}, "verify_reads"),
        ({"verify_reads": 2000}, "verify_reads"),
        ({"verify_reads": True}, "verify_reads"),
        ({"confirm_reads": -1}, "confirm_reads"),
        ({"confirm_reads": 1.5}, "confirm_reads"),
    ],
)
def test_bad_verify_options_are_refused_before_any_pulse(kwargs, match):
    with open_crossbar("emulator:pcm?rows=4&cols=4&seed=2") as xbar:
        before = int(xbar.chip.pulse_count.sum())
        with pytest.raises(ConfigError, match=match):
            ALGORITHMS["write-verify"](xbar, _targets(xbar.info), **kwargs)
        assert int(xbar.chip.pulse_count.sum()) == before


def _set_amplitudes(spy, info):
    """SET amplitudes per pulse call, with the flat devices they went to."""
    out = []
    for sel, kw in spy.pulses:
        if kw["amplitude"] is not None and np.all(np.asarray(kw["amplitude"]) < 1.5):
            rows, cols = sel
            out.append((np.asarray(rows) * info.cols + np.asarray(cols), kw["amplitude"]))
    return out


def test_ispp_ramps_the_set_height_by_a_fixed_step_and_restarts_after_reset():
    with open_crossbar("emulator:pcm?rows=4&cols=4&seed=2&preset=ideal") as xbar:
        spy = Spy(xbar)
        info = xbar.info
        lo, hi = info.set_amplitude_range
        t = np.full(info.shape, 0.85 * info.g_max, np.float32)
        r = ALGORITHMS["ispp"](spy, t, v_step=0.02)
        assert r.converged.all()
        calls = _set_amplitudes(spy, info)
        first = [np.asarray(a)[0] if np.ndim(a) else a for _, a in calls]
        # device 0's heights: v_start, v_start + step, ... until it converged
        dev0 = [np.atleast_1d(a)[list(f).index(0)] for f, a in calls if 0 in f]
        np.testing.assert_allclose(np.diff(dev0), 0.02, atol=1e-9)
        assert dev0[0] == pytest.approx(lo)
        assert max(first) <= hi + 1e-12
    with (
        open_crossbar("emulator:pcm?rows=4&cols=4&seed=2") as xbar,
        pytest.raises(ConfigError, match="v_start"),
    ):
        ALGORITHMS["ispp"](xbar, t, v_start=0.1)


def test_fixed_pulse_verify_uses_one_height_throughout():
    with open_crossbar("emulator:pcm?rows=8&cols=8&seed=2") as xbar:
        spy = Spy(xbar)
        r = ALGORITHMS["fixed-pulse"](spy, _targets(xbar.info), amplitude=0.7)
        heights = {float(np.unique(a)[0]) for _, a in _set_amplitudes(spy, xbar.info)}
        assert heights == {0.7}
        assert r.converged_fraction > 0.95
        with pytest.raises(ConfigError, match="amplitude"):
            ALGORITHMS["fixed-pulse"](xbar, _targets(xbar.info), amplitude=1.49)


def test_ispp_and_fixed_pulse_program_a_2_bit_population():
    for name in ("ispp", "fixed-pulse"):
        with open_crossbar(SPEC) as xbar:
            info = xbar.info
            t = levels(info.shape, info.g_max, n_levels=4, lo=0.2, hi=0.8, seed=1)
            before = xbar.chip.pulse_count.reshape(info.shape).copy()
            r = ALGORITHMS[name](xbar, t)
            assert r.converged_fraction > 0.97, name
            assert 5 < r.mean_pulses < 60, name
            np.testing.assert_array_equal(
                r.pulses, xbar.chip.pulse_count.reshape(info.shape) - before
            )


def test_rounds_reprogram_only_devices_out_of_tolerance_and_narrow_the_spread():
    with open_crossbar(SPEC) as xbar:
        t = _targets(xbar.info)
        chip, clock = xbar.chip, xbar.clock
        snaps = []
        sleep = clock.sleep

        def snapshot_then_sleep(dt):  # program_rounds settles once after every round
            snaps.append(chip.pulse_count.copy())
            sleep(dt)

        clock.sleep = snapshot_then_sleep
        out = program_rounds(
            xbar, t, rounds=3, settle_time=5.0, tolerance=0.3e-6, verify_reads=8, settle_reads=64
        )
        clock.sleep = sleep
        with pytest.raises(ConfigError, match="rounds"):
            program_rounds(xbar, t, rounds=0)
        with pytest.raises(ConfigError, match="algorithm"):
            program_rounds(xbar, t, algorithm="nope")
    assert out.reprogrammed[0] == t.size
    assert out.reprogrammed[1:] == out.out_of_tolerance[:-1]
    # round k pulses only devices found out of tolerance after round k - 1 (some of those
    # pass the algorithm's own first verify and need no pulse)
    for k in (1, 2):
        pulsed = np.count_nonzero(snaps[k] - snaps[k - 1])
        assert 0.5 * out.out_of_tolerance[k - 1] < pulsed <= out.out_of_tolerance[k - 1]
    assert out.out_of_tolerance[2] < out.out_of_tolerance[0]
    assert out.sigma[2] < out.sigma[1] < out.sigma[0]
    assert out.sigma[2] <= 0.75 * out.sigma[0]
    assert out.result.converged.shape == t.shape
    assert out.result.pulses.sum() == out.result.total_pulses + t.size  # + first RESETs
