"""Exact transcripts of the Keithley 2600B driver (TSP, channels a and b)."""

from __future__ import annotations

import pytest

from tests.instruments.transcript import connect, expected_protocol
from xbarlab.errors import ConfigError, InstrumentError, SafetyError
from xbarlab.instruments.keithley2600 import Keithley2600

CONNECT = connect(Keithley2600)
NO_ERROR = ("print(errorqueue.count)", "0.00000e+00")


@pytest.mark.parametrize("channel", ["a", "b"])
@pytest.mark.parametrize(
    ("name", "value", "command"),
    [
        ("source_voltage", 0.2, "smu{c}.source.levelv = 0.2"),
        ("current_limit", 1e-4, "smu{c}.source.limiti = 0.0001"),
        ("nplc", 0.001, "smu{c}.measure.nplc = 0.001"),
        ("output_enabled", True, "smu{c}.source.output = smu{c}.OUTPUT_ON"),
        ("output_enabled", False, "smu{c}.source.output = smu{c}.OUTPUT_OFF"),
    ],
)
def test_setters(channel, name, value, command):
    exchanges = [*CONNECT, (command.format(c=channel), None)]
    with expected_protocol(Keithley2600, exchanges, channel=channel) as smu:
        setattr(smu, name, value)


@pytest.mark.parametrize(
    ("name", "query", "reply", "value"),
    [
        ("source_voltage", "print(smub.source.levelv)", "2.00000e-01", 0.2),
        ("current_limit", "print(smub.source.limiti)", "1.00000e-04", 1e-4),
        ("nplc", "print(smub.measure.nplc)", "1.00000e+00", 1.0),
        ("output_enabled", "print(smub.source.output)", "1.00000e+00", True),
        ("output_enabled", "print(smub.source.output)", "0.00000e+00", False),
    ],
)
def test_getters(name, query, reply, value):
    with expected_protocol(Keithley2600, [*CONNECT, (query, reply)], channel="b") as smu:
        assert getattr(smu, name) == value


def test_configure_voltage_source():
    exchanges = [
        *CONNECT,
        ("smua.source.func = smua.OUTPUT_DCVOLTS", None),
        ("smua.measure.autorangei = smua.AUTORANGE_ON", None),
        ("smua.source.limiti = 0.0005", None),
        ("smua.measure.nplc = 0.01", None),
        NO_ERROR,
    ]
    with expected_protocol(Keithley2600, exchanges) as smu:
        smu.configure_voltage_source(current_limit=5e-4)


def test_configure_reads_the_tsp_error_queue():
    exchanges = [
        *CONNECT,
        ("smub.source.func = smub.OUTPUT_DCVOLTS", None),
        ("smub.measure.autorangei = smub.AUTORANGE_ON", None),
        ("smub.source.limiti = 0.001", None),
        ("smub.measure.nplc = 1", None),
        ("print(errorqueue.count)", "2.00000e+00"),
        ("print(errorqueue.next())", "-2.85000e+02\tProgram syntax error\t2.00000e+00\t0"),
        ("print(errorqueue.next())", "1.10300e+03\tParameter too big\t2.00000e+00\t0"),
    ]
    with expected_protocol(Keithley2600, exchanges, channel="b") as smu:
        with pytest.raises(InstrumentError, match="Program syntax error; 1103: Parameter") as info:
            smu.configure_voltage_source(current_limit=1e-3, nplc=1)
    assert info.value.code == -285


def test_measure_current():
    with expected_protocol(Keithley2600, [*CONNECT, ("print(smua.measure.i())", "4.5e-06")]) as s:
        assert s.measure_current() == 4.5e-6


def test_limits_and_ranges_refuse_before_sending():
    with expected_protocol(Keithley2600, CONNECT, max_voltage=1.0, max_current=1e-3) as smu:
        with pytest.raises(SafetyError, match="max_voltage"):
            smu.source_voltage = 1.2
        with pytest.raises(ConfigError, match=r"nplc = 30 PLC .*0\.001 PLC \.\. 25 PLC"):
            smu.nplc = 30
        with pytest.raises(ConfigError, match="output_enabled = 1 is not allowed"):
            smu.output_enabled = 1
        with pytest.raises(SafetyError, match="max_current"):
            smu.configure_voltage_source(current_limit=0.01)


def test_unknown_channel_is_refused_before_connecting():
    with pytest.raises(ConfigError, match="channel = 'c'"):
        Keithley2600("TCPIP::fake::5025::SOCKET", channel="c")


def test_close_brings_the_channel_to_a_safe_state_once():
    exchanges = [
        *CONNECT,
        ("smub.source.levelv = 0", None),
        ("smub.source.output = smub.OUTPUT_OFF", None),
    ]
    with expected_protocol(Keithley2600, exchanges, channel="b") as smu:
        smu.close()
        smu.close()
