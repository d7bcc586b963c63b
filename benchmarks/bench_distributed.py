"""A campaign sweep of independent tasks, serially in-process and on a Dask LocalCluster.

The sweep is one campaign step: ``procedure: train`` (mixed-precision training, the
chip in the loop, of the 64-H-10 MLP on the digits set, training seed 0) with
``backend_sweep: {seed: [0 .. N-1]}`` over ``emulator:pcm?differential=1``, so every
task trains on its own emulated chip instance. The same campaign runs twice into
fresh temporary run stores:

- ``serial_s``: wall time in s of the campaign with ``--executor local`` (tasks one
  after another in this process);
- ``dask_local_s``: wall time in s of the campaign with ``--executor dask`` (a
  ``LocalCluster``, one single-threaded worker process per core), excluding the
  cluster's start-up, which is reported as ``startup_s``;
- ``speedup`` = serial_s / dask_local_s;
- ``identical``: true when every child run's records (arrays and values) are equal
  between the two stores, except wall times (``epoch_s``).

Also: ``tasks``, ``workers``, ``task_s_min`` and ``task_s_mean`` (serial wall time in s of
one task in the serial run: the issue asks for tasks of at least 2 s), and
``epochs``, ``hidden``. The JSON goes to stdout, progress to stderr. Run:
``.venv/bin/python benchmarks/bench_distributed.py [--tasks 16] [--epochs 15]
[--hidden 64] [--workers N]``. On 2 cores the target is speedup >= 1.5.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from xbarlab.procedures.campaign import Campaign
from xbarlab.procedures.executors import DaskExecutor, LocalExecutor, run_task
from xbarlab.procedures.runner import Runner
from xbarlab.store import RunStore

#: the chip every task trains on; backend_sweep replaces its seed by the task's
SPEC = "emulator:pcm?differential=1&seed=1"
#: record fields that are wall times (s): they differ between runs by nature
WALL_TIMES = ("epoch_s",)


def campaign_doc(tasks: int, epochs: int, hidden: int) -> dict:
    """The benchmark's campaign: one fan-out training step over ``tasks`` chip seeds."""
    return {
        "backend": SPEC,
        "steps": [
            {
                "procedure": "train",
                "params": {"mode": "mixed-precision", "epochs": epochs, "hidden": hidden},
                "backend_sweep": {"seed": list(range(tasks))},
            }
        ],
    }


class TimedLocalExecutor(LocalExecutor):
    """The local executor, remembering each task's wall time in s."""

    def __init__(self):
        self.task_s: list[float] = []

    def run(self, tasks):
        for task in tasks:
            t0 = time.perf_counter()
            result = run_task(task)
            self.task_s.append(time.perf_counter() - t0)
            yield task, result


def run_once(doc: dict, executor, path: Path) -> tuple[float, dict]:
    """Run the campaign into a new store at ``path``: (wall time in s, records by label)."""
    with RunStore(path) as store:
        t0 = time.perf_counter()
        out = Campaign(doc).run(Runner(store), None, backend=SPEC, executor=executor)
        wall = time.perf_counter() - t0
        if out.status != "completed":
            raise RuntimeError(f"benchmark campaign ended {out.status}: {out.summary}")
        records = {
            kid["label"]: [(r.step_id, r.data) for r in store.records(kid["run_id"])]
            for kid in out.summary["children"]
        }
    return wall, records


def _strip(value):
    """``value`` without wall-time fields (nested dicts and lists too)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in WALL_TIMES}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def same_records(a: dict, b: dict) -> bool:
    """True when both runs' records are equal, wall times aside."""
    if a.keys() != b.keys():
        return False
    for label in a:
        if [s for s, _ in a[label]] != [s for s, _ in b[label]]:
            return False
        for (_, x), (_, y) in zip(a[label], b[label], strict=True):
            x, y = _strip(x), _strip(y)
            if x.keys() != y.keys():
                return False
            for key in x:
                if isinstance(x[key], np.ndarray) or isinstance(y[key], np.ndarray):
                    if not np.array_equal(x[key], y[key]):
                        return False
                elif x[key] != y[key]:
                    return False
    return True


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=16, help="independent training tasks")
    parser.add_argument("--epochs", type=int, default=15, help="training epochs per task")
    parser.add_argument("--hidden", type=int, default=64, help="hidden layer width")
    parser.add_argument("--workers", type=int, default=None, help="Dask workers (default: cores)")
    args = parser.parse_args(argv)
    doc = campaign_doc(args.tasks, args.epochs, args.hidden)
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as tmp:
        print(f"serial: {args.tasks} tasks ...", file=sys.stderr)
        local = TimedLocalExecutor()
        serial_s, serial = run_once(doc, local, Path(tmp) / "serial.sqlite")
        print(f"serial: {serial_s:.1f} s; starting the LocalCluster ...", file=sys.stderr)
        with DaskExecutor(n_workers=args.workers) as executor:
            workers = len(executor.client.scheduler_info()["workers"])
            dask_s, remote = run_once(doc, executor, Path(tmp) / "dask.sqlite")
            startup_s = executor.startup_s
        print(f"dask: {dask_s:.1f} s on {workers} workers", file=sys.stderr)
    result = {
        "serial_s": serial_s,
        "dask_local_s": dask_s,
        "startup_s": startup_s,
        "speedup": serial_s / dask_s,
        "identical": same_records(serial, remote),
        "tasks": args.tasks,
        "workers": workers,
        "task_s_min": min(local.task_s),
        "task_s_mean": float(np.mean(local.task_s)),
        "epochs": args.epochs,
        "hidden": args.hidden,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
