"""Frame layer of the xbarlab board protocol, version 1: framing and payload primitives.

Its one job is bytes: the frame layout, the two CRC32s, sequence numbers, the
resynchronising :class:`FrameDecoder`, the error codes and :class:`ProtocolError`, and
the :class:`Writer` / :class:`Reader` primitives message payloads are built from
(scalars, strings, little-endian arrays behind a dtype code and a shape, never pickle)
including the device :class:`Selection`. It knows no message types; those live in
xbarlab.board_protocol, which re-exports every public name here. The specification is
docs/board-protocol.md. A pure codec (no I/O).

Frame layout (all integers little-endian)::

    offset  size  field
    0       2     start marker A5 5A
    2       1     protocol version (1)
    3       1     message type (board_protocol.MsgType)
    4       4     sequence number, u32 (0 is reserved for unsolicited errors)
    8       4     payload length n, u32 (<= MAX_PAYLOAD)
    12      4     header CRC32 of bytes 0..11 (zlib.crc32)
    16      n     payload
    16+n    4     payload CRC32 (zlib.crc32 of the payload)
"""

from __future__ import annotations

import functools
import math
import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from xbarlab.errors import BackendError

MAGIC = b"\xa5\x5a"
VERSION = 1
_HEAD = struct.Struct("<2sBBII")
_U32 = struct.Struct("<I")
HEADER_SIZE = _HEAD.size + 4
TRAILER_SIZE = 4
#: largest payload in bytes a frame may carry (a 2048 x 2048 float32 read is 16 MiB)
MAX_PAYLOAD = 1 << 26
MAX_SEQ = 0xFFFFFFFF


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
