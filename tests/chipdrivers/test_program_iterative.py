"""Iterative PCM program-and-verify, checked against emulator truth and the published spread."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.chipdrivers.programming import (
    ALGORITHMS,
    IterationStats,
    program_iterative,
    write_verify,
)
from xbarlab.errors import ConfigError

STUCK_SPEC = "emulator:pcm?rows=64&cols=64&seed=5&stuck_set_fraction=0.02&stuck_reset_fraction=0.02"
#: SET steps four times the default: single pulses jump past targets, forcing retries
JUMPY_SPEC = "emulator:pcm?rows=32&cols=32&seed=2&set_step=0.32"


class Spy:
    """A Crossbar wrapper that logs every read and pulse in flat device indices."""

    def __init__(self, xbar):
        self.xbar, self.info, self.clock = xbar, xbar.info, xbar.clock
        self.log: list[tuple] = []

    def _flat(self, sel):
        r, c = np.broadcast_arrays(*sel)
        return (r * self.info.cols + c).ravel()

    def read(self, sel=None, **kw):
        g = self.xbar.read(sel, **kw)
        self.log.append(("read", self._flat(sel), g.copy()))
        return g

    def pulse(self, sel, *, polarity, amplitude, width, count=1):
        self.xbar.pulse(sel, polarity=polarity, amplitude=amplitude, width=width, count=count)
        amp = np.broadcast_to(np.asarray(amplitude, dtype=float), self._flat(sel).shape)
        self.log.append(("pulse", self._flat(sel), amp.copy()))


def _uniform_targets(info, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.1, 0.9, info.shape) * info.g_max).astype(np.float32)


def _pulse_count(xbar) -> int:
    return int(xbar.chip.pulse_count.sum(dtype=np.int64))


def test_algorithms_are_named():
    named = {"iterative": program_iterative, "write-verify": write_verify}
    assert named.items() <= ALGORITHMS.items()
    assert {"ispp", "fixed-pulse"} <= set(ALGORITHMS)


@pytest.fixture
def programmed(small_pcm):
    targets = _uniform_targets(small_pcm.info)
    before = _pulse_count(small_pcm)
    seen: list[IterationStats] = []
    r = program_iterative(small_pcm, targets, on_iteration=seen.append)
    return small_pcm, targets, r, seen, before


def test_converges_and_true_conductance_lands_on_target(programmed):
    xbar, targets, r, _, _ = programmed
    assert r.converged_fraction >= 0.99
    assert r.tolerance == pytest.approx(0.02 * xbar.info.g_max)
    ok = r.converged
    assert np.all(np.abs(r.g_verify[ok] - targets[ok]) <= r.tolerance * (1 + 1e-6))
    g_true, _ = xbar.chip.conductance()
    healthy = ~xbar.chip.stuck
    err = np.abs(g_true - targets)[healthy] / r.tolerance
    assert np.median(err) < 1.0
    assert np.mean(err <= 2.5) >= 0.95
    # the adaptive gain gets there in a handful of verify rounds, far below the cap
    assert 2 <= r.mean_iterations <= 25


def test_trace_is_consistent_with_the_pulses_sent(programmed):
    xbar, _, r, seen, before = programmed
    assert seen == r.trace
    assert [s.iteration for s in r.trace] == list(range(1, r.iterations + 1))
    conv = [s.converged for s in r.trace]
    dead = [s.unresponsive for s in r.trace]
    assert all(b >= a for a, b in zip(conv, conv[1:], strict=False))
    assert all(b >= a for a, b in zip(dead, dead[1:], strict=False))
    assert conv[-1] == int(r.converged.sum()) and dead[-1] == int(r.unresponsive.sum())
    assert r.trace[-1].mean_abs_error < 0.2 * r.trace[0].mean_abs_error
    # the initial RESET of every device plus exactly the pulses the trace reports
    n = xbar.info.rows * xbar.info.cols
    assert _pulse_count(xbar) - before == n + r.total_pulses
    # done_at tells when each device left the loop: it matches the trace's counts
    finished = np.bincount(r.done_at.ravel(), minlength=r.iterations + 1)[1:]
    np.testing.assert_array_equal(np.cumsum(finished), np.add(conv, dead))


def test_each_iteration_reads_once_and_pulses_only_unconverged_devices(small_pcm):
    spy = Spy(small_pcm)
    targets = _uniform_targets(small_pcm.info, seed=3).ravel()
    r = program_iterative(spy, targets.reshape(small_pcm.info.shape))
    reads = [k for k, e in enumerate(spy.log) if e[0] == "read"]
    assert len(reads) == r.iterations
    # between two reads: at most one RESET call and one SET call (per_device_pulses)
    assert all(b - a <= 3 for a, b in zip(reads, reads[1:], strict=False))
    tol, g_read = r.tolerance, {}
    for kind, flat, values in spy.log:
        if kind == "read":
            g_read = dict(zip(flat.tolist(), values.tolist(), strict=True))
            continue
        for i in flat.tolist():
            if not g_read:  # the initial RESET
                continue
            assert abs(g_read[i] - targets[i]) > tol, "a device within tolerance was pulsed"


def test_overshoot_is_reset_and_retried():
    xbar = open_crossbar(JUMPY_SPEC)
    try:
        spy = Spy(xbar)
        targets = _uniform_targets(xbar.info, seed=4)
        r = program_iterative(spy, targets)
        flat_t, tol = targets.ravel(), r.tolerance
        v_reset = xbar.info.reset_pulse.amplitude
        retried = 0
        given_up = set(np.flatnonzero(r.unresponsive).tolist())  # stuck: not retried
        events = spy.log
        for k, (kind, flat, g) in enumerate(events[:-1]):
            if kind != "read":
                continue
            over = set(flat[g > flat_t[flat] + tol].tolist())
            reset = set()
            for kind2, flat2, amp in events[k + 1 :]:
                if kind2 == "read":
                    break
                reset |= set(flat2[amp >= v_reset].tolist())
            # every overshoot of a device not given up as stuck is RESET, nothing else is
            assert over - given_up <= reset <= over
            retried += len(reset)
        assert retried > 20  # the jumpy chip really overshoots
        assert r.converged_fraction >= 0.99
    finally:
        xbar.close()


def test_retry_gain_reduces_repeated_overshoots():
    def resets(retry_gain):
        xbar = open_crossbar(JUMPY_SPEC)
        try:
            n = xbar.info.rows * xbar.info.cols
            before = xbar.chip.cycles_left.astype(np.int64).sum()
            program_iterative(xbar, _uniform_targets(xbar.info, seed=4), retry_gain=retry_gain)
            return int(before - xbar.chip.cycles_left.astype(np.int64).sum()) - n
        finally:
            xbar.close()

    assert resets(0.5) < resets(1.0)


@pytest.fixture(scope="module")
def stuck_run():
    xbar = open_crossbar(STUCK_SPEC)
    targets = _uniform_targets(xbar.info, seed=1)
    r = program_iterative(xbar, targets)
    g_true, _ = xbar.chip.conductance()
    yield targets, r, g_true, xbar.chip.stuck.copy()
    xbar.close()


def test_stuck_devices_are_flagged_and_the_rest_converge(stuck_run):
    targets, r, g_true, stuck = stuck_run
    assert stuck.sum() > 100
    assert r.converged_fraction >= 0.99
    far = stuck & (np.abs(targets - g_true) > 2 * r.tolerance)
    assert far.sum() > 100
    assert not np.any(far & ~r.unresponsive)
    assert not np.any(r.converged & far)
    assert np.count_nonzero(r.unresponsive & ~stuck) <= 0.01 * np.count_nonzero(~stuck)


def test_without_per_device_pulses_amplitudes_are_grouped(small_pcm):
    info = small_pcm.info
    small_pcm.info = dataclasses.replace(
        info, capabilities=info.capabilities - {"per_device_pulses"}
    )
    spy = Spy(small_pcm)
    r = program_iterative(spy, _uniform_targets(info, seed=5))
    assert r.converged_fraction >= 0.99
    for kind, _, amp in spy.log:
        if kind == "pulse":
            assert np.unique(amp).size == 1  # one amplitude per call


def test_without_initial_reset_only_reported_pulses_are_sent(small_pcm):
    info = small_pcm.info
    targets = np.full(info.shape, 0.4 * info.g_max, dtype=np.float32)
    before = _pulse_count(small_pcm)
    r = program_iterative(small_pcm, targets, reset_first=False)
    assert r.converged_fraction >= 0.99
    assert _pulse_count(small_pcm) - before == r.total_pulses


def test_spread_after_25_s_follows_the_published_law():
    """Std of G(25 s) - target per target bin against the 1M-device fit (Joshi 2020)."""
    xbar = open_crossbar("emulator:pcm?rows=64&cols=64&seed=11")
    try:
        targets = _uniform_targets(xbar.info, seed=11)
        r = program_iterative(xbar, targets)
        xbar.clock.sleep(25.0)
        err = xbar.read() - targets
    finally:
        xbar.close()
    edges = np.linspace(0.1, 0.9, 6) * xbar.info.g_max
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (targets >= lo) & (targets < hi) & ~r.unresponsive
        g = 0.5 * (lo + hi) / 25e-6
        ref = (0.26348 + 1.9650 * g - 1.1731 * g * g) * 1e-6
        assert 0.65 * ref <= err[m].std() <= 1.35 * ref


# -- invalid arguments: refused before any pulse --------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (dict(tolerance=0.0), "tolerance"),
        (dict(tolerance=float("nan")), "tolerance"),
        (dict(max_iterations=0), "max_iterations"),
        (dict(patience=0), "patience"),
        (dict(full_drive_error=-1e-6), "full_drive_error"),
        (dict(gain_step=1.0), "gain_step"),
        (dict(gain_step=float("inf")), "gain_step"),
        (dict(retry_gain=0.0), "retry_gain"),
        (dict(retry_gain=1.5), "retry_gain"),
        (dict(retry_gain=float("nan")), "retry_gain"),
    ],
)
def test_invalid_settings_are_refused_before_any_pulse(small_pcm, kwargs, words):
    before = small_pcm.chip.pulse_count.copy()
    with pytest.raises(ConfigError, match=words):
        program_iterative(small_pcm, np.full(small_pcm.info.shape, 1e-5), **kwargs)
    np.testing.assert_array_equal(small_pcm.chip.pulse_count, before)


@pytest.mark.parametrize(
    "make_targets",
    [
        lambda info: np.full(info.shape, 1.01 * info.g_max),
        lambda info: np.full((info.rows, info.cols - 1), 1e-5),
        lambda info: np.where(np.eye(info.rows, dtype=bool), np.nan, 1e-5),
        lambda info: np.full(info.shape, "x"),
    ],
    ids=["above_g_max", "wrong_shape", "nan", "not_numbers"],
)
def test_invalid_targets_are_refused_before_any_pulse(small_pcm, make_targets):
    before = small_pcm.chip.pulse_count.copy()
    with pytest.raises(ConfigError, match="target"):
        program_iterative(small_pcm, make_targets(small_pcm.info))
    np.testing.assert_array_equal(small_pcm.chip.pulse_count, before)
