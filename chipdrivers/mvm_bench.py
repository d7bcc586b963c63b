"""Speed of the analog MVM through tiles, against numpy's float32 product of the same shape.

Three modes, all through :class:`~xbarlab.chipdrivers.tiles.AnalogTile` on emulated
differential chips: ``ideal`` (every non-ideality off), ``io`` (7-bit DAC, 9-bit
ADC, output noise, input scaling and bound management: the usual default of
reference simulators) and ``device`` (``io`` plus per-device read noise and
column gain/offset mismatch). The workload is a typical layer: weights drawn
N(0, 1/n) (He-style initialisation, mapped by the tile with max |W| at the top of the
window) and inputs uniform in [-1, 1]. Bound management re-runs the vectors whose
outputs saturate the ADC; ``retried`` counts those re-runs per input vector. Each entry reports the
median time of repeated
forward passes after warm-up, the numpy baseline ``X @ W.T`` measured in the same
run, and their ratio. Machines are noisy: compare ratios, not times.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np

from xbarlab.chipdrivers.tiles import AnalogTile

#: spec parameters of each mode (square differential chips of n x 2n devices)
MODES = {
    "ideal": "periphery=ideal&device_noise=0",
    "io": "periphery=default&device_noise=0",
    "device": "periphery=default&gain_std=0.02&offset_std=0.5",
}
SIZES = (256, 512, 1024)
BATCHES = (1, 64, 1024)
#: a deployed chip: the MVM runs an hour after programming
_SETTLE_S = 3600.0


def interleaved_ms(
    calls: dict[str, Callable[[], object]], repeats: int, block: int = 4
) -> dict[str, float]:
    """Median ms of each call over ``repeats`` timed calls.

    Calls are timed in rounds; a round runs every call ``block`` times in a row and
    keeps the last ``block - 1`` times of each. A kept call follows itself, as in a loop
    of its own: the first of a block follows another call, whose idle BLAS threads and
    cache contents it would inherit (a product that follows a long pass waits for a
    sleeping thread to wake, one that follows another product does not). Rounds still
    let slow phases of a shared machine hit every call alike, so ratios stay fair.
    """
    for fn in calls.values():
        fn()
        fn()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(-(-repeats // (block - 1))):
        for name, fn in calls.items():
            fn()
            for _ in range(block - 1):
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
    return {name: 1e3 * float(np.median(t)) for name, t in samples.items()}


def _repeats(n: int, batch: int) -> int:
    """Enough calls for a stable median, fewer for the big products: a single product
    varies by 10-20 % from call to call on a shared 2-core machine."""
    return int(np.clip(2e9 / (n * n * batch), 15, 300))


def _tile(n: int, mode: str, w: np.ndarray) -> AnalogTile:
    spec = f"emulator:pcm?rows={n}&cols={2 * n}&differential=1&seed=1&{MODES[mode]}"
    # speed does not depend on programming accuracy: a few verify rounds suffice
    tile = AnalogTile.from_spec(w, spec, max_iterations=3)
    for xbar in tile.arrays:
        xbar.clock.sleep(_SETTLE_S)
    return tile


def compile_seconds() -> float:
    """Wall time of the first forward pass of a tiny tile: numba compilation or cache load."""
    t0 = time.perf_counter()
    w = np.random.default_rng(0).uniform(-1, 1, (8, 8))
    with _tile(8, "device", w) as tile:
        tile.forward(np.ones((70, 8)))  # batch large enough to reach the parallel kernels
        tile.forward(np.ones(8))
    return time.perf_counter() - t0


def bench(
    sizes: Iterable[int] = SIZES,
    batches: Iterable[int] = BATCHES,
    modes: Iterable[str] = tuple(MODES),
    progress: Callable[[str], None] | None = None,
) -> dict:
    """One JSON-ready dict: ``compile_s`` and ``results`` (one entry per size, batch, mode)."""
    compile_s = compile_seconds()
    rng = np.random.default_rng(1)
    results = []
    for n in sizes:
        w = rng.standard_normal((n, n)) / np.sqrt(n)
        w32 = w.astype(np.float32)
        tiles = {mode: _tile(n, mode, w) for mode in modes}
        try:
            for batch in batches:
                x = rng.uniform(-1, 1, (batch, n)).astype(np.float32)
                calls = {"baseline": lambda x=x, w32=w32: x @ w32.T}
                calls |= {mode: (lambda x=x, t=tile: t.forward(x)) for mode, tile in tiles.items()}
                times = interleaved_ms(calls, _repeats(n, batch))
                baseline = times["baseline"]
                for mode, tile in tiles.items():
                    ms = times[mode]
                    tile.forward(x)
                    results.append(
                        {
                            "rows": n,
                            "cols": n,
                            "batch": batch,
                            "mode": mode,
                            "ms": ms,
                            "baseline_ms": baseline,
                            "ratio": ms / baseline,
                            "retried": tile.last_retries / batch,
                        }
                    )
                    if progress is not None:
                        progress(f"{n}x{n} batch {batch} {mode}: {ms / baseline:.2f}x")
        finally:
            for tile in tiles.values():
                tile.close()
    return {"compile_s": compile_s, "results": results}
