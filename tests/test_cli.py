"""The ``xbarlab`` command line, through click's CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import xbarlab
from xbarlab.cli import main

SMALL = "emulator:pcm?rows=64&cols=64&seed=2"


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args))

    return invoke


def _error_line(result) -> str:
    """The one-line error of a refused command (no traceback, exit code non-zero)."""
    assert result.exit_code != 0
    # an unhandled exception would be stored here instead of click's SystemExit
    assert isinstance(result.exception, SystemExit), result.exc_info
    text = result.stderr.strip()
    assert "Traceback" not in result.output
    assert len(text.splitlines()) == 1, text
    assert text.startswith("Error: ")
    return text


def test_version(run):
    result = run("--version")
    assert result.exit_code == 0
    assert xbarlab.__version__ in result.stdout
    assert result.stdout.startswith("xbarlab, version ")


def test_help_lists_the_commands(run):
    result = run("--help")
    assert result.exit_code == 0
    for command in ("info", "demo", "backends"):
        assert command in result.stdout


def test_info_prints_chip_info_as_json(run):
    spec = "emulator:pcm?rows=8&cols=5&seed=1"
    result = run("info", spec)
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    for key in ("rows", "cols", "technology", "g_min_S", "g_max_S", "limits", "capabilities"):
        assert key in d
    assert (d["rows"], d["cols"], d["technology"]) == (8, 5, "pcm")
    assert d["g_min_S"] < d["g_max_S"]
    assert d["limits"]["max_voltage_V"] > 0
    assert "read" in d["capabilities"]
    assert d["backend"] == spec


def test_backends_lists_the_emulator_with_an_example(run):
    result = run("backends")
    assert result.exit_code == 0
    assert "emulator" in result.stdout
    assert "emulator:pcm?" in result.stdout


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("nosuch:thing", ["unknown backend scheme 'nosuch'", "valid", "emulator"]),
        ("emulator:pcm?rows=8&bogus=1", ["unknown parameter", "bogus", "valid", "rows", "cols"]),
        ("emulator:sram", ["unknown emulated technology", "valid", "pcm"]),
        ("emulator:pcm?rows=zero", ["rows must be an integer"]),
        ("pcm", ["has no scheme"]),
    ],
)
def test_bad_spec_gives_one_line_error_without_traceback(run, spec, words):
    for command in (["info", spec], ["demo", "--json", "--backend", spec]):
        line = _error_line(run(*command))
        for w in words:
            assert w in line


def test_demo_json_on_a_small_chip(run):
    result = run("demo", "--json", "--backend", SMALL)
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert isinstance(d, dict)
    for key in (
        "backend",
        "rows",
        "cols",
        "converged_fraction",
        "mean_abs_error_S",
        "nu_mean",
        "nu_std",
        "wall_s",
    ):
        assert key in d
    assert (d["backend"], d["rows"], d["cols"]) == (SMALL, 64, 64)
    assert d["converged_fraction"] >= 0.99
    # after programming, devices sit within a few tolerances of their targets
    assert 0 < d["mean_abs_error_S"] < 2 * d["tolerance_S"]
    assert 0.03 < d["nu_mean"] < 0.1
    assert 0 < d["nu_std"] < 0.05
    assert d["wall_s"] > 0
    assert d["virtual_time_s"] >= 86400.0


def test_demo_is_reproducible_apart_from_wall_time(run):
    a = json.loads(run("demo", "--json", "--backend", SMALL).stdout)
    b = json.loads(run("demo", "--json", "--backend", SMALL).stdout)
    a.pop("wall_s")
    b.pop("wall_s")
    assert a == b


def test_demo_levels_option(run):
    result = run(
        "demo",
        "--json",
        "--levels",
        "3",
        "--reads",
        "4",
        "--backend",
        "emulator:pcm?rows=16&cols=16&seed=2",
    )
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert len(d["levels"]) == 3
    assert len(d["read_times_s"]) == 4
    assert sum(lv["devices"] for lv in d["levels"]) <= 256


@pytest.mark.parametrize("args", [["--levels", "0"], ["--reads", "1"], ["--levels", "x"]])
def test_demo_rejects_bad_options(run, args):
    result = run("demo", "--json", *args)
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)


def test_demo_human_summary(run):
    result = run("demo", "--backend", SMALL)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "converged" in out
    assert "nu" in out
    assert SMALL in out
    assert "uS" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


@pytest.mark.slow
def test_default_demo_meets_its_targets(run):
    result = run("demo", "--json")
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert (d["rows"], d["cols"]) == (256, 256)
    assert d["converged_fraction"] >= 0.99
    assert 0.04 <= d["nu_mean"] <= 0.08


def test_bench_mvm_json_has_the_documented_keys(run):
    result = run("bench", "mvm", "--json", "--sizes", "16", "--batches", "1,3")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["compile_s"] > 0
    entries = report["results"]
    assert {(e["batch"], e["mode"]) for e in entries} == {
        (b, m) for b in (1, 3) for m in ("ideal", "io", "device")
    }
    for e in entries:
        assert {"rows", "cols", "batch", "mode", "ms", "baseline_ms", "ratio"} <= set(e)
        assert (e["rows"], e["cols"]) == (16, 16)
        assert e["ms"] > 0 and e["baseline_ms"] > 0
        assert e["ratio"] == pytest.approx(e["ms"] / e["baseline_ms"])


@pytest.mark.parametrize("bad", ["0", "a", ""])
def test_bench_mvm_rejects_bad_sizes(run, bad):
    result = run("bench", "mvm", "--sizes", bad)
    assert result.exit_code != 0 and "--sizes" in result.output
    assert "Traceback" not in result.output
