"""The event bus: delivery, filtering, unsubscribe, failing subscribers; event types."""

from __future__ import annotations

import dataclasses
import logging
import threading

import pytest

from xbarlab.events import Event, EventBus, Progress, Record, Status


def test_progress_fraction():
    assert Progress("p", 3, 4).fraction == 0.75
    assert Progress("p", 0, 0).fraction == 0.0
    assert Progress("p", 5, 5, "done").fraction == 1.0


def test_events_are_frozen_and_typed():
    ev = Status("run-1", "paused", "user pressed pause")
    assert isinstance(ev, Event)
    assert (ev.source, ev.state, ev.message) == ("run-1", "paused", "user pressed pause")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.state = "running"


def test_record_data_is_not_shared_between_instances():
    a, b = Record("x", "s1"), Record("x", "s2")
    a.data["g"] = 1.0
    assert b.data == {}


def test_subscribers_receive_every_event_in_subscription_order():
    bus, got = EventBus(), []
    bus.subscribe(lambda e: got.append(("a", e)))
    bus.subscribe(lambda e: got.append(("b", e)))
    p, s = Progress("x", 1, 2), Status("x", "running")
    bus.emit(p)
    bus.emit(s)
    assert got == [("a", p), ("b", p), ("a", s), ("b", s)]


def test_type_filter_delivers_only_matching_events_and_subclasses():
    bus = EventBus()
    progress, status_or_record, everything = [], [], []
    bus.subscribe(progress.append, Progress)
    bus.subscribe(status_or_record.append, Status, Record)
    bus.subscribe(everything.append, Event)
    events = [
        Progress("x", 1, 2),
        Status("x", "running"),
        Record("x", "s1", {"g": 1.0}),
        Event("x"),
    ]
    for ev in events:
        bus.emit(ev)
    assert progress == [events[0]]
    assert status_or_record == [events[1], events[2]]
    assert everything == events


def test_unsubscribe_stops_delivery_and_is_idempotent():
    bus, got = EventBus(), []
    unsubscribe = bus.subscribe(got.append)
    bus.emit(Event("1"))
    unsubscribe()
    unsubscribe()
    bus.emit(Event("2"))
    assert [e.source for e in got] == ["1"]


def test_unsubscribe_removes_only_its_own_subscription():
    bus, got = EventBus(), []
    first = bus.subscribe(got.append)
    bus.subscribe(got.append)
    first()
    bus.emit(Event("x"))
    assert len(got) == 1


def test_failing_subscriber_is_logged_and_does_not_stop_the_others(caplog):
    bus, got = EventBus(), []

    def broken(ev):
        raise RuntimeError("subscriber bug")

    bus.subscribe(got.append)
    bus.subscribe(broken)
    bus.subscribe(got.append)
    with caplog.at_level(logging.ERROR, logger="xbarlab.events"):
        bus.emit(Status("x", "running"))  # must not raise
    assert len(got) == 2
    assert "subscriber bug" in caplog.text


def test_subscribing_from_inside_a_callback_does_not_deliver_the_current_event():
    bus, late = EventBus(), []

    def subscribe_late(ev):
        bus.subscribe(late.append)

    bus.subscribe(subscribe_late)
    bus.emit(Event("first"))
    assert late == []
    bus.emit(Event("second"))
    assert [e.source for e in late] == ["second"]


def test_emit_from_several_threads_delivers_every_event():
    bus, got = EventBus(), []
    lock = threading.Lock()

    def collect(ev):
        with lock:
            got.append(ev)

    bus.subscribe(collect, Progress)

    def work(k):
        for i in range(500):
            bus.emit(Progress(f"t{k}", i, 500))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 2000
    assert {e.source for e in got} == {"t0", "t1", "t2", "t3"}
