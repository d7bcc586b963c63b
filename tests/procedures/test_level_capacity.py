"""level-capacity: decoding, BER of Gray-coded cells, capacity, and a run on the emulator."""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.errors import ConfigError
from xbarlab.procedures import registry
from xbarlab.procedures.level_capacity import capacity, decode_levels, gray_bits


def test_gray_code_neighbours_differ_in_one_bit():
    g = gray_bits(np.arange(16))
    assert list(g[:4]) == [0, 1, 3, 2]
    diff = g[1:] ^ g[:-1]
    assert all(bin(int(d)).count("1") == 1 for d in diff)


def test_decode_counts_symbol_and_bit_errors_exactly():
    # 4 levels at 1, 2, 3, 4 uS; 10 devices each; 2 devices of level 1 read as level 2,
    # 1 device of level 0 reads as level 3 (Gray 00 -> 10: one bit)
    level = np.repeat(np.arange(4), 10)
    g = (level + 1.0) * 1e-6
    g[10:12] = 3.1e-6
    g[0] = 4.2e-6
    dec = decode_levels(g, level, np.ones(40, bool), 4)
    assert dec["references_S"] == pytest.approx([1e-6, 2e-6, 3e-6, 4e-6])
    assert dec["ser_per_level"] == pytest.approx([0.1, 0.2, 0.0, 0.0])
    # level 1 (Gray 01) read as 2 (Gray 11): one bit of two per error
    assert dec["ber_per_level"] == pytest.approx([0.05, 0.1, 0.0, 0.0])
    assert dec["ber"] == pytest.approx(3 / 80)
    assert dec["ser"] == pytest.approx(3 / 40)
    # the 1-2 pair: 2 of 20 devices on the wrong side; the 0-1 pair: the stray one above
    assert dec["overlap"] == pytest.approx([0.05, 0.1, 0.0])
    assert dec["bits_per_cell"] == 2


def test_decode_leaves_out_unusable_devices_and_needs_every_level():
    level = np.array([0, 0, 1, 1])
    g = np.array([1.0, 5.0, 2.0, 2.0]) * 1e-6
    usable = np.array([True, False, True, True])
    assert decode_levels(g, level, usable, 2)["ber"] == 0
    with pytest.raises(ConfigError, match="no usable device"):
        decode_levels(g, level, np.array([True, True, False, False]), 2)


def test_capacity_is_the_largest_l_below_the_threshold():
    rows = [{"n_levels": 2, "ber": 0}, {"n_levels": 4, "ber": 0.004}, {"n_levels": 8, "ber": 0.05}]
    assert capacity(rows, 0.01) == 4
    assert capacity(rows, 1e-4) == 2
    assert capacity([{"n_levels": 2, "ber": 0.2}], 0.01) == 0


def test_run_on_the_emulator_finds_fewer_levels_after_longer_waits(drive):
    lc = registry.get("level-capacity")
    caps = {}
    for t in (10.0, 1e6):
        with open_crossbar("emulator:pcm?rows=32&cols=32&seed=3") as xbar:
            proc = lc.from_values({"levels": "2,4,8,16", "read_after": t, "reads": 4})
            proc.check(xbar.info)
            ids, data, summary = drive(proc, xbar)
        assert ids == ["levels-002", "levels-004", "levels-008", "levels-016"]
        bers = [r["ber"] for r in summary["by_levels"]]
        assert bers[0] <= bers[-1] and bers[-1] > 0.01
        d = data["levels-008"]
        assert d["read_after_s"] == pytest.approx(t, rel=1e-3)
        assert d["g_read"].shape == (32, 32) and d["overlap"].shape == (7,)
        caps[t] = summary["max_levels"]
    assert caps[10.0] >= caps[1e6] >= 2


def test_parameters_are_checked_before_the_chip_is_touched():
    lc = registry.get("level-capacity")
    with pytest.raises(ConfigError, match="levels"):
        lc.from_values({"levels": "2,1"})
    with pytest.raises(ConfigError, match="twice"):
        lc.from_values({"levels": "4,4"})
    with pytest.raises(ConfigError, match="lo"):
        lc.from_values({"lo": 0.9, "hi": 0.5})
    with open_crossbar("emulator:pcm?rows=4&cols=4&seed=3") as xbar:
        with pytest.raises(ConfigError, match="needs at least 32 devices"):
            lc.from_values({"levels": "16"}).check(xbar.info)
