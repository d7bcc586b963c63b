"""GUI responsiveness while procedures run: heatmap frame rate and UI-thread stalls.

What it does (Qt offscreen, the real :class:`~xbarlab.gui.app.MainWindow` over a
temporary run store, procedures run by its RunQueue on the worker thread):

1. ``fps_256`` and ``fps_1024``: on ``emulator:pcm?rows=N&cols=N&seed=1`` the window
   runs ``program-array`` (the heaviest load: the worker holds the GIL for much of
   it) while a 10 ms UI-thread timer hands the heatmap a new N x N map on every tick
   (two maps alternating), i.e. maps arrive faster than any frame rate we ask for.
   The value is heatmap repaints per second of the run: what the coalesced heatmap
   can show while a procedure runs. Procedures themselves deliver maps slower on
   large chips (the store writes each record and the chip state with it), so a
   feeder, not a procedure, must be the source to measure the GUI's own limit.
2. ``record_fps_N``: the same count for ``conductance-map`` (``--repeats`` full-array
   reads, every Record carries an N x N map), i.e. the rate at which real records
   reach the screen, with ``maps_per_s`` the rate the procedure produced them.
3. ``max_ui_stall_ms``: a 10 ms QTimer on the UI thread records the gaps between its
   ticks during all runs above; the longest gap, in ms: the longest the UI could not
   react to input.

The JSON goes to stdout. Run:
``.venv/bin/python benchmarks/bench_gui.py [--sizes 256,1024] [--repeats 20]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PyQt5.QtCore import QEventLoop, QTimer  # noqa: E402
from PyQt5.QtWidgets import QApplication  # noqa: E402

from xbarlab.gui.app import MainWindow  # noqa: E402
from xbarlab.procedures.registry import get  # noqa: E402
from xbarlab.store import RunStore  # noqa: E402

TICK_MS = 10


class StallMeter:
    """Longest gap between the ticks of a 10 ms timer on the UI thread, in ms."""

    def __init__(self):
        self.max_gap_ms = 0.0
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.max_gap_ms = max(self.max_gap_ms, (now - self._last) * 1e3)
        self._last = now


def run_in_window(win: MainWindow, meter: StallMeter, name: str, values: dict, feed=None) -> dict:
    """Run procedure ``name`` from the window's queue; heatmap frames, wall time, status.

    feed: maps in S handed to the heatmap one per 10 ms tick during the run, or None.
    """
    procedure = get(name).from_values(values)
    # as a user does: pick the procedure (its form and live plot are built), then run it
    win.show_procedure(name)
    QApplication.processEvents()
    loop = QEventLoop()
    ended = {}
    win.queue.finished.connect(lambda job, out: (ended.update(status=out.status), loop.quit()))
    win.queue.failed.connect(lambda job, msg: (ended.update(status=msg), loop.quit()))
    feeder = QTimer()
    feeder.setInterval(TICK_MS)
    ticks = iter(range(1 << 62))
    if feed is not None:
        feeder.timeout.connect(lambda: win.heatmap.set_data(feed[next(ticks) % len(feed)]))
    frames0 = win.heatmap.frames
    meter.start()
    feeder.start()
    t0 = time.perf_counter()
    win.submit(procedure)
    loop.exec_()
    wall = time.perf_counter() - t0
    feeder.stop()
    meter.stop()
    win.queue.finished.disconnect()
    win.queue.failed.disconnect()
    return {"frames": win.heatmap.frames - frames0, "wall_s": wall, "status": ended["status"]}


def measure(size: int, repeats: int, store: RunStore, meter: StallMeter) -> dict:
    """Both frame rates on a size x size chip (see the module docstring)."""
    win = MainWindow(store, None)
    win.resize(1200, 800)
    win.show()
    win.connection.connect_to(f"emulator:pcm?rows={size}&cols={size}&seed=1")
    rng = np.random.default_rng(0)
    feed = [rng.uniform(1e-6, 25e-6, (size, size)).astype(np.float32) for _ in range(2)]
    try:
        rec = run_in_window(win, meter, "conductance-map", {"repeats": str(repeats)})
        prog = run_in_window(win, meter, "program-array", {}, feed=feed)
    finally:
        win.close()
    return {
        "fps": prog["frames"] / prog["wall_s"],
        "record_fps": rec["frames"] / rec["wall_s"],
        "maps_per_s": (repeats + 1) / rec["wall_s"],
        "conductance_map": rec,
        "program_array": prog,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="256,1024", help="square chip sizes (rows = cols)")
    ap.add_argument("--repeats", type=int, default=20, help="full-array reads per run")
    args = ap.parse_args(argv)
    app = QApplication.instance() or QApplication(["bench_gui"])
    meter = StallMeter()
    result: dict = {}
    with tempfile.TemporaryDirectory() as tmp, RunStore(Path(tmp) / "runs.sqlite") as store:
        for size in (int(s) for s in args.sizes.split(",")):
            r = measure(size, args.repeats, store, meter)
            result[f"fps_{size}"] = round(r.pop("fps"), 2)
            result[f"record_fps_{size}"] = round(r.pop("record_fps"), 2)
            result[f"runs_{size}"] = r
    result["max_ui_stall_ms"] = round(meter.max_gap_ms, 1)
    result["tick_ms"] = TICK_MS
    app.processEvents()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return result


if __name__ == "__main__":
    main()
