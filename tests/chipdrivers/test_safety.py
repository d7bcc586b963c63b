"""Safety limits enforced by the checked backend: a refused call leaves the chip untouched.

Uses the emulator's ground truth (``xbar.chip``): the programmed conductance, the
per-device pulse counter and the virtual clock must be exactly as before a refused call.
"""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.errors import ConfigError, SafetyError, SelectionError

AMP, WIDTH = 1.0, 50e-9


def _snapshot(xbar):
    return xbar.chip.g_prog.copy(), xbar.chip.pulse_count.copy(), xbar.clock.now()


def _assert_untouched(xbar, snap):
    g, count, t = snap
    np.testing.assert_array_equal(xbar.chip.g_prog, g)
    np.testing.assert_array_equal(xbar.chip.pulse_count, count)
    assert xbar.clock.now() == t


@pytest.fixture
def xbar(small_pcm):
    """The 32 x 32 chip, RESET then brought to mid-window so a stray pulse would show."""
    info = small_pcm.info
    small_pcm.pulse(
        None, polarity=1, amplitude=info.reset_pulse.amplitude, width=info.reset_pulse.width
    )
    small_pcm.pulse(None, polarity=1, amplitude=AMP, width=WIDTH, count=4)
    return small_pcm


def _pulse_cases(lim):
    return [
        # (kwargs, limit, reported value)
        (dict(amplitude=lim.max_voltage * 1.2), "max_voltage", lim.max_voltage * 1.2),
        (dict(amplitude=-lim.max_voltage * 1.2), "max_voltage", lim.max_voltage * 1.2),
        (dict(width=lim.max_pulse_width * 2), "max_pulse_width", lim.max_pulse_width * 2),
        (dict(width=lim.min_pulse_width / 2), "min_pulse_width", lim.min_pulse_width / 2),
        (dict(count=lim.max_pulse_count + 1), "max_pulse_count", lim.max_pulse_count + 1),
    ]


@pytest.mark.parametrize("case", range(5))
@pytest.mark.parametrize("sel", ["all", "mask", "indices"])
def test_pulse_beyond_a_limit_is_refused_and_nothing_changes(xbar, case, sel):
    lim = xbar.info.limits
    kwargs, limit, value = _pulse_cases(lim)[case]
    selection = {
        "all": None,
        "mask": np.eye(32, dtype=bool),
        "indices": (np.arange(4)[:, None], np.arange(3)[None, :]),
    }[sel]
    args = {"polarity": 1, "amplitude": AMP, "width": WIDTH, **kwargs}
    snap = _snapshot(xbar)
    with pytest.raises(SafetyError) as info:
        xbar.pulse(selection, **args)
    err = info.value
    assert err.limit == limit
    assert err.value == pytest.approx(value)
    assert limit in str(err)
    assert f"{value:.6g}" in str(err)
    _assert_untouched(xbar, snap)


def test_per_device_amplitudes_are_checked_by_their_maximum(xbar):
    assert "per_device_pulses" in xbar.info.capabilities
    lim = xbar.info.limits
    mask = np.zeros((32, 32), dtype=bool)
    mask[5, :8] = True
    amps = np.full(8, AMP)
    amps[6] = lim.max_voltage + 0.3
    snap = _snapshot(xbar)
    with pytest.raises(SafetyError, match="max_voltage") as info:
        xbar.pulse(mask, polarity=1, amplitude=amps, width=WIDTH)
    assert info.value.value == pytest.approx(lim.max_voltage + 0.3)
    assert f"{lim.max_voltage + 0.3:.6g}" in str(info.value)
    _assert_untouched(xbar, snap)


def test_per_device_widths_are_checked_by_their_extremes(xbar):
    lim = xbar.info.limits
    sel = (np.array([1, 2, 3]), np.array([4, 4, 4]))
    snap = _snapshot(xbar)
    with pytest.raises(SafetyError, match="max_pulse_width"):
        xbar.pulse(sel, polarity=1, amplitude=AMP, width=[WIDTH, lim.max_pulse_width * 1.5, WIDTH])
    with pytest.raises(SafetyError, match="min_pulse_width"):
        xbar.pulse(sel, polarity=1, amplitude=AMP, width=[WIDTH, WIDTH, lim.min_pulse_width / 3])
    _assert_untouched(xbar, snap)


def test_per_device_amplitudes_within_limits_reach_only_the_selection(xbar):
    lim = xbar.info.limits
    sel = (np.array([0, 7, 31]), np.array([3, 3, 30]))
    before = xbar.chip.pulse_count.copy().reshape(32, 32)
    xbar.pulse(sel, polarity=1, amplitude=[AMP, lim.max_voltage, 0.6], width=WIDTH, count=2)
    delta = xbar.chip.pulse_count.reshape(32, 32).astype(int) - before
    expected = np.zeros((32, 32), dtype=int)
    expected[sel] = 2
    np.testing.assert_array_equal(delta, expected)


