"""The ``emulator:mram`` backend: spec, ChipInfo, checked logic(), state, CLI info."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from xbarlab.chipdrivers import Crossbar, open_crossbar
from xbarlab.cli import main
from xbarlab.errors import ConfigError, SafetyError, SelectionError, SpecError

SPEC = "emulator:mram?rows=6&cols=10&seed=2"


@pytest.fixture
def mram():
    with open_crossbar(SPEC) as xbar:
        yield xbar


@pytest.fixture
def ideal():
    with open_crossbar("emulator:mram?rows=4&cols=8&seed=1&preset=ideal") as xbar:
        yield xbar


def _store(xbar, bits):
    info = xbar.info
    for mask, shape in ((bits, info.set_pulse), (~bits, info.reset_pulse)):
        xbar.pulse(mask, polarity=shape.polarity, amplitude=shape.amplitude, width=shape.width)


def test_info_describes_an_mram_chip_with_logic(mram):
    info = mram.info
    assert isinstance(mram, Crossbar)
    assert info.technology == "mram"
    assert info.shape == (6, 10)
    assert {"logic", "read", "pulse", "virtual_time", "state"} <= info.capabilities
    p = mram.chip.params
    assert (info.g_min, info.g_max) == pytest.approx((p.g_ap, p.g_p))
    assert info.set_pulse.polarity == 1 and info.reset_pulse.polarity == -1
    assert info.set_pulse.amplitude > info.details["switch_threshold_V"]
    assert info.details["sense_margin"]["and"] == pytest.approx(0.3 / 1.7)
    json.dumps(info.to_dict())


def test_cli_info_lists_the_logic_capability():
    result = CliRunner().invoke(main, ["info", "emulator:mram?rows=4&cols=4"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["technology"] == "mram"
    assert "logic" in doc["capabilities"]


def test_spec_parameters_reach_the_model():
    with open_crossbar("emulator:mram?rows=2&cols=3&tmr=0.7&sense_noise=0.03&adc_bits=6") as x:
        assert x.chip.params.tmr == 0.7 and x.chip.params.sense_noise == 0.03
        assert x.chip.periphery.adc_bits == 6


@pytest.mark.parametrize(
    "spec, word",
    [
        ("emulator:mram?rows=2&cols=3&tmr_max=1", "unknown parameter"),
        ("emulator:mram?rows=0", "rows"),
        ("emulator:mram?tmr=abc", "tmr"),
        ("emulator:mram?preset=nonesuch", "unknown MRAM preset"),
        ("emulator:mram?v_write=3", "max_voltage"),
    ],
)
def test_bad_specs_are_refused_by_name(spec, word):
    with pytest.raises((SpecError, ConfigError), match=word):
        open_crossbar(spec)


def test_written_bits_read_back_as_two_conductance_levels(ideal):
    bits = np.random.default_rng(0).random(ideal.info.shape) < 0.5
    _store(ideal, bits)
    g = ideal.read()
    info = ideal.info
    np.testing.assert_allclose(g, np.where(bits, info.g_max, info.g_min), rtol=1e-6)


def test_logic_senses_and_or_per_column(ideal):
    bits = np.random.default_rng(1).random(ideal.info.shape) < 0.5
    _store(ideal, bits)
    np.testing.assert_array_equal(ideal.logic("and", 0, 2), bits[0] & bits[2])
    np.testing.assert_array_equal(ideal.logic("or", 3, 1), bits[3] | bits[1])
    cols = np.array([7, 0, 3])
    np.testing.assert_array_equal(ideal.logic("and", 1, 2, cols), (bits[1] & bits[2])[cols])
    mask = np.arange(8) % 2 == 1
    got = ideal.logic("or", np.int64(0), 1, mask)
    np.testing.assert_array_equal(got, (bits[0] | bits[1])[mask])


@pytest.mark.parametrize(
    "args, error, word",
    [
        (("xor", 0, 1), ConfigError, "'and' or 'or'"),
        (("and", 0, 0), SelectionError, "distinct"),
        (("and", 0, 6), SelectionError, "row_b = 6 is outside 0..5"),
        (("and", -1, 2), SelectionError, "row_a"),
        (("and", 0.5, 2), SelectionError, "integer"),
        (("and", 0, 1, np.array([10])), SelectionError, "0..9"),
        (("and", 0, 1, np.zeros(9, dtype=bool)), SelectionError, r"\(10,\)"),
        (("and", 0, 1, np.array([[1]])), SelectionError, "1-D"),
    ],
)
def test_bad_logic_calls_are_refused(mram, args, error, word):
    with pytest.raises(error, match=word):
        mram.logic(*args)


def test_logic_on_a_chip_without_the_capability_is_refused():
    with open_crossbar("emulator:pcm?rows=4&cols=4") as pcm:
        with pytest.raises(ConfigError, match="capability 'logic'"):
            pcm.logic("and", 0, 1)


def test_writes_are_checked_against_the_safety_limits(mram):
    before = mram.chip.bits.copy()
    with pytest.raises(SafetyError, match="max_voltage"):
        mram.pulse(None, polarity=1, amplitude=3.0, width=10e-9)
    np.testing.assert_array_equal(mram.chip.bits, before)


def test_save_and_load_state_continue_identically(mram):
    _store(mram, np.random.default_rng(2).random(mram.info.shape) < 0.5)
    blob = mram.save_state()
    first = (mram.logic("and", 0, 1), mram.read())
    _store(mram, np.ones(mram.info.shape, dtype=bool))
    mram.load_state(blob)
    second = (mram.logic("and", 0, 1), mram.read())
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    with open_crossbar("emulator:mram?rows=6&cols=10&seed=3") as other:
        with pytest.raises(ConfigError, match="seed"):
            other.load_state(blob)
    with pytest.raises(ConfigError, match="not an emulator chip state"):
        mram.load_state(b"junk")
