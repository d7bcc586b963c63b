"""Calibration on emulated chips, end to end: one JSON object.

1. ``readout_error_reduction``: ``xbarlab calibrate readout`` on a 64 x 64 chip with the
   issue's injected mismatch (5 % gain std, 2 ADC LSB offset std per output): relative
   RMS MVM error before over after the correction (outputs averaged over 32 passes).
2. ``drift_error_ratio``: ``xbarlab calibrate drift`` on a 64 x 64 differential PCM chip,
   one day after programming, global compensation: compensated over uncompensated MVM
   error.
3. ``fit_rel_errors``: a hidden chip (non-default PCM laws, :data:`HIDDEN`) is
   characterised (the ``calibrate characterize`` campaign, run into a temporary store)
   and fitted; relative error of the recovered nu mean at 2.5, 8 and 20 uS, of Q_s and
   of the SET step against the hidden values.
4. ``transfer_accuracy_gap``: the point of fitting. For the fitted emulator and for the
   hidden chip's true model, the hardware-aware training noise that matches the chip
   one day after programming is measured on an instance of that model
   (:func:`~xbarlab.training.chip_noise.measure_weight_noise`); a 64-64-10 digits MLP is
   trained with each noise (same seed), deployed on instances of the hidden chip
   (``--chips``, seeded apart) and tested one day after programming with global drift
   compensation. The gap is the accuracy of the true-model network minus that of the
   fitted-emulator one (means over seeds and chips), ``transfer_gap_stderr`` its
   standard error over the seeds; ``transfer`` gives the figures per seed. Single seeds
   differ by several points either way: networks trained with noise 0.098 and 0.102
   from one seed are different networks, and a 1-day deployment on this strongly
   drifting chip is sensitive to which devices carry which weights.

Run: ``.venv/bin/python benchmarks/bench_calibration.py [--seeds 0,1,...,9] [--chips 3]
[--rows 64]``.
The JSON goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from xbarlab.calibration.drift import run_drift
from xbarlab.calibration.fit import CHARACTERIZE, fit_run
from xbarlab.calibration.readout import run_readout
from xbarlab.chipdrivers.factory import open_crossbar
from xbarlab.emulator.pcm_params import PCMParams
from xbarlab.procedures.campaign import Campaign
from xbarlab.procedures.runner import Runner
from xbarlab.store import RunStore
from xbarlab.training.chip_noise import measure_weight_noise
from xbarlab.training.data import load_digits
from xbarlab.training.hwa import deploy, evaluate_over_time, train_hwa
from xbarlab.training.layers import MLP

#: the hidden chip: faster, more variable drift, more read noise, a smaller SET step
HIDDEN = PCMParams(
    set_step=0.06,
    nu_slope=-0.02,
    nu_offset=0.03,
    nu_min=0.03,
    nu_max=0.12,
    q_s_coeff=0.012,
    stuck_set_fraction=0.01,
    stuck_reset_fraction=0.02,
)
DAY = 86400.0
NU_LEVELS_S = (2.5e-6, 8e-6, 20e-6)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fit_hidden(tmp: Path, rows: int) -> tuple[dict, Path, Path]:
    """Characterise and fit the hidden chip: (relative errors, hidden preset, fitted preset)."""
    hidden, fitted = tmp / "hidden.json", tmp / "fitted.json"
    HIDDEN.save(hidden)
    spec = f"emulator:pcm?rows={rows}&cols={rows}&seed=5&preset={hidden}"
    with RunStore(tmp / "runs.sqlite") as store:
        with open_crossbar(spec) as xbar:
            out = Campaign(CHARACTERIZE).run(Runner(store), xbar, backend=spec)
        p = fit_run(store, out.run_id).params
    p.save(fitted)
    rel = {f"nu_mean_{g * 1e6:g}uS": p.nu_mean(g) / HIDDEN.nu_mean(g) - 1 for g in NU_LEVELS_S}
    rel["q_s_coeff"] = p.q_s_coeff / HIDDEN.q_s_coeff - 1
    rel["set_step"] = p.set_step / HIDDEN.set_step - 1
    return rel, hidden, fitted


def transfer(seed: int, hidden: Path, fitted: Path, chips: int) -> dict:
    """Accuracy on hidden chips of networks trained for the fitted and the true model.

    Each network is deployed on ``chips`` instances of the hidden model and its accuracy
    averaged: one chip's programming draw moves the 1-day accuracy by several points.
    """
    data = load_digits(seed)
    out = {"seed": seed}
    for name, preset in (("true", hidden), ("fitted", fitted)):
        probe = f"emulator:pcm?differential=1&seed={2000 + seed}&preset={preset}"
        noise = measure_weight_noise(probe, t=DAY, seed=seed)
        model = MLP((64, 64, 10), np.random.default_rng(seed))
        train_hwa(model, data, noise=noise, seed=seed)
        accs = []
        for k in range(chips):
            chip = f"emulator:pcm?differential=1&seed={1000 + 100 * seed + k}&preset={hidden}"
            with deploy(model, chip, seed=seed) as deployed:
                accs.append(evaluate_over_time(deployed, data, (DAY,))[DAY]["gdc"])
        acc = float(np.mean(accs))
        out[f"{name}_noise"], out[f"{name}_accuracy"] = noise, acc
        log(f"  seed {seed}, {name} model: HWA noise {noise:.4f}, hidden-chip accuracy {acc:.4f}")
    out["gap"] = out["true_accuracy"] - out["fitted_accuracy"]
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--seeds", default=",".join(map(str, range(10))), help="comma-separated training seeds"
    )
    ap.add_argument("--chips", type=int, default=3, help="hidden-chip instances per network")
    ap.add_argument("--rows", type=int, default=64, help="side of the characterised chip")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    log("readout calibration ...")
    mismatch = "emulator:pcm?rows=64&cols=64&seed=1&gain_std=0.05&offset_std=2"
    readout = run_readout(mismatch, seed=1)
    log("drift compensation ...")
    drift = run_drift("emulator:pcm?rows=64&cols=64&seed=1&differential=1", after=DAY)
    with tempfile.TemporaryDirectory() as tmp:
        log("characterising and fitting the hidden chip ...")
        rel, hidden, fitted = fit_hidden(Path(tmp), args.rows)
        log("training for the fitted and the true model, deploying on the hidden chip ...")
        per_seed = [transfer(s, hidden, fitted, args.chips) for s in seeds]
    gaps = [r["gap"] for r in per_seed]
    result = {
        "readout_error_reduction": readout["reduction"],
        "drift_error_ratio": drift["ratio"],
        "fit_rel_errors": rel,
        "transfer_accuracy_gap": float(np.mean(gaps)),
        "transfer_gap_stderr": float(np.std(gaps, ddof=1) / np.sqrt(len(gaps)))
        if len(gaps) > 1
        else None,
        "readout": {k: readout[k] for k in ("error_before", "error_after")},
        "drift": {k: drift[k] for k in ("error_before", "error_after", "factor")},
        "transfer": per_seed,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
