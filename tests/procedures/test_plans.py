"""Plans listed step by step on a small emulated chip, with numbers checked against the
emulator's ground truth (chip.nu, chip.conductance(), chip.pulse_count)."""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.errors import ConfigError, SafetyError
from xbarlab.procedures import registry


def make(name, **values):
    return registry.get(name).from_values(values)


def test_drift_steps_and_fitted_nu_match_the_emulator(drive, xbar):
    ids, data, summary = drive(make("drift", n_reads=12), xbar)
    assert ids == ["program"] + [f"read-{k:03d}" for k in range(12)] + ["fit"]
    t = [data[f"read-{k:03d}"]["t_s"] for k in range(12)]
    assert t[0] == pytest.approx(30.0, rel=1e-3) and t[-1] == pytest.approx(86400.0, rel=1e-6)
    good = data["program"]["converged"] & ~data["program"]["unresponsive"]
    true_nu = xbar.chip.nu.reshape(xbar.info.shape)[good]
    assert summary["nu_mean"] == pytest.approx(float(true_nu.mean()), rel=0.05)
    assert summary["converged_fraction"] >= 0.99
    assert len(summary["levels"]) == 8
    assert sum(lv["devices"] for lv in summary["levels"]) == int(good.sum())


def test_program_array_trace_and_accuracy(drive, xbar):
    ids, data, summary = drive(make("program-array", pattern="checkerboard"), xbar)
    assert ids == ["program"]
    d = data["program"]
    n_it = summary["iterations"]
    assert n_it == d["trace_pulses"].size == d["trace_converged"].size > 1
    assert d["trace_converged"][-1] == np.count_nonzero(d["converged"])
    # the trace counts verify-loop pulses; the initial RESET adds one per device
    assert summary["total_pulses"] + 256 == int(xbar.chip.pulse_count.sum())
    usable = ~d["unresponsive"]
    err = np.abs(d["g_verify"] - d["targets"])[usable & d["converged"]]
    assert err.max() <= summary["tolerance_S"]
    assert set(np.unique(d["targets"])) == {np.float32(0.1 * 25e-6), np.float32(0.8 * 25e-6)}


def test_program_array_from_weights_file_programs_only_its_block(drive, xbar, tmp_path):
    w = np.arange(12, dtype=np.float64).reshape(3, 4) - 5
    np.save(tmp_path / "w.npy", w)
    proc = make("program-array", weights_file=str(tmp_path / "w.npy"), lo=0.2, hi=0.6)
    _, data, summary = drive(proc, xbar)
    tgt = data["program"]["targets"]
    assert tgt.shape == (3, 4)
    assert tgt.min() == pytest.approx(0.2 * 25e-6) and tgt.max() == pytest.approx(0.6 * 25e-6)
    counts = xbar.chip.pulse_count.reshape(xbar.info.shape)
    assert counts[:3, :4].min() > 0 and counts[3:].sum() == 0 and counts[:, 4:].sum() == 0
    assert summary["devices"] == 12


def test_program_array_refuses_bad_files(drive, xbar, tmp_path):
    np.save(tmp_path / "big.npy", np.ones((17, 2)))
    np.save(tmp_path / "high.npy", np.full((2, 2), 1e-3))
    with pytest.raises(ConfigError, match="targets_file.*shape \\(17, 2\\)"):
        make("program-array", targets_file=str(tmp_path / "big.npy")).check(xbar.info)
    with pytest.raises(ConfigError, match="outside this chip's window"):
        make("program-array", targets_file=str(tmp_path / "high.npy")).check(xbar.info)
    with pytest.raises(ConfigError, match="cannot read"):
        make("program-array", weights_file=str(tmp_path / "none.npy")).check(xbar.info)


def test_conductance_map_statistics_match_read_noise(drive, xbar):
    ids, data, summary = drive(make("conductance-map", repeats=40), xbar)
    assert ids == [f"read-{k:03d}" for k in range(40)] + ["stats"]
    g_true, sigma = xbar.chip.conductance()
    ok = ~xbar.chip.stuck
    assert np.mean(data["stats"]["g_std"][ok]) == pytest.approx(np.mean(sigma[ok]), rel=0.15)
    assert np.mean(data["stats"]["g_mean"][ok]) == pytest.approx(np.mean(g_true[ok]), rel=0.05)
    assert summary["devices"] == 256 and xbar.chip.pulse_count.sum() == 0


