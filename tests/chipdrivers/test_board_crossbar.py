"""BoardCrossbar over the emulated board: same numbers as the in-process emulator,
ChipInfo from HELLO, board clock, safety checks before any byte is sent."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from xbarlab.chipdrivers.board import BoardCrossbar, open_board
from xbarlab.chipdrivers.emulated import EmulatedCrossbar
from xbarlab.chipdrivers.factory import parse_spec
from xbarlab.emulator import PCMArray
from xbarlab.emulator.board_server import EmulatedBoard
from xbarlab.errors import SafetyError, SpecError
from xbarlab.instruments.board import BoardError

SHAPE = (16, 12)
SEED = 5


@pytest.fixture
def pair():
    """(board crossbar, in-process twin, emulated board), all closed afterwards."""
    before = set(threading.enumerate())
    with EmulatedBoard(PCMArray(*SHAPE, seed=SEED)) as board:
        xbar = open_board(parse_spec(f"board:{board.url}?timeout=1&retries=3"))
        try:
            yield xbar, EmulatedCrossbar(PCMArray(*SHAPE, seed=SEED)), board
        finally:
            xbar.close()
    assert set(threading.enumerate()) <= before


def test_chip_info_comes_from_hello(pair):
    xbar, twin, _ = pair
    a, b = xbar.info, twin.info
    for name in ("rows", "cols", "g_min", "g_max", "limits", "set_pulse", "reset_pulse"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.set_amplitude_range == b.set_amplitude_range and a.mvm_shape == b.mvm_shape
    assert a.capabilities == b.capabilities - {"state"}
    assert a.periphery["adc_lsb_A"] == b.periphery["adc_lsb_A"]
    assert a.details["firmware"].startswith("xbarlab-emulated")
    assert a.backend.startswith("board:socket://127.0.0.1:")


def _same_steps(xbar):
    """A pulse/read/MVM sequence touching every selection form; returns what it read."""
    info = xbar.info
    rng = np.random.default_rng(1)
    out = []
    mask = rng.random(SHAPE) < 0.5
    xbar.pulse(None, polarity=1, amplitude=info.reset_pulse.amplitude, width=1e-7)
    xbar.pulse(mask, polarity=1, amplitude=info.set_pulse.amplitude, width=5e-8, count=3)
    rows, cols = np.array([0, 5, 15]), np.array([11, 2, 0])
    amps = np.array([0.9, 1.1, 1.3])
    xbar.pulse((rows, cols), polarity=-1, amplitude=amps, width=5e-8)
    out.append(xbar.read())
    out.append(xbar.read(mask, v_read=0.1))
    out.append(xbar.read((rows[:, None], cols[None, :])))
    x = rng.uniform(-0.2, 0.2, (5, SHAPE[0])).astype(np.float32)
    out.extend(xbar.mvm(x, return_saturation=True))
    out.append(xbar.mvm(rng.uniform(0, 0.2, SHAPE[1]).astype(np.float32), transpose=True))
    xbar.clock.sleep(1000.0)
    out.append(xbar.read())
    out.append(np.float64(xbar.clock.now()))
    return out


def test_numbers_equal_the_in_process_emulator(pair):
    xbar, twin, board = pair
    for got, want in zip(_same_steps(xbar), _same_steps(twin), strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(board.chip.pulse_count, twin.chip.pulse_count)


def test_board_program_reaches_targets(pair):
    xbar, _, board = pair
    sel = (np.arange(4)[:, None], np.arange(3)[None, :])
    reply = xbar.program(np.float32(1.2e-5), sel, tolerance=5e-7, max_iterations=60)
    assert reply.converged.all()
    got = xbar.read(sel).ravel()
    assert np.all(np.abs(got - 1.2e-5) < 2e-6)  # plus read noise after the last verify
    assert board.chip.pulse_count.sum() == reply.pulses.sum() > 0


def test_refused_before_any_byte_is_sent(pair):
    xbar, _, board = pair
    sent = board.stats.bytes_received
    with pytest.raises(SafetyError, match="max_voltage"):
        xbar.pulse(None, polarity=1, amplitude=xbar.info.limits.max_voltage * 1.01, width=5e-8)
    with pytest.raises(SafetyError):
        xbar.pulse(None, polarity=1, amplitude=1.0, width=1.0)
    with pytest.raises(SafetyError):
        xbar.read(v_read=1.0)
    with pytest.raises(SafetyError):
        xbar.mvm(np.ones(SHAPE[0]))
    with pytest.raises(SafetyError):
        xbar.program(1e-5, None, tolerance=1e-6, v_read=1.0)
    assert board.stats.bytes_received == sent
    assert board.chip.pulse_count.sum() == 0


def test_board_side_refusal_names_the_operation():
    with EmulatedBoard(PCMArray(4, 4, seed=0)) as board:
        with BoardCrossbar(_client(board.url)) as xbar:
            with pytest.raises(BoardError, match="PROGRAM refused by the board: BAD_ARGUMENT"):
                xbar.program(1e-5, None, tolerance=-1.0)
        assert board.chip.pulse_count.sum() == 0


def _client(url):
    from xbarlab.instruments.board import BoardClient

    return BoardClient(url, timeout_s=1.0, retries=1)


@pytest.mark.parametrize(
    "spec", ["board:", "board:socket://127.0.0.1:1?speed=3", "board:socket://x:1?timeout=abc"]
)
def test_bad_specs(spec):
    with pytest.raises(SpecError):
        open_board(parse_spec(spec))
