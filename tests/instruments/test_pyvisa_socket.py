"""The drivers through pyvisa-py over a real loopback socket (no emulator involved).

A tiny line server on 127.0.0.1 (port 0) answers like a 2450; the driver connects with
the default resource manager (pyvisa-py) to ``TCPIP::127.0.0.1::PORT::SOCKET``. This
proves the termination settings and the resource string work as users write them.
"""

from __future__ import annotations

import socket
import threading

import pytest

from tests.instruments.transcript import IDN
from xbarlab.errors import InstrumentError
from xbarlab.instruments.keithley2450 import Keithley2450


class LineServer:
    """Serves one connection: one reply line per query, nothing for a command."""

    def __init__(self, replies: dict):
        self.replies = replies
        self.received: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="line-server")

    def __enter__(self) -> LineServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes a pending accept()
        except OSError:
            pass
        self._listener.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        try:
            connection, _ = self._listener.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(10.0)
            buffer = b""
            while chunk := connection.recv(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    connection.sendall(self._answer(line.decode()))

    def _answer(self, line: str) -> bytes:
        self.received.append(line)
        reply = self.replies.get(line)
        if reply is None:
            return b""
        return (reply() if callable(reply) else reply).encode() + b"\n"


def smu_replies() -> dict:
    """A 2450 whose :READ? answers 1e-9, 2e-9, 3e-9, ... (each reading is distinct)."""
    count = iter(range(1, 10**9))
    return {
        "*IDN?": IDN[Keithley2450],
        "SYST:ERR?": '0,"No error"',
        ":READ?": lambda: f"{next(count)}E-09",
    }


def test_driver_over_pyvisa_py_socket(no_threads_left):
    with LineServer(smu_replies()) as server:
        resource = f"TCPIP::127.0.0.1::{server.port}::SOCKET"
        with Keithley2450(resource, timeout_s=2.0, max_voltage=1.0) as smu:
            smu.configure_voltage_source(current_limit=1e-4)
            smu.source_voltage = 0.2
            smu.output_enabled = True
            readings = [smu.measure_current() for _ in range(200)]
            assert nagle_disabled(smu)
    assert readings == pytest.approx([k * 1e-9 for k in range(1, 201)], rel=1e-12)
    assert server.received[:3] == ["*IDN?", "*CLS", "SYST:ERR?"]
    assert server.received[-2:] == [":SOUR:VOLT:LEV 0", ":OUTP OFF"]
    assert server.received.count(":READ?") == 200


def nagle_disabled(instrument) -> bool:
    """TCP_NODELAY on the pyvisa-py session socket (else write+query waits ~40 ms)."""
    resource = instrument._resource
    sock = resource.visalib.sessions[resource.session].interface
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_silent_instrument_times_out_with_a_clear_error(no_threads_left):
    with LineServer({}) as server:
        resource = f"TCPIP::127.0.0.1::{server.port}::SOCKET"
        with pytest.raises(InstrumentError, match=r"no reply to '\*IDN\?' within 0.2 s"):
            Keithley2450(resource, timeout_s=0.2)


def test_nobody_listening_is_an_instrument_error():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(InstrumentError, match=f"127.0.0.1::{port}::SOCKET.*refused"):
        Keithley2450(f"TCPIP::127.0.0.1::{port}::SOCKET", timeout_s=0.5)
