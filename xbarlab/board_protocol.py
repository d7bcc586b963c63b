"""Message layer of the xbarlab test-board protocol, version 1: a pure codec (no I/O).

A test board (FPGA or MCU with row DACs and column ADCs) and its driver exchange
*frames* over any byte stream (serial port, TCP). This module's one job is what the
frames mean: message types, the request and reply dataclasses with their payload
encoders and decoders, and request_frame / reply_frame / decode_request / decode_reply.
The bytes themselves (frame layout, CRC32s, sequence numbers, the resynchronising
FrameDecoder, ErrorCode, ProtocolError, the Writer / Reader payload primitives and the
device Selection) live in xbarlab.board_frames; their names are re-exported here, so
callers import this one module. The specification a firmware author implements is
docs/board-protocol.md; this module is its executable form, shared by the driver
(instruments/board.py) and the emulated board (emulator/board_firmware.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from xbarlab.board_frames import (  # noqa: F401  (re-exported for callers)
    _HEAD,
    DTYPES,
    HEADER_SIZE,
    MAGIC,
    MAX_NDIM,
    MAX_PAYLOAD,
    MAX_SEQ,
    TRAILER_SIZE,
    VERSION,
    DecodeError,
    ErrorCode,
    Frame,
    FrameDecoder,
    ProtocolError,
    Reader,
    Selection,
    SelKind,
    Writer,
    encode_frame,
    next_seq,
)
from xbarlab.limits import SafetyLimits


class MsgType(IntEnum):
    """Request types; a reply has type ``request | 0x80``, an error reply ERROR."""

    HELLO = 0x01
    READ = 0x02
    PULSE = 0x03
    MVM = 0x04
    PROGRAM = 0x05
    TIME = 0x06
    ERROR = 0xFF


REPLY_BIT = 0x80
#: requests that may simply be sent again; the others are de-duplicated by the board
IDEMPOTENT = frozenset({MsgType.HELLO, MsgType.READ, MsgType.MVM, MsgType.TIME})


# -- messages --------------------------------------------------------------------------
#: capability bits of HELLO (bit i set: CAPABILITY_BITS[i] supported)
CAPABILITY_BITS = (
    "read",
    "pulse",
    "mvm",
    "mvm_transpose",
    "differential_columns",
    "per_device_pulses",
    "unipolar",
    "virtual_time",
    "raw_adc",
    "program",
)


def _caps_to_bits(caps) -> int:
    unknown = set(caps) - set(CAPABILITY_BITS)
    if unknown:
        raise ProtocolError(ErrorCode.BAD_ARGUMENT, f"unknown capabilities {sorted(unknown)}")
    return sum(1 << i for i, name in enumerate(CAPABILITY_BITS) if name in caps)


class Message:
    """Base of the message classes: ``writer()`` builds the payload, ``decode`` reads it."""

    def writer(self) -> Writer:
        raise NotImplementedError

    def encode(self) -> bytes:
        """The payload bytes."""
        return self.writer().bytes()


_LIMITS = "dddddI"  # max_voltage, max_read_voltage, max/min pulse width, compliance, count


@dataclass(frozen=True)
class Hello(Message):
    """HELLO request: no payload."""

    def writer(self) -> Writer:
        return Writer()

    @classmethod
    def decode(cls, payload: bytes) -> Hello:
        Reader(payload).end()
        return cls()


@dataclass(frozen=True)
class HelloReply(Message):
    """What the board is: identity, shape, capabilities, limits, window, pulses, converters.

    All quantities SI: S, V, s, A. ``read_lsb`` is the conductance per raw READ code
    (S); ``adc_lsb`` the current per MVM ADC code (A, 0 = the board sends currents).
    """

    board_id: str
    firmware: str
    rows: int
    cols: int
    mvm_shape: tuple[int, int]
    technology: str
    capabilities: frozenset[str]
    limits: SafetyLimits
    g_min: float
    g_max: float
    v_read: float
    set_pulse: tuple[float, float]
    reset_pulse: tuple[float, float]
    set_amplitude_range: tuple[float, float]
    read_lsb: float
    adc_lsb: float
    periphery: dict = field(default_factory=dict)
    protocol_version: int = VERSION

    def writer(self) -> Writer:
        lim = self.limits
        w = Writer().pack("H", self.protocol_version)
        w.string(self.board_id).string(self.firmware).string(self.technology)
        w.pack("IIIII", self.rows, self.cols, *self.mvm_shape, _caps_to_bits(self.capabilities))
        w.pack(
            _LIMITS,
            lim.max_voltage,
            lim.max_read_voltage,
            lim.max_pulse_width,
            lim.min_pulse_width,
            lim.compliance_current,
            int(lim.max_pulse_count),
        )
        w.pack("3d", self.g_min, self.g_max, self.v_read)
        w.pack("6d", *self.set_pulse, *self.reset_pulse, *self.set_amplitude_range)
        w.pack("2d", self.read_lsb, self.adc_lsb)
        return w.string(json.dumps(self.periphery))

    @classmethod
    def decode(cls, payload: bytes) -> HelloReply:
        r = Reader(payload)
        version = r.one("H")
        board_id, firmware, technology = r.string(), r.string(), r.string()
        rows, cols, m_in, m_out, bits = r.unpack("IIIII")
        vmax, vread_max, wmax, wmin, icomp, count = r.unpack(_LIMITS)
        g_min, g_max, v_read = r.unpack("3d")
        s_a, s_w, r_a, r_w, lo, hi = r.unpack("6d")
        read_lsb, adc_lsb = r.unpack("2d")
        try:
            periphery = json.loads(r.string())
            limits = SafetyLimits(vmax, vread_max, wmax, wmin, count, icomp)
        except ValueError as exc:
            raise ProtocolError(ErrorCode.BAD_ARGUMENT, f"bad HELLO reply: {exc}") from None
        r.end()
        caps = frozenset(n for i, n in enumerate(CAPABILITY_BITS) if bits >> i & 1)
        return cls(
            board_id, firmware, rows, cols, (m_in, m_out), technology, caps, limits,
            g_min, g_max, v_read, (s_a, s_w), (r_a, r_w), (lo, hi), read_lsb, adc_lsb,
            periphery if isinstance(periphery, dict) else {}, version,
        )  # fmt: skip


@dataclass(frozen=True)
class ReadRequest(Message):
    """READ: read voltage (V), raw (True: ADC codes instead of float32 S), selection."""

    sel: Selection
    v_read: float
    raw: bool = False

    def writer(self) -> Writer:
        return self.sel.write(Writer().pack("dB", self.v_read, self.raw))

    @classmethod
    def decode(cls, payload: bytes) -> ReadRequest:
        r = Reader(payload)
        v_read, raw = r.unpack("dB")
        sel = Selection.read(r)
        r.end()
        return cls(sel, v_read, bool(raw))


@dataclass(frozen=True)
class ReadReply(Message):
    """READ reply: float32 conductances in S, or int32 codes with ``lsb`` S per code."""

    values: np.ndarray
    lsb: float = 0.0

    def writer(self) -> Writer:
        return Writer().pack("d", self.lsb).array(self.values)

    @classmethod
    def decode(cls, payload: bytes) -> ReadReply:
        r = Reader(payload)
        lsb = r.one("d")
        values = r.array()
        r.end()
        return cls(values, lsb)

    def conductance(self) -> np.ndarray:
        """Conductances in S (float32) whichever form the board sent."""
        if self.values.dtype == np.float32:
            return self.values
        # in float32, as the ADC's own code x LSB: bit-identical to the board's currents
        return np.multiply(self.values, np.float32(self.lsb), dtype=np.float32)


@dataclass(frozen=True)
class PulseRequest(Message):
    """PULSE: polarity (+1/-1), count, amplitude (V) and width (s), one value or one per device."""

    sel: Selection
    polarity: int
    amplitude: np.ndarray
    width: np.ndarray
    count: int = 1

    def writer(self) -> Writer:
        w = self.sel.write(Writer().pack("bI", self.polarity, self.count))
        amp = np.asarray(self.amplitude, dtype="<f8").ravel()
        return w.array(amp).array(np.asarray(self.width, dtype="<f8").ravel())

    @classmethod
    def decode(cls, payload: bytes) -> PulseRequest:
        r = Reader(payload)
        polarity, count = r.unpack("bI")
        sel = Selection.read(r)
        amplitude, width = r.array(), r.array()
        r.end()
        return cls(sel, polarity, amplitude, width, count)


@dataclass(frozen=True)
class PulseReply(Message):
    """PULSE reply: number of devices pulsed and the board time the pulses took (s)."""

    devices: int
    duration: float

    def writer(self) -> Writer:
        return Writer().pack("Id", self.devices, self.duration)

    @classmethod
    def decode(cls, payload: bytes) -> PulseReply:
        r = Reader(payload)
        devices, duration = r.unpack("Id")
        r.end()
        return cls(devices, duration)


@dataclass(frozen=True)
class MvmRequest(Message):
    """MVM: float32 input voltages (batch, n) in V; transpose drives the columns."""

    x: np.ndarray
    transpose: bool = False
    raw: bool = False

    def writer(self) -> Writer:
        w = Writer().pack("BB", self.transpose, self.raw)
        return w.array(np.asarray(self.x, dtype="<f4"))

    @classmethod
    def decode(cls, payload: bytes) -> MvmRequest:
        r = Reader(payload)
        transpose, raw = r.unpack("BB")
        x = r.array()
        r.end()
        return cls(x, bool(transpose), bool(raw))


@dataclass(frozen=True)
class MvmReply(Message):
    """MVM reply: float32 currents (A) or int16/int32 ADC codes with ``lsb`` A per code,
    and a bool array, True where the ADC saturated."""

    values: np.ndarray
    saturated: np.ndarray
    lsb: float = 0.0

    def writer(self) -> Writer:
        w = Writer().pack("d", self.lsb).array(self.values)
        w.array(np.packbits(self.saturated, axis=-1)).pack("I", self.saturated.shape[-1])
        return w

    @classmethod
    def decode(cls, payload: bytes) -> MvmReply:
        r = Reader(payload)
        lsb = r.one("d")
        values, packed = r.array(), r.array()
        n = r.one("I")
        r.end()
        if packed.dtype != np.uint8 or values.ndim != 2 or packed.shape[0] != values.shape[0]:
            raise ProtocolError(ErrorCode.BAD_ARGUMENT, "MVM saturation flags do not fit")
        saturated = np.unpackbits(packed, axis=-1, count=n).view(bool)  # 0/1 bytes: no copy
        return cls(values, saturated, lsb)

    def currents(self) -> np.ndarray:
        """Output currents in A (float32) whichever form the board sent."""
        if self.values.dtype == np.float32:
            return self.values
        # in float32, as the ADC's own code x LSB: bit-identical to the board's currents
        return np.multiply(self.values, np.float32(self.lsb), dtype=np.float32)


@dataclass(frozen=True)
class ProgramRequest(Message):
    """PROGRAM: board-side write-verify of the selection to float32 ``targets`` (S) within
    ``tolerance`` (S), at most ``max_iterations`` verify rounds, verify reads at v_read (V)."""

    sel: Selection
    targets: np.ndarray
    tolerance: float
    max_iterations: int
    v_read: float

    def writer(self) -> Writer:
        w = Writer().pack("dId", self.tolerance, self.max_iterations, self.v_read)
        return self.sel.write(w).array(np.asarray(self.targets, dtype="<f4").ravel())

    @classmethod
    def decode(cls, payload: bytes) -> ProgramRequest:
        r = Reader(payload)
        tolerance, max_iterations, v_read = r.unpack("dId")
        sel = Selection.read(r)
        targets = r.array()
        r.end()
        return cls(sel, targets, tolerance, max_iterations, v_read)


@dataclass(frozen=True)
class ProgramReply(Message):
    """PROGRAM reply, per selected device: converged (bool), pulses applied (u32), last
    verify read (float32 S); and the number of verify rounds run."""

    converged: np.ndarray
    pulses: np.ndarray
    g_final: np.ndarray
    iterations: int

    def writer(self) -> Writer:
        w = Writer().pack("I", self.iterations).array(self.converged.astype(bool))
        return w.array(self.pulses.astype("<u4")).array(self.g_final.astype("<f4"))

    @classmethod
    def decode(cls, payload: bytes) -> ProgramReply:
        r = Reader(payload)
        iterations = r.one("I")
        converged, pulses, g_final = r.array(), r.array(), r.array()
        r.end()
        return cls(converged, pulses, g_final, iterations)


class TimeOp(IntEnum):
    NOW = 0
    SLEEP = 1


@dataclass(frozen=True)
class TimeRequest(Message):
    """TIME: NOW asks the board clock; SLEEP waits ``dt`` s (virtual boards advance)."""

    op: TimeOp = TimeOp.NOW
    dt: float = 0.0

    def writer(self) -> Writer:
        return Writer().pack("Bd", self.op, self.dt)

    @classmethod
    def decode(cls, payload: bytes) -> TimeRequest:
        r = Reader(payload)
        op, dt = r.unpack("Bd")
        r.end()
        if op not in TimeOp._value2member_map_:
            raise ProtocolError(ErrorCode.BAD_ARGUMENT, f"unknown TIME operation {op}")
        return cls(TimeOp(op), dt)


@dataclass(frozen=True)
class TimeReply(Message):
    """TIME reply: board time in s (float64) and whether the board clock is virtual."""

    now: float
    virtual: bool

    def writer(self) -> Writer:
        return Writer().pack("dB", self.now, self.virtual)

    @classmethod
    def decode(cls, payload: bytes) -> TimeReply:
        r = Reader(payload)
        now, virtual = r.unpack("dB")
        r.end()
        return cls(now, bool(virtual))


@dataclass(frozen=True)
class ErrorReply(Message):
    """ERROR: code, the request type it answers (0 if unknown) and a message."""

    code: ErrorCode
    request: int
    message: str

    def writer(self) -> Writer:
        return Writer().pack("HB", self.code, self.request).string(self.message)

    @classmethod
    def decode(cls, payload: bytes) -> ErrorReply:
        r = Reader(payload)
        code, request = r.unpack("HB")
        message = r.string()
        r.end()
        known = code in ErrorCode._value2member_map_
        return cls(ErrorCode(code) if known else ErrorCode.INTERNAL, request, message)


#: request type -> (request class, reply class)
MESSAGES = {
    MsgType.HELLO: (Hello, HelloReply),
    MsgType.READ: (ReadRequest, ReadReply),
    MsgType.PULSE: (PulseRequest, PulseReply),
    MsgType.MVM: (MvmRequest, MvmReply),
    MsgType.PROGRAM: (ProgramRequest, ProgramReply),
    MsgType.TIME: (TimeRequest, TimeReply),
}
_REQUEST_TYPE = {req: t for t, (req, _) in MESSAGES.items()}


def request_type(request) -> MsgType:
    """The message type of a request message object."""
    return _REQUEST_TYPE[type(request)]


def request_frame(request, seq: int) -> bytes:
    """Frame bytes of a request message object."""
    return request.writer().frame(request_type(request), seq)


def decode_request(frame: Frame):
    """The request message of a frame; ProtocolError(UNKNOWN_COMMAND / BAD_ARGUMENT)."""
    if frame.type not in MESSAGES:
        raise ProtocolError(ErrorCode.UNKNOWN_COMMAND, f"unknown command type 0x{frame.type:02x}")
    return MESSAGES[MsgType(frame.type)][0].decode(frame.payload)


def reply_frame(request_type: int, seq: int, reply) -> bytes:
    """Frame bytes of a reply (or ErrorReply) to a request of ``request_type``."""
    if isinstance(reply, ErrorReply):
        return reply.writer().frame(MsgType.ERROR, seq)
    return reply.writer().frame(request_type | REPLY_BIT, seq)


def decode_reply(request_type: int, frame: Frame):
    """The reply message (or ErrorReply) a frame carries for a request of ``request_type``;
    ProtocolError(BAD_FRAME) if the frame is of another type."""
    if frame.type == MsgType.ERROR:
        return ErrorReply.decode(frame.payload)
    if frame.type != request_type | REPLY_BIT:
        raise ProtocolError(
            ErrorCode.BAD_FRAME,
            f"reply of type 0x{frame.type:02x} to a request of type 0x{request_type:02x}",
        )
    return MESSAGES[MsgType(request_type)][1].decode(frame.payload)
