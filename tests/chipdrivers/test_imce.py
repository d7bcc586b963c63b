"""The IMCE bit-wise convolution engine: exact on an error-free chip, measured errors
on a varied one, and its benchmark."""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.chipdrivers.imce import (
    IMCE,
    imce_benchmark,
    logic_error_rates,
    reference_conv2d,
    reference_sweep,
    sense_margin_sweep,
)
from xbarlab.errors import ConfigError

IDEAL = "emulator:mram?rows={rows}&cols={cols}&seed=1&preset=ideal"


@pytest.fixture
def ideal():
    with open_crossbar(IDEAL.format(rows=16, cols=64)) as xbar:
        yield xbar


def _loops_conv(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Valid single-channel cross-correlation by explicit loops over output pixels."""
    kh, kw = kernel.shape
    out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1), dtype=np.int64)
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            out[y, x] = int(np.sum(image[y : y + kh, x : x + kw] * kernel))
    return out


def test_single_channel_conv_is_exact_on_an_error_free_chip(ideal):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 8, size=(9, 11))  # 3-bit inputs as in seed 003
    kernel = rng.integers(-4, 4, size=(3, 3))  # signed 3-bit weights
    engine = IMCE(ideal, input_bits=3, weight_bits=3)
    got = engine.conv2d(image, kernel)
    np.testing.assert_array_equal(got, _loops_conv(image, kernel))
    assert got.dtype == np.int64
    assert engine.stats.bit_errors == 0
    # 63 positions x 9 lanes over 64 columns: 9 blocks, 3 x 3 logic calls each
    assert engine.stats.logic_calls == 9 * 9
    assert engine.stats.bits_sensed == 3 * 3 * 63 * 9


def test_one_row_conv_equals_numpy_correlate(ideal):
    rng = np.random.default_rng(1)
    signal = rng.integers(0, 16, size=40)
    taps = rng.integers(0, 16, size=5)
    engine = IMCE(ideal, 4, 4, signed_weights=False)
    got = engine.conv2d(signal[None, :], taps[None, :])[0]
    np.testing.assert_array_equal(got, np.correlate(signal, taps, mode="valid"))


def test_multi_channel_multi_kernel_conv_is_exact(ideal):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 4, size=(3, 7, 6))
    kernel = rng.integers(-8, 8, size=(2, 3, 2, 3))
    got = IMCE(ideal, 2, 4).conv2d(image, kernel)
    assert got.shape == (2, 6, 4)
    expected = np.stack(
        [sum(_loops_conv(image[c], kernel[f, c]) for c in range(3)) for f in range(2)]
    )
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(reference_conv2d(image, kernel), expected)


@pytest.mark.parametrize("signed", [True, False])
def test_dot_products_are_exact_even_when_they_span_several_blocks(signed):
    rng = np.random.default_rng(3)
    with open_crossbar(IDEAL.format(rows=10, cols=8)) as xbar:
        engine = IMCE(xbar, 5, 5, signed_weights=signed)
        lo, hi = engine.weight_range
        assert (lo, hi) == ((-16, 15) if signed else (0, 31))
        x = rng.integers(0, 32, size=(3, 21))  # K = 21 > 8 columns
        w = rng.integers(lo, hi + 1, size=(4, 21))
        w[0] = lo  # the extreme weights are representable
        w[1] = hi
        np.testing.assert_array_equal(engine.dot(x, w), x @ w.T)
        assert engine.dot(x[0], w[2]) == x[0] @ w[2]
        assert engine.dot(x, w[2]).shape == (3,)


def test_error_free_result_needs_error_free_sensing():
    """On a low-margin chip the same conv is wrong, and the engine counts the bad bits."""
    rng = np.random.default_rng(4)
    image = rng.integers(0, 16, size=(12, 12))
    kernel = rng.integers(-8, 8, size=(3, 3))
    with open_crossbar("emulator:mram?rows=64&cols=128&seed=5&tmr=0.3") as xbar:
        engine = IMCE(xbar, 4, 4)
        got = engine.conv2d(image, kernel)
    exact = _loops_conv(image, kernel)
    assert engine.stats.error_rate > 0.01
    assert not np.array_equal(got, exact)
    # the AND error rate the engine saw agrees with a Monte-Carlo on the same law
    with open_crossbar("emulator:mram?rows=64&cols=1024&seed=6&tmr=0.3") as xbar:
        mc = logic_error_rates(xbar, trials=30_000, seed=1)["and"]
    assert engine.stats.error_rate == pytest.approx(mc, rel=0.35)


def test_verified_writes_remove_write_errors():
    rng = np.random.default_rng(7)
    image = rng.integers(0, 16, size=(10, 10))
    kernel = rng.integers(-8, 8, size=(3, 3))
    spec = "emulator:mram?rows=8&cols=256&seed=8&preset=ideal&write_error_rate=0.05"
    results = {}
    for verify in (False, True):
        with open_crossbar(spec) as xbar:
            engine = IMCE(xbar, 4, 4, verify=verify)
            results[verify] = (engine.conv2d(image, kernel), engine.stats.bit_errors)
    exact = _loops_conv(image, kernel)
    assert results[False][1] > 0 and not np.array_equal(results[False][0], exact)
    assert results[True][1] == 0
    np.testing.assert_array_equal(results[True][0], exact)


def test_blocks_rotate_over_the_given_rows(ideal):
    engine = IMCE(ideal, 2, 2, rows=[4, 5, 6, 7, 8, 9, 10, 11])
    engine.dot(np.ones((3, 64), dtype=int), np.ones(64, dtype=int))
    written = ideal.chip.bits
    assert not written[:4].any() and not written[12:].any()
    assert written[4:12].any()


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda e: e.dot([0, 16], [1, 1]), r"inputs must be in 0..15"),
        (lambda e: e.dot([0, 1], [8, 1]), r"weights must be in -8..7"),
        (lambda e: e.dot([0.5, 1], [1, 1]), "integers"),
        (lambda e: e.dot([1, 2, 3], [1, 1]), "same K"),
        (lambda e: e.conv2d(np.ones((4, 4), int), np.ones((2, 5, 5), int)), "does not fit"),
        (lambda e: e.conv2d(np.ones((4, 4), int), np.ones((3,), int)), "kernel"),
    ],
)
def test_bad_operands_are_refused_by_name(ideal, call, word):
    with pytest.raises(ConfigError, match=word):
        call(IMCE(ideal, 4, 4))


def test_engine_needs_logic_and_enough_rows():
    with open_crossbar("emulator:pcm?rows=16&cols=16") as pcm:
        with pytest.raises(ConfigError, match="logic"):
            IMCE(pcm)
    with open_crossbar(IDEAL.format(rows=6, cols=8)) as xbar:
        with pytest.raises(ConfigError, match="needs 8 rows"):
            IMCE(xbar, 4, 4)
        with pytest.raises(ConfigError, match="input_bits"):
            IMCE(xbar, 0, 2)


def test_sweep_error_rate_and_output_error_fall_with_the_sense_margin():
    sweep = sense_margin_sweep(0, (0.3, 0.8, 1.5), rows=64, cols=512, trials=20_000)
    margins = [row["sense_margin_and"] for row in sweep]
    rates = [row["and_error_rate"] for row in sweep]
    rms = [row["output_rel_rms"] for row in sweep]
    assert margins == sorted(margins)
    assert rates[0] > rates[1] > rates[2]
    assert rms[0] > rms[1] > rms[2]
    assert rates[0] > 0.02 and rms[0] > 0.2  # a 6 % margin is unusable
    assert rates[2] < 1e-3  # the seed 003 device at 150 % TMR


def test_an_off_centre_reference_costs_margin_and_raises_the_error_rate():
    sweep = reference_sweep(0, (0.5, 0.15), rows=64, cols=512, trials=50_000)
    centre, low = sweep
    assert low["sense_margin_and"] < 0.5 * centre["sense_margin_and"]
    assert low["and_error_rate"] > 0.02 > 1e-3 > centre["and_error_rate"]


def test_benchmark_reports_exactness_and_error_rates():
    result = imce_benchmark(seed=3)
    assert result["imce_exact"] is True
    assert 0 <= result["imce_error_rate"] < 1e-3
    assert result["logic_trials"] >= 100_000
    assert len(result["sense_margin_sweep"]) >= 4
    worst = min(result["sense_margin_sweep"], key=lambda row: row["sense_margin_and"])
    assert worst["and_error_rate"] > 0.01
    assert [r["ref_position"] for r in result["reference_sweep"]][0] == 0.5
