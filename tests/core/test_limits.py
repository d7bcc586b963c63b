"""SafetyLimits: construction checks, pulse and read-voltage checks, error messages."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.errors import ConfigError, SafetyError, XbarlabError
from xbarlab.limits import SafetyLimits

LIMITS = SafetyLimits()
FIELDS = [f.name for f in dataclasses.fields(SafetyLimits)]


# -- construction ---------------------------------------------------------------------
def test_defaults_are_the_documented_values():
    assert LIMITS.max_voltage == 2.5
    assert LIMITS.max_read_voltage == 0.3
    assert LIMITS.max_pulse_width == 10e-6
    assert LIMITS.min_pulse_width == 10e-9
    assert LIMITS.max_pulse_count == 10_000
    assert LIMITS.compliance_current == 500e-6


def test_limits_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        LIMITS.max_voltage = 10.0


@pytest.mark.parametrize("name", FIELDS)
@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_every_limit_must_be_positive_and_finite(name, bad):
    with pytest.raises(ConfigError, match=name):
        SafetyLimits(**{name: bad})


def test_min_pulse_width_above_max_is_rejected():
    with pytest.raises(ConfigError, match="min_pulse_width"):
        SafetyLimits(min_pulse_width=2e-6, max_pulse_width=1e-6)


def test_equal_min_and_max_pulse_width_is_allowed():
    lim = SafetyLimits(min_pulse_width=1e-6, max_pulse_width=1e-6)
    lim.check_pulse(1.0, 1e-6, 1)


def test_non_integer_max_pulse_count_is_rejected():
    # max_pulse_count is documented as an int; 2.5 pulses is not a limit.
    with pytest.raises(ConfigError, match="max_pulse_count"):
        SafetyLimits(max_pulse_count=2.5)


def test_non_numeric_limit_raises_config_error():
    with pytest.raises(ConfigError, match="max_voltage"):
        SafetyLimits(max_voltage="2.5")


def test_to_dict_carries_si_units_in_keys():
    d = SafetyLimits(max_voltage=3.0, compliance_current=1e-4).to_dict()
    assert d == {
        "max_voltage_V": 3.0,
        "max_read_voltage_V": 0.3,
        "max_pulse_width_s": 10e-6,
        "min_pulse_width_s": 10e-9,
        "max_pulse_count": 10_000,
        "compliance_current_A": 1e-4,
    }


# -- check_pulse: each limit, message names the limit and the value -------------------
def _safety(fn, *args):
    with pytest.raises(SafetyError) as info:
        fn(*args)
    return info.value


@pytest.mark.parametrize(
    ("amplitude", "width", "count", "limit", "value"),
    [
        (3.0, 50e-9, 1, "max_voltage", 3.0),
        (-3.0, 50e-9, 1, "max_voltage", 3.0),
        (np.array([1.0, 2.7, 0.5]), 50e-9, 1, "max_voltage", 2.7),
        (np.array([[-2.6, 1.0], [1.0, 1.0]]), 50e-9, 1, "max_voltage", 2.6),
        (1.0, 20e-6, 1, "max_pulse_width", 20e-6),
        (1.0, np.array([50e-9, 11e-6]), 1, "max_pulse_width", 11e-6),
        (1.0, 5e-9, 1, "min_pulse_width", 5e-9),
        (1.0, np.array([50e-9, 2e-9]), 1, "min_pulse_width", 2e-9),
        (1.0, 50e-9, 10_001, "max_pulse_count", 10_001),
    ],
)
def test_check_pulse_names_the_violated_limit_and_value(amplitude, width, count, limit, value):
    err = _safety(LIMITS.check_pulse, amplitude, width, count)
    assert err.limit == limit
    assert err.value == pytest.approx(value)
    assert err.allowed == getattr(LIMITS, limit)
    msg = str(err)
    assert limit in msg
    assert f"{value:.6g}" in msg
    assert f"{getattr(LIMITS, limit):.6g}" in msg
    assert "nothing was sent" in msg


def test_check_pulse_accepts_values_exactly_at_the_limits():
    LIMITS.check_pulse(LIMITS.max_voltage, LIMITS.max_pulse_width, LIMITS.max_pulse_count)
    LIMITS.check_pulse(-LIMITS.max_voltage, LIMITS.min_pulse_width, 1)


@pytest.mark.parametrize(
    ("amplitude", "width", "count", "words"),
    [
        (0.0, 50e-9, 1, "non-zero"),
        (np.array([1.0, 0.0]), 50e-9, 1, "non-zero"),
        (float("nan"), 50e-9, 1, "finite"),
        (np.array([1.0, np.inf]), 50e-9, 1, "finite"),
        ("high", 50e-9, 1, "amplitude"),
        (1.0, float("nan"), 1, "finite"),
        (1.0, None, 1, "width"),
        (1.0, 50e-9, 0, "positive integer"),
        (1.0, 50e-9, -2, "positive integer"),
        (1.0, 50e-9, 1.5, "positive integer"),
    ],
)
def test_check_pulse_rejects_malformed_values_with_config_error(amplitude, width, count, words):
    with pytest.raises(ConfigError, match=words):
        LIMITS.check_pulse(amplitude, width, count)


@pytest.mark.parametrize("count", [float("inf"), float("nan")])
def test_check_pulse_rejects_non_finite_count_with_an_xbarlab_error(count):
    # A lab script that computes count = inf must get a refusal, not an OverflowError.
    with pytest.raises(XbarlabError, match="count"):
        LIMITS.check_pulse(1.0, 50e-9, count)


def test_negative_width_is_refused():
    with pytest.raises((SafetyError, ConfigError)):
        LIMITS.check_pulse(1.0, -50e-9, 1)


# -- check_read_voltage ---------------------------------------------------------------
@pytest.mark.parametrize("v", [0.31, -0.5, np.array([0.1, 0.35, -0.2])])
def test_check_read_voltage_above_limit(v):
    err = _safety(LIMITS.check_read_voltage, v)
    assert err.limit == "max_read_voltage"
    assert err.value == pytest.approx(float(np.max(np.abs(v))))
    assert "max_read_voltage" in str(err)
    assert "read voltage" in str(err)


def test_check_read_voltage_uses_the_callers_name_for_the_quantity():
    err = _safety(LIMITS.check_read_voltage, 1.0, "MVM input voltage")
    assert str(err).startswith("MVM input voltage = 1 V")


def test_check_read_voltage_accepts_limit_and_below():
    LIMITS.check_read_voltage(0.3)
    LIMITS.check_read_voltage(np.array([-0.3, 0.0, 0.1]))
    LIMITS.check_read_voltage(np.zeros((0, 4)))


def test_check_read_voltage_rejects_nan():
    with pytest.raises(ConfigError, match="finite"):
        LIMITS.check_read_voltage(np.array([0.1, np.nan]))


# -- properties -----------------------------------------------------------------------
limits_strategy = st.builds(
    SafetyLimits,
    max_voltage=st.floats(0.1, 10.0),
    max_read_voltage=st.floats(0.01, 1.0),
    max_pulse_width=st.floats(1e-7, 1e-3),
    min_pulse_width=st.floats(1e-10, 1e-7),
    max_pulse_count=st.integers(1, 100_000),
)
unit = st.floats(0.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(lim=limits_strategy, a=st.floats(1e-6, 1.0), sign=st.sampled_from([1, -1]), w=unit, c=unit)
def test_values_within_limits_never_raise(lim, a, sign, w, c):
    amplitude = sign * a * lim.max_voltage
    width = lim.min_pulse_width + w * (lim.max_pulse_width - lim.min_pulse_width)
    width = min(max(width, lim.min_pulse_width), lim.max_pulse_width)
    count = 1 + int(c * (lim.max_pulse_count - 1))
    lim.check_pulse(amplitude, width, count)
    lim.check_pulse(np.array([amplitude, amplitude / 2]), width, count)


@settings(max_examples=200, deadline=None)
@given(
    lim=limits_strategy,
    over=st.floats(1.0001, 1e3),
    which=st.sampled_from(["max_voltage", "max_pulse_width", "min_pulse_width", "max_pulse_count"]),
)
def test_values_beyond_a_limit_always_raise_safety_error(lim, over, which):
    amplitude, width, count = lim.max_voltage / 2, lim.min_pulse_width, 1
    if which == "max_voltage":
        amplitude = lim.max_voltage * over
    elif which == "max_pulse_width":
        width = lim.max_pulse_width * over
    elif which == "min_pulse_width":
        width = lim.min_pulse_width / over
    else:
        count = int(np.ceil(lim.max_pulse_count * over)) + 1
    with pytest.raises(SafetyError) as info:
        lim.check_pulse(amplitude, width, count)
    assert info.value.limit == which
    assert which in str(info.value)


@settings(max_examples=100, deadline=None)
@given(lim=limits_strategy, frac=st.floats(0.0, 1.0), over=st.floats(1.0001, 1e3))
def test_read_voltage_property(lim, frac, over):
    lim.check_read_voltage(frac * lim.max_read_voltage)
    lim.check_read_voltage(-frac * lim.max_read_voltage)
    with pytest.raises(SafetyError, match="max_read_voltage"):
        lim.check_read_voltage(over * lim.max_read_voltage)


# -- the error hierarchy (xbarlab/errors.py) -------------------------------------------
@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        ("ConfigError", ("XbarlabError", "ValueError")),
        ("SpecError", ("ConfigError", "XbarlabError", "ValueError")),
        ("SelectionError", ("XbarlabError", "ValueError")),
        ("SafetyError", ("XbarlabError", "ValueError")),
        ("BackendError", ("XbarlabError",)),
    ],
)
def test_error_hierarchy(cls, bases):
    import builtins

    from xbarlab import errors

    klass = getattr(errors, cls)
    for base in bases:
        assert issubclass(klass, getattr(errors, base, None) or getattr(builtins, base))


def test_backend_error_is_not_a_value_error():
    from xbarlab.errors import BackendError

    assert not issubclass(BackendError, ValueError)


def test_safety_error_attributes_and_message():
    err = SafetyError("max_voltage", 3.25, 2.5, "V", "pulse amplitude")
    assert (err.limit, err.value, err.allowed) == ("max_voltage", 3.25, 2.5)
    assert str(err).startswith(
        "pulse amplitude = 3.25 V exceeds safety limit max_voltage = 2.5 V; nothing was sent."
    )


def test_errors_are_exported_from_the_top_package():
    import xbarlab
    from xbarlab import errors

    for name in (
        "BackendError",
        "ConfigError",
        "SafetyError",
        "SelectionError",
        "SpecError",
        "XbarlabError",
    ):
        assert getattr(xbarlab, name) is getattr(errors, name)
    assert xbarlab.SafetyLimits is SafetyLimits


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_large_float32_batches_are_checked_by_the_compiled_pass_too(bad):
    """The compiled one-pass check (float32, >= 256 values) refuses what numpy's does."""
    lim = SafetyLimits(max_read_voltage=0.3)
    x = np.full((64, 128), 0.1, dtype=np.float32)
    lim.check_read_voltage(x)
    x[17, 99] = -0.31
    with pytest.raises(SafetyError, match="max_read_voltage"):
        lim.check_read_voltage(x)
    x[17, 99] = np.float32(0.3)  # the limit itself, at float32 precision, is allowed
    lim.check_read_voltage(x)
    x[17, 99] = -np.nextafter(np.float32(0.3), np.float32(1))  # one float32 step above
    with pytest.raises(SafetyError, match="max_read_voltage"):
        lim.check_read_voltage(x)
    x[17, 99] = 0.1
    x[40, 3] = bad
    with pytest.raises(ConfigError, match="NaN or infinity"):
        lim.check_read_voltage(x)


def test_peak_magnitude_matches_numpy():
    from xbarlab.magnitude import peak_magnitude

    x = np.random.default_rng(3).standard_normal((33, 257)).astype(np.float32)
    assert peak_magnitude(x) == float(np.abs(x).max())
    assert peak_magnitude(np.zeros(5000, np.float32)) == 0.0
