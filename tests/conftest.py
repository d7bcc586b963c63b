"""Shared fixtures: the backend registry of the contract suite and small emulated chips.

Every spec in :data:`BACKEND_SPECS` runs the whole contract suite
(tests/contract/). A new backend joins by adding one spec string here.
"""

from __future__ import annotations

import os

# Before anything imports Qt: the GUI tests run without a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

from xbarlab.chipdrivers import open_crossbar, parse_spec  # noqa: E402

#: Backends every contract test runs against (one pytest param each, id = scheme).
BACKEND_SPECS = [
    "emulator:pcm?rows=16&cols=12&seed=3",
    "emulator:pcm?rows=16&cols=12&seed=4&periphery=hermes&differential=1",
]


@pytest.fixture(
    params=BACKEND_SPECS, ids=lambda spec: f"{parse_spec(spec).scheme}-{BACKEND_SPECS.index(spec)}"
)
def crossbar(request):
    """A freshly opened chip of each registered backend, closed after the test."""
    xbar = open_crossbar(request.param)
    try:
        yield xbar
    finally:
        xbar.close()


@pytest.fixture
def small_pcm():
    """A 32 x 32 emulated PCM chip (seed 7), closed after the test."""
    xbar = open_crossbar("emulator:pcm?rows=32&cols=32&seed=7")
    try:
        yield xbar
    finally:
        xbar.close()
