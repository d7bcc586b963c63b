"""The xbarlab test-board protocol, version 1: a pure codec (no I/O).

A test board (FPGA or MCU with row DACs and column ADCs) and its driver exchange
*frames* over any byte stream (serial port, TCP). Each frame carries a message
type, a sequence number, a payload and two CRC32s; the decoder resynchronises
after garbage by scanning for the start marker and verifying the header CRC.
Arrays travel as little-endian raw bytes behind a dtype code and a shape (never
pickle). The specification a firmware author implements is docs/board-protocol.md;
this module is its executable form, shared by the driver (instruments/board.py)
and the emulated board (emulator/board_firmware.py).

Frame layout (all integers little-endian)::

    offset  size  field
    0       2     start marker A5 5A
    2       1     protocol version (1)
    3       1     message type (MsgType)
    4       4     sequence number, u32 (0 is reserved for unsolicited errors)
    8       4     payload length n, u32 (<= MAX_PAYLOAD)
    12      4     header CRC32 of bytes 0..11 (zlib.crc32)
    16      n     payload
    16+n    4     payload CRC32 (zlib.crc32 of the payload)
"""

from __future__ import annotations

import functools
import json
import math
import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from xbarlab.errors import BackendError
from xbarlab.limits import SafetyLimits

MAGIC = b"\xa5\x5a"
VERSION = 1
_HEAD = struct.Struct("<2sBBII")
_U32 = struct.Struct("<I")
HEADER_SIZE = _HEAD.size + 4
TRAILER_SIZE = 4
#: largest payload in bytes a frame may carry (a 2048 x 2048 float32 read is 16 MiB)
MAX_PAYLOAD = 1 << 26
MAX_SEQ = 0xFFFFFFFF


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


class ErrorCode(IntEnum):
    """Codes of ERROR replies."""

    BAD_FRAME = 1  # garbage or a header that fails its CRC; seq 0
    BAD_CRC = 2  # the header was valid but the payload CRC was not; retry
    UNKNOWN_COMMAND = 3
    BAD_ARGUMENT = 4  # malformed payload or a value outside the board's ranges
    SAFETY_LIMIT = 5  # a value beyond the board's safety limits; nothing acted
    BUSY = 6  # the board cannot take the request now; retry later
    INTERNAL = 7
    BAD_VERSION = 8  # the frame's protocol version is not spoken by the board


class ProtocolError(BackendError):
    """A payload or frame that does not follow the protocol; ``code`` is an ErrorCode."""

    def __init__(self, code: ErrorCode, message: str):
        self.code = ErrorCode(code)
        super().__init__(message)


def next_seq(seq: int) -> int:
    """The sequence number after ``seq``: 1, 2, ..., 2**32 - 1, 1, ... (0 is skipped)."""
    return seq % MAX_SEQ + 1


