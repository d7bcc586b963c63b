"""The emulated lab: one emulated chip behind an emulated test board and an emulated bench.

:class:`EmulatedLab` builds one :class:`~xbarlab.emulator.PCMArray` and serves it on
loopback TCP, guarded by one lock:

- the test board speaks the board protocol (``socket://127.0.0.1:PORT`` for pyserial's
  ``serial_for_url``; :mod:`xbarlab.emulator.board_server`);
- the bench instruments (SMU, pulse generator, switch matrix) speak SCPI/TSP on
  newline-terminated raw sockets (``TCPIP::127.0.0.1::PORT::SOCKET`` for pyvisa-py;
  :mod:`xbarlab.emulator.lab_server`), wired to the chip's lines in the default layout.

It writes the ``station.yaml`` a bench backend needs (``bench:PATH``), so the same
procedure runs on ``emulator:``, ``board:`` and ``bench:`` against the same physics.
``xbarlab emulate serve`` runs one from the command line.

The board and the instruments act on the chip's virtual clock (the chip ages only as
operations advance it); a client on the bench uses its own real clock, as it would on a
real bench.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading

import yaml

from xbarlab.emulator import PCMArray, load_preset
from xbarlab.emulator.board_firmware import chip_description
from xbarlab.emulator.board_server import EmulatedBoard
from xbarlab.emulator.faults import FaultPlan
from xbarlab.emulator.peripherals import load_periphery
from xbarlab.errors import ConfigError
from xbarlab.limits import SafetyLimits

#: read voltage written into station.yaml, in V (the emulator backend's default)
READ_VOLTAGE = 0.2
#: a 707B mainframe's matrix columns (6 slots x 12): rows + cols of a bench chip
BENCH_LINES = 72


class EmulatedLab:
    """One emulated chip served by an emulated board and/or an emulated bench.

    Parameters
    ----------
    rows, cols : int
        Array shape. A bench needs rows + cols <= 72 (one 707B mainframe).
    seed : int
        Seed of the chip.
    preset, periphery : str
        PCM parameter preset and peripheral preset (as in ``emulator:pcm`` specs).
    board, bench : bool
        Which servers to start.
    faults : FaultPlan, optional
        Faults injected by every server (delays, drops, corruption, one disconnect,
        instrument errors).
    host : str
        Interface the servers bind to; loopback unless told otherwise.
    station_path : str, optional
        Where to write station.yaml; by default a temporary directory removed by
        :meth:`stop`.
    limits : SafetyLimits, optional
        Limits written into station.yaml and enforced by the board.

    Use as a context manager, or call :meth:`start` and :meth:`stop` (idempotent;
    joins every server thread).
    """

    def __init__(
        self,
        rows: int = 8,
        cols: int = 8,
        *,
        seed: int = 0,
        preset: str = "default",
        periphery: str = "default",
        board: bool = True,
        bench: bool = True,
        faults: FaultPlan | None = None,
        host: str = "127.0.0.1",
        station_path: str | os.PathLike | None = None,
        limits: SafetyLimits | None = None,
    ):
        if bench and rows + cols > BENCH_LINES:
            raise ConfigError(
                f"rows + cols = {rows + cols} array lines exceed the emulated switch "
                f"matrix's {BENCH_LINES} columns; use a smaller chip or board only"
            )
        self.chip = PCMArray(
            rows, cols, load_preset(preset), seed=seed, periphery=load_periphery(periphery)
        )
        self.lock = threading.Lock()
        self.limits = limits or SafetyLimits()
        self.faults = faults
        self.host = host
        self._want = {"board": board, "bench": bench}
        self._station_request = station_path
        self._tmpdir: str | None = None
        self._servers: list = []
        self.board_url: str | None = None
        self.instruments: dict[str, str] = {}
        self.station_path: str | None = None

    @property
    def clock(self):
        """The chip's virtual clock (what the board and the instruments act on)."""
        return self.chip.clock

    def start(self) -> EmulatedLab:
        """Start the servers and write station.yaml; on failure everything is stopped."""
        try:
            if self._want["board"]:
                self._start_board()
            if self._want["bench"]:
                self._start_bench()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_board(self) -> None:
        # one lock for every way into the chip
        board = EmulatedBoard(
            self.chip, limits=self.limits, faults=self.faults, host=self.host, lock=self.lock
        )
        self._servers.append(board.start())
        self.board_url = board.url

    def _start_bench(self) -> None:
        from xbarlab.emulator.lab_server import EmulatedInstruments

        servers = EmulatedInstruments(
            self.chip, lock=self.lock, host=self.host, faults=self.faults
        ).start()
        self._servers.append(servers)
        self.instruments = dict(servers.resources)
        self.station_path = self._write_station(servers.drivers)

    def _write_station(self, drivers: dict[str, str]) -> str:
        """station.yaml describing this chip, the instruments and the default wiring."""
        path = self._station_request
        if path is None:
            self._tmpdir = tempfile.mkdtemp(prefix="xbarlab-lab-")
            path = os.path.join(self._tmpdir, "station.yaml")
        doc = {
            "chip": {
                "rows": self.chip.rows,
                "cols": self.chip.cols,
                "technology": "pcm",
                **_station_chip(self.chip, self.limits),
            },
            "limits": dataclasses.asdict(self.limits),
            "instruments": {
                role: {"driver": drivers[role], "resource": resource}
                for role, resource in self.instruments.items()
            },
            "wiring": {"layout": "default"},
        }
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"# station.yaml of an emulated lab (seed {self.chip.seed})\n")
            yaml.safe_dump(doc, f, sort_keys=False)
        return str(path)

    def describe(self) -> dict:
        """What clients need: board URL, instrument resources, station file, chip shape."""
        return {
            "board": self.board_url,
            "instruments": dict(self.instruments),
            "station": self.station_path,
            "rows": self.chip.rows,
            "cols": self.chip.cols,
            "seed": self.chip.seed,
        }

    def stop(self) -> None:
        """Stop every server (joining its threads) and remove the temporary station file."""
        servers, self._servers = self._servers, []
        failure = None
        for server in reversed(servers):
            try:
                server.stop()
            except Exception as exc:  # stop the others anyway; report the first failure
                failure = failure or exc
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        if failure is not None:
            raise failure

    def __enter__(self) -> EmulatedLab:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _station_chip(chip: PCMArray, limits: SafetyLimits) -> dict:
    """The chip's window (S), read voltage (V), recommended pulses (V, s) and SET range (V),
    as the board firmware reports them, in station.yaml's vocabulary."""
    d = chip_description(chip, limits)
    (set_v, set_w), (reset_v, reset_w) = d["set_pulse"], d["reset_pulse"]
    return {
        "g_min": float(d["g_min"]),
        "g_max": float(d["g_max"]),
        "v_read": READ_VOLTAGE,
        "set_pulse": {"amplitude": float(set_v), "width": float(set_w)},
        "reset_pulse": {"amplitude": float(reset_v), "width": float(reset_w)},
        "set_amplitude_range": [float(v) for v in d["set_amplitude_range"]],
    }
