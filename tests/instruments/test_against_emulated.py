"""The drivers against their emulated twins: pyvisa-py over real loopback sockets to the
emulated bench, whose physics is checked against a twin chip driven directly.

Level 2 of the driver tests (STYLE.md habit 10): the bytes each driver sends are parsed
by an independent SCPI/TSP implementation, and their effect on the emulated array is
the effect a real bench would have.
"""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.emulator import PCMArray
from xbarlab.emulator.lab_server import EmulatedInstruments
from xbarlab.errors import IdentityError, InstrumentError
from xbarlab.instruments.keithley707b import Keithley707B
from xbarlab.instruments.keithley2450 import Keithley2450
from xbarlab.instruments.keithley2600 import Keithley2600
from xbarlab.instruments.keysight33500 import Keysight33500B

SEED = 5
ROWS = COLS = 8


def row(bus: str, r: int) -> str:
    """Crosspoint joining ``bus`` to array row r (default layout: matrix columns 1..8)."""
    return f"1{bus}{r + 1:02d}"


def col(c: int) -> str:
    """Crosspoint joining ground (bus C) to array column c (matrix columns 9.., 12 per slot)."""
    k = ROWS + c
    return f"{k // 12 + 1}C{k % 12 + 1:02d}"


@pytest.fixture
def bench(no_threads_left):
    """The four emulated instruments on a fresh 8 x 8 chip, stopped after the test."""
    pyvisa = pytest.importorskip("pyvisa")
    rm = pyvisa.ResourceManager("@py")
    with EmulatedInstruments(PCMArray(ROWS, COLS, seed=SEED)) as lab:
        lab.rm = rm
        yield lab
    rm.close()


def route(switch: Keithley707B, channels: list[str]) -> None:
    """Exclusively close ``channels`` and wait for the matrix: the read-back query orders
    the switching before whatever another instrument's connection sends next."""
    switch.exclusive_close(channels)
    assert sorted(switch.closed_channels()) == sorted(channels)


def open_driver(bench, cls, name, **kwargs):
    return cls(bench.by_driver[name], rm=bench.rm, timeout_s=5.0, **kwargs)


def test_keithley2450_settings_reading_and_safe_shutdown(bench):
    twin = PCMArray(ROWS, COLS, seed=SEED)
    state = bench.lab.instruments["keithley2450"].smu
    with (
        open_driver(bench, Keithley2450, "keithley2450") as smu,
        open_driver(bench, Keithley707B, "keithley707b") as switch,
    ):
        route(switch, [row("A", 3), col(6)])
        smu.configure_voltage_source(current_limit=1e-4, nplc=0.1)
        smu.source_voltage = 0.2
        smu.output_enabled = True
        assert (smu.source_voltage, smu.current_limit, smu.nplc) == (0.2, 1e-4, 0.1)
        assert smu.output_enabled is True
        reading = smu.measure_current()
        assert reading == pytest.approx(0.2 * float(twin.read(np.array([3 * COLS + 6]))[0]))
        assert state.output and state.level_v == 0.2
        smu.shutdown()
        assert (smu.output_enabled, smu.source_voltage) == (False, 0.0)  # the query syncs
        assert not state.output and state.level_v == 0.0


@pytest.mark.parametrize("channel", ["a", "b"])
def test_keithley2600_channels(bench, channel):
    smu_state = bench.lab.instruments["keithley2600"].smus[channel]
    bus = "A" if channel == "a" else "D"
    twin = PCMArray(ROWS, COLS, seed=SEED)
    with (
        open_driver(bench, Keithley2600, "keithley2600", channel=channel) as smu,
        open_driver(bench, Keithley707B, "keithley707b") as switch,
    ):
        route(switch, [row(bus, 0), col(0)])
        smu.configure_voltage_source(current_limit=1e-3, nplc=1.0)
        smu.source_voltage = -0.1
        smu.output_enabled = True
        assert (smu.source_voltage, smu.current_limit, smu.output_enabled) == (-0.1, 1e-3, True)
        expected = -0.1 * float(twin.read(np.array([0]))[0])
        assert smu.measure_current() == pytest.approx(expected, rel=1e-5)
        smu.shutdown()
        assert (smu.output_enabled, smu.source_voltage) == (False, 0.0)
        assert not smu_state.output and smu_state.level_v == 0.0


