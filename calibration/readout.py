"""Readout calibration: per-output gain and offset of each array's TIA/ADC path.

A real chip's output channels do not share one gain and offset. Here they are
estimated per physical output (column forward, row transposed) by regression:
the array is programmed to known random conductances, read back (``xbar.read``,
averaged over repeats to beat read noise), and driven with random inputs on the
DAC's levels; each output's measured current is fitted as
``I_meas = gain * I_expected + offset`` with ``I_expected = u @ G`` (A). The
correction ``I -> (I - offset) / gain`` is handed to tiles through
:meth:`~xbarlab.chipdrivers.tiles.AnalogTile.set_readout_correction`.

The calibration file (JSON) holds, per array backend spec, ``scale`` (1/gain,
dimensionless) and ``offset`` (-offset/gain, A) of both directions.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xbarlab.chipdrivers.crossbar import Crossbar
from xbarlab.chipdrivers.programming import write_verify
from xbarlab.errors import ConfigError

#: calibration file layout version
FORMAT = 1
#: fraction of the ADC full scale the largest expected reference current is scaled to
_FILL = 0.7
#: part of the conductance window the random reference conductances span (from each end)
_G_MARGIN = 0.1


@dataclass
class ReadoutCalibration:
    """Per-array readout corrections of one chip.

    arrays: backend spec of each array -> {"forward" | "transpose": (scale, offset)},
    scale dimensionless and offset in A, one value per output of that direction.
    """

    backend: str
    arrays: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)

    def save(self, path) -> Path:
        """Write the calibration as JSON to ``path``; returns the path."""
        doc = {
            "format": FORMAT,
            "kind": "readout",
            "backend": self.backend,
            "arrays": {
                spec: {d: {"scale": s.tolist(), "offset": o.tolist()} for d, (s, o) in dirs.items()}
                for spec, dirs in self.arrays.items()
            },
        }
        path = Path(path)
        path.write_text(json.dumps(doc))
        return path

    @classmethod
    def load(cls, path) -> ReadoutCalibration:
        """Read a file written by :meth:`save`; ConfigError if it is not one."""
        try:
            doc = json.loads(Path(path).read_text())
            if doc.get("kind") != "readout" or doc.get("format") != FORMAT:
                raise ValueError(f"kind {doc.get('kind')!r}, format {doc.get('format')!r}")
            arrays = {
                spec: {
                    d: (np.asarray(v["scale"], np.float32), np.asarray(v["offset"], np.float32))
                    for d, v in dirs.items()
                }
                for spec, dirs in doc["arrays"].items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"{path} is not a readout calibration file of format {FORMAT} ({exc})"
            ) from None
        return cls(doc["backend"], arrays)

    def apply(self, tile) -> None:
        """Set the readout correction of every array of an AnalogTile from this calibration."""
        for k, xbar in enumerate(tile.arrays):
            dirs = self.arrays.get(xbar.info.backend)
            if dirs is None:
                raise ConfigError(
                    f"array {k} ({xbar.info.backend!r}) is not in the readout calibration of "
                    f"{self.backend!r}; calibrate it (xbarlab calibrate readout)"
                )
            for name, (scale, offset) in dirs.items():
                tile.set_readout_correction(k, name == "transpose", scale, offset)


def calibrate_readout(
    xbar: Crossbar,
    rng: np.random.Generator,
    *,
    n_inputs: int = 1024,
    read_repeats: int = 16,
    tolerance: float | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Estimate the readout correction of one array (overwrites all its conductances).

    Parameters
    ----------
    xbar : Crossbar
        The array; it is programmed to random conductances in the window.
    rng : numpy.random.Generator
        Source of the reference conductances and inputs.
    n_inputs : int
        Reference input vectors per direction, >= 4 (more: less noise in the fit).
    read_repeats : int
        Conductance reads averaged for the expected currents, >= 1.
    tolerance : float, optional
        Programming tolerance in S (write_verify's default when None).

    Returns
    -------
    dict
        {"forward": (scale, offset)} and, with ``mvm_transpose``, {"transpose": ...};
        scale dimensionless, offset in A, for ``I * scale + offset``.
    """
    if int(n_inputs) != n_inputs or n_inputs < 4:
        raise ConfigError(f"n_inputs must be an integer >= 4, got {n_inputs!r}")
    if int(read_repeats) != read_repeats or read_repeats < 1:
        raise ConfigError(f"read_repeats must be an integer >= 1, got {read_repeats!r}")
    info = xbar.info
    span = info.g_max - info.g_min
    lo, hi = info.g_min + _G_MARGIN * span, info.g_max - _G_MARGIN * span
    targets = rng.uniform(lo, hi, info.shape).astype(np.float32)
    write_verify(xbar, targets, tolerance=tolerance)
    g = np.mean([xbar.read() for _ in range(int(read_repeats))], axis=0, dtype=np.float64)
    m = g[:, 0::2] - g[:, 1::2] if "differential_columns" in info.capabilities else g
    out = {"forward": _fit_direction(xbar, m, False, int(n_inputs), rng)}
    if "mvm_transpose" in info.capabilities:
        out["transpose"] = _fit_direction(xbar, m.T, True, int(n_inputs), rng)
    return out


