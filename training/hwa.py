"""Hardware-aware training for inference, deployment on analog tiles, accuracy over time.

Recipe (Joshi et al., Nat. Commun. 11, 2473 (2020), seed 004; quantisation as in
seed 000):

1. :func:`train_hwa`: software training in which every batch sees weights with
   additive Gaussian noise of std ``noise * max|W|`` per layer (and, optionally,
   ternary weights and 7-level activations). The update goes to the clean weights,
   so the network learns a solution that tolerates programming error and read noise.
2. :func:`deploy`: each weight layer is programmed onto an
   :class:`~xbarlab.chipdrivers.tiles.AnalogTile` with the iterative multilevel-PCM
   algorithm (:func:`~xbarlab.chipdrivers.programming.program_iterative`); the
   network then runs its products on the chip, biases and activations digitally.
3. :func:`evaluate_over_time`: test accuracy at given times after programming (the
   chip's clock: virtual on the emulator), raw and with global drift compensation
   (GDC): each tile's summed |output| for a fixed calibration batch is measured right
   after programming and again at time t; the outputs are divided by the ratio.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from xbarlab.chipdrivers.crossbar import Crossbar
from xbarlab.chipdrivers.programming import program_iterative
from xbarlab.chipdrivers.tile_layout import OwnedArrays, open_arrays
from xbarlab.chipdrivers.tiles import AnalogTile
from xbarlab.errors import ConfigError
from xbarlab.training.data import Dataset
from xbarlab.training.fp import train_fp
from xbarlab.training.layers import AnalogLinear, Linear, Sequential

#: the times after programming of Joshi et al. 2020 (s): 25 s, 1 h, 1 day, 1 year
DEFAULT_TIMES = (25.0, 3600.0, 86400.0, 31536000.0)
#: calibration vectors per tile for GDC (uniform in [0, 1), drawn from the seed)
_CALIBRATION_VECTORS = 64
#: ternarisation threshold as a fraction of mean |W| (Li & Liu, ternary weight networks)
_TERNARY_THRESHOLD = 0.7


def ternarize(w: np.ndarray) -> np.ndarray:
    """Three-level weights {-a, 0, +a}: zero below 0.7 mean|W|, a = mean of |W| above it."""
    mag = np.abs(w)
    keep = mag > _TERNARY_THRESHOLD * mag.mean()
    alpha = mag[keep].mean() if keep.any() else 0.0
    return (np.sign(w) * keep * alpha).astype(w.dtype)


@dataclass(frozen=True)
class WeightNoise:
    """The training-time perturbation: noisy (and optionally ternary) weights per batch.

    noise: std of the additive Gaussian weight noise as a fraction of max |W| of each
    layer, >= 0. The default 0.1 is the top of the range seed 000 reports training can
    absorb; on the 64-64-10 digits MLP it kept the accuracy one day after programming
    on the default emulated PCM within 0.01 of the 25 s figure (0.03 did not). ternary: compute with
    :func:`ternarize` d weights (straight-through: the update goes to the latent
    weights).
    """

    noise: float = 0.1
    ternary: bool = False

    def __post_init__(self):
        if not (np.isfinite(self.noise) and self.noise >= 0):
            raise ConfigError(f"noise must be >= 0 (fraction of max |W|), got {self.noise!r}")

    def effective(self, w: np.ndarray) -> np.ndarray:
        """The noise-free weights a layer is deployed with."""
        return ternarize(w) if self.ternary else w

    @contextlib.contextmanager
    def __call__(self, model: Sequential, rng: np.random.Generator):
        layers = [layer for layer in model.weight_layers if isinstance(layer, Linear)]
        clean = [layer.W for layer in layers]
        try:
            for layer, w in zip(layers, clean, strict=True):
                e = self.effective(w)
                std = self.noise * float(np.max(np.abs(e)))
                layer.W = (e + std * rng.standard_normal(w.shape)).astype(np.float32)
            yield
        finally:
            for layer, w in zip(layers, clean, strict=True):
                layer.W = w


def train_hwa(
    model: Sequential,
    data: Dataset,
    *,
    noise: float = 0.1,
    ternary: bool = False,
    **options,
) -> list[dict]:
    """Hardware-aware training: :func:`~xbarlab.training.fp.train_fp` with weight noise.

    noise, ternary: see :class:`WeightNoise`; options: those of ``train_fp`` (epochs,
    lr, batch, seed, momentum, on_epoch). For 7-level activations build the model as
    ``MLP(sizes, rng, activation_levels=7, activation_max=...)``.
    """
    return train_fp(model, data, perturb=WeightNoise(noise, ternary), **options)


@dataclass
class DeployedModel(OwnedArrays):
    """A network whose weight layers are programmed on analog tiles.

    model: the network (AnalogLinear in place of each Linear); tiles: one per weight
    layer; calibration: the GDC input batch of each tile; reference: each tile's summed
    |output| for it right after programming; programmed_at: each chip clock's time (s)
    when programming ended; crossbars: the arrays opened by :func:`deploy` (closed by
    :meth:`close`).
    """

    model: Sequential
    tiles: list[AnalogTile]
    calibration: list[np.ndarray]
    reference: list[float]
    programmed_at: list[tuple[object, float]]
    crossbars: list[Crossbar] = field(default_factory=list)

    def elapsed(self) -> float:
        """Seconds since programming ended, on the clock that has advanced least."""
        return min(clock.now() - t0 for clock, t0 in self.programmed_at)

    def wait_until(self, t: float) -> None:
        """Sleep every chip clock until ``t`` s after programming (no-op if already past)."""
        for clock, t0 in self.programmed_at:
            dt = t0 + t - clock.now()
            if dt > 0:
                clock.sleep(dt)

    def set_gdc(self, enabled: bool) -> list[float]:
        """Measure each tile's drift factor now; divide outputs by it (enabled) or not.

        Returns the factors (summed |output| now over summed |output| at programming).
        """
        layers = self.model.weight_layers
        factors = []
        for layer, tile, x, ref in zip(
            layers, self.tiles, self.calibration, self.reference, strict=True
        ):
            f = _response(tile, x) / ref
            factors.append(f)
            layer.gain = 1.0 / f if enabled else 1.0
        return factors

    @property
    def _owned(self) -> list[Crossbar]:
        """What OwnedArrays closes: the arrays deploy opened."""
        return self.crossbars

    @_owned.setter
    def _owned(self, arrays: list[Crossbar]) -> None:
        self.crossbars = arrays


def deploy(
    model: Sequential,
    target,
    *,
    tolerance: float | None = None,
    max_iterations: int = 100,
    ternary: bool = False,
    seed: int = 0,
    pairs_per_weight: int = 2,
    **tile_options,
) -> DeployedModel:
    """Program every weight layer of ``model`` onto analog tiles.

    Parameters
    ----------
    model : Sequential
        A trained digital model; it is not changed (its layers are reused).
    target : str or list of list of Crossbar
        A backend spec (one or more cores per layer are opened from it: core numbers
        count up over the layers, see :func:`~xbarlab.chipdrivers.tile_layout.core_spec`),
        or, per weight layer, the arrays its tile uses.
    tolerance : float, optional
        Programming tolerance per device in S (program_iterative's default when None).
    max_iterations : int
        Iterations of program_iterative per pair and array.
    ternary : bool
        Program the ternarised weights (a model trained with ``ternary=True``).
    seed : int
        Seed of the GDC calibration batch.
    pairs_per_weight : int
        Device pairs per weight (AnalogTile option). Two pairs, the second programmed
        to the first one's residual error, halve the programming error and average
        the devices' independent drift exponents: on the default emulated PCM that
        lifted the 25 s accuracy of the digits MLP from about 0.95 to 0.97.
    tile_options
        Other constructor options of :class:`AnalogTile` (significance, g_range, ...).
    """
    digital = model.weight_layers
    if not digital or not all(isinstance(layer, Linear) for layer in digital):
        raise ConfigError("deploy needs a model whose weight layers are all digital Linear")
    if isinstance(target, str):
        per_layer = open_arrays(target, [layer.shape for layer in digital], pairs_per_weight)
        opened = [x for arrays in per_layer for x in arrays]
    else:
        per_layer, opened = _check_arrays(target, len(digital)), []
    rng = np.random.default_rng(seed)
    effective = WeightNoise(0.0, ternary).effective
    try:
        tiles, analog = [], {}
        for layer, arrays in zip(digital, per_layer, strict=True):
            tile = AnalogTile(arrays, pairs_per_weight=pairs_per_weight, **tile_options)
            tile.program(
                effective(layer.W),
                tolerance=tolerance,
                max_iterations=max_iterations,
                algorithm=program_iterative,
            )
            tiles.append(tile)
            analog[id(layer)] = AnalogLinear(tile, layer.b.copy())
        clocks = {id(a.clock): a.clock for t in tiles for a in t.arrays}
        programmed_at = [(c, c.now()) for c in clocks.values()]
        calibration = [
            rng.random((_CALIBRATION_VECTORS, t.shape[1]), dtype=np.float32) for t in tiles
        ]
        reference = [_response(t, x) for t, x in zip(tiles, calibration, strict=True)]
    except BaseException:
        for x in opened:
            x.close()
        raise
    layers = [analog.get(id(layer), layer) for layer in model.layers]
    return DeployedModel(Sequential(layers), tiles, calibration, reference, programmed_at, opened)


def evaluate_over_time(
    deployed: DeployedModel, data: Dataset, times=DEFAULT_TIMES
) -> dict[float, dict[str, float]]:
    """Test accuracy at each time after programming, raw and with GDC.

    times: seconds after programming, increasing, each >= the time already elapsed
    (the chip clock only moves forward). Returns {t: {"raw": acc, "gdc": acc,
    "drift_factors": [one per tile]}}.
    """
    ts = [float(t) for t in times]
    if not ts or any(b <= a for a, b in zip(ts, ts[1:], strict=False)):
        raise ConfigError(f"times must be increasing seconds after programming, got {times!r}")
    if ts[0] < deployed.elapsed():
        raise ConfigError(
            f"times[0] = {ts[0]} s but {deployed.elapsed():.6g} s have already passed since "
            "programming; the clock cannot go back"
        )
    out = {}
    for t in ts:
        deployed.wait_until(t)
        deployed.set_gdc(False)
        raw = deployed.model.accuracy(data.x_test, data.y_test)
        factors = deployed.set_gdc(True)
        gdc = deployed.model.accuracy(data.x_test, data.y_test)
        out[t] = {"raw": raw, "gdc": gdc, "drift_factors": factors}
    return out


def _response(tile: AnalogTile, x: np.ndarray) -> float:
    """Summed |output| of the tile for a calibration batch (weight units)."""
    return float(np.abs(tile.forward(x)).sum(dtype=np.float64))


def _check_arrays(target, n_layers: int) -> list[list[Crossbar]]:
    try:
        per_layer = [list(arrays) for arrays in target]
    except TypeError:
        raise ConfigError(
            "target must be a backend spec string or one list of Crossbar per weight layer"
        ) from None
    if len(per_layer) != n_layers:
        raise ConfigError(
            f"target gives arrays for {len(per_layer)} layers; the model has {n_layers}"
        )
    return per_layer