def test_pulses_exactly_at_the_limits_are_allowed(xbar):
    lim = xbar.info.limits
    before = xbar.chip.pulse_count.copy()
    sel = (np.array([0]), np.array([0]))
    xbar.pulse(sel, polarity=1, amplitude=lim.max_voltage, width=lim.min_pulse_width)
    xbar.pulse(sel, polarity=1, amplitude=AMP, width=lim.max_pulse_width)
    xbar.pulse(sel, polarity=1, amplitude=AMP, width=WIDTH, count=lim.max_pulse_count)
    assert int(xbar.chip.pulse_count[0]) - int(before[0]) == 2 + lim.max_pulse_count


@pytest.mark.parametrize("v_read", [0.31, 1.0, -0.5])
def test_read_voltage_beyond_the_limit_is_refused(xbar, v_read):
    lim = xbar.info.limits
    snap = _snapshot(xbar)
    with pytest.raises(SafetyError) as info:
        xbar.read(v_read=v_read)
    assert info.value.limit == "max_read_voltage"
    assert "max_read_voltage" in str(info.value)
    assert f"{abs(v_read):.6g}" in str(info.value)
    assert info.value.allowed == lim.max_read_voltage
    _assert_untouched(xbar, snap)


def test_read_at_the_read_voltage_limit_is_allowed(xbar):
    g = xbar.read(v_read=xbar.info.limits.max_read_voltage)
    assert g.shape == (32, 32)


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("batch", [False, True])
def test_mvm_input_beyond_the_read_limit_is_refused(xbar, transpose, batch):
    lim = xbar.info.limits
    x = np.full(32, 0.1)
    x[17] = -(lim.max_read_voltage + 0.2)
    if batch:
        x = np.stack([np.zeros(32), x])
    snap = _snapshot(xbar)
    with pytest.raises(SafetyError) as info:
        xbar.mvm(x, transpose=transpose)
    assert info.value.limit == "max_read_voltage"
    assert "max_read_voltage" in str(info.value)
    assert f"{lim.max_read_voltage + 0.2:.6g}" in str(info.value)
    _assert_untouched(xbar, snap)


def test_mvm_input_exactly_at_the_read_limit_is_allowed(xbar):
    # The limit is inclusive (|x| <= max_read_voltage) for reads; the same must hold for
    # MVM inputs, whatever float precision the backend computes in.
    x = np.zeros(32)
    x[0] = xbar.info.limits.max_read_voltage
    out = xbar.mvm(x)
    assert out.shape == (32,)


# -- other refusals also leave the chip untouched ---------------------------------------
@pytest.mark.parametrize(
    ("sel", "kwargs", "error", "words"),
    [
        (None, dict(polarity=0), ConfigError, "polarity"),
        (None, dict(polarity=2), ConfigError, "polarity"),
        (None, dict(amplitude=0.0), ConfigError, "non-zero"),
        (None, dict(amplitude=float("nan")), ConfigError, "finite"),
        (None, dict(count=0), ConfigError, "count"),
        (None, dict(count=2.5), ConfigError, "count"),
        ((np.array([1, 1]), np.array([2, 2])), {}, SelectionError, "more than once"),
        ((np.array([32]), np.array([0])), {}, SelectionError, "out of range"),
        (np.ones((32, 31), dtype=bool), {}, SelectionError, "mask"),
        (
            (np.array([1, 2]), np.array([0, 0])),
            dict(amplitude=[1.0, 1.0, 1.0]),
            SelectionError,
            "does not match",
        ),
    ],
)
def test_invalid_pulse_calls_change_nothing(xbar, sel, kwargs, error, words):
    args = {"polarity": 1, "amplitude": AMP, "width": WIDTH, **kwargs}
    snap = _snapshot(xbar)
    with pytest.raises(error, match=words):
        xbar.pulse(sel, **args)
    _assert_untouched(xbar, snap)


def test_empty_selection_sends_nothing(xbar):
    snap = _snapshot(xbar)
    xbar.pulse(np.zeros((32, 32), dtype=bool), polarity=1, amplitude=AMP, width=WIDTH)
    _assert_untouched(xbar, snap)


def test_empty_selection_is_still_checked_against_the_limits(xbar):
    with pytest.raises(SafetyError, match="max_voltage"):
        xbar.pulse(np.zeros((32, 32), dtype=bool), polarity=1, amplitude=10.0, width=WIDTH)
