"""RRAMParams: validation, JSON preset files, named presets and the pulse-height helpers."""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pytest

from xbarlab.emulator.rram_params import PRESETS, RRAMParams, load_preset
from xbarlab.errors import ConfigError


def test_every_field_is_documented_in_the_class_docstring():
    doc = RRAMParams.__doc__
    missing = [f.name for f in fields(RRAMParams) if f.name not in doc]
    assert not missing


def test_save_load_round_trip(tmp_path):
    p = RRAMParams(g_max=40e-6, c2c=0.5, relax_std=0.01, stuck_on_fraction=0.01)
    path = tmp_path / "rram.json"
    p.save(path)
    assert RRAMParams.load(path) == p
    assert json.loads(path.read_text())["technology"] == "rram"
    assert load_preset(str(path)) == p


def test_a_pcm_preset_file_is_refused(tmp_path):
    path = tmp_path / "pcm.json"
    path.write_text(json.dumps({"technology": "pcm", "params": {}}))
    with pytest.raises(ConfigError, match="not an RRAM preset"):
        RRAMParams.load(path)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"g_min": 30e-6}, "g_min"),
        ({"c2c": -0.1}, "c2c"),
        ({"set_step": 0.0}, "set_step"),
        ({"v_set_th": 1.5}, "v_set_th < v_set_ref"),
        ({"stuck_on_fraction": 0.7, "stuck_off_fraction": 0.5}, "stuck_on_fraction"),
        ({"relax_eq": 1.5}, "relax_eq"),
        ({"read_noise": float("nan")}, "read_noise"),
        ({"no_such_field": 1.0}, "no_such_field"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(changes, words):
    with pytest.raises(ConfigError, match=words):
        RRAMParams().with_overrides(**changes)


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="default, ideal"):
        load_preset("nope")
    assert load_preset("ideal") is PRESETS["ideal"]


def test_drive_is_zero_at_threshold_one_at_reference_and_amplitude_for_inverts_it():
    p = RRAMParams()
    w = p.width_ref
    assert p.drive(1, p.v_set_th, w) == 0.0
    assert p.drive(1, p.v_set_ref, w) == pytest.approx(1.0)
    assert p.drive(-1, p.v_reset_ref, w) == pytest.approx(1.0)
    assert p.drive(-1, -p.v_reset_ref, w) == pytest.approx(1.0)  # the sign is the polarity's
    for polarity, step in ((1, p.set_step), (-1, p.reset_step)):
        for fraction in (0.05, 0.5, 0.99):
            v = p.amplitude_for(polarity, fraction)
            rate = step * p.drive(polarity, v, w)
            assert 1 - np.exp(-rate) == pytest.approx(fraction, rel=1e-9)
