"""The test-board backend: a ``Crossbar`` over the board protocol.

Spec: ``board:socket://HOST:PORT`` or ``board:/dev/ttyUSB0`` (any pyserial URL),
optionally ``?timeout=2.0&retries=5``. The chip's description (ChipInfo) comes
from the board's HELLO; every check of :class:`~xbarlab.chipdrivers.base.CheckedCrossbar`
runs against the board's limits before a byte is sent. Reads, pulses and MVMs are
one frame each, with raw float32 arrays, so an array operation costs one round trip.
"""

from __future__ import annotations

import numpy as np

from xbarlab import board_protocol as bp
from xbarlab.chipdrivers.base import CheckedCrossbar
from xbarlab.chipdrivers.crossbar import CAPABILITIES, ChipInfo, PulseShape
from xbarlab.chipdrivers.factory import Spec
from xbarlab.chipdrivers.selection import resolve
from xbarlab.clock import RealClock, check_duration
from xbarlab.errors import SpecError
from xbarlab.instruments.board import BoardClient


class BoardClock:
    """The board's clock: ``now()`` asks the board (TIME); ``sleep`` lets a
    virtual-time board advance, or sleeps for real on a real board."""

    def __init__(self, client: BoardClient, virtual: bool):
        self._client = client
        self.virtual = virtual
        self._real = RealClock()

    def now(self) -> float:
        return self._client.time().now

    def sleep(self, dt: float) -> None:
        dt = check_duration(dt)
        if self.virtual:
            self._client.time(sleep_s=dt)
        else:
            self._real.sleep(dt)


class BoardCrossbar(CheckedCrossbar):
    """A ``Crossbar`` on a test board reached through a :class:`BoardClient`."""

    def __init__(self, client: BoardClient, spec: str = ""):
        self.client = client
        self.hello = client.hello()
        self.info = _chip_info(self.hello, spec)
        self.clock = BoardClock(client, "virtual_time" in self.hello.capabilities)
        self._size = self.info.rows * self.info.cols
        # MVM replies as ADC codes when the board has an ADC: what its converters produce,
        # and half the bytes
        self._raw_mvm = self.info.periphery.get("adc_lsb_A", 0.0) > 0

    def _sel(self, flat) -> bp.Selection:
        return bp.Selection.from_flat(flat, self._size)

    def _read(self, flat, v_read):
        return self.client.read(self._sel(flat), v_read).conductance()

    def _pulse(self, flat, polarity, amplitude, width, count):
        self.client.pulse(self._sel(flat), polarity, amplitude, width, count)

    def _mvm(self, x, transpose):
        reply = self.client.mvm(x, transpose=transpose, raw=self._raw_mvm)
        return reply.currents(), reply.saturated

    def program(
        self,
        targets,
        sel=None,
        *,
        tolerance: float,
        max_iterations: int = 100,
        v_read: float | None = None,
        timeout_s: float | None = None,
    ) -> bp.ProgramReply:
        """Board-side write-verify of the selection to ``targets`` (S) within ``tolerance`` (S).

        Runs on the board (one request), so it is as fast as the board's loop, not the
        link's round trip. Returns per device: converged, pulses, last verify read (S).
        max_iterations: verify rounds, 1 .. limits.max_pulse_count. timeout_s: how long
        to wait for the reply (default: the client's timeout).
        """
        s = resolve(sel, self.info.shape, unique=True)
        v = self.info.v_read if v_read is None else float(v_read)
        self.info.limits.check_read_voltage(v)
        goal = np.ascontiguousarray(np.broadcast_to(targets, s.shape), dtype=np.float32).ravel()
        return self.client.program(
            self._sel(s.flat),
            goal,
            tolerance=tolerance,
            max_iterations=max_iterations,
            v_read=v,
            timeout_s=timeout_s,
        )

    def close(self) -> None:
        self.client.close()


def _chip_info(hello: bp.HelloReply, spec: str) -> ChipInfo:
    return ChipInfo(
        rows=hello.rows,
        cols=hello.cols,
        technology=hello.technology,
        g_min=hello.g_min,
        g_max=hello.g_max,
        limits=hello.limits,
        capabilities=frozenset(hello.capabilities & set(CAPABILITIES)),
        v_read=hello.v_read,
        set_pulse=PulseShape(*hello.set_pulse),
        # a bipolar chip (no "unipolar") RESETs with polarity -1
        reset_pulse=PulseShape(*hello.reset_pulse, 1 if "unipolar" in hello.capabilities else -1),
        set_amplitude_range=hello.set_amplitude_range,
        mvm_shape=hello.mvm_shape,
        periphery=dict(hello.periphery),
        backend=spec,
        details={
            "board_id": hello.board_id,
            "firmware": hello.firmware,
            "protocol_version": hello.protocol_version,
            "board_capabilities": sorted(hello.capabilities),
        },
    )


def open_board(spec: Spec) -> BoardCrossbar:
    """Opener of ``board:`` specs: ``board:socket://HOST:PORT?timeout=2&retries=5``."""
    params = dict(spec.params)
    unknown = sorted(set(params) - {"timeout", "retries"})
    if unknown or not spec.target:
        raise SpecError(
            f"board spec {spec.text!r}: give a pyserial URL (board:socket://HOST:PORT or "
            f"board:/dev/ttyUSB0) and only the parameters timeout (s), retries; got "
            f"{', '.join(unknown) or 'no URL'}"
        )
    try:
        timeout = float(params.get("timeout", 2.0))
        retries = int(params.get("retries", 5))
    except ValueError:
        raise SpecError(
            f"board spec {spec.text!r}: timeout must be a number, retries an integer"
        ) from None
    client = BoardClient(spec.target, timeout_s=timeout, retries=retries)
    try:
        return BoardCrossbar(client, spec.text)
    except BaseException:
        client.close()
        raise
