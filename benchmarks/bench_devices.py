"""Device technologies beyond PCM on the digits task and the IMCE engine: one JSON object.

For each seed (default 0, 1, 2), a 64-64-10 MLP on the digits split of that seed,
through :func:`xbarlab.training.runs.run_training` at each mode's default epochs:

- ``fp``: software SGD (the reference).
- ``rram_mp``: mixed-precision training on ``emulator:rram`` (differential pairs, both
  pulse polarities: SET on one device or gradual RESET on the other, no refresh).
- ``ternary``: quantisation-aware training with 3-level weights and 7-level activations,
  deployed on emulated PCM with the ternary tile mapping; accuracy on the chip 25 s
  after programming, with global drift compensation.

Then :func:`xbarlab.chipdrivers.imce.imce_benchmark`: the IMCE bit-wise convolution on
emulated SOT-MRAM. ``imce_exact``: with error-free sensing the convolution equals
numpy's; ``imce_error_rate``: wrongly sensed AND bits on the default chip (5 % RA and
10 % TMR spread); ``imce_sense_margin_sweep``: logic error rates and output error versus
sense margin.

Keys: fp_accuracy, rram_mp_accuracy, ternary_accuracy (means over seeds), imce_exact,
imce_error_rate, imce_output_rel_rms, imce_sense_margin_sweep, per_seed. The JSON goes to
stdout, progress to stderr. Run: ``.venv/bin/python benchmarks/bench_devices.py
[--seeds 0,1,2] [--epochs N]`` (``--epochs`` overrides every mode's default: quick
checks only).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from xbarlab.chipdrivers.imce import imce_benchmark
from xbarlab.training.runs import run_training

RRAM_SPEC = "emulator:rram?differential=1&pristine=0&seed={seed}"
PCM_SPEC = "emulator:pcm?differential=1&seed={seed}"
#: benchmark key -> (training mode, backend spec template)
RUNS = {
    "fp_accuracy": ("fp", PCM_SPEC),
    "rram_mp_accuracy": ("mixed-precision", RRAM_SPEC),
    "ternary_accuracy": ("ternary", PCM_SPEC),
}


def one_seed(seed: int, epochs: int | None) -> dict:
    """Accuracy of every run for one seed."""
    out = {"seed": seed}
    for key, (mode, spec) in RUNS.items():
        res = run_training(mode, spec.format(seed=seed), epochs=epochs, hidden=64, seed=seed)
        out[key] = res["test_accuracy"]
        print(f"seed {seed} {key}: {out[key]:.4f}", file=sys.stderr, flush=True)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    ap.add_argument("--epochs", type=int, default=None, help="override every mode's epochs")
    args = ap.parse_args(argv)
    per_seed = [one_seed(int(s), args.epochs) for s in args.seeds.split(",")]
    imce = imce_benchmark(seed=0)
    result = {key: float(np.mean([r[key] for r in per_seed])) for key in RUNS}
    result |= {
        "imce_exact": bool(imce["imce_exact"]),
        "imce_error_rate": float(imce["imce_error_rate"]),
        "imce_output_rel_rms": float(imce["imce_output_rel_rms"]),
        "imce_sense_margin_sweep": imce["sense_margin_sweep"],
        "per_seed": per_seed,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
