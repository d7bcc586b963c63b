"""Clocks: the virtual clock of the emulator and the real clock of hardware backends."""

from __future__ import annotations

import threading

import pytest

from xbarlab.clock import Clock, RealClock, VirtualClock
from xbarlab.errors import ConfigError


def test_both_clocks_satisfy_the_clock_protocol():
    assert isinstance(VirtualClock(), Clock)
    assert isinstance(RealClock(), Clock)
    assert not isinstance(object(), Clock)


def test_virtual_clock_starts_at_zero_or_at_start():
    assert VirtualClock().now() == 0.0
    c = VirtualClock(start=12.5)
    assert c.now() == 12.5
    assert isinstance(c.now(), float)


def test_virtual_sleep_advances_exactly_and_at_once():
    c = VirtualClock()
    c.sleep(86400.0)  # a virtual day returns at once (the test would hang otherwise)
    assert c.now() == 86400.0
    c.sleep(0)
    assert c.now() == 86400.0
    c.sleep(1e-6)
    assert c.now() == pytest.approx(86400.000001, abs=1e-9)


def test_advance_returns_the_new_time():
    c = VirtualClock(start=1.0)
    assert c.advance(2.0) == 3.0
    assert c.advance(0.5) == 3.5
    assert c.now() == 3.5


def test_virtual_clock_accepts_integers_and_numpy_scalars():
    import numpy as np

    c = VirtualClock()
    c.sleep(3)
    c.sleep(np.float32(0.5))
    assert c.now() == 3.5
    assert isinstance(c.now(), float)


@pytest.mark.parametrize("dt", [-1.0, -1e-12, float("nan")])
def test_negative_or_nan_sleep_is_refused_and_time_does_not_move(dt):
    c = VirtualClock(start=5.0)
    with pytest.raises(ConfigError, match=">= 0"):
        c.sleep(dt)
    with pytest.raises(ConfigError):
        c.advance(dt)
    assert c.now() == 5.0


def test_virtual_clock_is_thread_safe():
    c = VirtualClock()
    n_threads, n_steps = 4, 2000

    def work():
        for _ in range(n_steps):
            c.advance(0.5)  # exactly representable: the sum is exact if no update is lost

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.now() == 0.5 * n_threads * n_steps


def test_real_clock_starts_near_zero_and_never_goes_back():
    c = RealClock()
    t = [c.now() for _ in range(1000)]
    assert t[0] >= 0.0
    assert all(b >= a for a, b in zip(t, t[1:], strict=False))
    assert isinstance(t[0], float)


def test_real_clock_sleep_waits_at_least_dt():
    c = RealClock()
    t0 = c.now()
    c.sleep(0.002)
    assert c.now() - t0 >= 0.002


@pytest.mark.parametrize("dt", [-0.1, float("nan")])
def test_real_clock_refuses_bad_durations(dt):
    with pytest.raises(ConfigError):
        RealClock().sleep(dt)


def test_virtual_clock_restore_sets_the_time_for_a_saved_state():
    clock = VirtualClock(start=5.0)
    clock.advance(10.0)
    clock.restore(3.5)
    assert clock.now() == 3.5
    clock.sleep(1.0)
    assert clock.now() == 4.5
