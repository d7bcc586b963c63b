"""EmulatedBoard(lock=...): the board serialises its requests on a lock it is given."""

from __future__ import annotations

import threading

from xbarlab import board_protocol as bp
from xbarlab.emulator import PCMArray
from xbarlab.emulator.board_server import EmulatedBoard


def test_board_requests_wait_for_the_shared_lock():
    shared = threading.Lock()
    board = EmulatedBoard(PCMArray(4, 4, seed=1), lock=shared)  # not started: no sockets
    frame = bp.FrameDecoder().feed(bp.request_frame(bp.TimeRequest(), 1))[0]
    done = threading.Event()
    worker = threading.Thread(target=lambda: (board.firmware.handle(frame), done.set()))
    with shared:  # another way into the chip (the lab's instruments) is busy
        worker.start()
        assert not done.wait(0.05), "the board answered while the shared lock was held"
    worker.join(timeout=5)
    assert done.is_set()


def test_each_board_has_its_own_lock_by_default():
    chip = PCMArray(4, 4, seed=1)
    assert EmulatedBoard(chip).firmware.lock is not EmulatedBoard(chip).firmware.lock
