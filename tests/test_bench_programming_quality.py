"""bench_programming_quality prints one JSON object with the keys issue 11 names (small run)."""

import json

import pytest


@pytest.fixture(scope="module")
def bench(load_bench):
    return load_bench("bench_programming_quality")


def test_small_run_prints_one_json_object_with_the_issue_keys(bench, capsys):
    result = bench.main(["--rows", "24", "--cols", "24", "--seed", "2"])
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result))
    s = result["sigma_rounds"]
    assert len(s) == 3 and all(isinstance(v, float) and v > 0 for v in s)
    assert s[2] < s[0]
    for key in ("false_pass_single_read", "false_pass_averaged", "ispp_success", "fixed_success"):
        assert 0.0 <= result[key] <= 1.0, key
    assert result["false_pass_averaged"] < result["false_pass_single_read"]
    assert result["ispp_success"] > 0.9 and result["fixed_success"] > 0.9
    assert 1 < result["ispp_pulses"] < 100 and 1 < result["fixed_pulses"] < 100
    assert set(result["levels_at_1h"]) == {"pcm", "rram"}
    assert all(2 <= n <= 16 for n in result["levels_at_1h"].values())
    assert result["forming_yield"] >= 0.99 and result["shorted_by_forming"] == 0
    assert result["forming"]["shorted_over_compliance"] > 0
    assert result["acceptance"]["forming_ok"] is True
    assert result["acceptance"]["sigma_round3_over_round1"] == pytest.approx(s[2] / s[0])


@pytest.mark.parametrize("argv", [["--rows", "2"], ["--cols", "3"], ["--seed", "-1"]])
def test_bad_options_exit_with_a_message(bench, argv, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
    assert "must be" in capsys.readouterr().err