def test_instrument_errors_reach_the_driver(bench):
    # The driver allows up to 3 A (2602B); the emulated 2636B refuses more than 1.5 A.
    with open_driver(bench, Keithley2600, "keithley2600") as smu:
        with pytest.raises(InstrumentError) as info:
            smu.configure_voltage_source(current_limit=2.0)
        assert info.value.code == -222
        assert "limiti" in str(info.value)
        assert smu.current_limit == pytest.approx(105e-6)  # the refused value never acted


def test_identity_check_names_what_answered(bench):
    with pytest.raises(IdentityError, match="Model 707B"):
        open_driver(bench, Keithley2450, "keithley707b")
    with pytest.raises(IdentityError, match="MODEL 2450"):
        open_driver(bench, Keysight33500B, "keithley2450")


def test_keithley707b_routes_and_keeps_break_before_make(bench):
    matrix = bench.lab.instruments["keithley707b"]
    matrix.execute("channel.connectrule = channel.MAKE_BEFORE_BREAK")
    with open_driver(bench, Keithley707B, "keithley707b") as switch:
        assert matrix.connect_rule == matrix.BREAK_BEFORE_MAKE  # set on connect
        switch.close_channels(["1A01", "1C09"])
        switch.close_channels(["2H12"])
        assert switch.closed_channels() == ["1A01", "1C09", "2H12"]
        matrix.operations.clear()
        switch.exclusive_close(["1B02", "1C09"])
        assert switch.closed_channels() == ["1B02", "1C09"]
        assert [op for op, _ in matrix.operations] == ["open", "close"]
        switch.open_all()
        assert switch.closed_channels() == []
        switch.close_channels(["1A01"])
        switch.shutdown()
        assert switch.closed_channels() == []
        assert bench.lab.bench.closed.sum() == 0


def test_keysight33500b_bursts_reach_the_routed_devices(bench):
    chip = bench.lab.bench.chip
    with (
        open_driver(bench, Keysight33500B, "keysight33500b") as gen,
        open_driver(bench, Keithley707B, "keithley707b") as switch,
    ):
        route(switch, [row("B", 2), col(1), col(4)])
        gen.configure_pulse(amplitude=1.2, width=100e-9, count=4)
        assert gen.output_enabled is True
        gen.trigger()
        gen.trigger()
        counts = chip.pulse_count.reshape(ROWS, COLS)
        assert counts[2, 1] == counts[2, 4] == 8
        assert counts.sum() == 16
        gen.shutdown()
        assert gen.output_enabled is False
        assert not bench.lab.instruments["keysight33500b"].channels[1].output


def test_read_after_pulse_physics(bench):
    """SET pulses routed to one device raise its conductance; no other device changes."""
    chip = bench.lab.bench.chip
    target = (5, 2)
    read_route = [row("A", target[0]), col(target[1])]
    pulse_route = [row("B", target[0]), col(target[1])]
    with (
        open_driver(bench, Keithley2450, "keithley2450") as smu,
        open_driver(bench, Keysight33500B, "keysight33500b") as gen,
        open_driver(bench, Keithley707B, "keithley707b") as switch,
    ):
        smu.configure_voltage_source(current_limit=1e-3)
        smu.source_voltage = 0.2
        smu.output_enabled = True
        gen.configure_pulse(amplitude=1.2, width=100e-9, count=5)
        route(switch, read_route)
        g_before = smu.measure_current() / 0.2
        g_prog_before = chip.g_prog.copy()
        route(switch, pulse_route)
        for _ in range(3):
            gen.trigger()
        route(switch, read_route)
        g_after = smu.measure_current() / 0.2

    assert g_before < 1e-6  # fresh devices are RESET
    assert g_after > g_before + 5e-6  # 15 SET pulses crystallise it by many uS
    flat = target[0] * COLS + target[1]
    others = np.arange(ROWS * COLS) != flat
    np.testing.assert_array_equal(chip.g_prog[others], g_prog_before[others])
    assert chip.pulse_count[flat] == 15 and chip.pulse_count[others].sum() == 0
    # the SMU saw what the chip holds (within read noise)
    g_true = chip.conductance()[0][target]
    assert g_after == pytest.approx(float(g_true), rel=0.1)
