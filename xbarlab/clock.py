"""Clocks: real time on hardware, virtual time on the emulator.

Procedures never call :func:`time.sleep`; they ask the backend's clock. On the
emulator the clock is virtual, so ``sleep(86400)`` returns at once and a one-day
drift campaign runs in seconds. Times are float64 seconds.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

from xbarlab.errors import ConfigError


@runtime_checkable
class Clock(Protocol):
    """Time source of a backend."""

    def now(self) -> float:
        """Seconds since the clock's epoch (float64)."""
        ...

    def sleep(self, dt: float) -> None:
        """Wait dt seconds (dt >= 0)."""
        ...


def check_duration(dt: float) -> float:
    """``dt`` as a float number of seconds >= 0, or ConfigError naming the value.

    Every clock's ``sleep`` (and a backend's board-clock sleep) checks its argument with
    it, so a bad duration gives the same error on every backend.
    """
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise ConfigError(f"sleep duration must be a number of seconds, got {dt!r}") from None
    if not 0 <= dt < float("inf"):  # also rejects NaN
        raise ConfigError(f"sleep duration must be finite and >= 0 s, got {dt!r}")
    return dt


class RealClock:
    """Wall-clock time (monotonic), with its epoch at construction."""

    def __init__(self):
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def sleep(self, dt: float) -> None:
        time.sleep(check_duration(dt))


class VirtualClock:
    """Simulated time: ``sleep`` and ``advance`` move time forward instantly.

    Thread-safe, so a GUI thread may read ``now()`` while a worker advances it.
    """

    def __init__(self, start: float = 0.0):
        self._t = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._t

    def sleep(self, dt: float) -> None:
        self.advance(dt)

    def restore(self, t: float) -> None:
        """Put the clock at time t (s): only for restoring a saved emulator state. In use
        virtual time only moves forward."""
        with self._lock:
            self._t = float(t)

    def advance(self, dt: float) -> float:
        """Move time forward by dt seconds and return the new time."""
        dt = check_duration(dt)
        with self._lock:
            self._t += dt
            return self._t
