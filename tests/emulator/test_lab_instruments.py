"""The emulated bench: routing through the 707B decides which devices an SMU reads and a
generator pulses (checked bit for bit against a twin chip driven directly), compliance,
outputs off, burst counts, the 50-ohm load, break-before-make; then the line servers
(framing, overrun, injected errors, fuzzing over sockets, nothing left behind)."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xbarlab.emulator import PCMArray
from xbarlab.emulator.faults import FaultInjector, FaultPlan
from xbarlab.emulator.lab_instruments import OVERFLOW, BenchWiring, Lab
from xbarlab.emulator.lab_server import INJECTED_ERROR, MAX_LINE, EmulatedInstruments, LineHandler
from xbarlab.errors import ConfigError

SEED = 11


def chip() -> PCMArray:
    return PCMArray(8, 8, seed=SEED)


@pytest.fixture
def lab():
    return Lab(chip())


def run(lab: Lab, name: str, *lines: str) -> list[str]:
    out = []
    for line in lines:
        out += lab.instruments[name].execute(line)
    return out


def smu(lab, *lines):
    return run(lab, "keithley2450", *lines)


def switch(lab, *lines):
    return run(lab, "keithley707b", *lines)


def pulser(lab, *lines):
    return run(lab, "keysight33500b", *lines)


def scpi_errors(lab, name) -> list[int]:
    codes = []
    while (code := int(run(lab, name, "SYST:ERR?")[0].split(",")[0])) != 0:
        codes.append(code)
    return codes


def tsp_errors(lab, name) -> list[int]:
    codes = []
    while (code := float(run(lab, name, "print(errorqueue.next())")[0].split("\t")[0])) != 0:
        codes.append(int(code))
    return codes


def flat(rows, cols, n_cols=8) -> np.ndarray:
    return (np.asarray(rows)[:, None] * n_cols + np.asarray(cols)[None, :]).ravel()


def setup_smu(lab, volts=0.2, ilim=1e-3):
    smu(lab, ":SOUR:FUNC VOLT", ":SENS:FUNC 'CURR'", f":SOUR:VOLT:ILIM {ilim}")
    smu(lab, f":SOUR:VOLT {volts}", ":OUTP ON")


ARM = [
    "FUNC PULS",
    "OUTP1:LOAD INF",
    "VOLT:LOW 0",
    "VOLT:HIGH 1.2",
    "FUNC:PULS:WIDT 100ns",
    "BURS:MODE TRIG",
    "BURS:NCYC 3",
    "BURS:STAT ON",
    "TRIG:SOUR BUS",
    "OUTP ON",
]


# -- reads ---------------------------------------------------------------------------
def test_smu_reads_exactly_the_routed_devices(lab):
    twin = chip()
    # array rows 2 and 5 on the SMU bus, array column 3 (matrix column 8 + 3 + 1) on ground
    switch(lab, 'channel.close("1A03,1A06,1C12")')
    setup_smu(lab, volts=0.2)
    reading = float(smu(lab, ":READ?")[0])
    expected = 0.2 * float(twin.read(flat([2, 5], [3])).sum(dtype=np.float64))
    assert reading == pytest.approx(expected, rel=1e-6)
    assert reading > 0


@pytest.mark.parametrize(
    "closed", ['channel.close("1A03")', 'channel.close("1C12")', 'channel.close("1B03,1C12")']
)
def test_nothing_routed_reads_zero_and_leaves_the_chip_alone(lab, closed):
    switch(lab, closed)
    setup_smu(lab)
    t0 = lab.bench.chip.clock.now()
    assert float(smu(lab, ":READ?")[0]) == 0.0
    assert lab.bench.chip.clock.now() == t0


def test_output_off_drives_nothing(lab):
    switch(lab, 'channel.close("1A01,1C09")')
    setup_smu(lab)
    smu(lab, ":OUTP OFF")
    t0 = lab.bench.chip.clock.now()
    assert smu(lab, ":READ?;:OUTP?") == ["0.000000E+00;0"]
    assert lab.bench.chip.clock.now() == t0


def test_compliance_clamps_and_trips(lab):
    switch(lab, 'channel.close("1A01,1C09")')
    setup_smu(lab, volts=1.0, ilim=1e-9)
    assert float(smu(lab, ":READ?")[0]) == pytest.approx(1e-9)
    assert smu(lab, ":SOUR:VOLT:ILIM:TRIP?") == ["1"]
    smu(lab, ":SOUR:VOLT:ILIM 1e-3")
    assert float(smu(lab, ":READ?")[0]) < 1e-5
    assert smu(lab, ":SOUR:VOLT:ILIM:TRIP?") == ["0"]


def test_a_matrix_column_on_source_and_ground_shorts_the_smu(lab):
    switch(lab, 'channel.close("1A12,1C12")')  # an unused matrix column joins A and C
    setup_smu(lab, volts=-0.1, ilim=2e-3)
    assert float(smu(lab, ":READ?")[0]) == pytest.approx(-2e-3)
    assert smu(lab, ":SOUR:VOLT:ILIM:TRIP?") == ["1"]


def test_fixed_current_range_overflows(lab):
    switch(lab, 'channel.close("1A01,1C09")')
    setup_smu(lab, volts=0.2)
    smu(lab, ":SENS:CURR:RANG:AUTO OFF", ":SENS:CURR:RANG 1e-8")
    assert float(smu(lab, ":READ?")[0]) == OVERFLOW
    assert scpi_errors(lab, "keithley2450") == []


def test_2600b_smua_shares_the_smu_bus_and_smub_is_on_bus_d(lab):
    twin = chip()
    switch(lab, 'channel.close("1A01,1D02,1C09")')
    run(lab, "keithley2600", "smua.source.levelv = 0.2 smub.source.levelv = 0.1")
    run(lab, "keithley2600", "smua.source.output = smua.OUTPUT_ON")
    run(lab, "keithley2600", "smub.source.output = smub.OUTPUT_ON")
    a = float(run(lab, "keithley2600", "print(smua.measure.i())")[0])
    b = float(run(lab, "keithley2600", "print(smub.measure.i())")[0])
    assert a == pytest.approx(0.2 * float(twin.read(flat([0], [0]))[0]), rel=1e-5)
    assert b == pytest.approx(0.1 * float(twin.read(flat([1], [0]))[0]), rel=1e-5)
    assert tsp_errors(lab, "keithley2600") == []


# -- pulses --------------------------------------------------------------------------
def test_burst_pulses_exactly_the_routed_devices(lab):
    twin = chip()
    switch(lab, 'channel.close("1B04,1C09:1C10")')  # array row 3, columns 0 and 1
    pulser(lab, *ARM)
    pulser(lab, "*TRG", "*TRG")
    counts = lab.bench.chip.pulse_count.reshape(8, 8)
    expected = np.zeros((8, 8), dtype=np.uint32)
    expected[3, 0:2] = 6
    np.testing.assert_array_equal(counts, expected)
    for _ in range(2):
        twin.pulse(flat([3], [0, 1]), np.array([1.2]), np.array([100e-9]), 3)
    np.testing.assert_array_equal(lab.bench.chip.g_prog, twin.g_prog)
    assert scpi_errors(lab, "keysight33500b") == []


def test_a_50_ohm_load_setting_doubles_the_voltage_on_the_high_z_array(lab):
    twin = chip()
    switch(lab, 'channel.close("1B01,1C09")')
    pulser(lab, *ARM, "OUTP:LOAD 50", "VOLT:HIGH 0.6", "*TRG")
    twin.pulse(flat([0], [0]), np.array([1.2]), np.array([100e-9]), 3)
    np.testing.assert_array_equal(lab.bench.chip.g_prog, twin.g_prog)


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (["OUTP OFF"], []),
        (["TRIG:SOUR IMM"], []),  # *TRG only fires bus-triggered channels
        (["BURS:STAT OFF"], [-211]),
        (["FUNC SIN"], [-211]),
    ],
)
def test_no_pulse_unless_armed_and_on(lab, extra, error):
    switch(lab, 'channel.close("1B01,1C09")')
    pulser(lab, *ARM, *extra, "*TRG")
    assert lab.bench.chip.pulse_count.sum() == 0
    assert scpi_errors(lab, "keysight33500b") == error


def test_generator_levels_are_validated_before_they_act(lab):
    pulser(lab, "VOLT:LOW 0", "VOLT:HIGH 2", "VOLT:HIGH -1", "VOLT:HIGH 11", "SOUR3:VOLT:HIGH 1")
    assert pulser(lab, "VOLT:HIGH?;VOLT:LOW?;VOLT?;VOLT:OFFS?") == [
        "2.000000E+00;0.000000E+00;2.000000E+00;1.000000E+00"
    ]
    assert scpi_errors(lab, "keysight33500b") == [-221, -222, -114]


# -- the switch matrix ---------------------------------------------------------------
def test_close_open_exclusive_and_getclose(lab):
    switch(lab, 'channel.close("1A01,2B12")', 'channel.close("1C03:1D04")')
    assert switch(lab, 'print(channel.getclose("allslots"))') == ["1A01;1C03;1C04;1D03;1D04;2B12"]
    assert switch(lab, 'print(channel.getclose("slot2"))') == ["2B12"]
    switch(lab, 'channel.open("1C03:1D04")')
    switch(lab, 'channel.exclusiveclose("1B05")')
    assert switch(lab, 'print(channel.getclose("allslots"))') == ["1B05"]
    switch(lab, 'channel.open("allslots")')
    assert switch(lab, 'print(channel.getclose("allslots"))') == ["nil"]


@pytest.mark.parametrize(
    "bad", ['"1A13"', '"7A01"', '"1I01"', '"1A01,1A00"', '"1B01:1A02"', '"slot7"', "1", '""']
)
def test_bad_channel_lists_switch_nothing(lab, bad):
    switch(lab, 'channel.close("1A01")')
    switch(lab, f"channel.close({bad})", f"channel.exclusiveclose({bad})")
    assert switch(lab, 'print(channel.getclose("allslots"))') == ["1A01"]
    assert tsp_errors(lab, "keithley707b") == [-222, -222]


def test_break_before_make_is_the_default_and_survives_reset(lab):
    assert switch(lab, "print(channel.connectrule)") == ["1.00000e+00"]
    switch(lab, 'channel.close("1A01")')
    lab.instruments["keithley707b"].operations.clear()
    switch(lab, 'channel.exclusiveclose("1A02")')
    assert list(lab.instruments["keithley707b"].operations) == [
        ("open", ("1A01",)),
        ("close", ("1A02",)),
    ]
    switch(lab, "channel.connectrule = channel.MAKE_BEFORE_BREAK")
    switch(lab, 'channel.exclusiveclose("1A03")')
    assert list(lab.instruments["keithley707b"].operations)[-2:] == [
        ("close", ("1A03",)),
        ("open", ("1A02",)),
    ]
    switch(lab, "*RST")
    assert switch(lab, 'print(channel.connectrule, channel.getclose("allslots"))') == [
        "1.00000e+00\tnil"
    ]
    switch(lab, "channel.connectrule = 5")
    assert tsp_errors(lab, "keithley707b") == [-222]


def test_custom_wiring_moves_the_lines():
    wiring = BenchWiring.from_lines(["201", "202"], ["203", "204"], {"ground": "H"})
    lab = Lab(PCMArray(2, 2, seed=SEED), wiring)
    twin = PCMArray(2, 2, seed=SEED)
    switch(lab, 'channel.close("2A02,2H04")')
    setup_smu(lab)
    reading = float(smu(lab, ":READ?")[0])
    assert reading == pytest.approx(0.2 * float(twin.read(np.array([3]))[0]), rel=1e-6)
    with pytest.raises(ConfigError, match="707B"):
        BenchWiring.default(40, 40)
    with pytest.raises(ConfigError, match="713"):
        BenchWiring.from_lines(["713"], ["101"])


# -- the line servers ----------------------------------------------------------------
def handler(lab, name="keithley2450", plan=None) -> LineHandler:
    return LineHandler(lab.instruments[name], threading.Lock(), FaultInjector(plan))


def test_line_handler_frames_lines_across_chunks(lab):
    h = handler(lab)
    assert h.feed(b"*ID") == []
    assert h.feed(b"N?\r\n*OPC?\n:OUTP") == [
        b"KEITHLEY INSTRUMENTS,MODEL 2450,04480001,1.7.12b\n",
        b"1\n",
    ]
    assert h.feed(b"?\n") == [b"0\n"]


def test_line_handler_discards_an_overlong_line_and_keeps_serving(lab):
    h = handler(lab)
    assert h.feed(b"X" * (MAX_LINE + 10)) == []
    assert h.feed(b"YYY\n*OPC?\n") == [b"1\n"]
    assert scpi_errors(lab, "keithley2450") == [-363]


def test_injected_instrument_errors_refuse_the_line(lab):
    h = handler(lab, "keithley707b", FaultPlan(error_rate=1.0))
    assert h.feed(b'channel.close("1A01")\n') == []
    assert lab.bench.closed.sum() == 0
    assert tsp_errors(lab, "keithley707b") == [INJECTED_ERROR[0]]


def _lines_until(sock: socket.socket, wanted: bytes) -> list[bytes]:
    data = b""
    while wanted not in data.split(b"\n"):
        chunk = sock.recv(4096)
        assert chunk, "server closed the connection"
        data += chunk
    return data.split(b"\n")


@pytest.fixture(scope="module")
def servers():
    before = set(threading.enumerate())
    with EmulatedInstruments(PCMArray(4, 4, seed=SEED)) as lab:
        yield lab
    assert set(threading.enumerate()) <= before


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=200), st.sampled_from(["keithley2450", "keithley707b"]))
def test_fuzz_over_sockets_never_kills_the_server(servers, noise, name):
    host, port = servers.by_driver[name].split("::")[1:3]
    idn = servers.lab.instruments[name].idn.encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(noise + b"\n*IDN?\n")
        assert idn in _lines_until(sock, idn)


def test_emulated_instruments_resources_and_cleanup():
    before = set(threading.enumerate())
    with EmulatedInstruments(PCMArray(4, 4, seed=SEED), smu="keithley2600") as lab:
        assert set(lab.resources) == {"smu", "pulse", "switch"}
        assert lab.resources["smu"] == lab.by_driver["keithley2600"]
        assert lab.drivers["smu"] == "keithley2600"
        for resource in lab.by_driver.values():
            kind, host, port, suffix = resource.split("::")
            assert (kind, host, suffix) == ("TCPIP", "127.0.0.1", "SOCKET")
            with socket.create_connection((host, int(port)), timeout=5) as sock:
                sock.sendall(b"*OPC?\n")
                assert _lines_until(sock, b"1")[0] == b"1"
    assert set(threading.enumerate()) <= before
    with pytest.raises(ConfigError, match="smu"):
        EmulatedInstruments(PCMArray(4, 4), smu="keithley6221")


def test_disconnect_fault_closes_once_then_serves_again():
    plan = FaultPlan(disconnect_after=2)
    with EmulatedInstruments(PCMArray(4, 4, seed=SEED), faults=plan) as lab:
        host, port = lab.resources["smu"].split("::")[1:3]
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"*OPC?\n*OPC?\n*OPC?\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            assert data == b"1\n1\n"
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"*OPC?\n")
            assert _lines_until(sock, b"1")[0] == b"1"


def test_current_source_mode_reads_the_device_voltage_and_clamps_open_circuits(lab):
    twin = chip()
    switch(lab, 'channel.close("1A02,1C10")')
    smu(lab, ":SOUR:FUNC CURR", ":SENS:FUNC 'VOLT'", ":SOUR:CURR 2e-8", ":SOUR:CURR:VLIM 5")
    smu(lab, ":OUTP ON")
    expected = 2e-8 / float(twin.read(flat([1], [1]))[0])
    assert float(smu(lab, ":READ?")[0]) == pytest.approx(expected, rel=1e-5)
    assert smu(lab, ":SOUR:CURR:VLIM:TRIP?") == ["0"]
    switch(lab, 'channel.open("1C10")')
    assert float(smu(lab, ":READ?")[0]) == 5.0
    assert smu(lab, ":SOUR:CURR:VLIM:TRIP?;:MEAS:CURR?") == ["1;0.000000E+00"]
    assert scpi_errors(lab, "keithley2450") == []
