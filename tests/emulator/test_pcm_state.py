"""Saving and restoring a PCMArray's full state (emulator/pcm_state.py).

The property that matters: after ``set_state(s)`` the chip continues exactly as it
did after ``s = get_state()``: reads, pulses, drift, MVMs, the clock and the event
table give bit-identical results. Mismatched states are refused with a message that
names the difference, and leave the chip as it was.
"""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.emulator import PCMArray, PCMParams
from xbarlab.emulator.array_base import EVENTS_MIN as _EVENTS_MIN
from xbarlab.emulator.peripherals import PRESETS
from xbarlab.errors import ConfigError

ROWS, COLS = 12, 10


def chip(seed: int = 3, rows: int = ROWS, cols: int = COLS, **periphery) -> PCMArray:
    pp = PRESETS["default"].with_overrides(**periphery) if periphery else None
    return PCMArray(rows, cols, PCMParams(), seed=seed, periphery=pp)


def sequence(c: PCMArray) -> list[np.ndarray]:
    """Reads, SET and RESET pulses on all and on some devices, sleeps and MVMs both ways."""
    p, out = c.params, []
    some = np.array([0, 3, 7, 50, c.size - 1])
    xf = np.linspace(0.0, 0.2, 2 * c.mvm_shape[0], dtype=np.float32).reshape(2, -1)
    xt = np.full((1, c.mvm_shape[1]), 0.1, dtype=np.float32)
    out += c.mvm(xf)  # a first MVM fills the matrix cache
    c.pulse(None, np.array([p.v_set_ref]), np.array([p.width_ref]), count=3)
    out.append(c.read())
    c.clock.sleep(25.0)
    out += c.mvm(xf)
    out += c.mvm(xf)  # served from the cache
    out += c.mvm(xt, transpose=True)
    c.pulse(some, np.array([-1.1 * p.v_reset]), np.array([p.width_ref]))
    c.pulse(some[:2], np.array([0.9, 1.2]), np.array([50e-9, 100e-9]), count=2)
    out.append(c.read(some))
    c.clock.sleep(3600.0)
    out.append(c.read())
    out += c.mvm(xf)
    out.append(np.array([c.clock.now()]))
    out += list(c.state_arrays().values())
    return out


def assert_same(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("periphery", [{}, {"differential": True}, {"r_wire": 2.0}])
def test_restore_replays_bit_identically(periphery):
    c = chip(**periphery)
    sequence(c)  # mid-life: events, drawn keys, cache, clock all non-trivial
    saved = c.get_state()
    first = sequence(c)
    c.set_state(saved)
    assert_same(sequence(c), first)


def test_saving_does_not_change_what_follows():
    """The chip that was saved and a twin that was not continue alike: saving only
    empties the MVM cache, so with an empty cache on the twin they match."""
    a, b = chip(), chip()
    sequence(a), sequence(b)
    a.get_state()
    b._mvm_cache.clear()
    assert_same(sequence(a), sequence(b))


def test_state_is_a_copy_and_holds_what_the_chip_holds():
    c = chip()
    sequence(c)
    s = c.get_state()
    for name, a in c.state_arrays().items():
        np.testing.assert_array_equal(s[name], a)
        assert not np.shares_memory(s[name], a)
    assert s["meta"]["time_s"] == c.clock.now()
    assert s["event_times"].size == c._n_events
    np.testing.assert_array_equal(s["event_times"], c._event_times[: c._n_events])
    sequence(c)
    assert s["meta"]["time_s"] < c.clock.now()


def test_event_table_compaction_after_restore_matches():
    """Save just before the event table fills: the restored chip must compact it at the
    same call and map events to the same ids."""
    c = chip(rows=2, cols=2)
    amp, width = np.array([1.0]), np.array([50e-9])
    while c._n_events < _EVENTS_MIN - 2:
        c.pulse(np.array([c._n_events % 4]), amp, width)
    saved = c.get_state()

    def pulses():
        for k in range(5):
            c.pulse(np.array([k % 4]), amp, width)
        return [c.event.copy(), c._event_times[: c._n_events].copy(), c.read()]

    first = pulses()
    assert c._n_events < _EVENTS_MIN - 2  # compaction happened
    c.set_state(saved)
    assert_same(pulses(), first)


def test_readout_mismatch_is_rederived_from_the_seed():
    """Not saved: a chip opened with the same seed and shape has the same mismatch."""
    a, b = (chip(seed=9, gain_std=0.03, offset_std=0.5) for _ in range(2))
    for direction in (False, True):
        ma, mb = a._readout[direction].mismatch, b._readout[direction].mismatch
        np.testing.assert_array_equal(ma.gain, mb.gain)
        np.testing.assert_array_equal(ma.offset, mb.offset)
    assert not np.array_equal(
        chip(seed=10, gain_std=0.03, offset_std=0.5)._readout[False].mismatch.gain,
        a._readout[False].mismatch.gain,
    )


def snapshot(c: PCMArray) -> list[np.ndarray]:
    return [*(a.copy() for a in c.state_arrays().values()), np.array([c.clock.now()])]


@pytest.mark.parametrize(
    ("other", "words"),
    [
        (lambda: chip(rows=ROWS + 1), ["rows", "13", "12"]),
        (lambda: chip(cols=COLS + 2), ["cols"]),
        (lambda: chip(seed=4), ["seed"]),
        (
            lambda: PCMArray(ROWS, COLS, PCMParams().with_overrides(set_step=0.5e-6), seed=3),
            ["params", "set_step"],
        ),
        (lambda: chip(differential=True), ["periphery", "differential"]),
    ],
)
def test_mismatch_is_refused_and_chip_untouched(other, words):
    saved = chip().get_state()
    target = other()
    sequence(target)
    before = snapshot(target)
    with pytest.raises(ConfigError) as err:
        target.set_state(saved)
    for word in words:
        assert word in str(err.value)
    assert_same(snapshot(target), before)


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s.pop("g_prog"),
        lambda s: s.__setitem__("nu", s["nu"].astype(np.float64)),
        lambda s: s.__setitem__("event", s["event"] + 10_000),
        lambda s: s["meta"].__setitem__("format", 99),
        lambda s: s["meta"].__setitem__("key_next", 10_000),
        lambda s: s["meta"].__setitem__("event_capacity", "4096"),
        lambda s: s["meta"].pop("time_s"),
        lambda s: s["meta"].__setitem__("rng", {"bit_generator": "MT19937"}),
    ],
)
def test_damaged_state_is_refused_and_chip_untouched(damage):
    saved = chip().get_state()
    damage(saved)
    target = chip()
    sequence(target)
    before = snapshot(target)
    with pytest.raises(ConfigError, match="chip state"):
        target.set_state(saved)
    assert_same(snapshot(target), before)
