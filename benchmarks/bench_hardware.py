"""Speed of the hardware path over loopback: the board backend and the SMU driver.

Prints one JSON object:

- ``board_read_ratio``: read-all of a 256 x 256 chip through the board backend
  (driver, frames, loopback TCP, emulated firmware) / the same read-all on the
  in-process emulator backend;
- ``board_mvm_ratio``: the same comparison for an MVM batch of 64 input vectors;
- ``smu_reads_per_s``: single-device reads (``measure_current``) through the
  Keithley 2450 driver and pyvisa-py to the emulated SMU, one device routed.

Times are medians of repeated calls after warm-up; the ratios compare two numbers
measured in the same run, so they are what to compare across machines.

Run: ``.venv/bin/python benchmarks/bench_hardware.py [--size N] [--batch B] [--repeats N]``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from xbarlab.chipdrivers import open_crossbar
from xbarlab.chipdrivers.station import load_station
from xbarlab.emulator.lab import EmulatedLab
from xbarlab.instruments.keithley707b import Keithley707B
from xbarlab.instruments.keithley2450 import Keithley2450
from xbarlab.timing import median_ms

SEED = 1


#: virtual seconds both chips wait before the timings
_SETTLE_S = 3600.0


def bench_board(size: int, batch: int, repeats: int) -> dict:
    """Board backend over loopback vs the in-process emulator, same chip and seed."""
    with EmulatedLab(size, size, seed=SEED, bench=False) as lab:
        local = open_crossbar(f"emulator:pcm?rows={size}&cols={size}&seed={SEED}")
        with open_crossbar(f"board:{lab.board_url}") as board, local:
            # both chips an hour after power-up, as in `bench mvm`: right after it drift is
            # so fast that the emulator recomputes its MVM matrices on every call, and
            # the two chips would be compared in different states
            for chip in (board, local):
                chip.clock.sleep(_SETTLE_S)
            v = 0.5 * local.info.v_read
            x = np.random.default_rng(0).uniform(0, v, (batch, size)).astype(np.float32)
            times = {
                name: median_ms(fn, repeats)
                for name, fn in {
                    "board_read_ms": board.read,
                    "emulator_read_ms": local.read,
                    "board_mvm_ms": lambda: board.mvm(x),
                    "emulator_mvm_ms": lambda: local.mvm(x),
                }.items()
            }
    return {
        "board_read_ratio": times["board_read_ms"] / times["emulator_read_ms"],
        "board_mvm_ratio": times["board_mvm_ms"] / times["emulator_mvm_ms"],
        **times,
    }


def bench_smu(reads: int, repeats: int) -> dict:
    """Reads per second of one routed device through the SMU driver (median of runs)."""
    with EmulatedLab(2, 2, seed=SEED, board=False) as lab:
        wiring = load_station(lab.station_path).wiring
        with Keithley707B(lab.instruments["switch"]) as switch:
            switch.exclusive_close([wiring.smu_rows[0], wiring.ground_cols[0]])  # device (0, 0)
            with Keithley2450(lab.instruments["smu"]) as smu:
                smu.configure_voltage_source(current_limit=1e-3)
                smu.source_voltage = 0.2
                smu.output_enabled = True
                smu.measure_current()  # warm-up
                rates = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    for _ in range(reads):
                        smu.measure_current()
                    rates.append(reads / (time.perf_counter() - t0))
    return {"smu_reads_per_s": float(np.median(rates))}


def run(size: int = 256, batch: int = 64, repeats: int = 11, smu_reads: int = 200) -> dict:
    """Every number of the benchmark as one dict."""
    return {
        "size": size,
        "batch": batch,
        **bench_board(size, batch, repeats),
        **bench_smu(smu_reads, max(3, repeats // 2)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="rows = cols of the board's chip")
    ap.add_argument("--batch", type=int, default=64, help="MVM input vectors per call")
    ap.add_argument("--repeats", type=int, default=11, help="timed calls per quantity")
    ap.add_argument("--smu-reads", type=int, default=200, help="SMU reads per timed run")
    args = ap.parse_args()
    print(json.dumps(run(args.size, args.batch, args.repeats, args.smu_reads)))


if __name__ == "__main__":
    main()
