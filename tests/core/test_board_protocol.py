"""Board protocol codec: frame layout, resynchronisation, messages, fuzzing."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab import board_protocol as bp
from xbarlab.limits import SafetyLimits

FRAME = bp.encode_frame(bp.MsgType.READ, 7, b"hello")


def test_frame_layout_matches_the_spec():
    head = b"\xa5\x5a\x01\x02" + struct.pack("<II", 7, 5)
    assert FRAME[:12] == head
    assert FRAME[12:16] == struct.pack("<I", zlib.crc32(head))
    assert FRAME[16:21] == b"hello"
    assert FRAME[21:] == struct.pack("<I", zlib.crc32(b"hello"))
    # the example of docs/board-protocol.md: HELLO, seq 1, empty payload
    hello = bp.encode_frame(bp.MsgType.HELLO, 1)
    assert (
        hello.hex(" ")
        == "a5 5a 01 01 01 00 00 00 00 00 00 00 "
        + " ".join(f"{b:02x}" for b in struct.pack("<I", zlib.crc32(hello[:12])))
        + " 00 00 00 00"
    )


def test_decoder_reassembles_byte_by_byte_and_reports_wanted():
    dec = bp.FrameDecoder()
    assert dec.wanted == bp.HEADER_SIZE
    items = []
    for i in range(len(FRAME)):
        items += dec.feed(FRAME[i : i + 1])
        if i == bp.HEADER_SIZE - 1:
            assert dec.wanted == 5 + bp.TRAILER_SIZE
    assert items == [bp.Frame(bp.MsgType.READ, 7, b"hello")]


def test_garbage_is_skipped_with_one_error_and_frames_survive():
    items = bp.FrameDecoder().feed(b"xyz\xa5" + FRAME + b"\x00\x01" + FRAME)
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["DecodeError", "Frame", "DecodeError", "Frame"]
    assert items[0].code == bp.ErrorCode.BAD_FRAME and items[0].seq is None


def test_trailing_start_byte_is_kept_for_the_next_feed():
    dec = bp.FrameDecoder()
    assert [i.code for i in dec.feed(b"junk" + FRAME[:1])] == [bp.ErrorCode.BAD_FRAME]
    assert dec.feed(FRAME[1:]) == [bp.Frame(bp.MsgType.READ, 7, b"hello")]


def test_corrupt_header_resyncs_corrupt_payload_reports_seq():
    bad_head = bytearray(FRAME)
    bad_head[9] ^= 0x40  # length field
    items = bp.FrameDecoder().feed(bytes(bad_head) + FRAME)
    assert isinstance(items[-1], bp.Frame)
    assert all(i.seq is None for i in items[:-1])
    bad_payload = bytearray(FRAME)
    bad_payload[17] ^= 1
    (err,) = bp.FrameDecoder().feed(bytes(bad_payload))
    assert (err.code, err.seq) == (bp.ErrorCode.BAD_CRC, 7)


def test_other_version_and_oversized_length_are_refused():
    head = bp._HEAD.pack(bp.MAGIC, 2, 1, 9, 0)
    v2 = head + struct.pack("<I", zlib.crc32(head)) + struct.pack("<I", 0)
    (err,) = bp.FrameDecoder().feed(v2)
    assert (err.code, err.seq) == (bp.ErrorCode.BAD_VERSION, 9)
    head = bp._HEAD.pack(bp.MAGIC, 1, 1, 4, 1000)
    big = head + struct.pack("<I", zlib.crc32(head))
    (err,) = bp.FrameDecoder(max_payload=100).feed(big)
    assert (err.code, err.seq) == (bp.ErrorCode.BAD_FRAME, 4)


def test_sequence_numbers_wrap_and_skip_zero():
    assert bp.next_seq(1) == 2
    assert bp.next_seq(bp.MAX_SEQ) == 1


def _hello() -> bp.HelloReply:
    return bp.HelloReply(
        board_id="b1",
        firmware="fw 2",
        rows=4,
        cols=6,
        mvm_shape=(4, 3),
        technology="pcm",
        capabilities=frozenset({"read", "mvm", "program"}),
        limits=SafetyLimits(max_voltage=3.0, max_pulse_count=77),
        g_min=1e-7,
        g_max=2.5e-5,
        v_read=0.2,
        set_pulse=(1.0, 5e-8),
        reset_pulse=(2.0, 5e-8),
        set_amplitude_range=(0.6, 1.5),
        read_lsb=1e-9,
        adc_lsb=2e-8,
        periphery={"dac_levels": 127},
    )


def _eq(a, b) -> bool:
    """Dataclass equality that compares arrays by dtype and value."""
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, bp.Selection):
            if x.kind != y.kind or not all(map(_same, x.arrays, y.arrays)):
                return False
        elif isinstance(x, np.ndarray):
            if not _same(x, y):
                return False
        elif x != y:
            return False
    return True


def _same(x, y) -> bool:
    return x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)


SEL = bp.Selection(bp.SelKind.INDEX, (np.array([3, 1, 2], "<u4"),))
MESSAGES = [
    bp.Hello(),
    _hello(),
    bp.ReadRequest(SEL, 0.2, raw=True),
    bp.ReadReply(np.arange(6, dtype="<f4")),
    bp.ReadReply(np.arange(6, dtype="<i4"), 1e-9),
    bp.PulseRequest(bp.Selection(), -1, np.array([1.5]), np.array([1e-7]), 3),
    bp.PulseReply(24, 1.2e-6),
    bp.MvmRequest(np.ones((2, 4), "<f4"), transpose=True, raw=True),
    bp.MvmReply(np.ones((2, 3), "<i2"), np.array([[1, 0, 1], [0, 0, 0]], bool), 2e-8),
    bp.ProgramRequest(SEL, np.array([1e-6, 2e-6, 3e-6], "<f4"), 1e-7, 20, 0.2),
    bp.ProgramReply(np.array([True, False]), np.array([3, 20], "<u4"), np.ones(2, "<f4"), 20),
    bp.TimeRequest(bp.TimeOp.SLEEP, 86400.0),
    bp.TimeReply(12.5, True),
    bp.ErrorReply(bp.ErrorCode.SAFETY_LIMIT, bp.MsgType.PULSE, "amplitude 9 V > 2.5 V"),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_message_round_trip(msg):
    assert _eq(type(msg).decode(msg.encode()), msg)


def test_request_and_reply_frames_round_trip():
    req = MESSAGES[2]
    (frame,) = bp.FrameDecoder().feed(bp.request_frame(req, 5))
    assert frame.type == bp.MsgType.READ and _eq(bp.decode_request(frame), req)
    reply = MESSAGES[3]
    (frame,) = bp.FrameDecoder().feed(bp.reply_frame(bp.MsgType.READ, 5, reply))
    assert frame.type == 0x82 and _eq(bp.decode_reply(bp.MsgType.READ, frame), reply)
    with pytest.raises(bp.ProtocolError) as exc:
        bp.decode_reply(bp.MsgType.MVM, frame)
    assert exc.value.code == bp.ErrorCode.BAD_FRAME
    with pytest.raises(bp.ProtocolError) as exc:
        bp.decode_request(bp.Frame(0x33, 1, b""))
    assert exc.value.code == bp.ErrorCode.UNKNOWN_COMMAND


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_writer_frame_is_the_frame_of_the_encoded_payload(msg):
    # the one-join frame (array bytes referenced, CRC over the parts in turn) is byte for
    # byte the frame around encode(); a non-contiguous, big-endian array is sent as LE
    assert msg.writer().frame(0x42, 9) == bp.encode_frame(0x42, 9, msg.encode())
    wide = np.arange(24, dtype=">f8").reshape(4, 6)[:, ::2]
    w = bp.Writer().pack("B", 1).array(wide)
    (frame,) = bp.FrameDecoder().feed(w.frame(0x42, 9))
    assert frame.crc == zlib.crc32(w.bytes()) and frame.payload == w.bytes()
    r = bp.Reader(frame.payload)
    assert r.one("B") == 1 and _same(r.array(), wide.astype("<f8"))


def test_frame_crc_follows_the_payload_and_is_not_compared():
    assert bp.Frame(1, 2, b"abc").crc == zlib.crc32(b"abc")
    assert bp.Frame(1, 2, b"abc", 5) == bp.Frame(1, 2, b"abc")


def test_reply_conversions_to_si():
    codes = bp.ReadReply(np.array([10, -2], "<i4"), 1e-9)
    np.testing.assert_allclose(codes.conductance(), [1e-8, -2e-9], rtol=1e-6)
    mvm = bp.MvmReply(np.array([[100]], "<i2"), np.zeros((1, 1), bool), 2e-8)
    np.testing.assert_allclose(mvm.currents(), [[2e-6]], rtol=1e-6)


def test_selection_encodings_resolve_to_the_same_devices():
    rows, cols = 5, 7
    flat = np.array([0, 8, 9, 34])
    mask = bp.Selection.from_flat(np.arange(0, 35, 2), 35)
    assert mask.kind == bp.SelKind.MASK
    np.testing.assert_array_equal(mask.flat(rows, cols), np.arange(0, 35, 2))
    index = bp.Selection.from_flat(flat[::-1], 35)
    assert index.kind == bp.SelKind.INDEX
    np.testing.assert_array_equal(index.flat(rows, cols), flat[::-1])
    rowcol = bp.Selection(bp.SelKind.ROWCOL, (np.array([0, 1, 1, 4]), np.array([0, 1, 2, 6])))
    np.testing.assert_array_equal(rowcol.flat(rows, cols), flat)
    assert bp.Selection.from_flat(None, 35).flat(rows, cols) is None


@pytest.mark.parametrize(
    "sel",
    [
        bp.Selection(bp.SelKind.INDEX, (np.array([35], "<u4"),)),
        bp.Selection(bp.SelKind.ROWCOL, (np.array([5]), np.array([0]))),
        bp.Selection(bp.SelKind.ROWCOL, (np.array([1, 2]), np.array([0]))),
        bp.Selection(bp.SelKind.MASK, (np.zeros(4, np.uint8),)),
        bp.Selection(bp.SelKind.INDEX, (np.array([0.5]),)),
    ],
)
def test_bad_selections_are_protocol_errors(sel):
    with pytest.raises(bp.ProtocolError) as exc:
        sel.flat(5, 7)
    assert exc.value.code == bp.ErrorCode.BAD_ARGUMENT


def test_truncated_and_trailing_payloads_are_bad_arguments():
    payload = MESSAGES[9].encode()
    for bad in (payload[:-1], payload + b"\x00", payload[:3]):
        with pytest.raises(bp.ProtocolError) as exc:
            bp.ProgramRequest.decode(bad)
        assert exc.value.code == bp.ErrorCode.BAD_ARGUMENT


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_fuzz_random_bytes_never_raise_and_never_hoard(chunks):
    dec = bp.FrameDecoder(max_payload=1 << 16)
    for chunk in chunks:
        for item in dec.feed(chunk):
            assert isinstance(item, bp.DecodeError | bp.Frame)
        assert dec.wanted >= 1
        # without a header vouched for by its CRC, at most a partial header is kept
        assert len(dec._buf) < bp.HEADER_SIZE or dec._buf[:2] == bp.MAGIC


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=40),
    st.integers(0, len(FRAME) * 8 - 1),
    st.integers(1, 9),
    st.binary(max_size=40),
)
def test_fuzz_corrupt_frame_never_decodes_and_the_next_one_does(junk, bit, cut, junk2):
    bad = bytearray(FRAME)
    bad[bit // 8] ^= 1 << (bit % 8)
    stream = junk + bytes(bad) + junk2 + FRAME
    dec = bp.FrameDecoder()
    items = []
    for start in range(0, len(stream), cut):  # arbitrary chunking
        items += dec.feed(stream[start : start + cut])
    frames = [i for i in items if isinstance(i, bp.Frame)]
    assert frames[-1] == bp.Frame(bp.MsgType.READ, 7, b"hello")
    assert all(f == frames[-1] for f in frames)  # junk may contain no frame, or FRAME


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(bp.MESSAGES)), st.binary(max_size=80))
def test_fuzz_request_payloads_only_raise_protocol_errors(msg_type, payload):
    try:
        bp.decode_request(bp.Frame(msg_type, 1, payload))
    except bp.ProtocolError as exc:
        assert exc.code == bp.ErrorCode.BAD_ARGUMENT
