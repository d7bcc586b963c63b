"""Exact transcripts of the Keithley 2450 driver (SCPI)."""

from __future__ import annotations

import pytest

from tests.instruments.transcript import connect, expected_protocol
from xbarlab.errors import ConfigError, InstrumentError, SafetyError
from xbarlab.instruments.keithley2450 import Keithley2450

CONNECT = connect(Keithley2450)
NO_ERROR = ("SYST:ERR?", '0,"No error"')


@pytest.mark.parametrize(
    ("name", "value", "command"),
    [
        ("source_voltage", 0.2, ":SOUR:VOLT:LEV 0.2"),
        ("source_voltage", -1.5, ":SOUR:VOLT:LEV -1.5"),
        ("current_limit", 1e-4, ":SOUR:VOLT:ILIM 0.0001"),
        ("nplc", 0.01, ":SENS:CURR:NPLC 0.01"),
        ("output_enabled", True, ":OUTP ON"),
        ("output_enabled", False, ":OUTP OFF"),
    ],
)
def test_setters(name, value, command):
    with expected_protocol(Keithley2450, [*CONNECT, (command, None)]) as smu:
        setattr(smu, name, value)


@pytest.mark.parametrize(
    ("name", "query", "reply", "value"),
    [
        ("source_voltage", ":SOUR:VOLT?", "2.000000E-01", 0.2),
        ("current_limit", ":SOUR:VOLT:ILIM?", "1.050000E+00", 1.05),
        ("nplc", ":SENS:CURR:NPLC?", "1", 1.0),
        ("output_enabled", ":OUTP?", "1", True),
        ("output_enabled", ":OUTP?", "0", False),
    ],
)
def test_getters(name, query, reply, value):
    with expected_protocol(Keithley2450, [*CONNECT, (query, reply)]) as smu:
        assert getattr(smu, name) == value


def test_configure_voltage_source():
    exchanges = [
        *CONNECT,
        (":SOUR:FUNC VOLT", None),
        (":SENS:FUNC 'CURR'", None),
        (":SENS:CURR:RANG:AUTO ON", None),
        (":SOUR:VOLT:ILIM 0.0005", None),
        (":SENS:CURR:NPLC 0.1", None),
        NO_ERROR,
    ]
    with expected_protocol(Keithley2450, exchanges) as smu:
        smu.configure_voltage_source(current_limit=5e-4, nplc=0.1)


def test_measure_current():
    with expected_protocol(Keithley2450, [*CONNECT, (":READ?", "-1.234500E-06")]) as smu:
        assert smu.measure_current() == -1.2345e-6


def test_configure_reports_every_queued_error():
    exchanges = [
        *CONNECT,
        (":SOUR:FUNC VOLT", None),
        (":SENS:FUNC 'CURR'", None),
        (":SENS:CURR:RANG:AUTO ON", None),
        (":SOUR:VOLT:ILIM 0.001", None),
        (":SENS:CURR:NPLC 0.01", None),
        ("SYST:ERR?", '-222,"Data out of range"'),
        ("SYST:ERR?", '-113,"Undefined header"'),
        NO_ERROR,
    ]
    with expected_protocol(Keithley2450, exchanges) as smu:
        with pytest.raises(InstrumentError, match="Data out of range.*Undefined header") as info:
            smu.configure_voltage_source(current_limit=1e-3)
    assert info.value.code == -222


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"current_limit": 2.0}, ConfigError, r"current_limit = 2 A .*1e-09 A \.\. 1\.05 A"),
        ({"current_limit": 1e-3, "nplc": 20}, ConfigError, r"nplc = 20 PLC .*0\.01 PLC \.\. 10"),
        ({"current_limit": 1e-3, "nplc": "fast"}, ConfigError, "not a number"),
        ({"current_limit": 2e-3}, SafetyError, "max_current = 0.001 A"),
    ],
)
def test_configure_validates_everything_before_sending(kwargs, error, match):
    with expected_protocol(Keithley2450, CONNECT, max_current=1e-3) as smu:
        with pytest.raises(error, match=match):
            smu.configure_voltage_source(**kwargs)


def test_caller_voltage_limit_refuses_before_sending():
    exchanges = [*CONNECT, (":SOUR:VOLT:LEV -2.5", None)]
    with expected_protocol(Keithley2450, exchanges, max_voltage=2.5) as smu:
        with pytest.raises(SafetyError, match=r"source_voltage = 2\.6 V exceeds .*max_voltage"):
            smu.source_voltage = -2.6
        smu.source_voltage = -2.5


def test_caller_limits_must_fit_the_instrument():
    with pytest.raises(ConfigError, match=r"max_voltage = 300 V .*0 V \.\. 210 V"):
        Keithley2450("TCPIP::fake::5025::SOCKET", max_voltage=300.0)


def test_shutdown_on_context_exit_even_after_an_error():
    exchanges = [*CONNECT, (":SOUR:VOLT:LEV 0", None), (":OUTP OFF", None)]
    with expected_protocol(Keithley2450, exchanges) as smu:
        with pytest.raises(RuntimeError), smu:
            raise RuntimeError("procedure failed")
        assert smu.closed