# -- frames ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    """One decoded frame: message type, sequence number, payload bytes and its CRC32.

    ``crc`` is the payload's zlib.crc32; the decoder passes the one it verified, so a
    board that keys its reply cache on it never computes it twice (left out, it is
    computed here). It takes no part in comparisons: it follows from the payload.
    """

    type: int
    seq: int
    payload: bytes
    crc: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.crc is None:
            object.__setattr__(self, "crc", zlib.crc32(self.payload))


@dataclass(frozen=True)
class DecodeError:
    """What the decoder skipped: garbage (seq None) or a frame that failed a check."""

    code: ErrorCode
    seq: int | None
    detail: str


def encode_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    """The bytes of one frame (header, payload, payload CRC)."""
    return _frame(msg_type, seq, (payload,))


def _frame(msg_type: int, seq: int, parts) -> bytes:
    """One frame around a payload given as byte buffers (``len`` in bytes): the CRC runs
    over them in turn and the frame is joined once, so a large array is copied once."""
    crc = size = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
        size += len(part)
    head = _HEAD.pack(MAGIC, VERSION, int(msg_type), seq, size)
    return b"".join((head, _U32.pack(zlib.crc32(head)), *parts, _U32.pack(crc)))


class FrameDecoder:
    """Incremental frame decoder with resynchronisation.

    ``feed`` bytes as they arrive; it returns the complete frames and one
    :class:`DecodeError` per run of skipped bytes. It never raises on input and
    never waits for more than one frame's declared length, which a valid header
    CRC vouches for. ``wanted`` tells a reader how many bytes complete the
    current frame, so it can ask the stream for exactly that many.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self._buf = bytearray()
        self._max = max_payload

    @property
    def wanted(self) -> int:
        """Bytes still missing for the frame at the head of the buffer (>= 1)."""
        buf = self._buf
        if len(buf) < HEADER_SIZE or buf[:2] != MAGIC:
            return max(HEADER_SIZE - len(buf), 1)
        length = _U32.unpack_from(buf, 8)[0]
        if length > self._max:
            return 1
        return max(HEADER_SIZE + length + TRAILER_SIZE - len(buf), 1)

    def feed(self, data: bytes) -> list[Frame | DecodeError]:
        """Add received bytes; return the frames and errors they complete, in order."""
        self._buf += data
        out: list[Frame | DecodeError] = []
        while (item := self._next()) is not None:
            out.append(item)
        return out

    def _skip(self, n: int, code: ErrorCode, seq: int | None, detail: str) -> DecodeError:
        del self._buf[:n]
        return DecodeError(code, seq, detail)

    def _next(self) -> Frame | DecodeError | None:
        buf = self._buf
        start = buf.find(MAGIC)
        if start != 0:
            if start < 0:  # keep a trailing A5: it may start the next marker
                start = len(buf) - (1 if buf.endswith(MAGIC[:1]) else 0)
            if start == 0:
                return None
            return self._skip(start, ErrorCode.BAD_FRAME, None, f"skipped {start} garbage bytes")
        if len(buf) < HEADER_SIZE:
            return None
        _, version, msg_type, seq, length = _HEAD.unpack_from(buf)
        if zlib.crc32(memoryview(buf)[:12]) != _U32.unpack_from(buf, 12)[0]:
            return self._skip(1, ErrorCode.BAD_FRAME, None, "header CRC mismatch; resyncing")
        if length > self._max:
            detail = f"payload length {length} exceeds {self._max}"
            return self._skip(HEADER_SIZE, ErrorCode.BAD_FRAME, seq, detail)
        end = HEADER_SIZE + length
        if len(buf) < end + TRAILER_SIZE:
            return None
        with memoryview(buf) as view:
            payload = bytes(view[HEADER_SIZE:end])
        crc = _U32.unpack_from(buf, end)[0]
        del buf[: end + TRAILER_SIZE]
        if zlib.crc32(payload) != crc:
            return DecodeError(ErrorCode.BAD_CRC, seq, "payload CRC mismatch")
        if version != VERSION:
            return DecodeError(ErrorCode.BAD_VERSION, seq, f"protocol version {version}")
        return Frame(msg_type, seq, payload, crc)


# -- payload primitives --------------------------------------------------------------
#: array dtype codes on the wire
DTYPES = {
    1: np.dtype("u1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<u4"),
    5: np.dtype("<f4"),
    6: np.dtype("<f8"),
    7: np.dtype("?"),
}
_CODES = {dt: code for code, dt in DTYPES.items()}
MAX_NDIM = 4


@functools.lru_cache(maxsize=64)
def _le(fmt: str) -> struct.Struct:
    """The little-endian Struct of a field format, compiled once (messages reuse a few)."""
    return struct.Struct("<" + fmt)


class Writer:
    """Builds a payload from scalars, strings and arrays.

    Arrays are kept as byte views, not copied, until :meth:`bytes` or :meth:`frame`
    joins the parts: build and join in one go, without changing the arrays between.
    """

    def __init__(self):
        self._parts: list[bytes | memoryview] = []

    def pack(self, fmt: str, *values) -> Writer:
        self._parts.append(_le(fmt).pack(*values))
        return self

    def string(self, text: str) -> Writer:
        data = text.encode()
        return self.pack("I", len(data)).raw(data)

    def raw(self, data: bytes) -> Writer:
        self._parts.append(data)
        return self

    def array(self, arr: np.ndarray) -> Writer:
        arr = np.asarray(arr)
        dtype = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
        if dtype not in _CODES or arr.ndim > MAX_NDIM:
            raise ProtocolError(
                ErrorCode.BAD_ARGUMENT,
                f"cannot send an array of dtype {arr.dtype}, ndim {arr.ndim}",
            )
        self.pack(f"BB{arr.ndim}I", _CODES[dtype], arr.ndim, *arr.shape)
        flat = np.ascontiguousarray(arr, dtype=dtype).reshape(-1)
        return self.raw(memoryview(flat.view(np.uint8)))

    def bytes(self) -> bytes:
        return b"".join(self._parts)

    def frame(self, msg_type: int, seq: int) -> bytes:
        """The frame carrying this payload (what encode_frame(msg_type, seq, self.bytes())
        returns, with one copy of the payload less)."""
        return _frame(msg_type, seq, self._parts)


