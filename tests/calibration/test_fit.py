"""Fitting the emulator to a chip: a hidden non-default chip is characterised through the
run store and fitted; the fitted preset recovers its laws and opens as an emulator."""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.calibration.fit import CHARACTERIZE, _clamped_line, fit_run
from xbarlab.chipdrivers import open_crossbar
from xbarlab.emulator.pcm_params import PCMParams
from xbarlab.errors import ConfigError
from xbarlab.procedures.campaign import Campaign
from xbarlab.procedures.runner import Runner
from xbarlab.store import RunStore


@pytest.fixture(scope="module")
def hidden(load_bench) -> PCMParams:
    """The hidden chip of benchmarks/bench_calibration.py: non-default drift, noise,
    SET step and stuck fractions."""
    return load_bench("bench_calibration").HIDDEN


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, hidden):
    """(fit result, store path, campaign id) of a 32x32 hidden chip."""
    tmp = tmp_path_factory.mktemp("fit")
    hidden.save(tmp / "hidden.json")
    spec = f"emulator:pcm?rows=32&cols=32&seed=5&preset={tmp / 'hidden.json'}"
    with RunStore(tmp / "runs.sqlite") as store:
        with open_crossbar(spec) as xbar:
            out = Campaign(CHARACTERIZE).run(Runner(store), xbar, backend=spec)
        assert out.status == "completed"
        yield fit_run(store, out.run_id), tmp, out.run_id


@pytest.mark.parametrize("g", [2.5e-6, 8e-6, 20e-6])
def test_recovered_nu_mean_is_within_10_percent_at_three_levels(fitted, hidden, g):
    p = fitted[0].params
    assert p.nu_mean(g) == pytest.approx(hidden.nu_mean(g), rel=0.1)


def test_recovered_read_noise_set_increment_and_stuck_fractions(fitted, hidden):
    p = fitted[0].params
    assert p.q_s_coeff == pytest.approx(hidden.q_s_coeff, rel=0.1)
    assert p.set_step == pytest.approx(hidden.set_step, rel=0.1)
    assert p.set_c2c == pytest.approx(hidden.set_c2c, rel=0.1)
    assert p.stuck_set_fraction == pytest.approx(hidden.stuck_set_fraction, abs=0.01)
    assert p.stuck_reset_fraction == pytest.approx(hidden.stuck_reset_fraction, abs=0.01)
    # not fitted: kept from the base (default) parameters
    assert p.endurance_median == PCMParams().endurance_median


def test_every_law_has_measured_points_and_a_curve(fitted):
    laws = {law.name: law for law in fitted[0].laws}
    assert sorted(laws) == ["nu", "nu_std", "q_s", "set_increment"]
    for law in laws.values():
        assert law.x.shape == law.y.shape and law.x_fit.shape == law.y_fit.shape
        assert np.isfinite(law.y_fit).all()


def test_the_fitted_preset_file_opens_as_an_emulated_chip(fitted):
    result, tmp, _ = fitted
    result.params.save(tmp / "fitted.json")
    with open_crossbar(f"emulator:pcm?rows=4&cols=4&preset={tmp / 'fitted.json'}") as xbar:
        model = xbar.info.details["model"]
    assert model["q_s_coeff"] == pytest.approx(result.params.q_s_coeff)
    assert model["nu_slope"] == pytest.approx(result.params.nu_slope)


def test_clamped_line_recovers_a_law_with_a_plateau():
    x = np.linspace(np.log(0.01), 0.0, 8)  # five points on the line, three clamped
    y = np.clip(-0.0155 * x + 0.0244, 0.049, 0.1)
    law = _clamped_line(x, y)
    assert law["min"] == pytest.approx(0.049)
    assert law["slope"] == pytest.approx(-0.0155, rel=1e-6)
    assert law["offset"] == pytest.approx(0.0244, rel=1e-6)


def test_a_run_without_characterisation_children_is_refused(tmp_path):
    with RunStore(tmp_path / "empty.sqlite") as store:
        rid = store.create_run("campaign", {}, backend="emulator:pcm", chip_info={})
        with pytest.raises(ConfigError, match="no completed 'pulse-response'"):
            fit_run(store, rid)


def test_the_report_writes_one_png_per_law(fitted, tmp_path):
    from PyQt5.QtGui import QImage

    from xbarlab.calibration.report import write_report

    paths = write_report(fitted[0].laws, tmp_path / "report")
    assert sorted(p.name for p in paths) == ["nu.png", "nu_std.png", "q_s.png", "set_increment.png"]
    image = QImage(str(paths[0]))
    assert image.width() == 640 and image.height() > 100


def test_read_noise_of_increments_is_taken_from_their_anticorrelation():
    from xbarlab.calibration.fit import _read_noise

    rng = np.random.default_rng(0)
    sigma, c2c, noise = 0.4, 0.5, 0.3  # sensitivity spread, c2c, read noise per read
    s = np.exp(sigma * rng.standard_normal(20000))
    s /= s.mean()
    reads = noise * rng.standard_normal((31, s.size))
    rel = s * (1 + c2c * rng.standard_normal((30, s.size))) + np.diff(reads, axis=0)
    assert _read_noise(rel, np.exp(sigma**2)) == pytest.approx(noise**2, rel=0.1)
