"""The contract every ``Crossbar`` backend passes, through the public interface only.

Parametrised over the backends in tests/conftest.py (``BACKEND_SPECS``) by the
``crossbar`` fixture. Nothing here may look at backend internals: hardware backends
run the same tests. Statistical checks use loose tolerances because reads are noisy.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from xbarlab.chipdrivers import CAPABILITIES, ChipInfo, Crossbar
from xbarlab.clock import Clock
from xbarlab.errors import SafetyError, SelectionError, XbarlabError
from xbarlab.limits import SafetyLimits


def _pulse(xbar, shape, sel=None, count=1):
    xbar.pulse(
        sel, polarity=shape.polarity, amplitude=shape.amplitude, width=shape.width, count=count
    )


def _spread(xbar):
    """RESET everything, then SET rows with different pulse counts: a varied state.
    Binary devices: SET a seeded random half of the devices instead."""
    info = xbar.info
    _pulse(xbar, info.reset_pulse)
    if "binary" in info.capabilities:
        _pulse(xbar, info.set_pulse, np.random.default_rng(1).random(info.shape) < 0.5)
        return
    rows = np.arange(info.rows)
    cols = np.arange(info.cols)
    for k in range(4):
        r = rows[rows % 4 == k]
        if r.size:
            _pulse(xbar, info.set_pulse, (r[:, None], cols[None, :]), count=1 + 3 * k)


def _mean_read(xbar, n=8, sel=None):
    return np.mean([xbar.read(sel) for _ in range(n)], axis=0)


# -- identity and info ----------------------------------------------------------------
def test_is_a_crossbar(crossbar):
    assert isinstance(crossbar, Crossbar)
    assert isinstance(crossbar.info, ChipInfo)
    assert isinstance(crossbar.clock, Clock)


def test_info_fields(crossbar):
    info = crossbar.info
    assert isinstance(info.rows, int) and info.rows >= 1
    assert isinstance(info.cols, int) and info.cols >= 1
    assert info.shape == (info.rows, info.cols)
    assert isinstance(info.technology, str) and info.technology
    assert 0 < info.g_min < info.g_max
    assert isinstance(info.limits, SafetyLimits)
    assert isinstance(info.capabilities, frozenset)
    assert info.capabilities <= set(CAPABILITIES)
    assert {"read", "pulse"} <= info.capabilities
    assert 0 < info.v_read <= info.limits.max_read_voltage
    for p in (info.set_pulse, info.reset_pulse):
        assert 0 < abs(p.amplitude) <= info.limits.max_voltage
        assert info.limits.min_pulse_width <= p.width <= info.limits.max_pulse_width
        assert p.polarity in (1, -1)
    lo, hi = info.set_amplitude_range
    assert 0 < lo <= hi <= info.limits.max_voltage


def test_info_to_dict(crossbar):
    d = crossbar.info.to_dict()
    for key in ("rows", "cols", "technology", "g_min_S", "g_max_S", "limits", "capabilities"):
        assert key in d
    info = crossbar.info
    assert (d["rows"], d["cols"], d["technology"]) == (info.rows, info.cols, info.technology)
    assert (d["g_min_S"], d["g_max_S"]) == (info.g_min, info.g_max)
    assert d["limits"] == info.limits.to_dict()
    assert sorted(d["capabilities"]) == sorted(info.capabilities)
    assert json.loads(json.dumps(d)) == d


# -- read -----------------------------------------------------------------------------
def test_read_all(crossbar):
    info = crossbar.info
    g = crossbar.read()
    assert g.shape == info.shape
    assert g.dtype == np.float32
    assert np.all(np.isfinite(g))
    assert np.all(g >= 0) and np.all(g <= 2 * info.g_max)


def test_read_with_explicit_read_voltage(crossbar):
    g = crossbar.read(v_read=crossbar.info.limits.max_read_voltage / 2)
    assert g.shape == crossbar.info.shape and g.dtype == np.float32


def test_read_mask_is_row_major_and_matches_full_read(crossbar):
    info = crossbar.info
    _spread(crossbar)
    mask = np.random.default_rng(0).random(info.shape) < 0.5
    got = crossbar.read(mask)
    assert got.shape == (int(mask.sum()),)
    assert got.dtype == np.float32
    a, b = _mean_read(crossbar, 4, mask), _mean_read(crossbar, 4)[mask]
    tol = 0.05 * info.g_max + 0.2 * np.abs(b)
    close = np.mean(np.abs(a - b) <= tol)
    assert close >= 0.9
    if min(info.shape) > 1:
        # same devices in the same order agree; column-major order would not
        column_major = np.mean(np.abs(a - _mean_read(crossbar, 4).T[mask.T]) <= tol)
        assert column_major < close - 0.3


def test_read_index_arrays_return_broadcast_shapes(crossbar):
    info = crossbar.info
    r = np.arange(min(3, info.rows))
    c = np.arange(min(4, info.cols))
    assert crossbar.read((r[:, None], c[None, :])).shape == (r.size, c.size)
    assert crossbar.read((r, 0)).shape == (r.size,)
    assert crossbar.read((0, 0)).shape == ()
    assert crossbar.read((r[:, None, None], c[None, None, :])).shape == (r.size, 1, c.size)
    g = crossbar.read((r[:, None], c[None, :]))
    assert g.dtype == np.float32


def test_read_index_arrays_select_the_right_devices(crossbar):
    info = crossbar.info
    _spread(crossbar)
    rows = np.array([info.rows - 1, 0, info.rows // 2, 1 % info.rows])
    cols = np.array([0, info.cols - 1, info.cols // 2, 0])
    a = _mean_read(crossbar, 16, (rows, cols))
    b = _mean_read(crossbar, 16)[rows, cols]
    np.testing.assert_allclose(a, b, rtol=0.3, atol=0.05 * info.g_max)


def test_empty_selection_reads_nothing(crossbar):
    out = crossbar.read(np.zeros(crossbar.info.shape, dtype=bool))
    assert out.shape == (0,)


# -- pulse ----------------------------------------------------------------------------
def test_reset_then_set_pulses_raise_mean_conductance(crossbar):
    info = crossbar.info
    if "binary" in info.capabilities:
        pytest.skip("binary devices switch in one pulse (test_set_switches_binary_devices)")
    _pulse(crossbar, info.reset_pulse)
    g_reset = _mean_read(crossbar, 4).mean()
    means = [g_reset]
    for _ in range(4):
        _pulse(crossbar, info.set_pulse, count=2)
        means.append(_mean_read(crossbar, 4).mean())
    assert all(b > a for a, b in zip(means, means[1:], strict=False)), means
    assert means[-1] > g_reset + 0.1 * (info.g_max - info.g_min)
    assert g_reset < 0.2 * info.g_max


def test_set_switches_binary_devices(crossbar):
    info = crossbar.info
    if "binary" not in info.capabilities:
        pytest.skip("devices are not binary")
    _pulse(crossbar, info.reset_pulse)
    g_reset = _mean_read(crossbar, 4)
    _pulse(crossbar, info.set_pulse)
    g_set = _mean_read(crossbar, 4)
    _pulse(crossbar, info.set_pulse, count=3)
    # one SET pulse switches (nearly) every device; more pulses change nothing
    assert np.mean(g_set > g_reset) >= 0.95
    np.testing.assert_allclose(_mean_read(crossbar, 4), g_set, rtol=0.05)


def test_reset_lowers_mean_conductance(crossbar):
    info = crossbar.info
    _pulse(crossbar, info.set_pulse, count=10)
    g_set = _mean_read(crossbar, 4).mean()
    _pulse(crossbar, info.reset_pulse)
    assert _mean_read(crossbar, 4).mean() < 0.5 * g_set


def test_pulse_acts_only_on_the_selection(crossbar):
    info = crossbar.info
    _pulse(crossbar, info.reset_pulse)
    if info.rows * info.cols < 2:
        pytest.skip("needs two devices")
    r, c = np.indices(info.shape)
    mask = (r + c) % 2 == 0  # checkerboard
    _pulse(crossbar, info.set_pulse, mask, count=8)
    g = _mean_read(crossbar, 4)
    assert np.median(g[mask]) > np.median(g[~mask]) + 0.1 * info.g_max


# -- mvm ------------------------------------------------------------------------------
def _needs_mvm(xbar):
    """Skip unless the backend has an analog MVM (a bench, for one, has none)."""
    if "mvm" not in xbar.info.capabilities:
        pytest.skip("backend has no analog MVM")


def test_mvm_without_the_capability_is_refused(crossbar):
    if "mvm" in crossbar.info.capabilities:
        pytest.skip("backend has an analog MVM")
    with pytest.raises(XbarlabError, match="MVM"):
        crossbar.mvm(np.zeros(crossbar.info.rows))


def _mvm_matrix(info, g):
    """What an ideal forward MVM multiplies by: G, or its column-pair differences."""
    if "differential_columns" in info.capabilities:
        return g[:, 0::2] - g[:, 1::2]
    return g


def test_mvm_shapes(crossbar):
    _needs_mvm(crossbar)
    info = crossbar.info
    v = info.v_read
    n_in, n_out = info.mvm_shape
    assert n_in == info.rows
    assert n_out == (info.cols // 2 if "differential_columns" in info.capabilities else info.cols)
    y = crossbar.mvm(np.full(n_in, v / 2))
    assert y.shape == (n_out,) and y.dtype == np.float32
    y = crossbar.mvm(np.full((5, n_in), v / 2))
    assert y.shape == (5, n_out) and y.dtype == np.float32
    y, saturated = crossbar.mvm(np.full((5, n_in), v / 2), return_saturation=True)
    assert saturated.shape == y.shape and saturated.dtype == bool
    if "mvm_transpose" in info.capabilities:
        y = crossbar.mvm(np.full(n_out, v / 2), transpose=True)
        assert y.shape == (n_in,) and y.dtype == np.float32
        y = crossbar.mvm(np.full((3, n_out), v / 2), transpose=True)
        assert y.shape == (3, n_in)


def test_mvm_of_zero_input_is_zero(crossbar):
    _needs_mvm(crossbar)
    info = crossbar.info
    _spread(crossbar)
    y = crossbar.mvm(np.zeros(info.mvm_shape[0]))
    # only the readout's noise and offsets remain: well below one device's current
    assert np.all(np.abs(y) <= 0.5 * info.v_read * info.g_max)


@pytest.mark.parametrize("transpose", [False, True])
def test_mvm_one_hot_reads_a_row_or_column(crossbar, transpose):
    _needs_mvm(crossbar)
    info = crossbar.info
    if transpose and "mvm_transpose" not in info.capabilities:
        pytest.skip("backend has no transposed MVM")
    _spread(crossbar)
    v = info.v_read
    n = info.mvm_shape[1 if transpose else 0]
    for line in sorted({0, n // 2, n - 1}):
        x = np.zeros(n)
        x[line] = v
        y = np.mean([crossbar.mvm(x, transpose=transpose) for _ in range(8)], axis=0)
        g = _mvm_matrix(info, _mean_read(crossbar, 8))
        g_line = g[:, line] if transpose else g[line]
        expected = v * g_line
        floor = 0.05 * v * info.g_max  # readout noise and ADC steps of a realistic periphery
        error = np.linalg.norm(y - expected)
        assert error <= 0.15 * np.linalg.norm(expected) + floor * np.sqrt(y.size)
        close = np.abs(y - expected) <= 0.25 * np.abs(expected) + floor
        assert np.mean(close) >= 0.9


def test_mvm_is_linear_in_the_input(crossbar):
    _needs_mvm(crossbar)
    info = crossbar.info
    _spread(crossbar)
    v = info.v_read
    x = np.random.default_rng(1).uniform(0, v / 2, size=info.mvm_shape[0])
    y1 = np.mean([crossbar.mvm(x) for _ in range(8)], axis=0)
    y2 = np.mean([crossbar.mvm(2 * x) for _ in range(8)], axis=0)
    assert y2.sum() == pytest.approx(2 * y1.sum(), rel=0.1, abs=0.05 * v * info.g_max)
    np.testing.assert_allclose(y2, 2 * y1, rtol=0.2, atol=0.05 * v * info.g_max)


# -- clock ----------------------------------------------------------------------------
def test_clock_never_goes_back(crossbar):
    info = crossbar.info
    times = [crossbar.clock.now()]
    for _ in range(4):
        crossbar.read()
        times.append(crossbar.clock.now())
        _pulse(crossbar, info.set_pulse)
        times.append(crossbar.clock.now())
        if "mvm" in info.capabilities:
            crossbar.mvm(np.zeros(info.mvm_shape[0]))
            times.append(crossbar.clock.now())
    crossbar.clock.sleep(0.0)
    times.append(crossbar.clock.now())
    assert all(isinstance(t, float) for t in times)
    assert all(b >= a for a, b in zip(times, times[1:], strict=False))


# -- safety ---------------------------------------------------------------------------
def _violations(info):
    lim, sp = info.limits, info.set_pulse
    ok = dict(polarity=sp.polarity, amplitude=sp.amplitude, width=sp.width, count=1)
    return {
        "max_voltage": {**ok, "amplitude": lim.max_voltage * 1.2},
        "max_pulse_width": {**ok, "width": lim.max_pulse_width * 2},
        "min_pulse_width": {**ok, "width": lim.min_pulse_width / 2},
        "max_pulse_count": {**ok, "count": lim.max_pulse_count + 1},
    }


@pytest.mark.parametrize(
    "limit", ["max_voltage", "max_pulse_width", "min_pulse_width", "max_pulse_count"]
)
def test_pulse_beyond_limits_is_refused_and_state_unchanged(crossbar, limit):
    info = crossbar.info
    _pulse(crossbar, info.reset_pulse)
    _pulse(crossbar, info.set_pulse, count=4)  # mid-window: any stray pulse would show
    before = _mean_read(crossbar, 8)
    with pytest.raises(SafetyError) as err:
        crossbar.pulse(None, **_violations(info)[limit])
    assert err.value.limit == limit
    assert limit in str(err.value)
    after = _mean_read(crossbar, 8)
    assert after.mean() == pytest.approx(before.mean(), rel=0.1)
    assert np.median(np.abs(after - before)) <= 0.05 * info.g_max


def test_read_and_mvm_beyond_read_voltage_are_refused(crossbar):
    info = crossbar.info
    over = info.limits.max_read_voltage * 1.5
    with pytest.raises(SafetyError, match="max_read_voltage"):
        crossbar.read(v_read=over)
    if "mvm" not in info.capabilities:
        return
    x = np.zeros(info.mvm_shape[0])
    x[0] = over
    with pytest.raises(SafetyError, match="max_read_voltage"):
        crossbar.mvm(x)


# -- malformed calls ------------------------------------------------------------------
def _bad_selections(info):
    r, c = info.rows, info.cols
    return [
        np.zeros((r + 1, c), dtype=bool),
        np.zeros(r * c, dtype=bool),
        (np.array([r]), np.array([0])),
        (np.array([0]), np.array([c])),
        (np.array([-1]), np.array([0])),
        (np.array([0.5]), np.array([0])),
        (np.arange(2), np.arange(3)),
        (np.array([0]),),
        np.arange(r * c).reshape(r, c),
        "all",
    ]


@pytest.mark.parametrize("which", range(10))
def test_malformed_selection_raises_selection_error(crossbar, which):
    info = crossbar.info
    sel = _bad_selections(info)[which]
    with pytest.raises(SelectionError):
        crossbar.read(sel)
    with pytest.raises(SelectionError):
        _pulse(crossbar, info.set_pulse, sel)


def test_pulsing_a_device_twice_in_one_call_is_refused(crossbar):
    with pytest.raises(SelectionError, match="more than once"):
        _pulse(crossbar, crossbar.info.set_pulse, (np.array([0, 0]), np.array([1, 1])))


def test_mvm_with_wrong_input_shape_is_refused(crossbar):
    from xbarlab.errors import ConfigError

    _needs_mvm(crossbar)
    info = crossbar.info
    n = info.mvm_shape[0]
    for bad in (np.zeros(n + 1), np.zeros((2, n + 1)), np.zeros((2, 2, n))):
        with pytest.raises(ConfigError, match="shape"):
            crossbar.mvm(bad)


# -- lifecycle ------------------------------------------------------------------------
def test_close_is_idempotent(crossbar):
    crossbar.close()
    crossbar.close()


def test_context_manager_returns_the_crossbar_and_closes(crossbar):
    with crossbar as xbar:
        assert xbar is crossbar
        g = xbar.read()
    assert g.shape == crossbar.info.shape


def test_context_manager_propagates_exceptions(crossbar):
    with pytest.raises(RuntimeError, match="boom"):
        with crossbar:
            raise RuntimeError("boom")