class Reader:
    """Reads a payload; every short or malformed field raises ProtocolError(BAD_ARGUMENT)."""

    def __init__(self, payload: bytes):
        self._data = payload
        self._pos = 0

    def _fail(self, what: str):
        raise ProtocolError(ErrorCode.BAD_ARGUMENT, f"malformed payload: {what}")

    def unpack(self, fmt: str) -> tuple:
        st = _le(fmt)
        if self._pos + st.size > len(self._data):
            self._fail(f"{st.size} bytes needed at offset {self._pos}")
        values = st.unpack_from(self._data, self._pos)
        self._pos += st.size
        return values

    def one(self, fmt: str):
        return self.unpack(fmt)[0]

    def string(self) -> str:
        n = self.one("I")
        if self._pos + n > len(self._data):
            self._fail(f"string of {n} bytes at offset {self._pos}")
        try:
            text = self._data[self._pos : self._pos + n].decode()
        except UnicodeDecodeError:
            self._fail("string is not UTF-8")
        self._pos += n
        return text

    def array(self) -> np.ndarray:
        code, ndim = self.unpack("BB")
        if code not in DTYPES or ndim > MAX_NDIM:
            self._fail(f"array dtype code {code}, ndim {ndim}")
        shape = self.unpack(f"{ndim}I")
        dtype = DTYPES[code]
        count = math.prod(shape)
        if self._pos + count * dtype.itemsize > len(self._data):
            self._fail(f"array of shape {shape} longer than the payload")
        arr = np.frombuffer(self._data, dtype, count, self._pos).reshape(shape)
        self._pos += count * dtype.itemsize
        return arr

    def end(self) -> None:
        if self._pos != len(self._data):
            self._fail(f"{len(self._data) - self._pos} trailing bytes")


# -- selections ------------------------------------------------------------------------
class SelKind(IntEnum):
    ALL = 0  # no arrays
    INDEX = 1  # one u32 array of flat row-major indices
    MASK = 2  # one u8 array: np.packbits of the row-major bool mask (big bit order)
    ROWCOL = 3  # two u32 arrays of equal length: rows, cols


@dataclass(frozen=True)
class Selection:
    """A device selection as it travels: kind and its arrays."""

    kind: SelKind = SelKind.ALL
    arrays: tuple[np.ndarray, ...] = ()

    @classmethod
    def from_flat(cls, flat: np.ndarray | None, size: int) -> Selection:
        """The smallest encoding of flat indices (None: all) on an array of ``size``."""
        if flat is None:
            return cls()
        flat = np.asarray(flat)
        increasing = flat.size < 2 or bool(np.all(flat[1:] > flat[:-1]))
        if increasing and 4 * flat.size > size // 8 + 1:
            mask = np.zeros(size, dtype=bool)
            mask[flat] = True
            return cls(SelKind.MASK, (np.packbits(mask),))
        return cls(SelKind.INDEX, (flat.astype("<u4"),))

    def write(self, w: Writer) -> Writer:
        w.pack("B", self.kind)
        for arr in self.arrays:
            w.array(arr)
        return w

    @classmethod
    def read(cls, r: Reader) -> Selection:
        kind = r.one("B")
        if kind not in SelKind._value2member_map_:
            raise ProtocolError(ErrorCode.BAD_ARGUMENT, f"unknown selection kind {kind}")
        n = {SelKind.ALL: 0, SelKind.INDEX: 1, SelKind.MASK: 1, SelKind.ROWCOL: 2}[kind]
        return cls(SelKind(kind), tuple(r.array() for _ in range(n)))

    def flat(self, rows: int, cols: int) -> np.ndarray | None:
        """Flat row-major indices (intp) on a rows x cols array; None for all.

        Raises ProtocolError(BAD_ARGUMENT) for indices out of range or a mask of the
        wrong size, so a board never acts on a malformed selection.
        """
        size = rows * cols
        if self.kind == SelKind.ALL:
            return None
        if self.kind == SelKind.MASK:
            (packed,) = self.arrays
            if packed.dtype != np.uint8 or packed.size != (size + 7) // 8:
                raise ProtocolError(
                    ErrorCode.BAD_ARGUMENT, f"mask of {packed.size} bytes for {size} devices"
                )
            return np.flatnonzero(np.unpackbits(packed.ravel(), count=size)).astype(np.intp)
        if any(a.dtype.kind not in "ui" or a.ndim != 1 for a in self.arrays):
            raise ProtocolError(ErrorCode.BAD_ARGUMENT, "selection indices must be 1-d integers")
        if self.kind == SelKind.ROWCOL:
            r, c = self.arrays
            if r.shape != c.shape or _out_of(r, rows) or _out_of(c, cols):
                raise ProtocolError(ErrorCode.BAD_ARGUMENT, "row/column indices out of range")
            return r.astype(np.intp) * cols + c.astype(np.intp)
        (flat,) = self.arrays
        if _out_of(flat, size):
            raise ProtocolError(ErrorCode.BAD_ARGUMENT, f"flat index out of range 0..{size - 1}")
        return flat.astype(np.intp)


def _out_of(arr: np.ndarray, n: int) -> bool:
    return arr.size > 0 and (int(arr.min()) < 0 or int(arr.max()) >= n)


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
