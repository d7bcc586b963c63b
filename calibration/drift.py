"""Drift compensation: undo the conductance decay of programmed weights at run time.

PCM conductances drift as G(t) = G_prog (t/t0)^-nu, so a tile's outputs shrink
with time since programming. Right after programming, a fixed set of reference
inputs (the all-ones vector and seeded random +-1 vectors, weight units) is run
through the tile and the outputs Y0 are kept (:func:`measure_reference`). Later
the same inputs give Y(t), and a least-squares factor ``a`` that maps Y(t) back
to Y0 is set as the tile's output scale (:func:`compensate`):

- global: one factor per tile, ``a = sum(Y0 Y) / sum(Y Y)`` over all outputs;
- per column: one factor per logical output j, the same sum over the inputs only
  (corrects outputs whose devices drift faster or slower than the average).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarlab.errors import ConfigError

#: ways to compensate
MODES = ("global", "column")


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
    for name, value in (("n_ref", n_ref), ("repeats", repeats)):
        if int(value) != value or value < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    x = np.random.default_rng(seed).choice([-1.0, 1.0], size=(int(n_ref), tile.shape[1]))
    x[0] = 1.0
    x = x.astype(np.float32)
    return DriftReference(x, _outputs(tile, x, int(repeats)))


def compensate(tile, ref: DriftReference, mode: str = "global", *, repeats: int = 4):
    """Measure the reference again and set the tile's output scale to undo the drift.

    mode: "global" (one factor) or "column" (one per output). repeats: forward passes
    averaged per vector, >= 1. Returns the factor(s) set (float or (out,) array).
    """
    if mode not in MODES:
        raise ConfigError(
            f"drift compensation mode must be one of {', '.join(MODES)}, got {mode!r}"
        )
    if ref.y0.shape != (ref.x.shape[0], tile.shape[0]) or ref.x.shape[1] != tile.shape[1]:
        raise ConfigError(
            f"drift reference of shape {ref.y0.shape} does not fit the {tile.shape} tile"
        )
    tile.set_output_scale(None)
    y = _outputs(tile, ref.x, repeats).astype(np.float64)
    y0 = ref.y0.astype(np.float64)
    axis = None if mode == "global" else 0
    num, den = (y0 * y).sum(axis=axis), (y * y).sum(axis=axis)
    if np.any(num <= 0) or np.any(den <= 0):
        raise ConfigError(
            "drift compensation: the reference outputs changed sign or vanished; "
            "re-measure the reference after programming"
        )
    factor = num / den
    tile.set_output_scale(factor)
    return float(factor) if mode == "global" else factor.astype(np.float32)


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
    if mode not in MODES:
        raise ConfigError(
            f"drift compensation mode must be one of {', '.join(MODES)}, got {mode!r}"
        )
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
