"""open_arrays: the cores a list of weight matrices needs, grouped per matrix, all or none."""

from __future__ import annotations

import pytest

from xbarlab.chipdrivers import tile_layout
from xbarlab.chipdrivers.tile_layout import open_arrays

SPEC = "emulator:pcm?rows=8&cols=8&seed=3&preset=ideal"


def test_groups_count_up_over_the_matrices():
    # 8 x 8 arrays hold 4 outputs of 8 inputs per array (differential pairs).
    groups = open_arrays(SPEC, [(4, 8), (8, 16), (4, 8)], pairs_per_weight=1)
    try:
        assert [len(g) for g in groups] == [1, 4, 1]
        seeds = [a.info.details["seed"] for g in groups for a in g]
        assert len(set(seeds)) == 6, "every core is its own chip"
    finally:
        for a in (a for g in groups for a in g):
            a.close()


def test_a_failing_core_closes_the_cores_already_opened(monkeypatch):
    opened, closed = [], []
    real = tile_layout.open_crossbar

    def flaky(spec):
        if len(opened) == 2:
            raise OSError("core 2 does not answer")
        xbar = real(spec)
        opened.append(xbar)
        monkeypatch.setattr(xbar, "close", lambda: closed.append(xbar))
        return xbar

    monkeypatch.setattr(tile_layout, "open_crossbar", flaky)
    with pytest.raises(OSError, match="core 2"):
        open_arrays(SPEC, [(8, 16)])
    assert closed == opened and len(opened) == 2
