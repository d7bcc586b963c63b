"""The emulator:rram backend: spec parsing, ChipInfo, polarity, state blobs and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from xbarlab.chipdrivers import open_crossbar
from xbarlab.chipdrivers.emulated_rram import EmulatedRRAMCrossbar
from xbarlab.cli import main
from xbarlab.emulator.rram import RRAMArray
from xbarlab.errors import ConfigError, SpecError, XbarlabError

SPEC = "emulator:rram?rows=16&cols=12&seed=3&pristine=0"


def test_spec_opens_an_rram_chip_with_overrides():
    xbar = open_crossbar(
        "emulator:rram?rows=8&cols=6&seed=2&c2c=0.5&differential=1&adc_bits=8&pristine=0"
    )
    assert isinstance(xbar, EmulatedRRAMCrossbar)
    assert isinstance(xbar.chip, RRAMArray)
    assert (xbar.chip.params.c2c, xbar.chip.periphery.adc_bits) == (0.5, 8)
    assert xbar.info.mvm_shape == (8, 3)
    assert "differential_columns" in xbar.info.capabilities


@pytest.mark.parametrize(
    ("spec", "error", "words"),
    [
        ("emulator:rram?rows=4&cols=4&bogus=1", SpecError, "bogus"),
        ("emulator:rram?rows=0&cols=4", SpecError, "rows"),
        ("emulator:rram?c2c=abc", SpecError, "c2c"),
        ("emulator:rram?g_min=1e-4", ConfigError, "g_min"),
        ("emulator:rram?preset=nope", ConfigError, "unknown RRAM preset"),
        ("emulator:rram?v_slope=1", SpecError, "voltage limit"),
    ],
)
def test_bad_specs_are_refused_with_the_parameter_named(spec, error, words):
    with pytest.raises(error, match=words):
        open_crossbar(spec)


def test_info_describes_a_bipolar_rram_chip():
    info = open_crossbar(SPEC).info
    assert info.technology == "rram"
    assert "unipolar" not in info.capabilities
    assert {"read", "pulse", "mvm", "mvm_transpose", "state"} <= info.capabilities
    assert info.set_pulse.polarity == 1 and info.reset_pulse.polarity == -1
    lo, hi = info.set_amplitude_range
    assert lo < info.set_pulse.amplitude < hi < info.reset_pulse.amplitude
    lo_r, hi_r = info.details["reset_amplitude_range"]
    assert lo_r < info.details["gradual_reset_pulse"]["amplitude_V"] < hi_r
    assert info.g_min == pytest.approx(2.4e-6) and info.g_max == pytest.approx(20e-6)


def test_polarity_selects_set_or_gradual_reset():
    xbar = open_crossbar(SPEC)
    info = xbar.info
    rows, cols = np.indices(info.shape)
    half = cols < info.cols // 2
    xbar.pulse(None, polarity=1, amplitude=info.set_pulse.amplitude, width=1e-7, count=15)
    g_set = np.mean([xbar.read() for _ in range(4)], axis=0)
    gradual = info.details["gradual_reset_pulse"]["amplitude_V"]
    xbar.pulse(half, polarity=-1, amplitude=gradual, width=1e-7, count=3)
    g = np.mean([xbar.read() for _ in range(4)], axis=0)
    ok = ~xbar.chip.stuck
    drop = (g_set - g) / g_set
    assert np.median(drop[half & ok]) > 0.1  # gradual: a few RESETs lower G ...
    assert np.median(g[half & ok]) > 2 * info.g_min  # ... but do not switch it off
    assert np.abs(np.median(drop[~half & ok])) < 0.01  # the other half untouched
    # the same height with polarity +1 raises G instead
    xbar.pulse(half, polarity=1, amplitude=gradual, width=1e-7)
    assert np.median(xbar.read()[half & ok] - g[half & ok]) > 0


def test_state_blob_round_trip_and_mismatch():
    a, b = open_crossbar(SPEC), open_crossbar(SPEC)
    a.pulse(None, polarity=1, amplitude=1.0, width=1e-7, count=3)
    blob = a.save_state()
    b.load_state(blob)
    np.testing.assert_array_equal(a.read(), b.read())
    np.testing.assert_array_equal(a.mvm(np.full(16, 0.1)), b.mvm(np.full(16, 0.1)))
    other = open_crossbar("emulator:rram?rows=16&cols=12&seed=4&pristine=0")
    with pytest.raises(ConfigError, match="seed"):
        other.load_state(blob)
    pcm = open_crossbar("emulator:pcm?rows=16&cols=12&seed=3")
    with pytest.raises(XbarlabError):
        pcm.load_state(blob)


def test_cli_info_prints_the_rram_chip():
    result = CliRunner().invoke(main, ["info", "emulator:rram?rows=8&cols=8&seed=1"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.output)
    assert d["technology"] == "rram"
    assert d["reset_pulse"]["polarity"] == -1
    assert "unipolar" not in d["capabilities"]
