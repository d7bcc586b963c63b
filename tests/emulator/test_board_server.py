"""The emulated board over loopback TCP: commands, limits, retries de-duplicated, garbage."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab import board_protocol as bp
from xbarlab.emulator import PCMArray
from xbarlab.emulator.board_server import BoardConnection, BoardStats, EmulatedBoard
from xbarlab.limits import SafetyLimits

ALL = bp.Selection()


@pytest.fixture
def board():
    before = set(threading.enumerate())
    with EmulatedBoard(PCMArray(8, 6, seed=2), limits=SafetyLimits(max_voltage=2.0)) as b:
        yield b
    assert set(threading.enumerate()) <= before


class Link:
    """A raw socket speaking frames, for tests that look at the bytes."""

    def __init__(self, board: EmulatedBoard):
        self.sock = socket.create_connection(board.server.address, timeout=2)
        self.decoder = bp.FrameDecoder()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self):
        while True:
            items = self.decoder.feed(self.sock.recv(1 << 16))
            if items:
                (item,) = items
                return item

    def ask(self, request, seq: int):
        self.send(bp.request_frame(request, seq))
        frame = self.receive()
        assert frame.seq == seq
        return bp.decode_reply(bp.request_type(request), frame)


@pytest.fixture
def link(board):
    link = Link(board)
    yield link
    link.sock.close()


def test_hello_describes_the_board(board, link):
    hello = link.ask(bp.Hello(), 1)
    assert (hello.rows, hello.cols, hello.mvm_shape) == (8, 6, (8, 6))
    assert hello.limits.max_voltage == 2.0
    assert {"read", "pulse", "mvm", "program", "virtual_time"} <= hello.capabilities
    assert hello.protocol_version == bp.VERSION
    assert hello.g_min < hello.g_max == board.chip.params.g_max


def test_read_pulse_mvm_time_act_on_the_chip(board, link):
    twin = PCMArray(8, 6, seed=2)
    sel = bp.Selection.from_flat(np.array([5, 7, 9]), 48)
    reply = link.ask(bp.PulseRequest(sel, 1, np.array([1.0]), np.array([5e-8]), 2), 1)
    twin.pulse(np.array([5, 7, 9]), np.array([1.0]), np.array([5e-8]), 2)
    assert reply.devices == 3 and reply.duration > 0
    np.testing.assert_array_equal(board.chip.pulse_count.reshape(-1)[[5, 7, 9]], 2)
    assert board.chip.pulse_count.sum() == 6
    np.testing.assert_array_equal(link.ask(bp.ReadRequest(ALL, 0.2), 2).values, twin.read())
    raw = link.ask(bp.ReadRequest(ALL, 0.2, raw=True), 3)
    assert raw.values.dtype == np.int32
    np.testing.assert_allclose(raw.conductance(), twin.read(), atol=raw.lsb)
    x = np.full((3, 8), 0.1, np.float32)
    mvm = link.ask(bp.MvmRequest(x), 4)
    np.testing.assert_array_equal(mvm.values, twin.mvm(x)[0])
    assert mvm.saturated.shape == (3, 6)
    now = link.ask(bp.TimeRequest(), 5).now
    assert link.ask(bp.TimeRequest(bp.TimeOp.SLEEP, 3600.0), 6).now == pytest.approx(now + 3600)


def test_repeated_pulse_is_answered_from_the_cache(board, link):
    frame = bp.request_frame(bp.PulseRequest(ALL, 1, np.array([1.0]), np.array([5e-8])), 42)
    replies = []
    for _ in range(3):
        link.send(frame)
        replies.append(link.receive())
    assert replies[0] == replies[1] == replies[2]
    assert board.chip.pulse_count.max() == 1 and board.firmware.replays == 2
    # same seq, different payload: a new request (e.g. a new session), so it acts
    link.ask(bp.PulseRequest(ALL, 1, np.array([1.1]), np.array([5e-8])), 42)
    assert board.chip.pulse_count.min() == 2


def test_board_limits_refuse_and_nothing_acts(board, link):
    before = board.chip.get_state()
    for request in (
        bp.PulseRequest(ALL, 1, np.array([2.5]), np.array([5e-8])),
        bp.PulseRequest(ALL, 1, np.array([1.0]), np.array([1.0])),
        bp.ReadRequest(ALL, 0.5),
        bp.MvmRequest(np.full((1, 8), 0.4, np.float32)),
    ):
        reply = link.ask(request, 7)
        assert isinstance(reply, bp.ErrorReply) and reply.code == bp.ErrorCode.SAFETY_LIMIT
    assert board.chip.pulse_count.sum() == 0
    np.testing.assert_array_equal(board.chip.get_state()["g_prog"], before["g_prog"])


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (bp.PulseRequest(ALL, 0, np.array([1.0]), np.array([5e-8])), "BAD_ARGUMENT"),
        (bp.PulseRequest(ALL, 1, np.ones(3), np.array([5e-8])), "BAD_ARGUMENT"),
        (
            bp.PulseRequest(
                bp.Selection(bp.SelKind.INDEX, (np.array([1, 1], "<u4"),)),
                1,
                np.array([1.0]),
                np.array([5e-8]),
            ),
            "BAD_ARGUMENT",
        ),
        (
            bp.ReadRequest(bp.Selection(bp.SelKind.INDEX, (np.array([48], "<u4"),)), 0.2),
            "BAD_ARGUMENT",
        ),
        (bp.MvmRequest(np.zeros((1, 5), np.float32)), "BAD_ARGUMENT"),
        (bp.TimeRequest(bp.TimeOp.SLEEP, -1.0), "BAD_ARGUMENT"),
    ],
)
def test_bad_arguments_get_error_replies(board, link, request_, code):
    reply = link.ask(request_, 9)
    assert isinstance(reply, bp.ErrorReply) and reply.code.name == code
    assert board.chip.pulse_count.sum() == 0


def test_unknown_command_garbage_and_bad_crc_then_keeps_serving(board, link):
    link.send(bp.encode_frame(0x3C, 11, b""))
    error = bp.ErrorReply.decode(link.receive().payload)
    assert error.code == bp.ErrorCode.UNKNOWN_COMMAND
    link.send(b"\x00garbage\xff")
    frame = link.receive()
    assert (frame.type, frame.seq) == (bp.MsgType.ERROR, 0)
    assert bp.ErrorReply.decode(frame.payload).code == bp.ErrorCode.BAD_FRAME
    corrupt = bytearray(bp.request_frame(bp.ReadRequest(ALL, 0.2), 12))
    corrupt[-5] ^= 0x10
    link.send(bytes(corrupt))
    frame = link.receive()
    assert frame.seq == 12 and bp.ErrorReply.decode(frame.payload).code == bp.ErrorCode.BAD_CRC
    assert link.ask(bp.Hello(), 13).rows == 8


def test_program_converges_on_the_board(board, link):
    idx = np.array([0, 3, 10, 20, 33, 47])
    targets = np.linspace(4e-6, 1.5e-5, idx.size).astype(np.float32)
    request = bp.ProgramRequest(bp.Selection.from_flat(idx, 48), targets, 5e-7, 60, 0.2)
    reply = link.ask(request, 21)
    assert reply.converged.all() and 1 <= reply.iterations <= 60
    assert np.all(np.abs(reply.g_final - targets) <= 5e-7)
    np.testing.assert_array_equal(board.chip.pulse_count.reshape(-1)[idx], reply.pulses)
    assert board.chip.pulse_count.sum() == reply.pulses.sum()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=50), max_size=10))
def test_fuzz_connection_answers_garbage_with_errors_and_keeps_serving(chunks):
    from xbarlab.emulator.board_firmware import BoardFirmware

    conn = BoardConnection(BoardFirmware(_FUZZ_CHIP), BoardStats())
    for chunk in chunks:
        for reply in conn.feed(chunk):
            (frame,) = bp.FrameDecoder().feed(reply)
            assert frame.type == bp.MsgType.ERROR
    # flush a possibly half-read header, then a HELLO is answered normally
    replies = conn.feed(b"\x00" * 64 + bp.request_frame(bp.Hello(), 99))
    frames = [f for r in replies for f in bp.FrameDecoder().feed(r)]
    assert frames[-1].seq == 99 and frames[-1].type == bp.MsgType.HELLO | bp.REPLY_BIT


_FUZZ_CHIP = PCMArray(2, 2, seed=0)
