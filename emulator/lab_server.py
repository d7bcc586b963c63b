"""Line servers for the emulated bench instruments (SCPI/TSP over raw TCP sockets).

Each instrument of :class:`~xbarlab.emulator.lab_instruments.Lab` gets its own
:class:`~xbarlab.emulator.tcp_server.LoopbackServer`: a newline-terminated raw
socket as pyvisa-py's ``TCPIP::127.0.0.1::PORT::SOCKET`` expects (``\\r\\n`` is
accepted too). A :class:`LineHandler` cuts the byte stream into lines, runs each
under the lab's lock (the chip may be shared with the emulated board) and returns
one reply line per answered query. Faults come from the server's
:class:`~xbarlab.emulator.faults.FaultPlan`: the server delays, drops, corrupts and
disconnects; the handler injects instrument errors (the line is not executed and
an error is queued, as when a real instrument refuses a command).

:class:`EmulatedInstruments` starts all four servers and tells clients where they
are (VISA resource strings).
"""

from __future__ import annotations

import dataclasses
import threading

from xbarlab.emulator.faults import FaultInjector, FaultPlan
from xbarlab.emulator.lab_instruments import BenchWiring, Instrument, Lab
from xbarlab.emulator.pcm import PCMArray
from xbarlab.emulator.rram import RRAMArray
from xbarlab.emulator.tcp_server import LoopbackServer
from xbarlab.emulator.warmup import warm_up
from xbarlab.errors import ConfigError

#: longest line an instrument accepts, in bytes; longer input is discarded up to the
#: next newline and -363 "Input buffer overrun" is queued
MAX_LINE = 1 << 16
#: error queued when the fault plan makes an instrument refuse a line
INJECTED_ERROR = (-240, "Hardware error; injected fault")
#: error queued when an emulator bug surfaces while executing a line
INTERNAL_ERROR = -300
#: station.yaml roles of the instruments, and the SMUs that can fill the smu role
ROLES = {"smu": "keithley2450", "pulse": "keysight33500b", "switch": "keithley707b"}
SMU_DRIVERS = ("keithley2450", "keithley2600")


class LineHandler:
    """One connection to an instrument: bytes in, reply lines out.

    Parameters
    ----------
    instrument : Instrument
        The emulated instrument (shared by all its connections).
    lock : threading.Lock
        Held while a line executes (guards the instrument state and the chip).
    injector : FaultInjector
        Decides which lines the instrument refuses (``error_rate``).
    """

    def __init__(self, instrument: Instrument, lock, injector: FaultInjector):
        self.instrument = instrument
        self.lock = lock
        self.injector = injector
        self._buf = bytearray()
        self._overrun = False

    def feed(self, data: bytes) -> list[bytes]:
        """Consume received bytes; the reply lines (with ``\\n``) of complete lines."""
        self._buf += data
        replies: list[bytes] = []
        start = 0
        while (end := self._buf.find(b"\n", start)) >= 0:
            line = bytes(self._buf[start:end])
            start = end + 1
            if self._overrun:
                self._overrun = False
                continue
            replies.extend(self._line(line))
        del self._buf[:start]
        if len(self._buf) > MAX_LINE:
            self._buf.clear()
            self._overrun = True
            with self.lock:
                self.instrument.status.push(
                    -363, f"Input buffer overrun; line over {MAX_LINE} bytes"
                )
        return replies

    def _line(self, raw: bytes) -> list[bytes]:
        text = raw.rstrip(b"\r").decode("latin-1")
        with self.lock:
            if self.injector.error_now():
                self.instrument.status.push(*INJECTED_ERROR)
                return []
            try:
                lines = self.instrument.execute(text)
            except Exception as exc:  # an emulator bug must not cut the connection
                self.instrument.status.push(INTERNAL_ERROR, f"Device-specific error; {exc!r}")
                return []
        return [line.encode("ascii", "replace") + b"\n" for line in lines]


class EmulatedInstruments:
    """The four emulated instruments served on loopback, one server each.

    Parameters
    ----------
    chip : PCMArray or RRAMArray
        The emulated array the bench is wired to.
    faults : FaultPlan, optional
        Faults of every server (each gets its own seed, derived from the plan's).
    lock : threading.Lock, optional
        Lock shared with other users of the chip (the emulated board); a new one if None.
    host : str
        Interface to bind (loopback unless told otherwise).
    wiring : BenchWiring, optional
        Matrix columns of the array lines; the default layout if None.
    smu : str
        Which SMU fills station.yaml's ``smu`` role: "keithley2450" or "keithley2600"
        (both are served and wired to the SMU bus; smub of the 2600B is on bus D).

    Attributes (after :meth:`start`)
    --------------------------------
    resources : dict
        station.yaml role (smu, pulse, switch) -> "TCPIP::127.0.0.1::PORT::SOCKET".
    drivers : dict
        role -> driver name, as station.yaml writes it.
    by_driver : dict
        Every served instrument: driver name -> resource string.
    lab : Lab
        The emulated instruments and bench (ground truth for tests).
    """

    def __init__(
        self,
        chip: PCMArray | RRAMArray,
        *,
        faults: FaultPlan | None = None,
        lock=None,
        host: str = "127.0.0.1",
        wiring: BenchWiring | None = None,
        smu: str = "keithley2450",
    ):
        if smu not in SMU_DRIVERS:
            raise ConfigError(f"smu = {smu!r} is not an emulated SMU; choose one of {SMU_DRIVERS}")
        self.lab = Lab(chip, wiring)
        self.lock = lock if lock is not None else threading.Lock()
        self.drivers = {**ROLES, "smu": smu}
        plan = faults or FaultPlan()
        self._servers = {
            name: _server(inst, self.lock, host, dataclasses.replace(plan, seed=plan.seed + k))
            for k, (name, inst) in enumerate(self.lab.instruments.items())
        }
        self.by_driver: dict[str, str] = {}
        self.resources: dict[str, str] = {}

    def start(self) -> EmulatedInstruments:
        """Start every server (all stopped again if one fails); returns self."""
        warm_up()  # compiled kernels before the first command: a client would time out
        try:
            for name, server in self._servers.items():
                server.start()
                host, port = server.address
                self.by_driver[name] = f"TCPIP::{host}::{port}::SOCKET"
        except BaseException:
            self.stop()
            raise
        self.resources = {role: self.by_driver[d] for role, d in self.drivers.items()}
        return self

    def stop(self) -> None:
        """Stop every server, closing its sockets and joining its threads (idempotent)."""
        for server in self._servers.values():
            server.stop()

    def __enter__(self) -> EmulatedInstruments:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _server(instrument: Instrument, lock, host: str, faults: FaultPlan) -> LoopbackServer:
    """A line server for one instrument; its handlers use the server's fault injector."""
    server = LoopbackServer(
        lambda: LineHandler(instrument, lock, server.injector), host=host, faults=faults
    )
    return server
