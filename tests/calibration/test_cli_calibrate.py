"""CLI: xbarlab calibrate readout | drift."""

import json

from click.testing import CliRunner

from xbarlab.calibration.readout import ReadoutCalibration
from xbarlab.cli import main

SMALL = "emulator:pcm?rows=32&cols=32&seed=1"


def test_readout_json_and_file(tmp_path):
    path = tmp_path / "readout.json"
    spec = SMALL + "&gain_std=0.05&offset_std=2"
    res = CliRunner().invoke(
        main, ["calibrate", "readout", "--backend", spec, "--out", str(path), "--json"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["error_after"] * 3 < doc["error_before"]
    assert doc["file"] == str(path)
    assert list(ReadoutCalibration.load(path).arrays) == [spec]


def test_drift_json_and_summary():
    res = CliRunner().invoke(main, ["calibrate", "drift", "--backend", SMALL, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["error_after"] * 3 <= doc["error_before"]
    assert 1.3 < doc["factor"] < 1.7
    res = CliRunner().invoke(
        main, ["calibrate", "drift", "--backend", SMALL, "--mode", "column", "--after", "3600"]
    )
    assert res.exit_code == 0, res.output
    assert "drift compensation (column)" in res.output and "after 3600 s" in res.output


def test_bad_spec_is_a_clear_error():
    res = CliRunner().invoke(main, ["calibrate", "readout", "--backend", "emulator:pcm?rows=x"])
    assert res.exit_code != 0
    assert "rows must be an integer" in res.output
    assert "Traceback" not in res.output
