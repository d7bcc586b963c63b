"""Spec strings, the backend registry, and the emulator backend's opener and ChipInfo."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xbarlab.chipdrivers import (
    CAPABILITIES,
    Crossbar,
    backends,
    factory,
    open_crossbar,
    parse_spec,
    register_backend,
)
from xbarlab.chipdrivers.emulated import EmulatedCrossbar
from xbarlab.clock import VirtualClock
from xbarlab.emulator import PCMParams
from xbarlab.errors import ConfigError, SpecError

SPEC = "emulator:pcm?rows=16&cols=12&seed=3"


# -- parse_spec -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "scheme", "target", "params"),
    [
        (
            "emulator:pcm?rows=4&cols=8&seed=1",
            "emulator",
            "pcm",
            {"rows": "4", "cols": "8", "seed": "1"},
        ),
        ("emulator:pcm", "emulator", "pcm", {}),
        (" Emulator :pcm", "emulator", "pcm", {}),
        ("board:socket://127.0.0.1:5555", "board", "socket://127.0.0.1:5555", {}),
        ("board:/dev/ttyUSB0?baud=115200", "board", "/dev/ttyUSB0", {"baud": "115200"}),
        ("bench:station.yaml", "bench", "station.yaml", {}),
        ("emulator:pcm?preset=a%2Fb.json", "emulator", "pcm", {"preset": "a/b.json"}),
        ("emulator:pcm?rows=", "emulator", "pcm", {"rows": ""}),
    ],
)
def test_parse_spec(text, scheme, target, params):
    s = parse_spec(text)
    assert (s.scheme, s.target, s.params, s.text) == (scheme, target, params, text)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("emulator", "has no scheme"),
        ("", "has no scheme"),
        (None, "has no scheme"),
        (42, "has no scheme"),
        ("emulator:pcm?rows", "cannot parse the parameters"),
        ("emulator:pcm?rows=1&rows=2", "'rows' given twice"),
    ],
)
def test_parse_spec_rejects_malformed_specs(text, words):
    with pytest.raises(SpecError, match=words):
        parse_spec(text)


def test_spec_without_scheme_shows_an_example():
    with pytest.raises(SpecError, match=r"e\.g\. emulator:pcm\?rows="):
        parse_spec("pcm")


# -- registry -------------------------------------------------------------------------
def test_emulator_is_registered_with_a_working_example():
    registered = backends()
    assert "emulator" in registered
    example = registered["emulator"]
    assert parse_spec(example).scheme == "emulator"
    with open_crossbar(example) as xbar:
        assert xbar.info.shape == (256, 256)


def test_unknown_scheme_lists_the_valid_ones():
    with pytest.raises(SpecError) as info:
        open_crossbar("nosuch:thing")
    msg = str(info.value)
    assert "'nosuch'" in msg
    assert "valid" in msg
    assert "emulator" in msg
    assert "\n" not in msg


def test_register_backend_routes_its_scheme_to_the_opener(monkeypatch):
    monkeypatch.setattr(factory, "_BACKENDS", dict(factory._BACKENDS))
    seen = []

    def opener(spec):
        seen.append(spec)
        return open_crossbar("emulator:pcm?rows=2&cols=3")

    register_backend("fake", opener, "fake:unit?x=1")
    xbar = open_crossbar("FAKE:unit?x=1&y=two")
    assert xbar.info.shape == (2, 3)
    assert [(s.scheme, s.target, s.params) for s in seen] == [
        ("fake", "unit", {"x": "1", "y": "two"})
    ]
    assert backends()["fake"] == "fake:unit?x=1"
    assert list(backends()) == sorted(backends())


def test_register_backend_does_not_leak_between_tests():
    assert "fake" not in backends()


# -- the emulator opener --------------------------------------------------------------
def test_emulator_spec_sets_shape_seed_and_backend_text():
    with open_crossbar(SPEC) as xbar:
        assert isinstance(xbar, EmulatedCrossbar)
        assert isinstance(xbar, Crossbar)
        assert xbar.info.shape == (16, 12)
        assert xbar.info.backend == SPEC
        assert xbar.info.details["seed"] == 3
        assert xbar.chip.shape == (16, 12)


def test_emulator_defaults_are_256_square_and_seed_0():
    with open_crossbar("emulator:pcm") as xbar:
        assert xbar.info.shape == (256, 256)
        assert xbar.info.details["seed"] == 0


def test_model_fields_can_be_overridden_in_the_spec():
    with open_crossbar("emulator:pcm?rows=4&cols=4&g_max=3e-5&g_min=2e-7") as xbar:
        assert xbar.info.g_max == 3e-5
        assert xbar.chip.params.g_min == 2e-7
        assert xbar.info.details["model"]["g_max"] == 3e-5
        assert xbar.chip.params.g_max == 3e-5
    # the usable window starts where RESET reliably lands, not at the physical floor
    with open_crossbar("emulator:pcm?rows=4&cols=4&reset_g_mean=1e-6&reset_g_std=2e-7") as xbar:
        assert xbar.info.g_min == pytest.approx(1.4e-6)


def test_named_preset_is_used():
    spec = "emulator:pcm?rows=64&cols=64&seed=1&preset=ideal"
    with open_crossbar(spec) as xbar:
        assert xbar.chip.params.stuck_set_fraction == 0.0
        assert not xbar.chip.stuck.any()


def test_preset_file_is_loaded(tmp_path):
    path = tmp_path / "chip.json"
    PCMParams(g_max=40e-6, v_reset=1.8).save(path)
    with open_crossbar(f"emulator:pcm?rows=4&cols=4&preset={path}") as xbar:
        assert xbar.info.g_max == 40e-6
        assert xbar.chip.params.v_reset == 1.8


@pytest.mark.parametrize(
    ("spec", "error", "words"),
    [
        (
            "emulator:sram?rows=4",
            SpecError,
            "unknown emulated technology 'sram'.*valid: pcm, rram, mram",
        ),
        ("emulator:pcm?rows=4&colz=4", SpecError, "unknown parameter.*colz.*valid: rows, cols"),
        ("emulator:pcm?rows=four", SpecError, "rows must be an integer"),
        ("emulator:pcm?rows=2.5", SpecError, "rows must be an integer"),
        ("emulator:pcm?rows=", SpecError, "rows must be an integer"),
        ("emulator:pcm?rows=0", SpecError, "rows = 0 is outside 1..16384"),
        ("emulator:pcm?cols=16385", SpecError, "cols = 16385 is outside 1..16384"),
        ("emulator:pcm?rows=16384&cols=16384", SpecError, "device limit"),
        ("emulator:pcm?seed=-1", SpecError, "seed = -1 is outside"),
        ("emulator:pcm?rows=4&g_max=big", SpecError, "g_max must be a number"),
        ("emulator:pcm?rows=4&g_max=nan", SpecError, "g_max must be finite"),
        ("emulator:pcm?rows=4&g_max=inf", SpecError, "g_max must be finite"),
        ("emulator:pcm?rows=4&g_min=1e-4", ConfigError, "g_min"),
        ("emulator:pcm?rows=4&preset=nosuch", ConfigError, "unknown PCM preset 'nosuch'"),
    ],
)
def test_bad_emulator_specs_are_refused_with_a_useful_message(spec, error, words):
    with pytest.raises(error, match=words):
        open_crossbar(spec)


@pytest.mark.parametrize("tech", ["pcm", "rram", "mram"])
@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("rows=4&colz=4", "unknown parameter.*colz for emulator:{tech}; valid: rows, cols"),
        ("rows=0", "rows = 0 is outside 1..16384"),
        ("rows=16384&cols=16384", "device limit"),
        ("seed=-1", "seed = -1 is outside"),
        ("rows=4&dac_range=big", "dac_range must be a number"),
        ("rows=4&adc_bits=x", "adc_bits must be an integer"),
    ],
)
def test_every_emulated_technology_checks_its_spec_the_same_way(tech, query, words):
    with pytest.raises(SpecError, match=words.format(tech=tech)):
        open_crossbar(f"emulator:{tech}?{query}")


@pytest.mark.parametrize(
    ("tech", "field", "value"),
    [("pcm", "g_max", 2e-5), ("rram", "g_max", 2e-5), ("mram", "tmr", 0.7)],
)
def test_every_emulated_technology_takes_shape_seed_and_overrides(tech, field, value):
    spec = f"emulator:{tech}?rows=3&cols=5&seed=7&{field}={value}&adc_bits=6"
    with open_crossbar(spec) as xbar:
        assert xbar.info.shape == (3, 5) and xbar.info.backend == spec
        assert xbar.info.details["seed"] == 7
        assert xbar.info.details["model"][field] == value
        assert xbar.info.details["periphery"]["adc_bits"] == 6


def test_same_seed_same_chip_and_same_reads():
    with open_crossbar(SPEC) as a, open_crossbar(SPEC) as b:
        for name, arr in a.chip.state_arrays().items():
            np.testing.assert_array_equal(arr, b.chip.state_arrays()[name], err_msg=name)
        np.testing.assert_array_equal(a.read(), b.read())
        for xbar in (a, b):
            xbar.pulse(None, polarity=1, amplitude=1.0, width=50e-9, count=3)
        np.testing.assert_array_equal(a.read(), b.read())


def test_different_seeds_differ():
    with open_crossbar(SPEC) as a, open_crossbar(SPEC.replace("seed=3", "seed=4")) as b:
        assert not np.array_equal(a.chip.sens, b.chip.sens)
        assert not np.array_equal(a.read(), b.read())


# -- ChipInfo of the emulator ---------------------------------------------------------
def test_chip_info_is_consistent_with_the_device_model():
    with open_crossbar(SPEC) as xbar:
        info, p = xbar.info, xbar.chip.params
        assert info.technology == "pcm"
        assert info.g_max == p.g_max
        assert info.g_min == pytest.approx(max(p.g_min, p.reset_g_mean + 2 * p.reset_g_std))
        assert info.capabilities <= set(CAPABILITIES)
        assert {"read", "pulse", "mvm", "mvm_transpose", "virtual_time"} <= info.capabilities
        lo, hi = info.set_amplitude_range
        # SET pulses act gradually: above the crystallisation threshold, below melting
        assert p.v_set_min < lo < info.set_pulse.amplitude < hi < p.v_reset
        # RESET pulses melt, and stay inside the safety limit
        assert p.v_reset <= info.reset_pulse.amplitude <= info.limits.max_voltage
        for pulse in (info.set_pulse, info.reset_pulse):
            assert info.limits.min_pulse_width <= pulse.width <= info.limits.max_pulse_width
        assert 0 < info.v_read <= info.limits.max_read_voltage


def test_chip_info_to_dict_is_json_ready():
    with open_crossbar(SPEC) as xbar:
        d = json.loads(json.dumps(xbar.info.to_dict()))
    assert d["rows"] == 16 and d["cols"] == 12
    assert d["backend"] == SPEC
    assert d["capabilities"] == sorted(d["capabilities"])
    assert d["set_pulse"] == {"amplitude_V": 1.0, "width_s": 50e-9, "polarity": 1}
    assert d["details"]["seed"] == 3


def test_emulator_clock_is_virtual_and_shared_with_the_chip():
    with open_crossbar(SPEC) as xbar:
        assert isinstance(xbar.clock, VirtualClock)
        assert xbar.clock is xbar.chip.clock
        t0 = xbar.clock.now()
        xbar.clock.sleep(86400.0)
        assert xbar.clock.now() == pytest.approx(t0 + 86400.0)
