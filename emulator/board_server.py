"""The emulated test board on a TCP socket: firmware behind a LoopbackServer.

:class:`EmulatedBoard` is what tests and ``xbarlab emulate serve`` start: a
:class:`~xbarlab.emulator.board_firmware.BoardFirmware` over an emulated chip,
served on 127.0.0.1 with optional fault injection. Its :attr:`EmulatedBoard.url`
is the pyserial URL a driver opens (``socket://127.0.0.1:PORT``).
"""

from __future__ import annotations

import threading

from xbarlab import board_protocol as bp
from xbarlab.emulator.board_firmware import BoardFirmware
from xbarlab.emulator.faults import FaultPlan
from xbarlab.emulator.pcm import PCMArray
from xbarlab.emulator.rram import RRAMArray
from xbarlab.emulator.tcp_server import LoopbackServer
from xbarlab.emulator.warmup import warm_up
from xbarlab.limits import SafetyLimits


class BoardConnection:
    """One connection: decodes frames, answers requests, answers garbage with ERROR.

    A frame that fails a check is answered with ERROR (BAD_FRAME, BAD_CRC or
    BAD_VERSION) carrying its sequence number when the header was readable, else 0;
    the connection keeps serving.
    """

    def __init__(self, firmware: BoardFirmware, stats: BoardStats):
        self._firmware = firmware
        self._stats = stats
        self._decoder = bp.FrameDecoder()

    def feed(self, data: bytes) -> list[bytes]:
        self._stats.add(len(data))
        replies = []
        for item in self._decoder.feed(data):
            if isinstance(item, bp.Frame):
                replies.append(self._firmware.handle(item))
            else:
                error = bp.ErrorReply(item.code, 0, item.detail)
                replies.append(bp.reply_frame(0, item.seq or 0, error))
        return replies


class BoardStats:
    """Bytes the board received, over all connections (tests prove nothing was sent)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.bytes_received = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.bytes_received += n


class EmulatedBoard:
    """An emulated test board served over loopback TCP.

    Parameters
    ----------
    chip : PCMArray or RRAMArray
        The emulated array on the board (an RRAM board passes pulse polarity on).
    limits : SafetyLimits, optional
        The board's own safety limits (HELLO reports them; requests beyond are refused).
    faults : FaultPlan, optional
        Faults applied to the board's replies.
    host, port : str, int
        Where to listen; 127.0.0.1 and a free port by default.
    lock : threading.Lock, optional
        Serialises the board's requests; give the lock shared by every other way into
        the same chip (the emulated lab's instruments). A new lock by default.
    """

    def __init__(
        self,
        chip: PCMArray | RRAMArray,
        *,
        limits: SafetyLimits | None = None,
        faults: FaultPlan | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        lock: threading.Lock | None = None,
    ):
        self.chip = chip
        self.firmware = BoardFirmware(chip, limits, lock=lock)
        self.stats = BoardStats()
        self.server = LoopbackServer(
            lambda: BoardConnection(self.firmware, self.stats), host=host, port=port, faults=faults
        )

    @property
    def url(self) -> str:
        """pyserial URL of the board, e.g. ``socket://127.0.0.1:40123``."""
        host, port = self.server.address
        return f"socket://{host}:{port}"

    def start(self) -> EmulatedBoard:
        warm_up()  # compiled kernels before the first request: a client would time out
        self.server.start()
        return self

    def stop(self) -> None:
        """Close every connection and join the server's threads (idempotent)."""
        self.server.stop()

    def __enter__(self) -> EmulatedBoard:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
