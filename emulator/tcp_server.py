"""A small threaded TCP server for the emulated board and instruments.

Each emulated device is a *connection handler*: it is fed the bytes that
arrived and returns the replies to send (whole frames for the board, whole
lines for SCPI/TSP instruments). :class:`LoopbackServer` owns the sockets and
threads, applies the :class:`~xbarlab.emulator.faults.FaultPlan` to every reply
and, on :meth:`LoopbackServer.stop`, closes every socket and joins every thread,
so tests leave nothing behind. It binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Protocol

from xbarlab.emulator.faults import FaultInjector, FaultPlan
from xbarlab.errors import ConfigError

#: How often (s) the accept loop looks at the stop flag.
_POLL_S = 0.05
#: Bytes asked of the socket per recv call.
_CHUNK = 1 << 16


class ConnectionHandler(Protocol):
    """One connection's protocol state: bytes in, whole replies out."""

    def feed(self, data: bytes) -> list[bytes]:
        """Consume received bytes; return the replies to send, in order."""


class LoopbackServer:
    """Threaded TCP server: one thread per connection, all joined on :meth:`stop`.

    Parameters
    ----------
    handler_factory : callable
        Called once per accepted connection; returns a :class:`ConnectionHandler`.
        Handlers that model instrument errors consult :attr:`injector`
        (``injector.error_now()``), e.g. ``LoopbackServer(lambda: Handler(srv.injector))``
        with ``srv`` bound before :meth:`start`.
    host : str
        Interface to bind, "127.0.0.1" by default (never exposed to the network
        unless asked for).
    port : int
        TCP port; 0 picks a free one (read it from :attr:`port`).
    faults : FaultPlan or None
        Faults applied to every reply (delay, drop, corruption, one disconnect).
    """

    def __init__(
        self,
        handler_factory: Callable[[], ConnectionHandler],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
    ):
        if not 0 <= port <= 65535:
            raise ConfigError(f"port = {port!r} must be in 0..65535 (0 picks a free port)")
        self._factory = handler_factory
        self._host = host
        self._requested_port = port
        self.injector = FaultInjector(faults)
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self.address: tuple[str, int] = (host, port)

    @property
    def port(self) -> int:
        """The bound TCP port (valid after :meth:`start`)."""
        return self.address[1]

    def start(self) -> LoopbackServer:
        """Bind, listen and start accepting; returns self."""
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self._host, self._requested_port))
        except OSError as exc:
            listener.close()
            raise ConfigError(
                f"cannot bind {self._host}:{self._requested_port}: {exc}; "
                "use port=0 for a free port"
            ) from None
        listener.listen(8)
        listener.settimeout(_POLL_S)
        self._listener = listener
        self.address = listener.getsockname()[:2]
        self._stop.clear()
        self._spawn(self._accept_loop, "accept")
        return self

    def stop(self) -> None:
        """Close every socket and join every thread; safe to call twice."""
        self._stop.set()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            _shutdown(conn)
        while True:
            with self._lock:
                threads = [t for t in self._threads if t is not threading.current_thread()]
                self._threads = []
            if not threads:
                break
            for thread in threads:
                thread.join()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _spawn(self, target, name: str, *args) -> None:
        thread = threading.Thread(
            target=target, args=args, name=f"LoopbackServer-{name}", daemon=False
        )
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stop.is_set():
                    conn.close()
                    return
                self._connections.add(conn)
            self._spawn(self._serve, "conn", conn)

    def _serve(self, conn: socket.socket) -> None:
        handler = self._factory()
        try:
            while not self._stop.is_set():
                try:
                    data = conn.recv(_CHUNK)
                except OSError:
                    return
                if not data:
                    return
                for reply in handler.feed(data):
                    if not self._send(conn, reply):
                        return
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()

    def _send(self, conn: socket.socket, reply: bytes) -> bool:
        """Send one reply through the fault injector; False if the connection is over."""
        delay = self.injector.delay_s()
        if delay > 0.0:
            time.sleep(delay)
        data = self.injector.decide(reply)
        try:
            if data is not None:
                conn.sendall(data)
        except OSError:
            return False
        if self.injector.disconnect_now():
            _shutdown(conn)
            return False
        return True


def _shutdown(conn: socket.socket) -> None:
    """Wake a thread blocked in recv on ``conn`` (it then closes the socket)."""
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
