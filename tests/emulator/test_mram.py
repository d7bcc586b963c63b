"""The emulated SOT-MRAM array: fabricated variation, SOT switching, AND/OR sensing.

Statistical tests compare with the laws the parameters document (seed 003: RA sigma
5 %, TMR sigma 10 %; Gaussian sense noise), with tolerances a wrong model fails.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from xbarlab.emulator.mram import MRAMArray
from xbarlab.emulator.mram_params import PRESETS, MRAMParams, load_preset
from xbarlab.emulator.peripherals import PRESETS as PERIPHERY
from xbarlab.errors import ConfigError

IDEAL = PRESETS["ideal"]


def _write(chip: MRAMArray, bits: np.ndarray, v: float = 0.9, width: float = 10e-9) -> None:
    flat = np.arange(chip.size)
    ones = bits.ravel()
    chip.pulse(flat[ones], 1, np.array([v]), np.array([width]))
    chip.pulse(flat[~ones], -1, np.array([v]), np.array([width]))


def _checker(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((rows, cols)) < 0.5


# -- parameters -----------------------------------------------------------------------
def test_nominal_resistances_follow_ra_area_and_tmr():
    p = MRAMParams()
    assert p.r_p == pytest.approx(p.ra_product / p.junction_area)
    assert 1 / p.g_ap == pytest.approx(p.r_p * (1 + p.tmr))
    assert p.v_switch == pytest.approx(0.6)  # 120 uA x 5 kOhm


def test_sense_margins_at_the_midpoint_reference():
    p = MRAMParams(tmr=1.5)
    gp, gap = p.g_p, p.g_ap
    ref_and = (2 * gp + gp + gap) / 2
    ref_or = (2 * gap + gp + gap) / 2
    assert p.reference_conductance("and") == pytest.approx(ref_and)
    assert p.reference_conductance("or") == pytest.approx(ref_or)
    assert p.sense_margin("and") == pytest.approx((2 * gp - ref_and) / ref_and)  # 0.3/1.7
    assert p.sense_margin("and") == pytest.approx(0.3 / 1.7)
    assert p.sense_margin("or") == pytest.approx(0.3 / 1.1)
    # a lower TMR or an off-centre reference shrinks the margin
    assert MRAMParams(tmr=0.5).sense_margin("and") < p.sense_margin("and")
    assert MRAMParams(ref_position=0.3).sense_margin("and") < p.sense_margin("and")


@pytest.mark.parametrize(
    "change, word",
    [
        ({"tmr": 0.0}, "tmr"),
        ({"ref_position": 1.0}, "ref_position"),
        ({"ra_sigma": -0.1}, "ra_sigma"),
        ({"write_error_rate": 2.0}, "write_error_rate"),
        ({"v_read": float("nan")}, "v_read"),
        ({"nope": 1.0}, "nope"),
    ],
)
def test_bad_parameters_are_refused_by_name(change, word):
    with pytest.raises(ConfigError, match=word):
        MRAMParams().with_overrides(**change)


def test_preset_round_trip(tmp_path):
    path = tmp_path / "chip.json"
    p = MRAMParams(tmr=0.8, sense_noise=0.02)
    p.save(path)
    assert load_preset(str(path)) == p
    with pytest.raises(ConfigError, match="unknown MRAM preset"):
        load_preset("nonesuch")


# -- fabrication ----------------------------------------------------------------------
def test_fabricated_variation_matches_the_seed_003_monte_carlo():
    p = MRAMParams()
    chip = MRAMArray(256, 256, p, seed=1)
    ra = p.junction_area / chip.g_p.astype(np.float64)
    tmr = chip.g_p.astype(np.float64) / chip.g_ap - 1
    assert np.mean(ra) / p.ra_product == pytest.approx(1.0, abs=0.002)
    assert np.std(ra) / p.ra_product == pytest.approx(0.05, rel=0.03)
    assert np.mean(tmr) / p.tmr == pytest.approx(1.0, abs=0.002)
    assert np.std(tmr) / p.tmr == pytest.approx(0.10, rel=0.03)
    # independent draws: RA and TMR uncorrelated
    assert abs(np.corrcoef(ra, tmr)[0, 1]) < 0.02


def test_same_seed_same_chip_other_seed_other_chip():
    a, b, c = (MRAMArray(8, 8, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.g_p, b.g_p)
    np.testing.assert_array_equal(a.sense_offset, b.sense_offset)
    assert not np.array_equal(a.g_p, c.g_p)


# -- read and write -------------------------------------------------------------------
def test_ideal_chip_reads_exact_binary_conductances():
    chip = MRAMArray(4, 5, IDEAL)
    bits = _checker(4, 5)
    _write(chip, bits)
    np.testing.assert_array_equal(chip.bits, bits)
    g = chip.read().reshape(4, 5)
    np.testing.assert_allclose(g, np.where(bits, IDEAL.g_p, IDEAL.g_ap), rtol=1e-6)
    assert g.dtype == np.float32


def test_read_noise_has_the_documented_relative_std():
    chip = MRAMArray(64, 64, MRAMParams(read_noise=0.02), seed=2)
    g0 = chip.conductance().ravel()
    reads = np.stack([chip.read() for _ in range(8)])
    assert np.std(reads / g0 - 1) == pytest.approx(0.02, rel=0.05)


def test_polarity_selects_the_state():
    chip = MRAMArray(2, 3, IDEAL)
    chip.pulse(None, 1, np.array([0.9]), np.array([10e-9]))
    assert chip.bits.all()
    chip.pulse(np.array([0, 4]), -1, np.array([0.9]), np.array([10e-9]))
    assert chip.bits.ravel().tolist() == [False, True, True, True, False, True]


def test_switching_probability_follows_the_thermal_curve():
    p = MRAMParams(write_error_rate=0.0)
    chip = MRAMArray(200, 200, p, seed=5)
    n = chip.size
    for factor, expected in ((0.8, 0.0), (1.0, 0.5), (1.05, ndtr(1.0)), (1.3, 1.0)):
        chip.pulse(None, -1, np.array([0.9]), np.array([10e-9]))
        chip.pulse(None, 1, np.array([factor * p.v_switch]), np.array([10e-9]))
        frac = chip.bits.mean()
        assert frac == pytest.approx(expected, abs=4 * np.sqrt(0.25 / n) + 1e-12), factor


def test_short_pulses_need_more_current():
    p = IDEAL
    chip = MRAMArray(4, 4, p)
    # 0.9 V drives 1.5 I_c at >= 1 ns; at 0.5 ns the critical current doubles
    chip.pulse(None, 1, np.array([0.9]), np.array([0.5e-9]))
    assert not chip.bits.any()
    chip.pulse(None, 1, np.array([0.9]), np.array([1e-9]))
    assert chip.bits.all()


def test_write_error_rate_per_pulse_and_for_pulse_trains():
    p = IDEAL.with_overrides(write_error_rate=0.02)
    chip = MRAMArray(250, 200, p, seed=6)
    chip.pulse(None, 1, np.array([0.9]), np.array([10e-9]))
    assert 1 - chip.bits.mean() == pytest.approx(0.02, rel=0.1)
    chip.pulse(None, -1, np.array([0.9]), np.array([10e-9]), count=3)
    assert chip.bits.sum() <= 5  # 0.02^3 x 50000 = 0.4 expected


def test_pulses_advance_the_virtual_clock():
    chip = MRAMArray(2, 2, IDEAL)
    chip.pulse(None, 1, np.array([0.9]), np.array([10e-9]), count=4)
    assert chip.clock.now() == pytest.approx(4 * (10e-9 + IDEAL.t_pulse_gap))
    t = chip.clock.now()
    chip.logic("and", 0, 1)
    assert chip.clock.now() == pytest.approx(t + IDEAL.t_array_read)


# -- logic ----------------------------------------------------------------------------
def test_ideal_logic_truth_tables():
    chip = MRAMArray(2, 4, IDEAL)
    bits = np.array([[0, 0, 1, 1], [0, 1, 0, 1]], dtype=bool)
    _write(chip, bits)
    assert chip.logic("and", 0, 1).tolist() == [False, False, False, True]
    assert chip.logic("or", 0, 1).tolist() == [False, True, True, True]
    assert chip.logic("or", 1, 0, np.array([3, 0])).tolist() == [True, False]


def test_sense_noise_alone_gives_the_gaussian_error_rate():
    # no device variation: every sum sits at its nominal value, errors come from noise
    p = IDEAL.with_overrides(tmr=0.4, sense_noise=0.05)
    chip = MRAMArray(2, 100_000, p, seed=7)
    bits = _checker(2, chip.cols, 1)
    _write(chip, bits)
    for op, truth in (("and", bits[0] & bits[1]), ("or", bits[0] | bits[1])):
        low, high = p._bracket(op)
        ref = p.reference_conductance(op)
        # the two sums next to the reference are hit: each 1/4 of the data (P,P or
        # AP,AP) or 1/2 (P,AP), at a distance of (high - ref) / (noise ref) sigmas
        p_err = ndtr(-(high - ref) / (0.05 * ref))
        expected = (0.25 + 0.5) * p_err if op == "and" else (0.5 + 0.25) * p_err
        rate = np.mean(chip.logic(op, 0, 1) != truth)
        assert rate == pytest.approx(expected, rel=0.08), op


def _independent_error_rate(p: MRAMParams, op: str, n: int, seed: int) -> float:
    """Monte-Carlo of the documented law, drawn here without the chip's code."""
    rng = np.random.default_rng(seed)
    bits = rng.random((2, n)) < 0.5
    ra = p.ra_product * (1 + p.ra_sigma * rng.standard_normal((2, n)))
    tmr = p.tmr * (1 + p.tmr_sigma * rng.standard_normal((2, n)))
    gp = p.junction_area / ra
    g = np.where(bits, gp, gp / (1 + tmr)).sum(axis=0)
    truth = (bits[0] & bits[1]) if op == "and" else (bits[0] | bits[1])
    return float(np.mean((g > p.reference_conductance(op)) != truth))


