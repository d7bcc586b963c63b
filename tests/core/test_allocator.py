"""glibc malloc thresholds set on import: freed MVM arrays are reused, not faulted in again."""

import sys

import pytest

from xbarlab import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_thresholds_are_set_on_linux(monkeypatch):
    for name in allocator._USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    assert allocator.keep_freed_memory() is True


@pytest.mark.parametrize("name", allocator._USER_SETTINGS)
def test_a_threshold_in_the_environment_wins(monkeypatch, name):
    monkeypatch.setenv(name, "65536")
    assert allocator.keep_freed_memory() is False


def test_other_platforms_are_left_alone(monkeypatch):
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False
