"""program-array with verify options and rounds: parameters, records and summary."""

from __future__ import annotations

import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.errors import ConfigError
from xbarlab.procedures import registry


def test_rounds_are_recorded_and_summarised(drive):
    values = {"rounds": 3, "settle_time": 5, "verify_reads": 4, "tolerance": 3e-7}
    proc = registry.get("program-array").from_values(values)
    with open_crossbar("emulator:pcm?rows=32&cols=32&seed=4") as xbar:
        ids, data, summary = drive(proc, xbar)
    d = data["program"]
    assert ids == ["program"]
    assert d["round_sigma_S"].shape == (3,) and d["settle_time_s"] == 5.0
    assert list(d["round_reprogrammed"][1:]) == list(d["round_out_of_tolerance"][:-1])
    assert summary["round_sigma_S"] == pytest.approx(list(d["round_sigma_S"]))
    assert summary["round_sigma_S"][2] < summary["round_sigma_S"][0]
    assert d["pulses"].shape == (32, 32) and d["pulses"].min() >= 1
    assert d["stuck_set"].dtype == bool


def test_one_round_keeps_the_plain_record(drive):
    proc = registry.get("program-array").from_values({"algorithm": "fixed-pulse"})
    with open_crossbar("emulator:pcm?rows=16&cols=16&seed=4") as xbar:
        _, data, summary = drive(proc, xbar)
    assert "round_sigma_S" not in data["program"] and "round_sigma_S" not in summary
    assert summary["converged_fraction"] > 0.95


@pytest.mark.parametrize(
    "values, name",
    [
        ({"rounds": 0}, "rounds"),
        ({"verify_reads": 0}, "verify_reads"),
        ({"settle_time": -1}, "settle_time"),
        ({"algorithm": "magic"}, "algorithm"),
    ],
)
def test_bad_values_name_the_parameter(values, name):
    with pytest.raises(ConfigError, match=f"parameter {name}"):
        registry.get("program-array").from_values(values)
