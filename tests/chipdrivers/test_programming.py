"""Closed-loop write-verify and the named target patterns, checked against emulator truth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.chipdrivers.patterns import PATTERNS, checkerboard, gradient, levels, make_pattern
from xbarlab.chipdrivers.programming import IterationStats, ProgramResult, write_verify
from xbarlab.errors import ConfigError, SelectionError

STUCK_SPEC = "emulator:pcm?rows=64&cols=64&seed=5&stuck_set_fraction=0.02&stuck_reset_fraction=0.02"


def _total_pulses(xbar) -> int:
    return int(xbar.chip.pulse_count.sum(dtype=np.int64))


# -- patterns -------------------------------------------------------------------------
def test_levels_are_balanced_in_range_and_seeded():
    g_max = 25e-6
    t = levels((32, 32), g_max, n_levels=8, lo=0.1, hi=0.8, seed=4)
    assert t.shape == (32, 32) and t.dtype == np.float32
    values, counts = np.unique(t, return_counts=True)
    np.testing.assert_allclose(values, np.linspace(0.1, 0.8, 8) * g_max, rtol=1e-6)
    assert counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(t, levels((32, 32), g_max, seed=4))
    assert not np.array_equal(t, levels((32, 32), g_max, seed=5))


def test_levels_balanced_when_size_not_divisible():
    _, counts = np.unique(levels((7, 9), 1.0, n_levels=5), return_counts=True)
    assert counts.sum() == 63 and counts.max() - counts.min() <= 1


def test_gradient_and_checkerboard():
    g = gradient((3, 5), 10.0, lo=0.2, hi=0.6)
    np.testing.assert_allclose(g[0], [2.0, 3.0, 4.0, 5.0, 6.0], rtol=1e-6)
    np.testing.assert_array_equal(g[0], g[2])
    c = checkerboard((2, 3), 10.0, lo=0.1, hi=0.9)
    np.testing.assert_allclose(c, [[1.0, 9.0, 1.0], [9.0, 1.0, 9.0]], rtol=1e-6)
    assert g.dtype == c.dtype == np.float32


@pytest.mark.parametrize(
    "kwargs", [dict(n_levels=0), dict(lo=0.0), dict(lo=0.9, hi=0.5), dict(hi=1.5)]
)
def test_levels_rejects_bad_arguments(kwargs):
    with pytest.raises(ConfigError):
        levels((4, 4), 1.0, **kwargs)


def test_make_pattern_by_name_and_unknown_name_lists_valid():
    np.testing.assert_array_equal(
        make_pattern("checkerboard", (4, 4), 2.0), checkerboard((4, 4), 2.0)
    )
    with pytest.raises(ConfigError, match="unknown pattern 'zebra'.*levels.*gradient"):
        make_pattern("zebra", (4, 4), 1.0)
    assert set(PATTERNS) == {"levels", "gradient", "checkerboard"}


# -- write-verify on a healthy chip ---------------------------------------------------
@pytest.fixture
def programmed(small_pcm):
    info = small_pcm.info
    targets = levels(info.shape, info.g_max, n_levels=8, seed=0)
    before = _total_pulses(small_pcm)
    seen = []
    result = write_verify(small_pcm, targets, on_iteration=seen.append)
    return small_pcm, targets, result, seen, before


def test_write_verify_converges(programmed):
    xbar, targets, r, _, _ = programmed
    assert isinstance(r, ProgramResult)
    assert r.converged_fraction >= 0.99
    assert r.tolerance == pytest.approx(0.02 * xbar.info.g_max)
    assert r.converged.shape == r.unresponsive.shape == r.g_verify.shape == (32, 32)
    assert r.g_verify.dtype == np.float32
    # every converged device was within tolerance at its last verify read
    ok = r.converged
    assert np.all(np.abs(r.g_verify[ok] - targets[ok]) <= r.tolerance * (1 + 1e-6))
    assert 1 <= r.iterations <= 100


def test_write_verify_brings_true_conductance_to_target(programmed):
    xbar, targets, r, _, _ = programmed
    g_true, _ = xbar.chip.conductance()  # noise-free, right after programming
    healthy = ~xbar.chip.stuck
    err = np.abs(g_true - targets)[healthy] / r.tolerance
    assert np.median(err) < 1.0
    assert np.mean(err <= 2.0) >= 0.95
    # programmed levels are distinct: the mean per level is close to its target. One
    # verify read carries read noise of about the tolerance at the top levels, so devices
    # climbing from below are accepted early and a level's mean may sit up to about 1.2
    # tolerances low (verify_reads/confirm_reads reduce that: test_programming_options.py)
    for level in np.unique(targets):
        m = healthy & (targets == level)
        assert g_true[m].mean() == pytest.approx(level, abs=1.5 * r.tolerance)
    means = [g_true[healthy & (targets == level)].mean() for level in np.unique(targets)]
    assert np.all(np.diff(means) > 4 * r.tolerance)


def test_write_verify_trace_is_monotone_and_reported(programmed):
    xbar, _, r, seen, _ = programmed
    assert seen == r.trace
    assert all(isinstance(s, IterationStats) for s in r.trace)
    assert [s.iteration for s in r.trace] == list(range(1, r.iterations + 1))
    conv = [s.converged for s in r.trace]
    dead = [s.unresponsive for s in r.trace]
    assert all(b >= a for a, b in zip(conv, conv[1:], strict=False))
    assert all(b >= a for a, b in zip(dead, dead[1:], strict=False))
    assert conv[-1] == int(r.converged.sum())
    assert dead[-1] == int(r.unresponsive.sum())
    assert r.trace[-1].mean_abs_error < r.trace[0].mean_abs_error


def test_write_verify_counts_every_pulse_it_sends(programmed):
    xbar, _, r, _, before = programmed
    # reset_first: one RESET per device, then the pulses the trace reports
    assert _total_pulses(xbar) - before == xbar.info.rows * xbar.info.cols + r.total_pulses
    assert r.total_pulses == sum(s.pulses for s in r.trace)


def test_write_verify_reports_when_each_device_finished(programmed):
    _, _, r, _, _ = programmed
    assert r.done_at.shape == (32, 32)
    finished = np.bincount(r.done_at.ravel(), minlength=r.iterations + 1)
    # devices still in the loop at the end have done_at 0; the rest match the trace
    assert finished[0] == np.count_nonzero(~(r.converged | r.unresponsive))
    done = [s.converged + s.unresponsive for s in r.trace]
    np.testing.assert_array_equal(np.cumsum(finished[1:]), done)
    assert r.mean_iterations == pytest.approx(r.done_at[r.converged].mean())
    assert 1 <= r.mean_iterations <= r.iterations


def test_mean_iterations_is_nan_when_nothing_converged():
    none = np.zeros(4, dtype=bool)
    r = ProgramResult(none, none, np.zeros(4, np.float32), 1e-6, [], np.zeros(4, np.int32))
    assert np.isnan(r.mean_iterations)
    assert np.isnan(ProgramResult(~none, none, np.zeros(4, np.float32), 1e-6).mean_iterations)


def test_write_verify_without_initial_reset(small_pcm):
    info = small_pcm.info
    targets = np.full(info.shape, 0.3 * info.g_max, dtype=np.float32)
    before = _total_pulses(small_pcm)
    r = write_verify(small_pcm, targets, reset_first=False)
    assert r.converged_fraction >= 0.99
    assert _total_pulses(small_pcm) - before == r.total_pulses


def test_write_verify_touches_only_the_selection(small_pcm):
    info = small_pcm.info
    mask = np.zeros(info.shape, dtype=bool)
    mask[4:12, 3:20] = True
    targets = np.full(int(mask.sum()), 0.5 * info.g_max, dtype=np.float32)
    before = small_pcm.chip.pulse_count.copy().reshape(info.shape)
    r = write_verify(small_pcm, targets, mask)
    assert r.converged.shape == (mask.sum(),)
    assert r.converged_fraction >= 0.99
    after = small_pcm.chip.pulse_count.reshape(info.shape)
    np.testing.assert_array_equal(after[~mask], before[~mask])
    assert np.all(after[mask] > before[mask])
    g_true, _ = small_pcm.chip.conductance()
    ok = mask & ~small_pcm.chip.stuck
    assert np.median(np.abs(g_true[ok] - 0.5 * info.g_max)) < r.tolerance


def test_write_verify_result_has_the_index_selection_shape(small_pcm):
    info = small_pcm.info
    sel = (np.arange(3)[:, None], np.arange(0, 32, 8)[None, :])
    targets = np.full((3, 4), 0.4 * info.g_max, dtype=np.float32)
    r = write_verify(small_pcm, targets, sel)
    assert r.converged.shape == r.g_verify.shape == (3, 4)


def test_write_verify_sends_scalar_amplitudes_without_per_device_pulses(small_pcm):
    # A backend without per_device_pulses refuses amplitude arrays; write_verify must
    # group devices by amplitude level and still converge.
    info = small_pcm.info
    small_pcm.info = dataclasses.replace(
        info, capabilities=info.capabilities - {"per_device_pulses"}
    )
    targets = levels(info.shape, info.g_max, seed=1)
    r = write_verify(small_pcm, targets)
    assert r.converged_fraction >= 0.99


def test_max_iterations_bounds_the_run(small_pcm):
    info = small_pcm.info
    targets = np.full(info.shape, 0.8 * info.g_max, dtype=np.float32)
    r = write_verify(small_pcm, targets, max_iterations=3)
    assert r.iterations == 3
    assert r.converged_fraction < 0.5  # 0.8 g_max takes many more SET pulses than that


def test_tighter_tolerance_is_honoured(small_pcm):
    info = small_pcm.info
    targets = np.full(info.shape, 0.5 * info.g_max, dtype=np.float32)
    tol = 0.01 * info.g_max
    r = write_verify(small_pcm, targets, tolerance=tol, max_iterations=200)
    assert r.tolerance == tol
    assert r.converged_fraction >= 0.95
    ok = r.converged
    assert np.all(np.abs(r.g_verify[ok] - targets[ok]) <= tol * (1 + 1e-6))


# -- stuck devices --------------------------------------------------------------------
@pytest.fixture(scope="module")
def stuck_run():
    xbar = open_crossbar(STUCK_SPEC)
    targets = levels(xbar.info.shape, xbar.info.g_max, seed=1)
    r = write_verify(xbar, targets)
    g_true, _ = xbar.chip.conductance()
    yield xbar, targets, r, g_true, xbar.chip.stuck.copy()
    xbar.close()


def test_stuck_chip_still_converges_on_healthy_devices(stuck_run):
    _, _, r, _, stuck = stuck_run
    assert stuck.sum() > 100  # the spec makes the test meaningful: 4% of 4096
    assert r.converged_fraction >= 0.99


def test_every_truly_stuck_device_far_from_target_is_flagged(stuck_run):
    _, targets, r, g_true, stuck = stuck_run
    far = stuck & (np.abs(targets - g_true) > 2 * r.tolerance)
    assert far.sum() > 100
    missed = np.argwhere(far & ~r.unresponsive)
    assert missed.size == 0, f"stuck devices not flagged: {missed.tolist()}"
    assert not np.any(r.converged & far)


def test_few_healthy_devices_are_flagged(stuck_run):
    _, _, r, _, stuck = stuck_run
    assert np.count_nonzero(r.unresponsive & ~stuck) <= 0.01 * np.count_nonzero(~stuck)


# -- invalid arguments: refused before any pulse --------------------------------------
@pytest.mark.parametrize(
    ("make_targets", "words"),
    [
        (lambda info: np.full(info.shape, 0.5 * info.g_min), "conductance window"),
        (lambda info: np.full(info.shape, 1.01 * info.g_max), "conductance window"),
        (lambda info: np.full(info.shape, -1e-6), "conductance window"),
        (lambda info: np.full((info.rows, info.cols - 1), 1e-5), "shape"),
        (lambda info: np.full(info.rows * info.cols, 1e-5), "shape"),
        (lambda info: np.where(np.eye(info.rows, dtype=bool), np.nan, 1e-5), "(?i)nan|finite"),
        (
            lambda info: np.where(np.eye(info.rows, dtype=bool), np.inf, 1e-5),
            "(?i)inf|finite|window",
        ),
    ],
    ids=["below_g_min", "above_g_max", "negative", "wrong_cols", "flat", "nan", "inf"],
)
def test_invalid_targets_are_refused_before_any_pulse(small_pcm, make_targets, words):
    before = small_pcm.chip.pulse_count.copy()
    with pytest.raises(ConfigError, match=words):
        write_verify(small_pcm, make_targets(small_pcm.info))
    np.testing.assert_array_equal(small_pcm.chip.pulse_count, before)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (dict(tolerance=0.0), "tolerance"),
        (dict(tolerance=-1e-6), "tolerance"),
        (dict(tolerance=float("nan")), "tolerance"),
        (dict(full_drive_error=0.0), "full_drive_error"),
        (dict(max_iterations=0), "max_iterations"),
        (dict(patience=0), "patience"),
    ],
)
def test_invalid_settings_are_refused_before_any_pulse(small_pcm, kwargs, words):
    info = small_pcm.info
    before = small_pcm.chip.pulse_count.copy()
    with pytest.raises(ConfigError, match=words):
        write_verify(small_pcm, np.full(info.shape, 1e-5), **kwargs)
    np.testing.assert_array_equal(small_pcm.chip.pulse_count, before)


def test_invalid_selection_is_refused_before_any_pulse(small_pcm):
    before = small_pcm.chip.pulse_count.copy()
    with pytest.raises(SelectionError):
        write_verify(small_pcm, np.full(3, 1e-5), (np.array([0, 1, 40]), np.array([0, 0, 0])))
    with pytest.raises(SelectionError):
        write_verify(small_pcm, np.full(2, 1e-5), (np.array([1, 1]), np.array([2, 2])))
    np.testing.assert_array_equal(small_pcm.chip.pulse_count, before)