def test_retention_without_programming_applies_no_pulse(drive, xbar):
    drive(make("program-array"), xbar)
    before = xbar.chip.pulse_count.copy()
    ids, data, summary = drive(make("retention", n_reads=6, region="0:8,0:8"), xbar)
    assert ids == ["initial"] + [f"read-{k:03d}" for k in range(6)]
    assert np.array_equal(xbar.chip.pulse_count, before)
    frac = summary["fraction_within"]
    assert frac[0] > 0.8 and frac[-1] < frac[0]  # drift leaves the band over a month
    assert summary["devices"] == 64 and summary["mean_rel_change"] < -0.2


def test_retention_programs_when_asked(drive, xbar):
    ids, _, summary = drive(make("retention", program=True, n_reads=2), xbar)
    assert ids[:2] == ["program", "initial"] and summary["programming"]["converged_fraction"] > 0.9


def test_iv_sweep_current_is_g_times_v(drive, xbar):
    volts = (0.05, 0.1, 0.2, 0.3)
    ids, data, summary = drive(make("iv-sweep", voltages=volts, region="2:6,3:9"), xbar)
    assert ids == ["v-000", "v-001", "v-002", "v-003"]
    g_true, sigma = (a[2:6, 3:9] for a in xbar.chip.conductance())
    for k, v in enumerate(volts):
        i = data[f"v-{k:03d}"]["i_A"]
        assert i.shape == (4, 6)
        assert np.all(np.abs(i - g_true * v) <= 5 * sigma * v + 1e-15)
    assert summary["voltages_V"] == list(volts)
    assert summary["g_fit_mean_S"] == pytest.approx(g_true.mean(), rel=0.1)


def test_iv_sweep_refuses_voltage_beyond_limit_before_running(drive, xbar):
    proc = make("iv-sweep", voltages="0.1,0.31")
    with pytest.raises(SafetyError, match="max_read_voltage"):
        proc.check(xbar.info)


def test_endurance_window_closes_on_a_low_endurance_chip(drive):
    spec = "emulator:pcm?rows=16&cols=16&seed=1&endurance_median=300&endurance_spread=0.2"
    with open_crossbar(spec) as xbar:
        proc = make("endurance", block_cycles=50, max_cycles=3000)
        ids, data, summary = drive(proc, xbar)
    assert ids[0] == "block-0000" and len(ids) == summary["cycles"] // 50
    assert summary["window_closed"] and summary["initial_window_median"] > 10
    assert 150 <= summary["cycles"] <= 600
    windows = [b["window_median"] for b in summary["blocks"]]
    assert windows[-1] < 2.0 <= min(windows[:-1])


def test_endurance_stops_at_max_cycles(drive, xbar):
    ids, _, summary = drive(make("endurance", block_cycles=3, max_cycles=7), xbar)
    assert ids == ["block-0000", "block-0001", "block-0002"] and summary["cycles"] == 7
    assert not summary["window_closed"]
    # 7 cycles of 10 SET + 1 RESET on every device
    assert np.all(xbar.chip.pulse_count[~xbar.chip.stuck.ravel()] == 77)


def test_pulse_response_increments_fall_with_conductance(drive, xbar):
    ids, data, summary = drive(make("pulse-response", n_pulses=30), xbar)
    assert ids == ["start"] + [f"pulse-{k:04d}" for k in range(30)]
    curve = summary["mean_g_S"]
    assert len(curve) == 31 and curve[-1] > 5 * curve[0]
    table = summary["increment_vs_g"]
    g = np.array([r["g_S"] for r in table])
    inc = np.array([r["mean_increment_S"] for r in table])
    assert np.corrcoef(g, inc)[0, 1] < -0.8
    assert inc[0] > 3 * inc[-1]


@pytest.mark.parametrize(
    "name, values, limit",
    [
        ("pulse-response", {"amplitude": 3.0}, "max_voltage"),
        ("pulse-response", {"width": 1e-3}, "max_pulse_width"),
        ("endurance", {"reset_amplitude": 2.6}, "max_voltage"),
        ("endurance", {"set_width": 1e-9}, "min_pulse_width"),
        ("conductance-map", {"v_read": 0.5}, "max_read_voltage"),
    ],
)
def test_pulse_parameters_are_checked_against_limits(drive, xbar, name, values, limit):
    with pytest.raises(SafetyError, match=limit):
        make(name, **values).check(xbar.info)


def test_regions_outside_the_chip_are_refused(drive, xbar):
    with pytest.raises(ConfigError, match="rows 10:20 must be a non-empty range inside 0:16"):
        make("pulse-response", region="10:20,0:4").check(xbar.info)
