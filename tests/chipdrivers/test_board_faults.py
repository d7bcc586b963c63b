"""Reliability of the board backend: a campaign through dropped, corrupted and delayed
replies and a disconnect ends exactly as without faults, and no pulse is applied twice."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from xbarlab.chipdrivers.board import BoardCrossbar
from xbarlab.emulator import PCMArray
from xbarlab.emulator.board_server import EmulatedBoard
from xbarlab.emulator.faults import FaultInjector, FaultPlan
from xbarlab.errors import InstrumentError
from xbarlab.instruments.board import BoardClient

SHAPE = (12, 10)
FAULTS = FaultPlan(drop_rate=0.01, corrupt_rate=0.01, jitter_s=0.002, disconnect_after=40, seed=4)


def _campaign(board: EmulatedBoard) -> tuple[list[np.ndarray], int, BoardClient]:
    """Program-and-read campaign: per step a pulse, a read and an MVM; then board-side
    PROGRAM and a final read. Returns the reads, the pulses requested and the client."""
    client = BoardClient(board.url, timeout_s=0.2, retries=8)
    xbar = BoardCrossbar(client)
    rng = np.random.default_rng(11)
    reads, requested = [], 0
    set_amp = xbar.info.set_pulse.amplitude
    for _ in range(60):
        mask = rng.random(SHAPE) < 0.3
        count = int(rng.integers(1, 3))
        xbar.pulse(mask, polarity=1, amplitude=set_amp, width=5e-8, count=count)
        requested += count * int(mask.sum())
        reads.append(xbar.read(mask))
        reads.append(xbar.mvm(rng.uniform(0, 0.2, SHAPE[0]).astype(np.float32)))
    targets = rng.uniform(4e-6, 1.6e-5, SHAPE).astype(np.float32)
    reply = xbar.program(targets, None, tolerance=5e-7, max_iterations=40)
    requested += int(reply.pulses.sum())
    reads.append(xbar.read())
    xbar.close()
    return reads, requested, client


def test_faulty_link_gives_the_fault_free_result_and_no_double_pulse():
    before = set(threading.enumerate())
    with EmulatedBoard(PCMArray(*SHAPE, seed=9)) as clean:
        want, requested, _ = _campaign(clean)
        want_counts = clean.chip.pulse_count.copy()
    with EmulatedBoard(PCMArray(*SHAPE, seed=9), faults=FAULTS) as faulty:
        got, requested_faulty, client = _campaign(faulty)
        got_counts = faulty.chip.pulse_count.copy()
        replays = faulty.firmware.replays
    assert set(threading.enumerate()) <= before
    assert client.resends >= 3 and replays >= 1  # the faults really happened and were retried
    assert requested_faulty == requested
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got_counts, want_counts)
    assert int(got_counts.sum()) == requested  # every requested pulse applied exactly once


def test_exhausted_retries_name_the_operation_and_the_campaign_resumes():
    with EmulatedBoard(PCMArray(4, 4, seed=1)) as board:
        xbar = BoardCrossbar(BoardClient(board.url, timeout_s=0.05, retries=2))
        board.server.injector = FaultInjector(FaultPlan(drop_rate=1.0))
        with pytest.raises(InstrumentError, match=r"PULSE failed after 3 attempts.*no reply"):
            xbar.pulse(None, polarity=1, amplitude=1.0, width=5e-8)
        assert board.chip.pulse_count.max() == 1  # acted once, the retries were answered
        assert board.firmware.replays == 2  # from the cache
        board.server.injector = FaultInjector()  # the link recovers: resume
        assert xbar.read().shape == (4, 4)
        xbar.close()


def test_dead_board_gives_an_error_naming_the_operation():
    board = EmulatedBoard(PCMArray(4, 4, seed=1)).start()
    xbar = BoardCrossbar(BoardClient(board.url, timeout_s=0.1, retries=1))
    board.stop()
    with pytest.raises(InstrumentError, match="READ failed after 2 attempts.*connection"):
        xbar.read()
    xbar.close()


def test_unreachable_board_is_an_instrument_error():
    board = EmulatedBoard(PCMArray(2, 2)).start()
    url = board.url
    board.stop()
    with pytest.raises(InstrumentError, match="cannot open board"):
        BoardClient(url, timeout_s=0.1)
