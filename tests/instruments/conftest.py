"""Fixtures of the instrument tests (the transcript harness is in transcript.py)."""

from __future__ import annotations

import threading

import pytest


@pytest.fixture
def no_threads_left():
    """Fail the test if it leaves a thread running (servers must be stopped and joined)."""
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) <= before, [t.name for t in threading.enumerate()]
