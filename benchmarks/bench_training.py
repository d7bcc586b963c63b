"""Training with the chip in the loop on the digits set: one JSON object over seeds.

For each seed (default 0, 1, 2) a 64-H-10 MLP (H = 64) on the digits split of that
seed, through :func:`xbarlab.training.runs.run_training`, each mode at its default
epochs:

- ``fp``: software SGD with momentum and cosine decay.
- ``mixed-precision``: forward and backward MVMs on the emulated PCM
  ``emulator:pcm?differential=1&seed=<seed>`` (default peripheral model: 7-bit DAC,
  9-bit ADC, output noise; differential column pairs), updates as the chip's SET
  pulses. ``mp_epoch_s`` is the mean wall time in s of one training epoch (the
  training pass, without the test evaluation) on the in-process emulator.
- ``hwa``: noise-injection training, programmed onto the same kind of chip (seed
  ``<seed>``), test accuracy 25 s and 1 day after programming, with global drift
  compensation (``gdc``) and without (``raw``).

Keys: fp_accuracy, mp_accuracy, hwa_accuracy_25s, hwa_accuracy_1d_gdc,
hwa_accuracy_1d_raw, mp_epoch_s (means over the seeds), mp_pulses (mean SET pulses per
run), and ``per_seed`` (the same figures per seed). The JSON goes to stdout, progress to
stderr. Run: ``.venv/bin/python benchmarks/bench_training.py [--seeds 0,1,2]
[--hidden 64] [--epochs N]`` (``--epochs`` overrides every mode's default: for quick
checks only).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from xbarlab.training.runs import run_training, time_key

#: the chip every analog run uses; {seed} becomes the run's seed
SPEC = "emulator:pcm?differential=1&seed={seed}"
DAY, FIRST = time_key(86400.0), time_key(25.0)


def one_seed(seed: int, hidden: int, epochs: int | None) -> dict:
    """The benchmark's figures for one seed."""
    spec = SPEC.format(seed=seed)
    opts = {"epochs": epochs, "hidden": hidden, "seed": seed}
    fp = run_training("fp", spec, **opts)
    mp = run_training("mixed-precision", spec, **opts)
    hwa = run_training("hwa", spec, **opts)
    at = hwa["accuracy_vs_time"]
    return {
        "seed": seed,
        "fp_accuracy": fp["test_accuracy"],
        "mp_accuracy": mp["test_accuracy"],
        "mp_epoch_s": mp["epoch_s"],
        "mp_pulses": mp["pulses"],
        "mp_refreshes": mp["refreshes"],
        "hwa_accuracy_25s": at[FIRST]["gdc"],
        "hwa_accuracy_25s_raw": at[FIRST]["raw"],
        "hwa_accuracy_1d_gdc": at[DAY]["gdc"],
        "hwa_accuracy_1d_raw": at[DAY]["raw"],
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    ap.add_argument("--hidden", type=int, default=64, help="hidden layer width")
    ap.add_argument("--epochs", type=int, default=None, help="override every mode's epochs")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    per_seed = []
    for seed in seeds:
        per_seed.append(one_seed(seed, args.hidden, args.epochs))
        print(f"seed {seed}: {json.dumps(per_seed[-1])}", file=sys.stderr, flush=True)
    keys = [k for k in per_seed[0] if k != "seed"]
    result = {k: float(np.mean([r[k] for r in per_seed])) for k in keys}
    result.update(seeds=seeds, hidden=args.hidden, spec=SPEC, per_seed=per_seed)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
