"""The emulated lab: one emulated chip behind an emulated test board and an emulated bench.

:class:`EmulatedLab` builds one emulated chip, a :class:`~xbarlab.emulator.PCMArray`
(``technology="pcm"``, unipolar) or an :class:`~xbarlab.emulator.RRAMArray`
(``technology="rram"``, bipolar: polarity +1 SET, -1 RESET), and serves it on
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

from xbarlab.emulator import PCMArray, RRAMArray, pcm_params, peripherals, rram_params
from xbarlab.emulator.board_firmware import chip_description, rram_limits
from xbarlab.emulator.board_server import EmulatedBoard
from xbarlab.emulator.faults import FaultPlan
from xbarlab.emulator.peripherals import load_periphery
from xbarlab.errors import ConfigError
from xbarlab.limits import SafetyLimits

#: read voltage written into station.yaml, in V (the emulator backend's default)
READ_VOLTAGE = 0.2
#: a 707B mainframe's matrix columns (6 slots x 12): rows + cols of a bench chip
BENCH_LINES = 72
#: technologies a lab serves: name -> (parameter module, array class, default limits)
TECHNOLOGIES = {
    "pcm": (pcm_params, PCMArray, SafetyLimits),
    "rram": (rram_params, RRAMArray, rram_limits),
}


class EmulatedLab:
    """One emulated chip served by an emulated board and/or an emulated bench.

    Parameters
    ----------
    rows, cols : int
        Array shape. A bench needs rows + cols <= 72 (one 707B mainframe).
    seed : int
        Seed of the chip.
    technology : {"pcm", "rram"}
        The emulated device array. An RRAM chip arrives pristine unless ``params`` says
        ``pristine=0``; the same seed, preset and overrides give the same chip as the
        ``emulator:rram?...`` spec.
    preset, periphery : str
        The technology's parameter preset (name or JSON file) and peripheral preset
        (as in ``emulator:<technology>`` specs).
    params : dict, optional
        Overrides of model or periphery fields by name (``{"pristine": 0, "c2c": 0.5}``),
        values as numbers, booleans or their strings; converted to the field's type.
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
        Limits written into station.yaml and enforced by the board; by default those of
        the technology's emulator backend (RRAM: a 4 V pulse limit for forming).

    Use as a context manager, or call :meth:`start` and :meth:`stop` (idempotent;
    joins every server thread).
    """

    def __init__(
        self,
        rows: int = 8,
        cols: int = 8,
        *,
        seed: int = 0,
        technology: str = "pcm",
        preset: str = "default",
        periphery: str = "default",
        params: dict | None = None,
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
        if technology not in TECHNOLOGIES:
            raise ConfigError(
                f"unknown lab technology {technology!r}; valid: {', '.join(TECHNOLOGIES)}"
            )
        module, array_cls, default_limits = TECHNOLOGIES[technology]
        model, periph = _models(module, preset, load_periphery(periphery), params or {})
        self.technology = technology
        self.chip = array_cls(rows, cols, model, seed=seed, periphery=periph)
        self.lock = threading.Lock()
        self.limits = limits or default_limits()
        chip_description(self.chip, self.limits)  # a chip the limits cannot serve: fail now
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
                "technology": self.technology,
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
            "technology": self.technology,
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


def _models(module, preset: str, periphery, params: dict):
    """The technology's model (preset plus overrides) and the periphery (plus overrides);
    ConfigError naming an unknown field or a value of the wrong kind."""
    model = module.load_preset(preset)
    model_names, periph_names = model.field_names(), peripherals.field_names()
    unknown = sorted(set(params) - set(model_names) - set(periph_names))
    if unknown:
        raise ConfigError(
            f"unknown lab parameter(s) {', '.join(unknown)} for a {model.technology} chip; "
            f"valid: {', '.join((*model_names, *periph_names))}"
        )
    ours = {name: v for name, v in params.items() if name in model_names}
    theirs = {name: v for name, v in params.items() if name not in ours}
    model = model.with_overrides(**{k: _typed(k, v, getattr(model, k)) for k, v in ours.items()})
    typed = {k: _typed(k, v, getattr(periphery, k)) for k, v in theirs.items()}
    return model, periphery.with_overrides(**typed)


_WORDS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def _typed(name: str, value, default):
    """``value`` as the type of the field's ``default`` (bool, int or float)."""
    kind = type(default)
    try:
        if kind is bool:
            if isinstance(value, str):
                return _WORDS[value.strip().lower()]
            if value in (0, 1):
                return bool(value)
            raise ValueError
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        return float(value)
    except (KeyError, TypeError, ValueError):
        want = {bool: "1/0, true/false or yes/no", int: "an integer"}.get(kind, "a number")
        raise ConfigError(f"lab parameter {name} must be {want}, got {value!r}") from None


def _station_chip(chip, limits: SafetyLimits) -> dict:
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
