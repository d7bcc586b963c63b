"""Speed and memory of the emulated PCM array, against baselines measured in the same run.

Prints one JSON object: {"sizes": [{rows, cols, read_all_ms, pulse_all_ms, mvm_ms,
normals_ms, gemv_ms, bytes_per_device, ratios...}, ...]}. Times are medians of
repeated calls after warm-up (and after numba compilation); compare the ratios,
not the absolute numbers, since shared machines are noisy.

Run: ``.venv/bin/python benchmarks/bench_emulator.py [--repeats N]``
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from xbarlab.chipdrivers import open_crossbar
from xbarlab.timing import median_ms

SIZES = ((256, 256), (1024, 1024))


def bench_size(rows: int, cols: int, repeats: int) -> dict:
    xbar = open_crossbar(f"emulator:pcm?rows={rows}&cols={cols}&seed=1")
    sp = xbar.info.set_pulse
    x = np.full(rows, 0.5 * xbar.info.limits.max_read_voltage, dtype=np.float32)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((cols, rows)).astype(np.float32)
    entry = {
        "rows": rows,
        "cols": cols,
        "read_all_ms": median_ms(xbar.read, repeats),
        "pulse_all_ms": median_ms(
            lambda: xbar.pulse(None, polarity=sp.polarity, amplitude=sp.amplitude, width=sp.width),
            repeats,
        ),
        "mvm_ms": median_ms(lambda: xbar.mvm(x), repeats),
        "normals_ms": median_ms(
            lambda: rng.standard_normal(rows * cols, dtype=np.float32), repeats
        ),
        "gemv_ms": median_ms(lambda: w @ x, repeats),
        "bytes_per_device": xbar.chip.state_bytes() / (rows * cols),
    }
    entry["read_over_normals"] = entry["read_all_ms"] / entry["normals_ms"]
    entry["pulse_over_normals"] = entry["pulse_all_ms"] / entry["normals_ms"]
    return entry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=21, help="timed calls per quantity")
    args = ap.parse_args()
    print(json.dumps({"sizes": [bench_size(r, c, args.repeats) for r, c in SIZES]}))


if __name__ == "__main__":
    main()
