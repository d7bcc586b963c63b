"""LoopbackServer and fault injection: binding, threads joined on stop, seeded faults."""

from __future__ import annotations

import socket
import threading

import pytest

from xbarlab.emulator.faults import FaultInjector, FaultPlan
from xbarlab.emulator.tcp_server import LoopbackServer
from xbarlab.errors import ConfigError


class LineEcho:
    """Echoes every complete line back in upper case."""

    def __init__(self):
        self.buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        return [line.upper() + b"\n" for line in lines]


def _ask(sock: socket.socket, line: bytes) -> bytes:
    sock.sendall(line)
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = sock.recv(1024)
        if not chunk:
            return reply
        reply += chunk
    return reply


def test_server_binds_loopback_serves_and_joins_threads():
    before = set(threading.enumerate())
    with LoopbackServer(LineEcho) as server:
        assert server.address[0] == "127.0.0.1"
        assert server.port > 0
        clients = [socket.create_connection(server.address, timeout=2) for _ in range(3)]
        for i, client in enumerate(clients):
            assert _ask(client, f"hi {i}\n".encode()) == f"HI {i}\n".encode()
        assert len(set(threading.enumerate()) - before) >= 4  # accept + 3 connections
    for client in clients:
        client.close()
    assert set(threading.enumerate()) <= before
    server.stop()  # idempotent
    assert set(threading.enumerate()) <= before


def test_stopped_server_refuses_connections():
    server = LoopbackServer(LineEcho).start()
    address = server.address
    server.stop()
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=0.5).close()


def test_disconnect_after_closes_once():
    with LoopbackServer(LineEcho, faults=FaultPlan(disconnect_after=2)) as server:
        with socket.create_connection(server.address, timeout=2) as client:
            assert _ask(client, b"a\n") == b"A\n"
            assert _ask(client, b"b\n") == b"B\n"
            assert client.recv(16) == b""  # closed by the server after 2 replies
        with socket.create_connection(server.address, timeout=2) as client:
            assert [_ask(client, b"c\n") for _ in range(4)] == [b"C\n"] * 4


def test_dropped_reply_is_never_sent():
    with LoopbackServer(LineEcho, faults=FaultPlan(drop_rate=1.0)) as server:
        with socket.create_connection(server.address, timeout=0.3) as client:
            client.sendall(b"x\n")
            with pytest.raises(TimeoutError):
                client.recv(16)


def _decisions(plan: FaultPlan, n: int = 2000) -> list[bytes | None]:
    injector = FaultInjector(plan)
    return [injector.decide(b"0123456789\n") for _ in range(n)]


def test_faults_are_seeded_and_at_the_planned_rates():
    plan = FaultPlan(drop_rate=0.1, corrupt_rate=0.2, seed=5)
    first = _decisions(plan)
    assert first == _decisions(plan)
    assert first != _decisions(FaultPlan(drop_rate=0.1, corrupt_rate=0.2, seed=6))
    dropped = sum(d is None for d in first)
    corrupted = [d for d in first if d is not None and d != b"0123456789\n"]
    assert 140 <= dropped <= 260  # 2000 * 0.1, about 5 sigma
    assert 260 <= len(corrupted) <= 460  # 1800 * 0.2
    for reply in corrupted:
        diff = [a ^ b for a, b in zip(reply, b"0123456789\n", strict=True)]
        assert reply.endswith(b"\n")  # the terminator is never touched
        assert sum(bin(x).count("1") for x in diff) == 1  # exactly one bit flipped


def test_delay_and_error_draws():
    injector = FaultInjector(FaultPlan(latency_s=0.01, jitter_s=0.005, error_rate=0.5, seed=1))
    delays = [injector.delay_s() for _ in range(200)]
    assert min(delays) >= 0.01 and max(delays) <= 0.015 and len(set(delays)) > 100
    errors = sum(injector.error_now() for _ in range(1000))
    assert 420 <= errors <= 580
    assert FaultInjector().decide(b"abc") == b"abc"


def test_fault_plan_parse_and_validation():
    plan = FaultPlan.parse(
        "drop=0.01, corrupt=0.02,latency=0.002,jitter=0.001,disconnect=50,seed=3"
    )
    assert plan == FaultPlan(
        latency_s=0.002,
        jitter_s=0.001,
        drop_rate=0.01,
        corrupt_rate=0.02,
        disconnect_after=50,
        seed=3,
    )
    assert FaultPlan.parse("") == FaultPlan()
    assert plan.active and not FaultPlan(seed=4).active
    with pytest.raises(ConfigError, match="bogus"):
        FaultPlan.parse("bogus=1")
    with pytest.raises(ConfigError, match="disconnect"):
        FaultPlan.parse("disconnect=2.5")
    with pytest.raises(ConfigError, match="drop_rate"):
        FaultPlan(drop_rate=1.5)
    with pytest.raises(ConfigError, match="latency_s"):
        FaultPlan(latency_s=-1)
