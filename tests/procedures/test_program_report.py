"""program-report: defects classified from run data, per-level numbers, JSON and PNG."""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.errors import ConfigError
from xbarlab.procedures import registry
from xbarlab.procedures.program_report import DEFECT_CODES, build_report, classify_defects
from xbarlab.procedures.runner import Runner

STUCK = "emulator:pcm?rows=24&cols=24&seed=5&stuck_set_fraction=0.03&stuck_reset_fraction=0.03"


def _record():
    t = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]) * 1e-6
    return {
        "targets": t,
        "converged": np.array([[1, 1], [0, 1], [0, 0]], bool),
        "unresponsive": np.array([[0, 0], [1, 0], [1, 0]], bool),
        "stuck_set": np.array([[0, 0], [1, 0], [0, 0]], bool),
        "g_after": t + np.array([[0, 0.1], [5, 0], [0, -0.9]]) * 1e-6,
        "pulses": np.array([[3, 5], [9, 5], [1, 40]]),
        "tolerance_S": 0.2e-6,
    }


def test_defects_and_levels_of_a_known_record():
    rep = build_report(_record())
    codes = rep["defect_map"]
    c = DEFECT_CODES
    expected = [
        [c["ok"], c["ok"]],
        [c["stuck_set"], c["ok"]],
        [c["stuck_reset"], c["not_converged"]],
    ]
    np.testing.assert_array_equal(codes, expected)
    assert rep["defects"] == {
        **dict.fromkeys(c, 0),
        "ok": 3,
        "stuck_set": 1,
        "stuck_reset": 1,
        "not_converged": 1,
    }
    assert list(rep["pulses_hist"]) == [0, 0, 0, 1, 0, 2]  # 3, 5, 5
    assert rep["mean_pulses"] == pytest.approx(13 / 3)
    lv = rep["levels"]
    assert [row["devices"] for row in lv] == [3, 3]
    assert [row["success"] for row in lv] == pytest.approx([1 / 3, 2 / 3])
    # level 2 uS: 0.1 off (in), 0 (in), -0.9 (out, and decoded as level 1 uS)
    assert lv[1]["out_of_tolerance"] == pytest.approx(1 / 3)
    assert lv[1]["ber"] == pytest.approx(1 / 3) and lv[0]["ber"] == 0


def test_without_stuck_flags_the_read_decides_and_forming_fields_count():
    rec = _record()
    del rec["stuck_set"]
    rec["shorted"] = np.array([[0, 0], [0, 0], [0, 1]], bool)
    codes = classify_defects(rec)
    assert codes[1, 0] == DEFECT_CODES["stuck_set"]  # read 5 uS above its 1 uS target
    assert codes[2, 0] == DEFECT_CODES["stuck_reset"]
    assert codes[2, 1] == DEFECT_CODES["shorted"]


def test_report_of_a_stored_run_finds_the_chips_stuck_devices(store, tmp_path):
    with open_crossbar(STUCK) as xbar:
        prog = Runner(store).run(registry.get("program-array").from_values({}), xbar, backend=STUCK)
        truth_set = (xbar.chip.flags & 1).reshape(xbar.chip.shape) != 0
        truth_reset = (xbar.chip.flags & 2).reshape(xbar.chip.shape) != 0
        png = tmp_path / "r.png"
        values = {"run": prog.run_id[:-2], "store": str(store.path), "png": str(png)}
        rep = Runner(store).run(
            registry.get("program-report").from_values(values), xbar, backend=STUCK
        )
    assert rep.status == "completed"
    assert rep.summary["source_run"] == prog.run_id and rep.summary["source_step"] == "program"
    codes = store.record(rep.run_id, "report")["defect_map"]
    assert truth_set.sum() > 5 and truth_reset.sum() > 5
    found_set = codes == DEFECT_CODES["stuck_set"]
    found_reset = codes == DEFECT_CODES["stuck_reset"]
    assert np.mean(found_set[truth_set]) > 0.9 and not found_set[~truth_set & ~truth_reset].any()
    assert np.mean(found_reset[truth_reset]) > 0.9
    assert rep.summary["defects"]["stuck_set"] == int(found_set.sum())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert rep.summary["png"] == str(png)


def test_bad_source_is_refused_before_anything_runs(store, xbar):
    rp = registry.get("program-report")
    with pytest.raises(ConfigError, match="parameter run"):
        rp.from_values({"store": "x.sqlite"}).check(xbar.info)
    with pytest.raises(ConfigError, match="parameter store"):
        rp.from_values({"run": "x"}).check(xbar.info)
    with pytest.raises(ConfigError, match="no such run store"):
        rp.from_values({"run": "x", "store": "/nonexistent/x.sqlite"}).check(xbar.info)
    iv = Runner(store).run(registry.get("iv-sweep").from_values({}), xbar, backend="emulator")
    with pytest.raises(ConfigError, match="no programming record"):
        rp.from_values({"run": iv.run_id, "store": str(store.path)}).check(xbar.info)


def test_defaults_pass_the_form_check_and_the_run_asks_for_the_source(store, xbar):
    proc = registry.get("program-report").from_values({})
    proc.check(xbar.info)  # the GUI form with its defaults is valid
    with pytest.raises(ConfigError, match="parameter run: give the id"):
        Runner(store).run(proc, xbar, backend="emulator")


def test_compare_puts_ispp_and_fixed_pulse_side_by_side(store, tmp_path):
    spec = "emulator:pcm?rows=16&cols=16&seed=2"
    ids = {}
    for algorithm in ("ispp", "fixed-pulse"):
        values = {"algorithm": algorithm, "pattern": "levels", "n_levels": 4}
        with open_crossbar(spec) as xbar:
            proc = registry.get("program-array").from_values(values)
            out = Runner(store).run(proc, xbar, backend=spec)
        ids[algorithm] = out.run_id
    values = {
        "run": ids["ispp"],
        "compare": ids["fixed-pulse"],
        "store": str(store.path),
        "png": str(tmp_path / "cmp.png"),
    }
    with open_crossbar(spec) as xbar:
        proc = registry.get("program-report").from_values(values)
        rep = Runner(store).run(proc, xbar, backend=spec)
    rows = rep.summary["comparison"]
    assert [r["algorithm"] for r in rows] == ["ispp", "fixed-pulse"]
    assert [r["run"] for r in rows] == [ids["ispp"], ids["fixed-pulse"]]
    for r, algorithm in zip(rows, ("ispp", "fixed-pulse"), strict=True):
        prog = store.record(ids[algorithm], "program")
        ok = prog["converged"] & ~prog["unresponsive"]
        assert r["mean_pulses"] == pytest.approx(prog["pulses"][ok].mean())
        assert r["success"] == pytest.approx(ok.mean())
    assert rows[0]["mean_pulses"] == rep.summary["mean_pulses"]
    assert (tmp_path / "cmp.png").stat().st_size > 10_000
    values["compare"] = "nosuchrun"
    with open_crossbar(spec) as xbar, pytest.raises(ConfigError):
        registry.get("program-report").from_values(values).check(xbar.info)
