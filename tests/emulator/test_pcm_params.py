"""PCMParams: validation, JSON preset files, named presets and spec overrides.

The model parameters are declared once (STYLE habit 3); these tests check that
every way in (constructor, preset file, ``emulator:pcm?...`` spec) validates the
same way and that errors name the offending field.
"""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.chipdrivers.programming import write_verify
from xbarlab.emulator import PRESETS, PCMParams, load_preset
from xbarlab.errors import ConfigError, SpecError


def test_every_field_is_documented_in_the_class_docstring():
    doc = PCMParams.__doc__
    missing = [f.name for f in fields(PCMParams) if f.name not in doc]
    assert not missing


def test_save_load_round_trip(tmp_path):
    p = PCMParams(
        g_max=30e-6,
        nu_min=0.04,
        set_c2c=0.7,
        stuck_set_fraction=0.02,
        endurance_median=1e6,
        t_array_read=1e-3,
    )
    path = tmp_path / "chip.json"
    p.save(path)
    assert PCMParams.load(path) == p
    assert json.loads(path.read_text())["technology"] == "pcm"
    PCMParams().save(path)
    assert PCMParams.load(path) == PCMParams()


def test_load_keeps_defaults_for_missing_fields(tmp_path):
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"technology": "pcm", "params": {"g_max": 20e-6}}))
    assert PCMParams.load(path) == PCMParams(g_max=20e-6)


def test_load_rejects_unknown_key_naming_it(tmp_path):
    path = tmp_path / "bad.json"
    params = PCMParams().to_dict() | {"drift_nu_typo": 0.05}
    path.write_text(json.dumps({"technology": "pcm", "params": params}))
    with pytest.raises(ConfigError, match="drift_nu_typo"):
        PCMParams.load(path)


@pytest.mark.parametrize("doc", [{"technology": "rram", "params": {}}, [1, 2]])
def test_load_rejects_files_that_are_not_pcm_presets(tmp_path, doc):
    path = tmp_path / "other.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="not a PCM preset"):
        PCMParams.load(path)


def test_load_reports_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        PCMParams.load(tmp_path / "missing.json")
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        PCMParams.load(path)


INVALID = [
    ({"g_max": -25e-6}, "g_max"),
    ({"g_max": 0.0}, "g_max"),
    ({"g_min": 30e-6}, "g_min"),  # above g_max
    ({"t0": -1.0}, "t0"),
    ({"stuck_set_fraction": 1.5}, "stuck_set_fraction"),
    ({"stuck_reset_fraction": -0.1}, "stuck_reset_fraction"),
    ({"endurance_stuck_set_fraction": 2.0}, "endurance_stuck_set_fraction"),
    ({"stuck_set_fraction": 0.6, "stuck_reset_fraction": 0.6}, "stuck_set_fraction"),
    ({"v_set_min": 1.5}, "v_set_min"),  # = v_reset
    ({"v_set_min": 2.0}, "v_set_min"),  # > v_reset
    ({"v_reset": 0.9}, "v_reset"),  # below v_set_ref
    ({"nu_max": float("nan")}, "nu_max"),
    ({"q_s_max": "0.2"}, "q_s_max"),
]


@pytest.mark.parametrize(("changes", "name"), INVALID)
def test_invalid_values_raise_config_error_naming_the_field(changes, name):
    with pytest.raises(ConfigError, match=name):
        PCMParams(**changes)
    with pytest.raises(ConfigError, match=name):
        PCMParams().with_overrides(**changes)


def test_invalid_value_in_preset_file_is_rejected(tmp_path):
    path = tmp_path / "neg.json"
    path.write_text(json.dumps({"technology": "pcm", "params": {"g_max": -1e-6}}))
    with pytest.raises(ConfigError, match="g_max"):
        PCMParams.load(path)


def test_with_overrides_rejects_unknown_names():
    with pytest.raises(ConfigError, match="g_maximum"):
        PCMParams().with_overrides(g_maximum=1e-5)


def test_named_presets_exist_and_load():
    assert {"default", "ideal"} <= set(PRESETS)
    assert load_preset("default") == PCMParams()
    ideal = load_preset("ideal")
    assert ideal.stuck_set_fraction == ideal.stuck_reset_fraction == 0
    assert ideal.nu_max == 0 and ideal.set_c2c == 0
    with pytest.raises(ConfigError, match="no_such_preset"):
        load_preset("no_such_preset")


def test_ideal_preset_chip_has_no_drift_and_no_defects():
    xbar = open_crossbar("emulator:pcm?rows=32&cols=32&seed=2&preset=ideal")
    chip = xbar.chip
    target = np.full((32, 32), 0.4 * chip.params.g_max, np.float32)
    res = write_verify(xbar, target, tolerance=0.01 * chip.params.g_max)
    assert res.converged_fraction == 1.0 and not chip.stuck.any()
    xbar.clock.sleep(1e5)
    g, sigma = chip.conductance()
    np.testing.assert_array_equal(g.ravel(), chip.g_prog)
    assert np.max(sigma / g) < 1e-6


def test_spec_preset_path_uses_saved_file(tmp_path):
    saved = PCMParams(
        g_max=40e-6, g_min=0.2e-6, stuck_set_fraction=0.0, stuck_reset_fraction=0.0, nu_min=0.03
    )
    path = tmp_path / "my_chip.json"
    saved.save(path)
    xbar = open_crossbar(f"emulator:pcm?rows=50&cols=50&seed=3&preset={path}")
    assert xbar.chip.params == saved
    assert xbar.info.g_max == 40e-6
    assert xbar.info.g_min == pytest.approx(max(0.2e-6, saved.reset_g_mean + 2 * saved.reset_g_std))
    assert xbar.info.details["model"] == saved.to_dict()
    assert np.mean(xbar.chip.g_sat) == pytest.approx(40e-6, rel=0.01)  # physics uses it
    assert not xbar.chip.stuck.any()


def test_spec_overrides_take_effect_over_preset(tmp_path):
    path = tmp_path / "base.json"
    PCMParams(g_max=40e-6).save(path)
    xbar = open_crossbar(
        f"emulator:pcm?rows=100&cols=100&seed=4&preset={path}"
        "&stuck_set_fraction=0.2&stuck_reset_fraction=0&nu_min=0.07"
    )
    p = xbar.chip.params
    assert (p.g_max, p.stuck_set_fraction, p.stuck_reset_fraction, p.nu_min) == (
        40e-6,
        0.2,
        0.0,
        0.07,
    )
    assert xbar.chip.stuck.mean() == pytest.approx(0.2, abs=4 * np.sqrt(0.16 / 1e4))
    plain = open_crossbar("emulator:pcm?rows=4&cols=4&g_max=30e-6")
    assert plain.chip.params == PCMParams(g_max=30e-6)


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("g_max=-1e-6", "g_max"),
        ("stuck_set_fraction=1.5", "stuck_set_fraction"),
        ("v_set_min=1.6", "v_set_min"),
    ],
)
def test_spec_overrides_are_validated(query, name):
    with pytest.raises(ConfigError, match=name):
        open_crossbar(f"emulator:pcm?rows=4&cols=4&{query}")


def test_spec_rejects_unknown_model_field_and_bad_numbers():
    with pytest.raises(SpecError, match="g_maxx"):
        open_crossbar("emulator:pcm?rows=4&cols=4&g_maxx=1e-5")
    with pytest.raises(SpecError, match="nu_min"):
        open_crossbar("emulator:pcm?rows=4&cols=4&nu_min=abc")
