"""Driver of xbarlab test boards: the board protocol over pyserial.

:class:`BoardClient` opens any pyserial URL (``/dev/ttyUSB0``, ``socket://HOST:PORT``,
``rfc2217://HOST:PORT``) with ``serial.serial_for_url`` and sends one request
frame per operation (xbarlab.board_protocol, docs/board-protocol.md). Reliability:

- a reply that does not arrive within ``timeout_s``, or arrives corrupted, is
  asked for again by resending the *same* frame (same sequence number): the board
  answers a repeat from its reply cache, so PULSE and PROGRAM never act twice;
- after a disconnect the port is reopened and the request resent;
- stale or unsolicited frames (other sequence numbers) are skipped;
- after ``retries`` resends the call raises InstrumentError naming the operation,
  the board and the last failure. An ERROR reply from the board raises at once.
"""

from __future__ import annotations

import secrets
import socket
import time

import serial

from xbarlab import board_protocol as bp
from xbarlab.errors import ConfigError, InstrumentError

#: ERROR codes after which the same frame is simply sent again
_RETRYABLE = {bp.ErrorCode.BAD_CRC, bp.ErrorCode.BAD_FRAME, bp.ErrorCode.BUSY}
#: s of silence after garbage that mean the reply was lost (a 16-byte header at 9600 baud
#: takes 17 ms)
_QUIET_S = 0.05
#: s a read may outlast the reply deadline: the port's timeout is set again only when it
#: is off by more (pyserial reconfigures the port on every timeout change)
_TIMEOUT_SLACK_S = 1e-3


class BoardError(InstrumentError):
    """The board answered with an ERROR reply; ``code`` is the protocol ErrorCode."""


class _Retry(Exception):
    """This attempt failed in a way a resend can fix."""


