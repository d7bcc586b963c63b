"""Readout calibration: per-output gain/offset estimates, the calibration file, the tile hook."""

import numpy as np
import pytest

from xbarlab.calibration.readout import (
    ReadoutCalibration,
    calibrate_readout,
    mvm_error,
    run_readout,
)
from xbarlab.chipdrivers.factory import open_crossbar
from xbarlab.chipdrivers.tiles import AnalogTile
from xbarlab.errors import ConfigError

#: the issue's injected mismatch: 5 % gain and 2 LSB offset (std) per output
SPEC = "emulator:pcm?rows=64&cols=64&seed={seed}&gain_std=0.05&offset_std=2"


def _calibrated(seed: int, differential: bool = False):
    spec = SPEC.format(seed=seed) + ("&differential=1" if differential else "")
    xbar = open_crossbar(spec)
    cal = ReadoutCalibration(spec, {spec: calibrate_readout(xbar, np.random.default_rng(seed))})
    return xbar, cal


def test_estimates_match_the_injected_mismatch():
    xbar, cal = _calibrated(1)
    for direction, transpose in (("forward", False), ("transpose", True)):
        true = xbar.chip._readout[transpose].mismatch
        scale, offset = cal.arrays[xbar.info.backend][direction]
        # gain known to < 1/10 of its 5 % spread, offset to < 1/5 of its 2 LSB spread
        assert np.std(1 / scale - true.gain) < 0.1 * np.std(true.gain)
        assert np.std(-offset / scale - true.offset) < 0.2 * np.std(true.offset)


@pytest.mark.parametrize("seed, differential", [(1, False), (2, True)])
def test_calibration_cuts_the_mvm_error_five_fold(seed, differential):
    xbar, cal = _calibrated(seed, differential)
    rng = np.random.default_rng(10 + seed)
    tile = AnalogTile([xbar])
    n_out = xbar.info.mvm_shape[1] // (1 if differential else 2)
    tile.program(rng.uniform(-1, 1, (n_out, 64)))
    # inputs on the 7-bit DAC grid (full scale in every vector): no input quantisation
    x = rng.integers(-63, 64, (200, 64)) / 63
    x[:, 0] = 1
    before = mvm_error(tile, x, repeats=32)
    cal.apply(tile)
    after = mvm_error(tile, x, repeats=32)
    assert before > 0.05
    assert after <= before / 5


def test_file_round_trip_and_missing_array(tmp_path):
    xbar, cal = _calibrated(3)
    back = ReadoutCalibration.load(cal.save(tmp_path / "readout.json"))
    assert back.backend == cal.backend
    for name in ("forward", "transpose"):
        for got, want in zip(
            back.arrays[xbar.info.backend][name], cal.arrays[xbar.info.backend][name], strict=True
        ):
            np.testing.assert_array_equal(got, want)
    with AnalogTile.from_spec((4, 8), "emulator:pcm?rows=16&cols=16&seed=9") as tile:
        with pytest.raises(ConfigError, match="not in the readout calibration"):
            back.apply(tile)


def test_bad_file_and_arguments(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"kind": "drift"}')
    with pytest.raises(ConfigError, match="not a readout calibration file"):
        ReadoutCalibration.load(bad)
    xbar = open_crossbar("emulator:pcm?rows=8&cols=8")
    with pytest.raises(ConfigError, match="n_inputs must be an integer >= 4, got 2"):
        calibrate_readout(xbar, np.random.default_rng(0), n_inputs=2)


def test_multi_core_chip_is_calibrated_core_by_core(tmp_path):
    spec = SPEC.format(seed=4)
    res = run_readout(spec, seed=4, out=tmp_path / "cores.json", cores=3)
    assert len(set(res["arrays"])) == 3 and spec not in res["arrays"]
    assert res["error_before"] > 0.05 and res["error_after"] <= res["error_before"] / 5
    cal = ReadoutCalibration.load(res["file"])
    assert sorted(cal.arrays) == sorted(res["arrays"])
    with pytest.raises(ConfigError, match="cores must be an integer >= 1"):
        run_readout(spec, cores=0)
