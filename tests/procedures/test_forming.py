"""The forming procedure on pristine emulated RRAM chips: yield and shorts with the
defaults, recorded forming voltages against the model's, formed devices skipped,
compliance handling, parameter and limit checks, resume without repeated pulses."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from xbarlab.chipdrivers import open_crossbar
from xbarlab.errors import ConfigError, SafetyError
from xbarlab.procedures import registry
from xbarlab.procedures.forming import (
    ALREADY_FORMED,
    FORMED,
    SHORTED,
    STUCK_SET,
    UNFORMABLE,
    Forming,
    FormingParams,
    forming_benchmark,
    ramp_voltages,
)
from xbarlab.procedures.runner import Runner

SPEC = "emulator:rram?rows=32&cols=32&seed=2"  # 2 stuck-off, 2 stuck-on devices


def forming(**values) -> Forming:
    return registry.get("forming").from_values(values)


def test_defaults_form_at_least_99_percent_and_short_nothing(drive):
    with open_crossbar(SPEC) as xbar:
        chip = xbar.chip
        stuck_off = (chip.flags & 3) == 2
        stuck_on = (chip.flags & 3) == 1
        ids, data, s = drive(forming(), xbar)
        status = data["result"]["status"].ravel()
        assert s["forming_yield"] >= 0.99 and s["shorted"] == 0
        assert s["devices"] == 1024 and s["already_formed"] == 0 and s["v_stop_V"] == 4.0
        # ground truth: exactly the stuck-off devices stay pristine, stuck-on are stuck_set
        assert_array_equal(status == UNFORMABLE, stuck_off)
        assert_array_equal(status == STUCK_SET, stuck_on)
        assert s["unformable"] == stuck_off.sum() == 2 and s["stuck_set"] == stuck_on.sum() == 2
        assert s["formed"] + s["stuck_set"] == chip.formed.sum()
        assert not chip.shorted.any()
        # each device formed at the first ramp voltage at or above its forming voltage
        v = data["result"]["v_form_V"].ravel()
        ok = status == FORMED
        assert np.all(v[ok] >= chip.v_form[ok] - 1e-6)
        assert np.all(v[ok] - 0.05 < chip.v_form[ok] + 1e-6)
        assert s["v_form_mean_V"] == pytest.approx(chip.v_form[ok].mean() + 0.025, abs=0.01)
        assert s["v_form_std_V"] == pytest.approx(chip.v_form[ok].std(), rel=0.05)
        # post-form resistance <= 50 kOhm; the RESET check left good devices in the window
        r = data["result"]["r_form_ohm"].ravel()
        assert np.all(r[ok] <= 50e3) and s["r_form_median_ohm"] < 30e3
        g_reset = data["result"]["g_reset_S"].ravel()
        assert np.all(g_reset[ok] <= chip.g_hi[ok] * 1.05)
        assert np.all(np.isnan(v[status == UNFORMABLE]))
        counts = data["result"]["hist_counts"]
        assert counts.sum() == s["formed"] + s["stuck_set"]
        assert ids[0] == "initial" and ids[-2:] == ["reset-check", "result"]


def test_formed_devices_are_not_pulsed_again(drive):
    with open_crossbar(SPEC) as xbar:
        ids, data, s = drive(forming(reset_check=False), xbar)
        ramp = [data[i] for i in ids if i.startswith("ramp-")]
        pulsed = np.zeros(1024, dtype=int)
        for step in ramp:
            pulsed[step["pos"]] += 1
        # a device is pulsed until (and including) the step that formed it, then never
        v = data["result"]["v_form_V"].ravel()
        volts = ramp_voltages(FormingParams(), 4.0)
        formed = np.isfinite(v)
        steps_to_form = np.searchsorted(volts, v[formed] - 1e-4) + 1
        assert_array_equal(pulsed[formed], steps_to_form)
        assert np.all(pulsed[~formed] == len(ramp))
        assert_array_equal(xbar.chip.pulse_count, pulsed)
        assert s["pulses"] == pulsed.sum() and s["ramp_steps"] == len(ramp)
        # the ramp ends at 4 V while a device is unformable, else at the last forming
        assert len(ramp) == (volts.size if (~formed).any() else steps_to_form.max())
        # the step sizes shrink as devices form
        sizes = [step["pos"].size for step in ramp]
        assert sizes == sorted(sizes, reverse=True) and sizes[-1] < 20
        # a second run finds every device formed and pulses nothing
        before = xbar.chip.pulse_count.copy()
        ids2, data2, s2 = drive(forming(reset_check=False), xbar)
        formed_before = data["result"]["status"].ravel() != UNFORMABLE
        status2 = data2["result"]["status"].ravel()
        assert_array_equal(status2[formed_before], ALREADY_FORMED)
        assert_array_equal(xbar.chip.pulse_count[formed_before], before[formed_before])


def test_an_already_formed_chip_is_skipped_entirely(drive):
    with open_crossbar(SPEC + "&pristine=0") as xbar:
        ids, data, s = drive(forming(), xbar)
        assert ids == ["initial", "result"]
        assert s["already_formed"] == 1024 and s["forming_yield"] is None
        assert np.all(xbar.chip.pulse_count == 0)


def test_only_the_region_is_formed(drive):
    with open_crossbar(SPEC) as xbar:
        _, data, s = drive(forming(region="4:10,8:20"), xbar)
        assert data["result"]["status"].shape == (6, 12) and s["devices"] == 72
        touched = xbar.chip.pulse_count.reshape(32, 32) > 0
        expect = np.zeros((32, 32), bool)
        expect[4:10, 8:20] = True
        assert_array_equal(touched, expect)


def test_too_much_compliance_shorts_devices_and_the_chip_setting_is_restored(drive):
    with open_crossbar(SPEC) as xbar:
        chip = xbar.chip
        before = xbar.compliance
        ids, data, s = drive(forming(compliance=400e-6), xbar)
        assert xbar.compliance == before
        assert all(data[i]["compliance_A"] == 400e-6 for i in ids if i.startswith("ramp-"))
        status = data["result"]["status"].ravel()
        assert_array_equal(status == SHORTED, chip.shorted.ravel())
        assert s["shorted"] > 0.95 * 1024
        assert s["forming_yield"] < 0.05
        assert np.all(data["result"]["r_form_ohm"].ravel()[status == SHORTED] < 2e3)


def test_parameters_and_limits_are_checked_before_any_pulse():
    with pytest.raises(ConfigError, match="v_start"):
        forming(v_start=4.0, v_stop=3.0)
    with pytest.raises(ConfigError, match="r_short"):
        forming(r_short=60e3)
    with pytest.raises(ConfigError, match="v_step"):
        forming(v_step=0)
    with open_crossbar(SPEC) as xbar:
        with pytest.raises(SafetyError, match="max_voltage"):
            forming(v_stop=4.5).check(xbar.info)
        assert forming().n_steps(xbar.info) == 55 + 3  # 1.3 .. 4 V in 0.05 V
        with pytest.raises(SafetyError, match="compliance_current"):
            forming(compliance=1e-3).check(xbar.info)
        assert np.all(xbar.chip.pulse_count == 0)
    with open_crossbar("emulator:pcm?rows=4&cols=4&seed=1") as pcm:
        with pytest.raises(ConfigError, match="no settable compliance"):
            forming(compliance=20e-6).check(pcm.info)
        forming().check(pcm.info)  # without v_stop the ramp ends at the chip's 2.5 V limit
        assert forming().n_steps(pcm.info) == 25 + 3


def test_resume_continues_the_ramp_without_repeating_a_pulse(store, abort_at, resume_run):
    proc = forming(region="0:16,0:16")
    with open_crossbar(SPEC) as xbar:
        run_id = abort_at(proc, xbar, SPEC, "ramp-030")
        assert xbar.chip.formed.sum() > 50
    final, opened = resume_run(run_id)
    assert final.status == "completed"
    with open_crossbar(SPEC) as fresh:  # the same chip formed in one go
        uninterrupted = Runner(store).run(proc, fresh, backend=SPEC)
        assert_array_equal(opened[0].chip.pulse_count, fresh.chip.pulse_count)
        assert_array_equal(opened[0].chip.formed, fresh.chip.formed)
    for key in ("formed", "unformable", "shorted", "forming_yield", "v_form_mean_V", "pulses"):
        assert final.summary[key] == uninterrupted.summary[key]


def test_benchmark_reports_yield_shorts_and_voltage_statistics():
    b = forming_benchmark(seed=1, rows=32, cols=32)
    assert b["forming_yield"] >= 0.99 and b["shorted_by_forming"] == 0
    assert b["v_form_mean_V"] == pytest.approx(b["v_form_true_mean_V"] + 0.025, abs=0.01)
    assert b["shorted_over_compliance"] > 0.9 * b["devices"]
