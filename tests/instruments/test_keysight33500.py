"""Exact transcripts of the Keysight 33500B driver (SCPI pulse source, channels 1 and 2)."""

from __future__ import annotations

import pytest
from pyvisa import constants
from pyvisa.errors import VisaIOError

from tests.instruments.transcript import connect, expected_protocol
from xbarlab.errors import ConfigError, InstrumentError, SafetyError
from xbarlab.instruments.keysight33500 import Keysight33500B

CONNECT = connect(Keysight33500B)
NO_ERROR = ("SYST:ERR?", '+0,"No error"')


def pulse_setup(ch, amplitude, width, edge, period, count):
    """The commands of configure_pulse, in order."""
    return [
        (f"SOUR{ch}:FUNC PULS", None),
        (f"OUTP{ch}:LOAD INF", None),
        (f"SOUR{ch}:VOLT:LOW 0", None),
        (f"SOUR{ch}:VOLT:HIGH {amplitude}", None),
        (f"SOUR{ch}:FUNC:PULS:WIDT {width}", None),
        (f"SOUR{ch}:FUNC:PULS:TRAN:BOTH {edge}", None),
        (f"SOUR{ch}:FUNC:PULS:PER {period}", None),
        (f"SOUR{ch}:BURS:NCYC {count}", None),
        (f"SOUR{ch}:BURS:MODE TRIG", None),
        (f"SOUR{ch}:BURS:STAT ON", None),
        (f"TRIG{ch}:SOUR BUS", None),
        (f"OUTP{ch} ON", None),
        NO_ERROR,
    ]


@pytest.mark.parametrize("channel", [1, 2])
def test_configure_pulse(channel):
    exchanges = [*CONNECT, *pulse_setup(channel, "1.5", "5e-08", "1e-08", "2e-07", "10")]
    with expected_protocol(Keysight33500B, exchanges, channel=channel) as gen:
        gen.configure_pulse(amplitude=1.5, width=50e-9, edge_time=10e-9, period=200e-9, count=10)


def test_default_period_is_twice_width_plus_edge():
    exchanges = [*CONNECT, *pulse_setup(1, "3", "1e-07", "8.4e-09", "2.168e-07", "1")]
    with expected_protocol(Keysight33500B, exchanges) as gen:
        gen.configure_pulse(amplitude=3.0, width=100e-9)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"amplitude": 3.0}, SafetyError, "high_level = 3 V exceeds .*max_voltage = 2.5 V"),
        ({"amplitude": 0.0}, ConfigError, "amplitude = 0 V must be > 0"),
        ({"width": 5e-9}, ConfigError, r"pulse_width = 5e-09 s .*1\.6e-08 s \.\. 1e\+06 s"),
        ({"width": 20e-9, "edge_time": 30e-9}, ConfigError, "shorter than edge_time"),
        ({"period": 50e-9}, ConfigError, "period = 5e-08 s is shorter than width"),
        ({"count": 2.5}, ConfigError, "burst_count = 2.5 is not an integer"),
        ({"count": 0}, ConfigError, r"burst_count = 0 .*1 \.\. 1e\+08"),
        ({"edge_time": 2e-6, "width": 1e-5}, ConfigError, "edge_time = 2e-06 s"),
    ],
)
def test_configure_pulse_validates_before_sending(kwargs, error, match):
    args = {"amplitude": 2.0, "width": 50e-9, **kwargs}
    with expected_protocol(Keysight33500B, CONNECT, max_voltage=2.5) as gen:
        with pytest.raises(error, match=match):
            gen.configure_pulse(**args)


def test_trigger_waits_for_the_burst():
    with expected_protocol(Keysight33500B, [*CONNECT, ("*TRG", None), ("*OPC?", "1")]) as gen:
        gen.trigger()


def test_trigger_timeout_names_the_command():
    timeout = VisaIOError(constants.StatusCode.error_timeout)
    with expected_protocol(Keysight33500B, [*CONNECT, ("*TRG", None), ("*OPC?", timeout)]) as g:
        with pytest.raises(InstrumentError, match=r"no reply to '\*OPC\?' within 5 s"):
            g.trigger()


@pytest.mark.parametrize(
    ("name", "query", "reply", "value"),
    [
        ("burst_count", "SOUR2:BURS:NCYC?", "+1.000000000000000E+01", 10),
        ("pulse_width", "SOUR2:FUNC:PULS:WIDT?", "+5.0000000000000E-08", 5e-8),
        ("output_enabled", "OUTP2?", "0", False),
    ],
)
def test_getters(name, query, reply, value):
    with expected_protocol(Keysight33500B, [*CONNECT, (query, reply)], channel=2) as gen:
        assert getattr(gen, name) == value


def test_unexpected_reply_is_an_instrument_error():
    with expected_protocol(Keysight33500B, [*CONNECT, ("OUTP1?", "maybe")]) as gen:
        with pytest.raises(InstrumentError, match="unexpected reply 'maybe' for output_enabled"):
            _ = gen.output_enabled


@pytest.mark.parametrize("channel", [0, 3, "1", True])
def test_unknown_channel_is_refused(channel):
    with pytest.raises(ConfigError, match="channel"):
        Keysight33500B("TCPIP::fake::5025::SOCKET", channel=channel)


def test_shutdown_switches_the_output_off():
    with expected_protocol(Keysight33500B, [*CONNECT, ("OUTP2 OFF", None)], channel=2) as gen:
        with gen:
            pass
