"""bench_programming prints the keys the issue names, with the right types (no timing asserted)."""

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench(load_bench):
    return load_bench("bench_programming")


def test_small_run_prints_one_json_object_with_the_documented_keys(bench, capsys):
    result = bench.main(["--rows", "24", "--cols", "20", "--seed", "3"])
    out = capsys.readouterr().out
    assert json.loads(out) == json.loads(json.dumps(result))  # stdout holds exactly it
    for key in ("converged_fraction", "mean_iterations", "wall_s", "drift_campaign_wall_s"):
        assert isinstance(result[key], float), key
    assert 0.95 <= result["converged_fraction"] <= 1.0
    assert 1.0 <= result["mean_iterations"] <= result["iterations"]
    assert result["wall_s"] > 0 and result["drift_campaign_wall_s"] > 0
    levels = result["levels"]
    assert len(levels) == 5
    centres = [lv["g_target_S"] for lv in levels]
    np.testing.assert_allclose(centres, np.linspace(0.18, 0.82, 5) * 25e-6, rtol=1e-6)
    for lv in levels:
        assert {"g_target_S", "sigma_S", "sigma_ref_S"} <= set(lv)
        assert all(isinstance(lv[k], float) for k in ("g_target_S", "sigma_S", "sigma_ref_S"))
        assert lv["sigma_S"] > 0 and lv["devices"] > 0


def test_sigma_ref_is_the_published_polynomial(bench):
    # sigma(G) = 0.26348 + 1.9650 g - 1.1731 g^2 uS, g = G / 25 uS
    assert bench.sigma_ref(12.5e-6) == pytest.approx(
        (0.26348 + 1.9650 * 0.5 - 1.1731 * 0.25) * 1e-6
    )
    assert bench.sigma_ref(2.5e-6) == pytest.approx(0.44826e-6, rel=1e-4)


def test_level_table_bins_by_target(bench):
    g_max = 25e-6
    targets = np.array([0.15, 0.2, 0.85, 0.9], dtype=np.float32) * g_max
    read = targets + np.array([1, -1, 2, -2], dtype=np.float32) * 1e-7
    table = bench.level_table(targets, read, np.ones(4, dtype=bool), g_max)
    assert [lv["devices"] for lv in table] == [2, 0, 0, 0, 2]
    assert table[0]["sigma_S"] == pytest.approx(1e-7, rel=1e-3)
    assert table[4]["sigma_S"] == pytest.approx(2e-7, rel=1e-3)


@pytest.mark.parametrize("argv", [["--rows", "1"], ["--cols", "0"], ["--seed", "-1"]])
def test_bad_options_exit_with_a_message(bench, argv, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
    assert argv[0] in capsys.readouterr().err
