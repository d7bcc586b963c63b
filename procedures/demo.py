"""The demo job: program a pattern, watch it drift for a virtual day, fit nu.

It exercises the whole spine on any backend: closed-loop write-verify through
the ``Crossbar`` interface, reads at log-spaced times on the backend's clock
(virtual on the emulator, so a day takes seconds), and a per-device fit of the
drift exponent nu. Progress goes out as events; the result is a plain dict ready
for JSON.
"""

from __future__ import annotations

import time

import numpy as np

from xbarlab.chipdrivers.crossbar import Crossbar
from xbarlab.chipdrivers.patterns import levels
from xbarlab.chipdrivers.programming import write_verify
from xbarlab.events import EventBus, Progress, Status
from xbarlab.fitting import fit_drift_exponent


def run_demo(
    xbar: Crossbar,
    *,
    n_levels: int = 8,
    n_reads: int = 20,
    t_first: float = 30.0,
    t_last: float = 86400.0,
    max_iterations: int = 100,
    bus: EventBus | None = None,
) -> dict:
    """Program ``n_levels`` levels, read ``n_reads`` times from t_first to t_last (s), fit nu.

    Returns a dict with keys backend, rows, cols, converged_fraction, mean_abs_error_S,
    nu_mean, nu_std, wall_s and details (iterations, pulses, per-level table).
    """
    bus = bus or EventBus()
    wall0 = time.perf_counter()
    info = xbar.info
    n = info.rows * info.cols
    targets = levels(info.shape, info.g_max, n_levels=n_levels)

    bus.emit(Status("demo", "running", f"programming {n} devices to {n_levels} levels"))
    prog = write_verify(
        xbar,
        targets,
        max_iterations=max_iterations,
        on_iteration=lambda s: bus.emit(
            Progress("demo", s.converged + s.unresponsive, n, "programming")
        ),
    )
    usable = ~prog.unresponsive
    g_after = xbar.read()
    t_programmed = xbar.clock.now()

    times = np.geomspace(t_first, t_last, n_reads)
    reads = np.empty((n_reads, *info.shape), dtype=np.float32)
    for k, t in enumerate(times):
        xbar.clock.sleep(max(t_programmed + t - xbar.clock.now(), 0.0))
        reads[k] = xbar.read()
        bus.emit(Progress("demo", k + 1, n_reads, "drift reads"))
    nu, _ = fit_drift_exponent(times, reads)

    good = usable & prog.converged
    result = {
        "backend": info.backend,
        "rows": info.rows,
        "cols": info.cols,
        "converged_fraction": prog.converged_fraction,
        "mean_abs_error_S": float(np.mean(np.abs(g_after - targets)[usable])),
        "nu_mean": float(nu[good].mean()),
        "nu_std": float(nu[good].std()),
        "iterations": prog.iterations,
        "total_pulses": prog.total_pulses,
        "unresponsive": int(prog.unresponsive.sum()),
        "tolerance_S": prog.tolerance,
        "read_times_s": times.tolist(),
        "virtual_time_s": xbar.clock.now(),
        "levels": _level_table(targets, good, reads[-1], nu),
        "wall_s": time.perf_counter() - wall0,
    }
    bus.emit(Status("demo", "completed", ""))
    return result


def _level_table(
    targets: np.ndarray, good: np.ndarray, g_last: np.ndarray, nu: np.ndarray
) -> list[dict]:
    rows = []
    for level in np.unique(targets):
        m = good & (targets == level)
        rows.append(
            {
                "target_S": float(level),
                "devices": int(m.sum()),
                "g_last_read_S": float(g_last[m].mean()),
                "nu_mean": float(nu[m].mean()),
                "nu_std": float(nu[m].std()),
            }
        )
    return rows
