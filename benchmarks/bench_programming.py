"""Iterative PCM programming against the published programming spread: one JSON object.

What it does, on ``emulator:pcm?rows=R&cols=C&seed=S`` (default 256 x 256, seed 1):

1. Targets drawn uniformly over [0.1, 0.9] x g_max (one per device, seeded), programmed
   with :func:`~xbarlab.chipdrivers.programming.program_iterative` at its default
   settings. Reports ``converged_fraction`` (of the devices not flagged unresponsive,
   i.e. not stuck), ``mean_iterations`` (verify iterations a converged device needed)
   and ``wall_s`` (wall-clock seconds of the programming call).
2. The chip's clock sleeps 25 s after the programming ended, then every device is read
   once. The targets are binned in 5 equal-width bins over [0.1, 0.9] x g_max; for
   each bin ``levels`` gives ``g_target_S`` (the bin centre), ``sigma_S`` (std of
   G_read - G_target over the bin's usable devices), ``sigma_ref_S``, the published
   programming spread of PCM measured on a million devices at the bin centre:
   sigma(G) = (0.26348 + 1.9650 g - 1.1731 g^2) uS with g = G / 25 uS (Nandakumar et
   al., ICECS 2019; Joshi et al., Nat. Commun. 11, 2473 (2020); aihwkit's
   ``PCMLikeNoiseModel``), their ``ratio`` and the bin's ``devices``. Binning uniform
   targets rather than programming 5 discrete levels compares the same law over the
   whole range; the std is taken of the error, so the spread of targets inside a bin
   does not enter.
3. ``drift_campaign_wall_s``: wall-clock seconds of the ``drift`` procedure on a fresh
   chip of the same shape, run by the Runner into a temporary run store: program (its
   default pattern and algorithm), 30 reads log-spaced over a virtual day (86400 s),
   per-device nu fit, every step stored.

The JSON goes to stdout, progress to stderr. Run:
``.venv/bin/python benchmarks/bench_programming.py [--rows R] [--cols C] [--seed S]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from xbarlab.chipdrivers import open_crossbar
from xbarlab.chipdrivers.programming import program_iterative
from xbarlab.procedures import registry
from xbarlab.procedures.runner import Runner
from xbarlab.store import RunStore

#: published PCM programming spread: sigma = poly(G / G_REF) in uS (coefficients high to low)
SIGMA_REF_POLY_US = (-1.1731, 1.9650, 0.26348)
G_REF = 25e-6
N_LEVELS = 5
T_READ_AFTER = 25.0
DRIFT_READS = 30
DRIFT_SPAN = 86400.0


def sigma_ref(g: np.ndarray | float) -> np.ndarray | float:
    """Published programming spread in S at conductance g in S."""
    return np.polyval(SIGMA_REF_POLY_US, np.asarray(g) / G_REF) * 1e-6


def spec_for(rows: int, cols: int, seed: int) -> str:
    return f"emulator:pcm?rows={rows}&cols={cols}&seed={seed}"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bench_programming(rows: int = 256, cols: int = 256, seed: int = 1) -> dict:
    """Program, wait 25 s, read, bin; then time the drift campaign. Returns the JSON dict."""
    _warm_up()
    xbar = open_crossbar(spec_for(rows, cols, seed))
    info = xbar.info
    rng = np.random.default_rng(seed)
    targets = (rng.uniform(0.1, 0.9, info.shape) * info.g_max).astype(np.float32)
    _log(f"programming {rows} x {cols} devices (iterative) ...")
    t0 = time.perf_counter()
    res = program_iterative(xbar, targets)
    wall = time.perf_counter() - t0
    _log(f"  {wall:.2f} s, {res.iterations} iterations, converged {res.converged_fraction:.4f}")
    xbar.clock.sleep(T_READ_AFTER)
    g = xbar.read()
    levels = level_table(targets, g, ~res.unresponsive, info.g_max)
    xbar.close()
    drift_wall = time_drift_campaign(rows, cols, seed)
    return {
        "backend": spec_for(rows, cols, seed),
        "converged_fraction": res.converged_fraction,
        "mean_iterations": res.mean_iterations,
        "wall_s": wall,
        "iterations": res.iterations,
        "total_pulses": res.total_pulses,
        "unresponsive": int(res.unresponsive.sum()),
        "tolerance_S": res.tolerance,
        "read_after_s": T_READ_AFTER,
        "levels": levels,
        "drift_campaign_wall_s": drift_wall,
    }


def level_table(targets, g_read, usable, g_max: float) -> list[dict]:
    """Per equal-width target bin over [0.1, 0.9] g_max: centre, spread, published spread."""
    edges = np.linspace(0.1, 0.9, N_LEVELS + 1) * g_max
    which = np.clip(np.searchsorted(edges, targets, side="right") - 1, 0, N_LEVELS - 1)
    err = (g_read - targets).astype(np.float64)
    out = []
    for k in range(N_LEVELS):
        m = usable & (which == k)
        centre = 0.5 * (edges[k] + edges[k + 1])
        sigma = float(err[m].std()) if m.any() else float("nan")
        ref = float(sigma_ref(centre))
        out.append(
            {
                "g_target_S": float(centre),
                "sigma_S": sigma,
                "sigma_ref_S": ref,
                "ratio": sigma / ref,
                "devices": int(m.sum()),
            }
        )
    return out


def time_drift_campaign(rows: int, cols: int, seed: int) -> float:
    """Wall seconds of the drift procedure (program, 30 reads over a day, fit) run by the
    Runner into a temporary run store, on a fresh chip, as ``xbarlab run drift`` runs it:
    the emulated chip's state is stored with every step, so a resume continues on it."""
    spec = spec_for(rows, cols, seed)
    proc = registry.get("drift").from_values({"n_reads": DRIFT_READS, "duration": DRIFT_SPAN})
    xbar = open_crossbar(spec)
    _log(f"drift campaign, {DRIFT_READS} reads over {DRIFT_SPAN:.0f} s ...")
    try:
        with tempfile.TemporaryDirectory() as tmp, RunStore(Path(tmp) / "b.sqlite") as store:
            t0 = time.perf_counter()
            runner = Runner(store)
            run_id = runner.create_run(proc, xbar, backend=spec)
            outcome = runner.run(proc, xbar, backend=spec, run_id=run_id, state_key=run_id)
            wall = time.perf_counter() - t0
    finally:
        xbar.close()
    if outcome.status != "completed":
        raise RuntimeError(f"drift run ended {outcome.status}: {outcome.summary}")
    _log(f"  {wall:.2f} s")
    return wall


def _warm_up() -> None:
    """Load the compiled kernels once so the timings measure the algorithms."""
    xbar = open_crossbar(spec_for(8, 8, 0))
    program_iterative(xbar, np.full(xbar.info.shape, 0.5 * xbar.info.g_max, np.float32))
    xbar.close()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=256, help="array rows (default 256)")
    ap.add_argument("--cols", type=int, default=256, help="array columns (default 256)")
    ap.add_argument("--seed", type=int, default=1, help="chip and target seed (default 1)")
    args = ap.parse_args(argv)
    for name in ("rows", "cols"):
        if getattr(args, name) < 2:
            ap.error(f"--{name} must be >= 2, got {getattr(args, name)}")
    if args.seed < 0:
        ap.error(f"--seed must be >= 0, got {args.seed}")
    result = bench_programming(args.rows, args.cols, args.seed)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
