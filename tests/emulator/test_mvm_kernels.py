"""Peripheral kernels (DAC, ADC) against numpy references, and the chip-level MVM model."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from xbarlab.chipdrivers import open_crossbar
from xbarlab.emulator.kernels import (
    adc_kernel,
    adc_kernel_parallel,
    dac_kernel,
    dac_kernel_parallel,
)
from xbarlab.emulator.peripherals import PRESETS, PeripheralParams
from xbarlab.emulator.rng import fill_fast_normals

KEY = np.uint64(0xC0FFEE)
NO_VAR = np.empty((0, 0), dtype=np.float32)


def normals(shape) -> np.ndarray:
    """The normals a kernel draws for an array of this shape (row layout of the kernels)."""
    z = np.empty(shape, dtype=np.float32)
    fill_fast_normals(KEY, z)
    return z


def ref_dac(x, v_range, levels, noise):
    v = x.astype(np.float64) / v_range
    if levels:
        v = np.floor(np.clip(v, -1, 1) * levels + 0.5) / levels
    if noise:
        v = v + noise * normals(x.shape)
    return v * v_range


@pytest.mark.parametrize("levels, noise", [(63, 0.0), (3, 0.0), (127, 0.02), (0, 0.05)])
def test_dac_kernel_matches_reference(levels, noise):
    x = np.random.default_rng(1).uniform(-0.3, 0.3, (7, 33)).astype(np.float32)
    out, sq = np.empty_like(x), np.empty_like(x)
    dac_kernel(x, 0.2, levels, False, noise, KEY, out, sq)
    assert_allclose(out, ref_dac(x, 0.2, levels, noise), rtol=1e-5, atol=1e-7)
    assert_array_equal(sq, out * out)  # the squares for the device-noise variance
    again = np.empty_like(x)
    dac_kernel(x, 0.2, levels, False, noise, KEY, again, NO_VAR)  # squares not asked for
    assert_array_equal(again, out)
    if levels and not noise:
        assert np.unique(out).size <= 2 * levels + 1
        assert out.max() <= 0.2 + 1e-7 and out.min() >= -0.2 - 1e-7  # clipped


def test_dac_stochastic_rounding_is_unbiased_and_on_the_grid():
    x = np.full((200, 500), 0.2 * 10.3 / 63, dtype=np.float32)  # 10.3 steps
    out = np.empty_like(x)
    dac_kernel(x, 0.2, 63, True, 0.0, KEY, out, NO_VAR)
    steps = out / 0.2 * 63
    assert_allclose(steps, np.round(steps), atol=1e-4)
    assert set(np.unique(np.round(steps))) == {10.0, 11.0}
    assert np.mean(steps) == pytest.approx(10.3, abs=0.01)


def ref_adc(y, var, gain, offset, noise, lsb, codes):
    s2 = noise**2 + (var if var.size else 0.0)
    v = gain * (y + np.sqrt(s2) * normals(y.shape)) + offset
    if not codes:
        return v, np.zeros(v.shape, bool)
    q = np.floor(v / lsb + 0.5)
    return np.clip(q, -codes, codes - 1) * lsb, (q > codes - 1) | (q < -codes)


@pytest.mark.parametrize(
    "codes, noise, with_var",
    [(256, 3e-7, False), (32, 0.0, True), (0, 2e-7, True), (256, 0.0, False)],
)
def test_adc_kernel_matches_reference(codes, noise, with_var):
    rng = np.random.default_rng(2)
    y = rng.uniform(-80e-6, 80e-6, (9, 40)).astype(np.float32)
    var = (rng.uniform(0, 1e-12, y.shape) if with_var else NO_VAR).astype(np.float32)
    gain = rng.uniform(0.95, 1.05, 40).astype(np.float32)
    offset = rng.uniform(-5e-7, 5e-7, 40).astype(np.float32)
    lsb = 60e-6 / max(codes, 1)
    out, sat = np.empty_like(y), np.empty(y.shape, bool)
    adc_kernel(y, var, gain, offset, noise, lsb, codes, KEY, out, sat)
    want, want_sat = ref_adc(y, var, gain, offset, noise, lsb, codes)
    assert_allclose(out, want, rtol=1e-5, atol=lsb * 1e-3)
    assert_array_equal(sat, want_sat)
    if codes:
        assert sat.any() and not sat.all()  # the test covers both sides of full scale


@pytest.mark.parametrize("parts", [1, 2, 3, 64])
def test_parallel_drivers_give_the_serial_results_for_any_split(parts):
    """Large batches take the parallel drivers; splitting the rows must not change a bit."""
    rng = np.random.default_rng(4)
    x = rng.uniform(-0.3, 0.3, (11, 37)).astype(np.float32)
    want, want_sq = np.empty_like(x), np.empty_like(x)
    dac_kernel(x, 0.2, 63, True, 0.02, KEY, want, want_sq)
    got, got_sq = np.empty_like(x), np.empty_like(x)
    dac_kernel_parallel(x, 0.2, 63, True, 0.02, KEY, got, got_sq, parts)
    assert_array_equal(got, want)
    assert_array_equal(got_sq, want_sq)
    y = rng.uniform(-80e-6, 80e-6, x.shape).astype(np.float32)
    var = rng.uniform(0, 1e-12, x.shape).astype(np.float32)
    gain, offset = np.ones(37, np.float32), np.zeros(37, np.float32)
    args = (y, var, gain, offset, 2e-7, 1e-6, 32, KEY)
    want, want_sat = np.empty_like(y), np.empty(y.shape, bool)
    adc_kernel(*args, want, want_sat)
    got, got_sat = np.empty_like(y), np.empty(y.shape, bool)
    adc_kernel_parallel(*args, got, got_sat, parts)
    assert_array_equal(got, want)
    assert_array_equal(got_sat, want_sat)
    assert want_sat.any()


def test_adc_has_exactly_two_to_the_bits_levels_and_saturates_at_full_scale():
    bits, full = 6, 60e-6
    codes = 2 ** (bits - 1)
    y = np.linspace(-1.5 * full, 1.5 * full, 20001, dtype=np.float32).reshape(1, -1)
    ones = np.ones(y.shape[1], np.float32)
    out, sat = np.empty_like(y), np.empty(y.shape, bool)
    adc_kernel(y, NO_VAR, ones, 0 * ones, 0.0, full / codes, codes, KEY, out, sat)
    assert np.unique(out).size == 2**bits
    assert_array_equal(sat[0], (y[0] > full - full / codes / 2) | (y[0] < -full - full / codes / 2))
    assert out.max() == pytest.approx(full - full / codes) and out.min() == pytest.approx(-full)


@pytest.mark.parametrize("name, dac, adc", [("default", 7, 9), ("imec", 7, 6), ("hermes", 8, 8)])
def test_presets_carry_the_published_resolutions(name, dac, adc):
    p = PRESETS[name]
    assert (p.dac_bits, p.adc_bits) == (dac, adc)
    assert PRESETS["default"].adc_lsb(25e-6) == pytest.approx(12 * 25e-6 * 0.2 / 256)
    # default output noise is about one ADC LSB (aihwkit: 0.06 at bound 12, 9 bits)
    d = PRESETS["default"]
    assert 0.8 <= d.out_noise * d.unit_current(25e-6) / d.adc_lsb(25e-6) <= 1.6


def test_invalid_peripheral_parameters_are_refused():
    from xbarlab.errors import ConfigError

    for bad in ({"dac_bits": -1}, {"adc_bits": 2.5}, {"dac_range": 0}, {"out_noise": -1.0}):
        with pytest.raises(ConfigError):
            PeripheralParams(**bad)


def _chip(extra: str, seed: int = 1):
    """A 64 x 48 chip crystallised to high conductance, then left for an hour."""
    xbar = open_crossbar(f"emulator:pcm?rows=64&cols=48&seed={seed}&{extra}")
    xbar.pulse(None, polarity=1, amplitude=1.4, width=50e-9, count=30)
    xbar.clock.sleep(3600.0)
    return xbar


def test_mismatch_is_fixed_per_chip_and_differs_across_seeds():
    a = _chip("gain_std=0.05&offset_std=2")
    b = _chip("gain_std=0.05&offset_std=2")
    c = _chip("gain_std=0.05&offset_std=2", seed=2)
    ga, gc = a.chip._readout[False].mismatch.gain, c.chip._readout[False].mismatch.gain
    assert_array_equal(ga, b.chip._readout[False].mismatch.gain)
    assert np.mean(ga != gc) > 0.95
    assert ga.std() == pytest.approx(0.05, rel=0.3)
    x = np.full((2000, 64), 0.02, np.float32)
    # the per-column gain shows up as a fixed deviation from the ideal column sums
    g, _ = a.chip.conductance()
    ratio = a.mvm(x).mean(0) / (x[0] @ g)
    assert np.corrcoef(ratio, ga)[0, 1] > 0.9


def test_output_error_std_matches_the_analytic_prediction():
    """Output noise and device read noise add in quadrature (no ADC to round them)."""
    xbar = _chip("adc_bits=0&dac_bits=0&out_noise=0.3")
    p, g_max = xbar.chip.periphery, xbar.info.g_max
    rng = np.random.default_rng(3)
    x = rng.uniform(0.0, 0.2, 64).astype(np.float32)
    g, sigma = xbar.chip.conductance()
    mean = x.astype(np.float64) @ g
    std = np.sqrt(
        (x.astype(np.float64) ** 2) @ sigma.astype(np.float64) ** 2
        + (p.out_noise * p.unit_current(g_max)) ** 2
    )
    out = xbar.mvm(np.tile(x, (20000, 1))).astype(np.float64)
    assert_allclose(out.mean(0), mean, atol=5 * std.max() / np.sqrt(20000))
    assert_allclose(out.std(0), std, rtol=0.05)


def test_saturation_flags_follow_the_adc_range():
    xbar = _chip("periphery=default&adc_bound=0.5")
    x = np.zeros((2, 64), np.float32)
    x[1] = 0.2  # all rows at full scale: far beyond 0.5 weight units
    y, sat = xbar.mvm(x, return_saturation=True)
    assert not sat[0].any() and sat[1].all()
    full = 0.5 * xbar.info.g_max * 0.2
    assert_allclose(y[1], full - full / 256, rtol=1e-5)


def test_differential_columns_subtract_pairs_before_the_adc():
    xbar = _chip("periphery=ideal&differential=1&device_noise=0")
    assert xbar.info.mvm_shape == (64, 24) and "differential_columns" in xbar.info.capabilities
    g, _ = xbar.chip.conductance()
    x = np.random.default_rng(4).uniform(-0.2, 0.2, (3, 64)).astype(np.float32)
    assert_allclose(xbar.mvm(x), x @ (g[:, 0::2] - g[:, 1::2]), rtol=1e-5, atol=1e-12)
    d = np.random.default_rng(5).uniform(-0.2, 0.2, (3, 24)).astype(np.float32)
    assert_allclose(
        xbar.mvm(d, transpose=True), d @ (g[:, 0::2] - g[:, 1::2]).T, rtol=1e-5, atol=1e-12
    )


def test_cached_matrices_follow_pulses_and_drift():
    xbar = _chip("periphery=ideal&device_noise=0")
    x = np.full(64, 0.1, np.float32)
    y0 = xbar.mvm(x)
    assert_array_equal(xbar.mvm(x), y0)  # cache hit: identical without noise
    xbar.pulse(None, polarity=1, amplitude=1.0, width=50e-9)
    y1 = xbar.mvm(x)
    assert np.all(y1 > y0)  # a pulse invalidates the cache
    xbar.clock.sleep(86400.0)
    g, _ = xbar.chip.conductance()
    assert_allclose(xbar.mvm(x), x @ g, rtol=1e-5)  # drift is followed
    assert np.all(xbar.mvm(x) < y1)
