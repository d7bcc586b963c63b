"""EmulatedCrossbar.save_state / load_state: the chip's state as bytes (capability "state").

A blob saved on one chip and loaded into a fresh chip opened from the same spec must
continue bit-identically through the public ``Crossbar`` interface; a blob from another
shape, seed or parameter set is refused with the difference named, chip untouched.
The blob is an uncompressed .npz, readable with ``allow_pickle=False``.

Measured for 256 x 256 (this machine, 2 shared cores): 2 167 581 bytes (33.07 B per
device: 33 B of device state plus about 4.8 kB of metadata, event table and keys);
save about 5 ms, load about 5.5 ms. Run with ``-s`` to print the numbers.
"""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.chipdrivers.crossbar import CAPABILITIES
from xbarlab.errors import ConfigError

SPECS = [
    "emulator:pcm?rows=16&cols=12&seed=3",
    "emulator:pcm?rows=16&cols=12&seed=4&periphery=hermes&differential=1",
]


def sequence(xbar) -> list[np.ndarray]:
    """Reads, SET and RESET pulses (both polarities), sleeps, MVMs both ways."""
    info, out = xbar.info, []
    some = (np.array([0, 2, 5]), np.array([1, 3, 4]))
    x = np.linspace(0.0, 0.15, info.mvm_shape[0], dtype=np.float32)
    xt = np.full(info.mvm_shape[1], 0.1, dtype=np.float32)
    s, r = info.set_pulse, info.reset_pulse
    xbar.pulse(None, polarity=1, amplitude=s.amplitude, width=s.width, count=2)
    out.append(xbar.read())
    xbar.clock.sleep(30.0)
    out.append(xbar.mvm(x))
    out.append(xbar.mvm(xt, transpose=True))
    xbar.pulse(some, polarity=-1, amplitude=r.amplitude, width=r.width)
    out.append(xbar.read(some))
    xbar.clock.sleep(86400.0)
    out.append(xbar.mvm(np.stack([x, x])))
    out.append(np.array([xbar.clock.now()]))
    out.append(xbar.chip.pulse_count.copy())
    return out


def assert_same(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_state_capability_is_declared_and_documented():
    xbar = open_crossbar(SPECS[0])
    assert "state" in xbar.info.capabilities
    assert "state" in CAPABILITIES


@pytest.mark.parametrize("spec", SPECS)
def test_blob_round_trip_into_a_fresh_chip(spec):
    a = open_crossbar(spec)
    sequence(a)
    blob = a.save_state()
    assert isinstance(blob, bytes)
    expected = sequence(a)
    b = open_crossbar(spec)
    b.load_state(blob)
    assert_same(sequence(b), expected)
    a.load_state(blob)  # and back on the chip that saved it
    assert_same(sequence(a), expected)


def test_blob_is_a_plain_npz_with_json_metadata():
    xbar = open_crossbar(SPECS[0])
    sequence(xbar)
    with np.load(io.BytesIO(xbar.save_state()), allow_pickle=False) as npz:
        meta = json.loads(npz["meta"].tobytes())
        np.testing.assert_array_equal(npz["pulse_count"], xbar.chip.pulse_count)
    assert meta["format"] == 1
    assert meta["spec"] == SPECS[0]
    assert meta["shape"] == [16, 12]
    assert meta["chip"]["seed"] == 3
    assert meta["chip"]["time_s"] == xbar.clock.now()


def snapshot(xbar) -> list[np.ndarray]:
    arrays = xbar.chip.state_arrays().values()
    return [*(a.copy() for a in arrays), np.array([xbar.clock.now()])]


@pytest.mark.parametrize(
    ("other", "words"),
    [
        ("emulator:pcm?rows=16&cols=14&seed=3", ["shape", "[16, 12]", "16 x 14"]),
        ("emulator:pcm?rows=16&cols=12&seed=8", ["seed", "3", "8"]),
        ("emulator:pcm?rows=16&cols=12&seed=3&nu_slope=-0.02", ["params", "nu_slope"]),
        ("emulator:pcm?rows=16&cols=12&seed=3&periphery=hermes", ["periphery"]),
    ],
)
def test_blob_of_another_chip_is_refused_and_chip_untouched(other, words):
    blob = open_crossbar(SPECS[0]).save_state()
    target = open_crossbar(other)
    sequence(target)
    before = snapshot(target)
    with pytest.raises(ConfigError) as err:
        target.load_state(blob)
    for word in words:
        assert word in str(err.value)
    assert_same(snapshot(target), before)


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"not a zip file at all",
        npz_bytes(g_prog=np.zeros(3)),  # no metadata
        npz_bytes(meta=np.array([{"a": 1}], dtype=object)),  # would need pickle
        npz_bytes(meta=np.frombuffer(b"[1, 2]", dtype=np.uint8)),  # not an object
        npz_bytes(meta=np.frombuffer(b'{"format": 7}', dtype=np.uint8)),
    ],
    ids=["empty", "garbage", "no-meta", "pickle", "meta-list", "format"],
)
def test_garbage_blob_is_refused(blob):
    xbar = open_crossbar(SPECS[0])
    before = snapshot(xbar)
    with pytest.raises(ConfigError, match="chip state"):
        xbar.load_state(blob)
    assert_same(snapshot(xbar), before)


def test_blob_size_256x256_is_33_bytes_per_device():
    xbar = open_crossbar("emulator:pcm?rows=256&cols=256&seed=1")
    s = xbar.info.set_pulse
    xbar.pulse(None, polarity=1, amplitude=s.amplitude, width=s.width)
    t0 = time.perf_counter()
    blob = xbar.save_state()
    t1 = time.perf_counter()
    xbar.load_state(blob)
    t2 = time.perf_counter()
    n = 256 * 256
    print(
        f"\n256x256 state blob: {len(blob)} B, {len(blob) / n:.2f} B/device, "
        f"save {1e3 * (t1 - t0):.1f} ms, load {1e3 * (t2 - t1):.1f} ms"
    )
    assert 33 * n < len(blob) < 33 * n + 16 * 1024
