"""Fault injection for the emulated board and instruments.

Real links lose, delay and corrupt bytes, and real instruments sometimes answer
with an error. The emulated servers reproduce that on purpose so the drivers'
retry, resynchronisation and reconnect paths are exercised by tests. A
:class:`FaultPlan` says *what* to inject (rates, delays, a seed); a
:class:`FaultInjector` draws the seeded decisions for one server, thread-safe,
so a faulty run is reproducible from its seed.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, fields

from xbarlab.errors import ConfigError

#: ``FaultPlan.parse`` keys and the fields they set.
_KEYS = {
    "latency": "latency_s",
    "jitter": "jitter_s",
    "drop": "drop_rate",
    "corrupt": "corrupt_rate",
    "disconnect": "disconnect_after",
    "error": "error_rate",
    "seed": "seed",
}


@dataclass(frozen=True)
class FaultPlan:
    """What a server does wrong, on purpose.

    Parameters
    ----------
    latency_s : float
        Extra delay before each reply, in s (>= 0).
    jitter_s : float
        Uniform random extra delay in [0, jitter_s] s before each reply (>= 0).
    drop_rate : float
        Probability in [0, 1] that a reply (frame or line) is not sent at all.
    corrupt_rate : float
        Probability in [0, 1] that one bit of one byte of a reply is flipped.
        The last byte (line terminator, or the last CRC byte) is never touched, so
        a corrupted reply still ends where the reader expects it to end.
    disconnect_after : int or None
        Close the connection after this many replies have been sent (once per
        server; later connections are left alone). None: never.
    error_rate : float
        Probability in [0, 1] that an instrument answers a command with an error
        (used by the instrument servers; the board ignores it).
    seed : int
        Seed of the fault decisions, so a faulty run can be repeated exactly.
    """

    latency_s: float = 0.0
    jitter_s: float = 0.0
    drop_rate: float = 0.0
    corrupt_rate: float = 0.0
    disconnect_after: int | None = None
    error_rate: float = 0.0
    seed: int = 0

    def __post_init__(self):
        for name in ("latency_s", "jitter_s"):
            value = getattr(self, name)
            if not value >= 0.0:
                raise ConfigError(f"FaultPlan.{name} = {value!r} s must be >= 0")
        for name in ("drop_rate", "corrupt_rate", "error_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"FaultPlan.{name} = {value!r} must be in [0, 1]")
        if self.disconnect_after is not None and self.disconnect_after < 1:
            raise ConfigError(
                f"FaultPlan.disconnect_after = {self.disconnect_after!r} must be >= 1 or None"
            )

    @classmethod
    def parse(cls, text: str) -> FaultPlan:
        """Build a plan from ``"drop=0.01,corrupt=0.01,latency=0.002,disconnect=50,seed=3"``.

        Keys: latency (s), jitter (s), drop, corrupt, disconnect (replies), error,
        seed. An empty string gives the fault-free plan.
        """
        values: dict[str, object] = {}
        types = {f.name: f.type for f in fields(cls)}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or key not in _KEYS:
                raise ConfigError(
                    f"fault option {item!r} is not key=value with key in {sorted(_KEYS)}"
                )
            name = _KEYS[key]
            integer = "int" in str(types[name])
            try:
                values[name] = int(raw) if integer else float(raw)
            except ValueError:
                kind = "an integer" if integer else "a number"
                raise ConfigError(f"fault option {key} = {raw!r} is not {kind}") from None
        return cls(**values)

    @property
    def active(self) -> bool:
        """True if this plan injects anything at all."""
        return self != FaultPlan(seed=self.seed)


class FaultInjector:
    """Seeded, thread-safe fault decisions of one server.

    Parameters
    ----------
    plan : FaultPlan
        What to inject. All connections of a server share one injector, so the
        decision sequence depends only on the seed and the order of replies.
    """

    def __init__(self, plan: FaultPlan | None = None):
        self.plan = plan or FaultPlan()
        self._rng = random.Random(self.plan.seed)
        self._lock = threading.Lock()
        self._sent = 0
        self._disconnected = False

    def delay_s(self) -> float:
        """Delay before the next reply, in s: latency plus uniform jitter."""
        if self.plan.jitter_s == 0.0:
            return self.plan.latency_s
        with self._lock:
            return self.plan.latency_s + self._rng.uniform(0.0, self.plan.jitter_s)

    def decide(self, reply: bytes) -> bytes | None:
        """The bytes to send for ``reply``: None (dropped), corrupted or unchanged."""
        plan = self.plan
        if plan.drop_rate == 0.0 and plan.corrupt_rate == 0.0:
            return reply
        with self._lock:
            if self._rng.random() < plan.drop_rate:
                return None
            if len(reply) > 1 and self._rng.random() < plan.corrupt_rate:
                data = bytearray(reply)
                data[self._rng.randrange(len(data) - 1)] ^= 1 << self._rng.randrange(8)
                return bytes(data)
        return reply

    def disconnect_now(self) -> bool:
        """Count one sent reply; True exactly once, when the connection must close."""
        if self.plan.disconnect_after is None:
            return False
        with self._lock:
            self._sent += 1
            if not self._disconnected and self._sent >= self.plan.disconnect_after:
                self._disconnected = True
                return True
        return False

    def error_now(self) -> bool:
        """True if an instrument should answer this command with an error."""
        if self.plan.error_rate == 0.0:
            return False
        with self._lock:
            return self._rng.random() < self.plan.error_rate
