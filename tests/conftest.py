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
#: ``{name}`` is filled in by the emulated lab on loopback of fixture ``name`` (board_lab,
#: bench_lab, board_lab_rram, bench_lab_rram): the board's pyserial URL, or the path of
#: the bench's station.yaml.
BACKEND_SPECS = [
    "emulator:pcm?rows=16&cols=12&seed=3",
    "emulator:pcm?rows=16&cols=12&seed=4&periphery=hermes&differential=1",
    "emulator:rram?rows=16&cols=12&seed=3&pristine=0",
    "emulator:mram?rows=16&cols=12&seed=3",
    "board:{board_lab}",
    "bench:{bench_lab}",
    "board:{board_lab_rram}",
    "bench:{bench_lab_rram}",
]


@pytest.fixture(scope="module")
def board_lab():
    """An emulated test board (16 x 12, seed 5) on loopback, stopped after the module."""
    from xbarlab.emulator.lab import EmulatedLab

    with EmulatedLab(16, 12, seed=5, bench=False) as lab:
        yield lab


@pytest.fixture(scope="module")
def bench_lab():
    """An emulated bench (4 x 6, seed 6; one SMU read per device) on loopback, stopped
    after the module."""
    from xbarlab.emulator.lab import EmulatedLab

    with EmulatedLab(4, 6, seed=6, board=False) as lab:
        yield lab


@pytest.fixture(scope="module")
def board_lab_rram():
    """An emulated test board with an already formed RRAM chip (16 x 12, seed 5)."""
    from xbarlab.emulator.lab import EmulatedLab

    with EmulatedLab(16, 12, seed=5, technology="rram", params={"pristine": 0}, bench=False) as lab:
        yield lab


@pytest.fixture(scope="module")
def bench_lab_rram():
    """An emulated bench with an already formed RRAM chip (4 x 6, seed 6)."""
    from xbarlab.emulator.lab import EmulatedLab

    with EmulatedLab(4, 6, seed=6, technology="rram", params={"pristine": 0}, board=False) as lab:
        yield lab


def _served_spec(spec: str, request) -> str:
    """``spec`` with ``{fixture}`` replaced by the address of that running emulated lab."""
    if "{" not in spec:
        return spec
    name = spec[spec.index("{") + 1 : spec.index("}")]
    lab = request.getfixturevalue(name)
    address = lab.board_url if parse_spec(spec).scheme == "board" else lab.station_path
    return spec.format(**{name: address})


@pytest.fixture(
    params=BACKEND_SPECS, ids=lambda spec: f"{parse_spec(spec).scheme}-{BACKEND_SPECS.index(spec)}"
)
def crossbar(request):
    """A freshly opened chip of each registered backend, closed after the test."""
    xbar = open_crossbar(_served_spec(request.param, request))
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


@pytest.fixture(scope="session")
def load_bench():
    """Import a script of benchmarks/ by name (``load_bench("bench_mvm")``): the benchmarks
    are scripts, not a package."""
    import importlib.util
    from pathlib import Path

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