def _fit_direction(xbar: Crossbar, m: np.ndarray, transpose: bool, n: int, rng):
    """(scale, offset) of one direction; m: (n_in, n_out) effective conductance in S."""
    u = _reference_inputs(xbar.info, m, n, rng)
    expected = u.astype(np.float64) @ m
    cur, sat = xbar.mvm(u, transpose=transpose, return_saturation=True)
    ok = ~sat
    if np.any(ok.sum(axis=0) < 3):
        raise ConfigError("readout calibration: too many saturated reference outputs")
    gain, offset = _line_fit(expected, cur.astype(np.float64), ok)
    if not np.all(gain > 0):
        raise ConfigError("readout calibration: an output's fitted gain is <= 0")
    return (1 / gain).astype(np.float32), (-offset / gain).astype(np.float32)


def _reference_inputs(info, m: np.ndarray, n: int, rng) -> np.ndarray:
    """Random inputs in V on whole DAC levels, scaled so the largest expected current
    stays at _FILL of the ADC full scale."""
    v_fs = min(float(info.periphery.get("dac_range_V", info.v_read)), info.limits.max_read_voltage)
    levels = int(info.periphery.get("dac_levels", 0) or 0) or 1024
    r = rng.uniform(-1, 1, (n, m.shape[0]))
    full = info.periphery.get("adc_full_scale_A")
    if full:
        peak = np.max(np.abs(r @ m)) * v_fs
        r *= min(1.0, _FILL * full / peak)
    return (np.round(r * levels) / levels * v_fs).astype(np.float32)


def _line_fit(x: np.ndarray, y: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column least-squares slope and intercept of y on x over the samples ``ok``."""
    w = ok.astype(np.float64)
    n = w.sum(axis=0)
    mx, my = (w * x).sum(axis=0) / n, (w * y).sum(axis=0) / n
    dx, dy = (x - mx) * w, (y - my) * w
    slope = (dx * dy).sum(axis=0) / (dx * dx).sum(axis=0)
    return slope, my - slope * mx


def held_weights(tile, read_repeats: int = 64) -> np.ndarray:
    """The weights (out, in) the tile's devices hold now, averaged over ``read_repeats`` reads."""
    return np.mean([tile.read_weights() for _ in range(read_repeats)], axis=0)


def mvm_error(tile, x: np.ndarray, repeats: int = 1, weights=None) -> float:
    """Relative RMS error of tile.forward(x), averaged over ``repeats`` calls, against the
    ideal X @ W.T; W: ``weights``, or by default the held weights (:func:`held_weights`).

    Averaging removes the random part of the error (read and output noise), leaving the
    systematic part that calibration addresses."""
    w = held_weights(tile) if weights is None else weights
    y = np.mean([tile.forward(x) for _ in range(repeats)], axis=0)
    ideal = x @ w.T
    return float(np.sqrt(np.mean((y - ideal) ** 2) / np.mean(ideal**2)))


def run_readout(spec: str, *, seed: int = 0, out=None, repeats: int = 32, cores: int = 1) -> dict:
    """Calibrate the readout of the chip ``spec`` (``cores`` of it) and measure what it gains.

    Programs the whole array (first for the calibration, then with random weights for
    the check), so it belongs before deployment. The check: relative RMS error of
    random MVMs (inputs on the DAC grid, outputs averaged over ``repeats``) against
    X @ W_hat.T without and with the correction, on one tile spanning every core (its
    inputs split over the cores). cores: arrays to calibrate, >= 1; core k is opened as
    :func:`~xbarlab.chipdrivers.tile_layout.core_spec` (spec, k) (the spec itself when
    there is one core). out: calibration file to write (JSON). Returns a JSON-ready
    summary with ``error_before``, ``error_after`` and the calibrated ``arrays``.
    """
    from xbarlab.chipdrivers.factory import open_crossbar
    from xbarlab.chipdrivers.tile_layout import core_spec
    from xbarlab.chipdrivers.tiles import AnalogTile

    if int(cores) != cores or cores < 1:
        raise ConfigError(f"cores must be an integer >= 1, got {cores!r}")
    specs = [spec] if cores == 1 else [core_spec(spec, k) for k in range(int(cores))]
    rng = np.random.default_rng(seed)
    with contextlib.ExitStack() as stack:
        arrays = [stack.enter_context(open_crossbar(s)) for s in specs]
        cal = ReadoutCalibration(spec, {a.info.backend: calibrate_readout(a, rng) for a in arrays})
        tile = AnalogTile(arrays)
        info = arrays[0].info
        n_in = info.rows * len(arrays)
        n_out = info.mvm_shape[1] // (1 if tile.differential else 2)
        tile.program(rng.uniform(-1, 1, (n_out, n_in)))
        levels = int(info.periphery.get("dac_levels", 0) or 0) or 1024
        x = rng.integers(-levels, levels + 1, (200, n_in)) / levels
        x[:, :: info.rows] = 1.0  # every block at full scale: no input quantisation in the check
        before = mvm_error(tile, x, repeats)
        cal.apply(tile)
        after = mvm_error(tile, x, repeats)
    path = None if out is None else str(cal.save(out))
    return {
        "backend": spec,
        "arrays": list(cal.arrays),
        "error_before": before,
        "error_after": after,
        "reduction": before / after,
        "file": path,
    }
