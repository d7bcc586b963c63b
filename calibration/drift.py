"""Drift compensation on tiles: undo the conductance decay of programmed weights at run time.

PCM conductances drift as G(t) = G_prog (t/t0)^-nu, so a tile's outputs shrink
with time since programming. Right after programming, the reference inputs of
:mod:`xbarlab.chipdrivers.drift_reference` (weight units) are run through the tile
and the outputs Y0 are kept (:func:`measure_reference`). Later the same inputs give
Y(t), and the least-squares factor(s) mapping Y(t) back to Y0, global (one per tile)
or per column (one per logical output), become the tile's output scale
(:func:`compensate`). The ``drift-compensation`` procedure measures the same factors
on a raw array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarlab.chipdrivers.drift_reference import (
    MODES,
    check_mode,
    drift_factors,
    reference_inputs,
)
from xbarlab.errors import ConfigError

__all__ = ["MODES", "DriftReference", "measure_reference", "compensate", "run_drift"]


@dataclass(frozen=True)
class DriftReference:
    """Reference inputs x (n_ref, in), weight units, and the tile's outputs y0 (n_ref, out)
    for them at programming time."""

    x: np.ndarray
    y0: np.ndarray


def measure_reference(tile, *, n_ref: int = 32, repeats: int = 4, seed: int = 0) -> DriftReference:
    """Run the reference inputs through a just-programmed tile and keep its outputs.

    n_ref: reference vectors, >= 1 (the all-ones vector, then random +-1 vectors);
    repeats: forward passes averaged per vector to beat read and output noise, >= 1;
    seed: of the random vectors.
    """
    if int(repeats) != repeats or repeats < 1:
        raise ConfigError(f"repeats must be an integer >= 1, got {repeats!r}")
    x = reference_inputs(n_ref, tile.shape[1], seed)
    return DriftReference(x, _outputs(tile, x, int(repeats)))


def compensate(tile, ref: DriftReference, mode: str = "global", *, repeats: int = 4):
    """Measure the reference again and set the tile's output scale to undo the drift.

    mode: "global" (one factor) or "column" (one per output). repeats: forward passes
    averaged per vector, >= 1. Returns the factor(s) set (float or (out,) array).
    """
    check_mode(mode)
    if ref.y0.shape != (ref.x.shape[0], tile.shape[0]) or ref.x.shape[1] != tile.shape[1]:
        raise ConfigError(
            f"drift reference of shape {ref.y0.shape} does not fit the {tile.shape} tile"
        )
    tile.set_output_scale(None)
    factor = drift_factors(ref.y0, _outputs(tile, ref.x, repeats), mode)
    tile.set_output_scale(factor)
    return factor


def _outputs(tile, x: np.ndarray, repeats: int) -> np.ndarray:
    """The tile's forward outputs for x, averaged over ``repeats`` passes."""
    return np.mean([tile.forward(x) for _ in range(repeats)], axis=0, dtype=np.float64)


def run_drift(spec: str, *, after: float = 86400.0, mode: str = "global", seed: int = 0) -> dict:
    """Program random weights on the chip ``spec``, wait ``after`` seconds (virtual time on
    an emulator), compensate, and report the MVM error against the programmed weights.

    after: time since programming in s, > 0. Returns a JSON-ready summary with
    ``error_before`` (uncompensated), ``error_after`` and the ``factor``(s).
    """
    from xbarlab.calibration.readout import held_weights, mvm_error
    from xbarlab.chipdrivers.factory import open_crossbar
    from xbarlab.chipdrivers.tiles import AnalogTile

    if not (np.isfinite(after) and after > 0):
        raise ConfigError(f"after must be > 0 (s since programming), got {after!r}")
    check_mode(mode)
    rng = np.random.default_rng(seed)
    with open_crossbar(spec) as xbar:
        tile = AnalogTile([xbar])
        n_in = xbar.info.rows
        tile.program(
            rng.uniform(-1, 1, (xbar.info.mvm_shape[1] // (1 if tile.differential else 2), n_in))
        )
        x = rng.uniform(-1, 1, (200, n_in))
        ref = measure_reference(tile, seed=seed)
        w_prog = held_weights(tile)
        xbar.clock.sleep(after)
        before = mvm_error(tile, x, 4, w_prog)
        factor = compensate(tile, ref, mode)
        error_after = mvm_error(tile, x, 4, w_prog)
    return {
        "backend": spec,
        "mode": mode,
        "after_s": after,
        "error_before": before,
        "error_after": error_after,
        "ratio": error_after / before,
        "factor": factor if mode == "global" else np.asarray(factor).tolist(),
    }