@pytest.mark.parametrize("op", ["and", "or"])
def test_device_variation_error_rate_matches_an_independent_monte_carlo(op):
    p = MRAMParams(tmr=0.4, sense_noise=0.0, sense_offset=0.0)
    chip = MRAMArray(2, 200_000, p, seed=8)
    bits = _checker(2, chip.cols, 2)
    _write(chip, bits)
    truth = (bits[0] & bits[1]) if op == "and" else (bits[0] | bits[1])
    rate = np.mean(chip.logic(op, 0, 1) != truth)
    expected = _independent_error_rate(p, op, 400_000, 3)
    assert expected > 0.005  # the check has statistics to compare
    assert rate == pytest.approx(expected, rel=0.12)
    # errors are fixed per device: sensing again fails on the same columns
    again = chip.logic(op, 0, 1) != truth
    np.testing.assert_array_equal(again, chip.logic(op, 0, 1) != truth)


def test_error_rate_falls_as_the_sense_margin_grows():
    rates = []
    for tmr in (0.3, 0.6, 1.5):
        chip = MRAMArray(2, 50_000, MRAMParams(tmr=tmr), seed=9)
        bits = _checker(2, chip.cols, 4)
        _write(chip, bits)
        rates.append(np.mean(chip.logic("and", 0, 1) != (bits[0] & bits[1])))
    assert rates[0] > 3 * rates[1] > 0
    assert rates[2] < 1e-3


