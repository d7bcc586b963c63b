"""Mixed-precision training with the chip in the loop (Nandakumar et al., Front. Neurosci. 2020).

The chip computes; a digital unit decides when the chip's weights change:

- Forward (``X @ W.T``) and backward (``D @ W``, the transposed MVM) products of every
  weight layer run on an :class:`~xbarlab.chipdrivers.tiles.AnalogTile` (through
  :class:`~xbarlab.training.layers.AnalogLinear`); activations, biases and the loss are
  digital.
- The weight update ``-lr * grad_W`` is accumulated in a float64 matrix ``chi`` per layer.
  Where ``|chi| >= epsilon``, ``n = floor(|chi| / epsilon)`` SET pulses go to the weight's
  G+ device (chi > 0) or its G- device (chi < 0), and chi is reduced by ``n * epsilon``.
  Devices are grouped by pulse count: one pulse call per distinct count per array and
  step, never a call per device.
- ``epsilon`` (weight units) is the chip's measured mean SET increment (S) over the
  tile's ``g_scale`` (S per weight unit): a quick pulse-response characterisation of the
  layers' own devices at the start (:func:`characterise_set`), kept with the run.
- PCM only climbs with SET pulses, so pairs near saturation (G+ or G- above
  ``refresh_threshold * g_max``) are refreshed every ``refresh_every`` steps: read,
  RESET both, re-program the difference with
  :func:`~xbarlab.chipdrivers.programming.program_iterative`.
- A bipolar chip (no ``unipolar`` capability, e.g. RRAM) also lowers a conductance
  gradually with RESET pulses (polarity -1), so both polarities update: a positive
  change is a SET on G+ or a gradual RESET on G-, a negative one a SET on G- or a RESET
  on G+, whichever device has more room in its direction (G_max - G for SET, G - g_min
  for RESET; soft-bounds devices move in proportion to it). The trainer keeps an
  estimate of every device's conductance (read every ``sense_every`` steps, advanced by
  the mean step in between), and the RESET threshold ``epsilon_reset`` comes from a
  RESET characterisation (:func:`characterise_reset`). Pairs never saturate: no
  refresh (off by default on bipolar chips).

Each layer's weight (j, i) sits on the devices the tile layout gives it
(:mod:`xbarlab.chipdrivers.tile_layout`, one pair per weight): row ``i - row0`` of its
block's array, columns ``2s`` / ``2s + 1`` on a chip with differential columns, else
``s`` / ``cols // 2 + s``, with ``s`` the weight's slot in the block. The trainer computes
that map from the layout functions and the tile's public attributes.

This module is the trainer (options, set-up, the training loop, results); the chip
side of the updates (device map, characterisation, per-layer update state) is in
:mod:`xbarlab.training.mp_updates`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from xbarlab.chipdrivers.crossbar import Crossbar
from xbarlab.chipdrivers.tile_layout import OwnedArrays, arrays_needed, open_arrays
from xbarlab.chipdrivers.tiles import AnalogTile
from xbarlab.errors import ConfigError
from xbarlab.training.data import Dataset
from xbarlab.training.layers import MLP, AnalogLinear, ReLU, Sequential, SoftmaxCrossEntropy
from xbarlab.training.mp_updates import (
    DeviceMap,
    LayerUpdates,
    characterise_reset,
    characterise_set,
    device_map,
)

__all__ = [
    "EpochStats",
    "MixedPrecisionTrainer",
    "characterise_reset",
    "characterise_set",
    "device_map",
]


@dataclass(frozen=True)
class EpochStats:
    """One epoch of mixed-precision training.

    epoch: 1-based; train_loss: mean cross-entropy (nats) over the epoch's batches;
    test_accuracy: on the chip after the epoch; pulses: SET (and on bipolar chips
    RESET) pulses applied to update weights; refreshes: pairs refreshed;
    updated_fraction: fraction of weights that got at least one pulse; epoch_s: wall
    time in s of the training pass (no evaluation).
    """

    epoch: int
    train_loss: float
    test_accuracy: float
    pulses: int
    refreshes: int
    updated_fraction: float
    epoch_s: float

    def to_dict(self) -> dict:
        return asdict(self)


class MixedPrecisionTrainer(OwnedArrays):
    """Train an MLP whose weight layers are AnalogTiles, updating the chip by SET pulses.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, inputs first, classes last (e.g. (64, 64, 10)).
    backend : str or sequence of Crossbar
        A spec (one core per array each layer needs, numbered through
        :func:`core_spec`; an ``emulator:`` spec gets one chip seed per core, another
        backend needs ``{core}`` in the spec), or arrays to use in order (not closed by
        the trainer). A user's choice for PCM: differential columns, e.g.
        ``emulator:pcm?differential=1&seed=1``.
    seed : int
        Seeds the initial weights (He-normal, clipped to +-weight_scale) and the order of
        the training samples.
    lr : float
        Learning rate, > 0.
    batch : int
        Samples per update step, >= 1.
    weight_scale : float
        Weight (weight units) mapped to g_range of the conductance window, > 0.
    g_range : float
        Fraction of the window that weight_scale maps to, 0 < g_range <= 1.
    amplitude, width : float, optional
        Update SET pulse: height in V inside ``info.set_amplitude_range``, width in s.
        Default: the chip's recommended SET pulse (``info.set_pulse``).
    refresh_threshold : float
        Pairs with G+ or G- above this fraction of g_max are refreshed, 0 < value <= 1.
    refresh_every : int, optional
        Update steps between refresh checks (one read per array), >= 1; 0 turns refresh
        off. Default: 20 on a unipolar chip, off on a bipolar one (it never saturates).
    reset_amplitude, reset_width : float, optional
        Gradual RESET pulse of the updates on a bipolar chip: height in V, width in s.
        Default: ``info.details["gradual_reset_pulse"]`` when the backend gives one,
        else the SET pulse's height and width.
    sense_every : int
        Update steps between reads of every device into the conductance estimates that
        choose between SET and RESET on a bipolar chip, >= 1.
    characterise_pulses : int
        SET pulses of the start-up characterisation, >= 1.
    refresh_iterations : int
        program_iterative iterations per refresh, >= 1.
    cosine : bool
        Decay the learning rate to 0 along a half cosine over each :meth:`train` call
        (fewer, finer updates at the end: the last epochs stop random-walking on the
        stochastic SET increments); False: constant rate.

    Attributes
    ----------
    model : Sequential
        AnalogLinear / ReLU layers; ``model.accuracy`` evaluates on the chip.
    characterisation : dict
        The start-up SET characterisation (see :func:`characterise_set`).
    epsilons : list of float
        Update threshold per layer in weight units (mean SET increment / g_scale).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        backend: str | Sequence[Crossbar],
        *,
        seed: int = 0,
        lr: float = 0.3,
        batch: int = 10,
        weight_scale: float = 1.0,
        g_range: float = 0.8,
        amplitude: float | None = None,
        width: float | None = None,
        refresh_threshold: float = 0.85,
        refresh_every: int | None = None,
        characterise_pulses: int = 20,
        refresh_iterations: int = 30,
        cosine: bool = True,
        reset_amplitude: float | None = None,
        reset_width: float | None = None,
        sense_every: int = 20,
    ):
        sizes = [int(s) for s in sizes]
        _check(lr > 0 and np.isfinite(lr), "lr", lr, "> 0")
        _check(int(batch) == batch and batch >= 1, "batch", batch, "an integer >= 1")
        _check(0 < refresh_threshold <= 1, "refresh_threshold", refresh_threshold, "(0, 1]")
        _check(refresh_every is None or refresh_every >= 0, "refresh_every", refresh_every, ">= 0")
        _check(sense_every >= 1, "sense_every", sense_every, ">= 1")
        _check(characterise_pulses >= 1, "characterise_pulses", characterise_pulses, ">= 1")
        _check(refresh_iterations >= 1, "refresh_iterations", refresh_iterations, ">= 1")
        self.rng = np.random.default_rng(seed)
        init = MLP(sizes, self.rng)  # validates sizes
        self.options = {
            "sizes": sizes, "seed": int(seed), "lr": float(lr), "batch": int(batch),
            "weight_scale": float(weight_scale), "g_range": float(g_range),
            "refresh_threshold": float(refresh_threshold), "refresh_every": refresh_every,
            "characterise_pulses": int(characterise_pulses),
            "refresh_iterations": int(refresh_iterations), "cosine": bool(cosine),
            "sense_every": int(sense_every),
        }  # fmt: skip
        self.backend = backend if isinstance(backend, str) else "arrays"
        shapes = [lin.shape for lin in init.weight_layers]
        self._owned: list[Crossbar] = []
        try:
            groups = self._arrays(backend, shapes)
            tiles = [AnalogTile(g, weight_scale=weight_scale, g_range=g_range) for g in groups]
            pulse = self._pulse_shape(tiles[0].info, amplitude, width)
            self.options.update(amplitude_V=pulse[0], width_s=pulse[1])
            self.bipolar = "unipolar" not in tiles[0].info.capabilities
            if refresh_every is None:
                refresh_every = 0 if self.bipolar else 20
            self.options.update(refresh_every=int(refresh_every), bipolar=self.bipolar)
            reset = self._reset_shape(tiles[0].info, pulse, reset_amplitude, reset_width)
            if self.bipolar:
                self.options.update(reset_amplitude_V=reset[0], reset_width_s=reset[1])
            maps = [device_map(t, s) for t, s in zip(tiles, shapes, strict=True)]
            self.characterisation = self._characterise(tiles[0], maps[0], pulse, reset)
            self._build(init, tiles, maps, pulse, reset)
        except BaseException:
            self.close()
            raise
        self.loss = SoftmaxCrossEntropy()
        self.steps = 0
        self.history: list[EpochStats] = []

    # -- set-up -------------------------------------------------------------------------
    def _arrays(self, backend, shapes) -> list[list[Crossbar]]:
        """The arrays of each layer: opened core by core from a spec, or taken in order."""
        if isinstance(backend, str):
            groups = open_arrays(backend, shapes)
            self._owned = [a for g in groups for a in g]
            return groups
        pool = list(backend)
        if not pool:
            raise ConfigError("backend: give a spec string or at least one Crossbar")
        rows, cols = pool[0].info.rows, pool[0].info.cols
        need = sum(arrays_needed(s, rows, cols, 1) for s in shapes)
        if len(pool) < need:
            raise ConfigError(
                f"layers {shapes} need {need} arrays of {rows} x {cols}; got {len(pool)}"
            )
        groups = []
        for s in shapes:
            n = arrays_needed(s, rows, cols, 1)
            groups.append(pool[:n])
            pool = pool[n:]
        return groups

    @staticmethod
    def _pulse_shape(info, amplitude, width) -> tuple[float, float]:
        """(height in V, width in s) of the update pulse, inside the chip's SET range."""
        amp = info.set_pulse.amplitude if amplitude is None else float(amplitude)
        wid = info.set_pulse.width if width is None else float(width)
        lo, hi = info.set_amplitude_range
        if not lo <= amp <= hi:
            raise ConfigError(
                f"amplitude = {amp!r} V is outside the chip's gradual SET range "
                f"[{lo:.3g}, {hi:.3g}] V"
            )
        info.limits.check_pulse(amp, wid, 1)
        return amp, wid

    @staticmethod
    def _reset_shape(info, pulse, amplitude, width) -> tuple[float, float]:
        """(height in V, width in s) of the gradual RESET update pulse (bipolar chips)."""
        default = info.details.get("gradual_reset_pulse", {})
        amp = default.get("amplitude_V", pulse[0]) if amplitude is None else float(amplitude)
        wid = default.get("width_s", pulse[1]) if width is None else float(width)
        info.limits.check_pulse(amp, wid, 1)
        return float(amp), float(wid)

    def _characterise(self, tile: AnalogTile, dmap: DeviceMap, pulse, reset) -> dict:
        """SET (and on a bipolar chip, gradual RESET) characterisation on the first layer's
        devices of its first array (they are programmed afterwards)."""
        w = np.flatnonzero(dmap.array == 0)
        sel = (np.tile(dmap.row[w], 2), np.concatenate([dmap.plus[w], dmap.minus[w]]))
        limit = self.options["refresh_threshold"] * tile.g_max
        n = self.options["characterise_pulses"]
        out = characterise_set(
            tile.arrays[0], sel, amplitude=pulse[0], width=pulse[1], n_pulses=n, g_limit=limit
        )
        if self.bipolar:
            floor = tile.g_min + (1 - self.options["refresh_threshold"]) * tile.g_max
            out["reset"] = characterise_reset(
                tile.arrays[0], sel, amplitude=reset[0], width=reset[1], n_pulses=n, g_floor=floor
            )
        return out

    def _build(self, init: MLP, tiles, maps, pulse, reset) -> None:
        """Program the initial weights and assemble the analog model and layer states."""
        ws = self.options["weight_scale"]
        layers, self.layers = [], []
        for k, (lin, tile, dmap) in enumerate(zip(init.weight_layers, tiles, maps, strict=True)):
            tile.program(np.clip(lin.W, -ws, ws))
            analog = AnalogLinear(tile, lin.b)
            state = LayerUpdates(tile, analog, dmap, pulse)
            state.epsilon = self.characterisation["mean_increment_S"] / tile.g_scale
            if self.bipolar:
                state.reset_pulse = reset
                state.epsilon_reset = (
                    self.characterisation["reset"]["mean_decrement_S"] / tile.g_scale
                )
                state.sense()
            self.layers.append(state)
            layers += [analog] if k == 0 else [ReLU(), analog]
        self.model = Sequential(layers)

    @property
    def epsilons(self) -> list[float]:
        return [s.epsilon for s in self.layers]

    # -- training -----------------------------------------------------------------------
    def train(
        self, data: Dataset, epochs: int, on_epoch: Callable[[EpochStats], None] | None = None
    ) -> list[EpochStats]:
        """Train ``epochs`` epochs; ``on_epoch(stats)`` after each. Returns all epochs so far."""
        _check(int(epochs) == epochs and epochs >= 1, "epochs", epochs, "an integer >= 1")
        total = int(epochs) * -(-len(data.y_train) // self.options["batch"])
        for e in range(int(epochs)):
            stats = self.train_epoch(data, schedule=(e, total) if self.options["cosine"] else None)
            if on_epoch is not None:
                on_epoch(stats)
        return self.history

    def train_epoch(self, data: Dataset, schedule: tuple[int, int] | None = None) -> EpochStats:
        """One pass over the training set in a fresh random order, then a test evaluation.

        schedule: (epoch index, total steps) of a cosine decay of the learning rate to 0
        over the total steps; None: constant rate.
        """
        start = time.perf_counter()
        batch = self.options["batch"]
        threshold = self.options["refresh_threshold"] * min(s.tile.g_max for s in self.layers)
        for s in self.layers:
            s.touched[:] = False
        order = self.rng.permutation(len(data.y_train))
        losses, pulses, refreshes = [], 0, 0
        for k, first in enumerate(range(0, order.size, batch)):
            lr = self.options["lr"]
            if schedule is not None:
                step = schedule[0] * -(-order.size // batch) + k
                lr *= 0.5 * (1 + np.cos(np.pi * step / schedule[1]))
            idx = order[first : first + batch]
            losses.append(
                self.loss.forward(self.model.forward(data.x_train[idx]), data.y_train[idx])
            )
            self.model.backward(self.loss.backward())
            pulses += sum(s.update(lr) for s in self.layers)
            self.steps += 1
            every = self.options["refresh_every"]
            if every and self.steps % every == 0:
                it = self.options["refresh_iterations"]
                refreshes += sum(s.refresh(threshold, it) for s in self.layers)
            if self.bipolar and self.steps % self.options["sense_every"] == 0:
                for s in self.layers:
                    s.sense()
        elapsed = time.perf_counter() - start
        touched = sum(int(s.touched.sum()) for s in self.layers)
        stats = EpochStats(
            epoch=len(self.history) + 1,
            train_loss=float(np.mean(losses)),
            test_accuracy=self.model.accuracy(data.x_test, data.y_test),
            pulses=pulses,
            refreshes=refreshes,
            updated_fraction=touched / sum(s.chi.size for s in self.layers),
            epoch_s=elapsed,
        )
        self.history.append(stats)
        return stats

    # -- results ------------------------------------------------------------------------
    def final_weights(self) -> dict[str, np.ndarray]:
        """Weights read from the chip now and the digital biases: {"0.W", "0.b", "1.W", ...}."""
        out = {}
        for k, s in enumerate(self.layers):
            out[f"{k}.W"] = s.tile.read_weights().astype(np.float32)
            out[f"{k}.b"] = s.linear.b.copy()
        return out

    def describe(self) -> dict:
        """JSON-ready run description: options, epsilons and the characterisation."""
        return {
            **self.options,
            "backend": self.backend,
            "epsilon": self.epsilons,
            "epsilon_reset": [s.epsilon_reset for s in self.layers] if self.bipolar else None,
            "g_scale_S": [s.tile.g_scale for s in self.layers],
            "characterisation": self.characterisation,
        }


def _check(ok: bool, name: str, value, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{name} = {value!r} is not allowed; it must be {allowed}")
