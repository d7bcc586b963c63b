"""A small typed event bus: progress, record and status events.

Procedures emit events; the CLI, the GUI and the run store subscribe to the same
stream. Subscribers are called synchronously in the emitting thread, in
subscription order; a GUI re-posts them to its own thread. A failing subscriber
does not stop the procedure or the other subscribers: its exception is logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Base class of all events. ``source`` names the emitting procedure or run."""

    source: str = ""


@dataclass(frozen=True)
class Progress(Event):
    """``done`` of ``total`` units of work finished; ``message`` says which step."""

    done: int = 0
    total: int = 0
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass(frozen=True)
class Record(Event):
    """A measured result of one step: ``data`` maps names to numbers or arrays (SI units)."""

    step_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Status(Event):
    """A change of run state, e.g. "running", "paused", "aborted", "completed", "failed"."""

    state: str = ""
    message: str = ""


Subscriber = Callable[[Event], None]


class EventBus:
    """Delivers events to subscribers, optionally filtered by event type."""

    def __init__(self):
        self._subs: list[tuple[Subscriber, tuple[type, ...]]] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Subscriber, *types: type[Event]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event (or only those of ``types``).

        Returns a function that removes this subscription.
        """
        entry = (callback, types or (Event,))
        with self._lock:
            self._subs.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._subs:
                    self._subs.remove(entry)

        return unsubscribe

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every matching subscriber."""
        with self._lock:
            subs = list(self._subs)
        for callback, types in subs:
            if isinstance(event, types):
                try:
                    callback(event)
                except Exception:
                    log.exception("event subscriber %r failed on %r", callback, event)
