"""One training run by mode (fp, mixed-precision, hwa, ternary) on the digits set, stored as a run.

The single entry point the ``xbarlab train`` command, the training benchmark and the
GUI launcher share: :func:`run_training` builds the 64-H-10 MLP, trains it in the
chosen mode, reports each epoch to a callback as it ends, and, given a run store,
records every epoch (durable as soon as it ends) and the final weights as arrays.
A caller that runs training on behalf of a user (the GUI) learns the run id from
``on_start`` and stops a run between epochs by raising :class:`TrainingStopped` from
``on_epoch``: the run is then stored "aborted" with the epochs done.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xbarlab.errors import ConfigError, XbarlabError
from xbarlab.store import RunStore
from xbarlab.training.data import load_digits
from xbarlab.training.fp import train_fp
from xbarlab.training.hwa import DEFAULT_TIMES, deploy, evaluate_over_time, train_hwa
from xbarlab.training.layers import MLP
from xbarlab.training.mixed_precision import MixedPrecisionTrainer
from xbarlab.training.ternary import (
    bipolar,
    deploy_ternary,
    ternary_mlp,
    ternary_weights,
    train_ternary,
)

MODES = ("fp", "mixed-precision", "hwa", "ternary")
#: epochs per mode when none are given: software training converges in about 40 epochs
#: with its cosine schedule; mixed precision reaches its plateau in about 20
DEFAULT_EPOCHS = {"fp": 40, "mixed-precision": 20, "hwa": 40, "ternary": 40}
#: the PCM a user would train on: differential column pairs, as on HERMES (seed 004)
DEFAULT_BACKEND = "emulator:pcm?differential=1&seed=1"
#: the digits set: 8 x 8 pixels in, 10 classes out
N_INPUTS, N_CLASSES = 64, 10


class TrainingStopped(XbarlabError):
    """Raised by an ``on_epoch`` callback to end training after that epoch.

    :func:`run_training` marks the run "aborted" (its epochs so far stay recorded) and
    re-raises it.
    """


def epoch_step_id(epoch: int) -> str:
    """The record name of 1-based ``epoch`` in a training run (``epoch-0001``)."""
    return f"epoch-{epoch:04d}"


def run_training(
    mode: str,
    backend: str = DEFAULT_BACKEND,
    *,
    epochs: int | None = None,
    hidden: int = 64,
    seed: int = 0,
    store: RunStore | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    on_start: Callable[[str | None], None] | None = None,
) -> dict:
    """Train a 64-``hidden``-10 MLP on the digits split ``seed`` in ``mode``.

    Parameters
    ----------
    mode : {"fp", "mixed-precision", "hwa", "ternary"}
        fp: software only (the backend is not opened). mixed-precision: forward and
        backward products on the chip, updates as SET pulses. hwa: software training
        with weight noise, then programmed onto the chip and evaluated over time.
        ternary: quantisation-aware training (3-level weights, 7-level activations and
        inputs in [-1, 1], weight noise; :mod:`xbarlab.training.ternary`), then
        programmed onto ternary tiles (one device pair per weight, 7-level input
        quantisation) and evaluated over time like hwa.
    backend : str
        Chip spec of the analog layers.
    epochs : int, optional
        Training epochs, >= 1 (default :data:`DEFAULT_EPOCHS` of the mode).
    hidden : int
        Hidden layer width, >= 1.
    seed : int
        Seeds the data split, the initial weights and the sample order.
    store : RunStore, optional
        Where the run is recorded (procedure ``train-<mode>``).
    on_epoch : callable, optional
        Called with each epoch's statistics (dict) as it ends, after it is recorded;
        raising :class:`TrainingStopped` ends the run "aborted".
    on_start : callable, optional
        Called once with the run id (None without a store) before training starts.

    Returns
    -------
    dict
        JSON-ready: mode, backend, seed, epochs, test_accuracy, history (per-epoch
        dicts), run_id (or None); mixed-precision adds pulses, refreshes and the
        characterisation; hwa adds software_accuracy and accuracy_vs_time (keyed by
        seconds after programming, see :func:`time_key`, each with gdc and raw);
        ternary adds the same (software_accuracy with the ternarised weights), the
        ternary magnitude a of each layer (weight_levels) and the mean programming
        iterations per device (mean_iterations).
    """
    if mode not in MODES:
        raise ConfigError(f"mode = {mode!r} is not one of {', '.join(MODES)}")
    epochs = DEFAULT_EPOCHS[mode] if epochs is None else epochs
    if int(epochs) != epochs or epochs < 1:
        raise ConfigError(f"epochs = {epochs!r} must be an integer >= 1")
    if int(hidden) != hidden or hidden < 1:
        raise ConfigError(f"hidden = {hidden!r} must be an integer >= 1")
    sizes = (N_INPUTS, int(hidden), N_CLASSES)
    params = {"mode": mode, "epochs": int(epochs), "sizes": list(sizes), "seed": int(seed)}
    run = _Recorder(store, mode, params, backend, seed, on_epoch)
    try:
        if on_start is not None:
            on_start(run.run_id)
        result = _TRAINERS[mode](sizes, backend, int(epochs), int(seed), run)
    except BaseException as exc:
        run.fail(exc)
        raise
    result = {"mode": mode, "backend": backend, "seed": int(seed), "epochs": int(epochs), **result}
    result["history"] = run.history
    result["run_id"] = run.finish(result)
    return result


def _fp(sizes, backend, epochs, seed, run) -> dict:
    model = MLP(sizes, np.random.default_rng(seed))
    train_fp(model, load_digits(seed), epochs=epochs, seed=seed, on_epoch=run.epoch)
    run.arrays = _weights(model)
    return {"test_accuracy": run.history[-1]["test_accuracy"]}


def _mixed_precision(sizes, backend, epochs, seed, run) -> dict:
    with MixedPrecisionTrainer(sizes, backend, seed=seed) as trainer:
        run.describe(trainer.describe())
        history = trainer.train(load_digits(seed), epochs, lambda s: run.epoch(s.to_dict()))
        run.arrays = trainer.final_weights()
        run.arrays["pulses_per_epoch"] = np.array([s.pulses for s in history], dtype=np.int64)
        return {
            "test_accuracy": history[-1].test_accuracy,
            "pulses": int(sum(s.pulses for s in history)),
            "refreshes": int(sum(s.refreshes for s in history)),
            "epoch_s": float(np.mean([s.epoch_s for s in history])),
            "characterisation": trainer.characterisation,
            "epsilon": trainer.epsilons,
        }


def _hwa(sizes, backend, epochs, seed, run) -> dict:
    data = load_digits(seed)
    model = MLP(sizes, np.random.default_rng(seed))
    train_hwa(model, data, epochs=epochs, seed=seed, on_epoch=run.epoch)
    run.arrays = _weights(model)
    with deploy(model, backend, seed=seed) as deployed:
        return _deployed_accuracy(deployed, data, run)


def _ternary(sizes, backend, epochs, seed, run) -> dict:
    data = bipolar(load_digits(seed))
    model = ternary_mlp(sizes, np.random.default_rng(seed))
    train_ternary(model, data, epochs=epochs, seed=seed, on_epoch=run.epoch)
    weights = ternary_weights(model)
    run.arrays = _weights(model)
    for k, w in enumerate(weights):
        run.arrays[f"{k}.W"] = w  # what is programmed: {-a, 0, +a}
    with deploy_ternary(model, backend, seed=seed) as deployed:
        # verify iterations each converged device needed, over every tile
        iterations = np.concatenate(
            [
                p.result.done_at[p.result.converged].ravel()
                for tile in deployed.tiles
                for p in tile.report.parts
            ]
        )
        accuracy = _deployed_accuracy(deployed, data, run)
    return {
        **accuracy,
        "weight_levels": [float(np.max(np.abs(w))) for w in weights],
        "mean_iterations": float(np.mean(iterations)),
    }


def _deployed_accuracy(deployed, data, run) -> dict:
    """Test accuracy of a deployed model over DEFAULT_TIMES after programming (drift
    compensated "gdc" and "raw" per time), beside the software accuracy of the run."""
    over_time = evaluate_over_time(deployed, data, DEFAULT_TIMES)
    vs_time = {time_key(t): {"gdc": v["gdc"], "raw": v["raw"]} for t, v in over_time.items()}
    return {
        "test_accuracy": vs_time[time_key(DEFAULT_TIMES[0])]["gdc"],
        "software_accuracy": run.history[-1]["test_accuracy"],
        "accuracy_vs_time": vs_time,
    }


def time_key(t: float) -> str:
    """The JSON key of a time after programming: whole seconds as "86400", else repr."""
    return str(int(t)) if float(t).is_integer() else repr(float(t))


_TRAINERS = {"fp": _fp, "mixed-precision": _mixed_precision, "hwa": _hwa, "ternary": _ternary}


def _weights(model: MLP) -> dict[str, np.ndarray]:
    out = {}
    for k, layer in enumerate(model.weight_layers):
        out[f"{k}.W"], out[f"{k}.b"] = layer.weights(), layer.b
    return out


class _Recorder:
    """Collects epochs, forwards them to the callback and records them in the store."""

    def __init__(self, store, mode, params, backend, seed, on_epoch):
        self.store, self.on_epoch = store, on_epoch
        self.history: list[dict] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.run_id = None
        if store is not None:
            self.run_id = store.create_run(f"train-{mode}", params, backend=backend, seed=seed)

    def describe(self, description: dict) -> None:
        if self.store is not None:
            self.store.add_record(self.run_id, "setup", description)

    def epoch(self, stats: dict) -> None:
        stats = {k: (float(v) if isinstance(v, np.floating) else v) for k, v in stats.items()}
        self.history.append(stats)
        if self.store is not None:
            self.store.add_record(self.run_id, epoch_step_id(len(self.history)), stats)
        if self.on_epoch is not None:
            self.on_epoch(stats)

    def finish(self, result: dict) -> str | None:
        if self.store is None:
            return None
        curves = {
            f"curve.{key}": np.array([h[key] for h in self.history], dtype=np.float64)
            for key in ("train_loss", "test_accuracy")
        }
        summary = {k: v for k, v in result.items() if k not in ("history", "characterisation")}
        self.store.add_record(self.run_id, "final", {**self.arrays, **curves, "summary": summary})
        self.store.set_status(self.run_id, "completed", summary=summary)
        return self.run_id

    def fail(self, exc: BaseException) -> None:
        if self.store is not None:
            stopped = isinstance(exc, KeyboardInterrupt | TrainingStopped)
            status = "aborted" if stopped else "failed"
            error = str(exc) or type(exc).__name__
            summary = {"epochs_done": len(self.history)}
            self.store.set_status(self.run_id, status, summary=summary, error=error)
