"""`xbarlab calibrate characterize` and `calibrate fit`: campaign, preset file, report."""

from __future__ import annotations

import json

from click.testing import CliRunner

from xbarlab.cli import main
from xbarlab.emulator.pcm_params import PCMParams

SPEC = "emulator:pcm?rows=16&cols=16&seed=2"


def test_characterize_then_fit_writes_a_preset_and_a_report(tmp_path, monkeypatch):
    monkeypatch.setenv("XBARLAB_STORE", str(tmp_path / "runs.sqlite"))
    cli = CliRunner()
    res = cli.invoke(main, ["calibrate", "characterize", "--backend", SPEC, "--json"])
    assert res.exit_code == 0, res.output
    run = json.loads(res.stdout)
    assert run["status"] == "completed" and run["procedure"] == "campaign"
    preset = tmp_path / "fitted.json"
    args = ["calibrate", "fit", run["run_id"], "--out", str(preset), "--report", str(tmp_path)]
    res = cli.invoke(main, [*args, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert PCMParams.load(preset).q_s_coeff == out["fitted"]["q_s_coeff"]
    assert 0.0088 * 0.8 < out["fitted"]["q_s_coeff"] < 0.0088 * 1.2  # the default chip
    assert len(out["report"]) == 4 and all((tmp_path / p).exists() for p in out["report"])


def test_fit_of_an_unknown_run_is_a_clear_error_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("XBARLAB_STORE", str(tmp_path / "runs.sqlite"))
    cli = CliRunner()
    assert cli.invoke(main, ["calibrate", "characterize", "--backend", SPEC]).exit_code == 0
    preset = tmp_path / "fitted.json"
    res = cli.invoke(main, ["calibrate", "fit", "nope", "--out", str(preset)])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "nope" in res.stderr and not preset.exists()