# -- MVM and state --------------------------------------------------------------------
def test_binary_mvm_on_an_ideal_periphery_is_x_times_g():
    chip = MRAMArray(6, 5, IDEAL, periphery=PERIPHERY["ideal"])
    _write(chip, _checker(6, 5, 3))
    x = np.random.default_rng(0).uniform(0, 0.1, size=(3, 6)).astype(np.float32)
    y, saturated = chip.mvm(x)
    np.testing.assert_allclose(y, x @ chip.conductance(), rtol=1e-5)
    assert not saturated.any()
    yt, _ = chip.mvm(x[:, :5], transpose=True)
    np.testing.assert_allclose(yt, x[:, :5] @ chip.conductance().T, rtol=1e-5)


def test_state_round_trip_continues_identically():
    chip = MRAMArray(8, 16, MRAMParams(), seed=11)
    _write(chip, _checker(8, 16, 5))
    saved = chip.get_state()
    first = [chip.logic("and", 0, 1), chip.read()]
    _write(chip, ~_checker(8, 16, 5))
    chip.set_state(saved)
    second = [chip.logic("and", 0, 1), chip.read()]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_state_of_another_chip_is_refused_and_changes_nothing():
    chip = MRAMArray(8, 16, seed=11)
    other = MRAMArray(8, 16, seed=12).get_state()
    before = chip.get_state()
    with pytest.raises(ConfigError, match="seed"):
        chip.set_state(other)
    np.testing.assert_array_equal(chip.state, before["state"])
    bad = {**before, "state": np.full(128, 2, dtype=np.uint8)}
    with pytest.raises(ConfigError, match="0 and 1"):
        chip.set_state(bad)