class BoardClient:
    """A connection to a test board speaking the xbarlab board protocol.

    Parameters
    ----------
    url : str
        pyserial URL or device path: ``/dev/ttyUSB0``, ``socket://127.0.0.1:5555``,
        ``rfc2217://host:port``.
    timeout_s : float
        Seconds to wait for each reply before resending, > 0.
    retries : int
        Resends after the first attempt before giving up, >= 0.
    baudrate : int
        Serial line rate for device paths (ignored by socket URLs).
    """

    def __init__(self, url: str, *, timeout_s: float = 2.0, retries: int = 5, baudrate=921600):
        if not timeout_s > 0:
            raise ConfigError(f"BoardClient timeout_s = {timeout_s!r} must be > 0 s")
        if retries < 0:
            raise ConfigError(f"BoardClient retries = {retries!r} must be >= 0")
        self.url = url
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self._baudrate = baudrate
        self._port = None
        self._decoder = bp.FrameDecoder()
        self._seq = secrets.randbelow(bp.MAX_SEQ) + 1  # a fresh session never hits old cache
        self.resends = 0
        try:
            self._connect()
        except (serial.SerialException, OSError) as exc:
            raise InstrumentError(f"cannot open board: {exc}", instrument=url) from None

    # -- operations ----------------------------------------------------------------
    def hello(self) -> bp.HelloReply:
        """Board identity, shape, capabilities, limits and converters."""
        return self.call(bp.Hello())

    def read(self, sel: bp.Selection, v_read: float, *, raw: bool = False) -> bp.ReadReply:
        """READ the selection at v_read (V): conductances in S or raw codes."""
        return self.call(bp.ReadRequest(sel, v_read, raw))

    def pulse(self, sel: bp.Selection, polarity: int, amplitude, width, count: int = 1):
        """PULSE the selection: amplitude (V) and width (s) scalars or one per device."""
        return self.call(bp.PulseRequest(sel, polarity, amplitude, width, count))

    def mvm(self, x, *, transpose: bool = False, raw: bool = False) -> bp.MvmReply:
        """MVM of float32 input voltages (batch, n) in V."""
        return self.call(bp.MvmRequest(x, transpose, raw))

    def program(
        self, sel, targets, *, tolerance: float, max_iterations: int, v_read: float, timeout_s=None
    ) -> bp.ProgramReply:
        """Board-side write-verify to targets (S); timeout_s: wait for the reply (s)."""
        request = bp.ProgramRequest(sel, targets, tolerance, max_iterations, v_read)
        return self.call(request, timeout_s=timeout_s)

    def time(self, sleep_s: float | None = None) -> bp.TimeReply:
        """Board clock (s); with sleep_s, let the board wait (virtual boards advance)."""
        if sleep_s is None:
            return self.call(bp.TimeRequest())
        return self.call(bp.TimeRequest(bp.TimeOp.SLEEP, sleep_s))

    def close(self) -> None:
        """Close the port (idempotent)."""
        if self._port is not None:
            self._port.close()
            self._port = None

    def __enter__(self) -> BoardClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------
    def call(self, request, *, timeout_s: float | None = None):
        """Send one request and return its reply; the same frame is resent on failure."""
        msg_type = bp.request_type(request)
        self._seq = bp.next_seq(self._seq)
        seq = self._seq
        frame = bp.request_frame(request, seq)
        timeout = self.timeout_s if timeout_s is None else timeout_s
        failure = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                self.resends += 1
            try:
                if self._port is None:
                    self._connect()
                self._port.write(frame)
                reply = self._await(msg_type, seq, timeout)
            except (serial.SerialException, OSError) as exc:
                failure = f"connection lost ({exc})"
                self.close()
                continue
            except _Retry as exc:
                failure = str(exc)
                continue
            if isinstance(reply, bp.ErrorReply):
                raise _error(msg_type, reply, self.url)
            return reply
        raise InstrumentError(
            f"{msg_type.name} failed after {self.retries + 1} attempts (seq {seq}): {failure}; "
            "check the cable and the board's power, or raise timeout_s/retries",
            instrument=self.url,
        )

    def _connect(self) -> None:
        self._port = serial.serial_for_url(
            self.url, baudrate=self._baudrate, timeout=self.timeout_s, write_timeout=self.timeout_s
        )
        sock = getattr(self._port, "_socket", None)  # socket:// : no Nagle delay on requests
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._decoder = bp.FrameDecoder()

    def _await(self, msg_type: bp.MsgType, seq: int, timeout: float):
        """Read until the reply to ``seq`` arrives; _Retry on timeout or a corrupt reply.

        A reply whose header is garbled cannot be told from line noise: once garbage
        was seen, a quiet line for _QUIET_S means the reply was lost, so resend.
        """
        port, decoder = self._port, self._decoder
        deadline = time.monotonic() + timeout
        garbled = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Retry(f"no reply within {timeout:g} s")
            wait = min(left, _QUIET_S) if garbled else left
            if abs(port.timeout - wait) > _TIMEOUT_SLACK_S:
                port.timeout = wait
            data = port.read(decoder.wanted)
            if not data and garbled:
                raise _Retry("corrupt reply (garbled frame header)")
            for item in decoder.feed(data):
                if isinstance(item, bp.DecodeError):
                    if item.seq == seq:
                        raise _Retry(f"corrupt reply ({item.detail})")
                    garbled = garbled or item.seq is None
                elif item.seq == seq or (item.seq == 0 and item.type == bp.MsgType.ERROR):
                    reply = _decode(msg_type, item)
                    if isinstance(reply, bp.ErrorReply) and reply.code in _RETRYABLE:
                        raise _Retry(f"board reported {reply.code.name}: {reply.message}")
                    if item.seq == seq:
                        return reply


def _decode(msg_type: bp.MsgType, frame: bp.Frame):
    try:
        return bp.decode_reply(msg_type, frame)
    except bp.ProtocolError as exc:
        raise _Retry(f"malformed reply ({exc})") from None


def _error(msg_type: bp.MsgType, reply: bp.ErrorReply, url: str) -> InstrumentError:
    """The exception for an ERROR reply, naming the operation and the code."""
    message = f"{msg_type.name} refused by the board: {reply.code.name}: {reply.message}"
    if reply.code == bp.ErrorCode.SAFETY_LIMIT:
        message += " (the board's own safety limits; nothing acted)"
    return BoardError(message, code=int(reply.code), instrument=url)
