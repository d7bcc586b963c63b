"""Exact transcripts of the Keithley 707B driver (TSP switching matrix)."""

from __future__ import annotations

import pytest

from tests.instruments.transcript import connect, expected_protocol
from xbarlab.errors import ConfigError
from xbarlab.instruments.keithley707b import Keithley707B

CONNECT = connect(Keithley707B)


def test_connect_sets_break_before_make():
    assert ("channel.connectrule = channel.BREAK_BEFORE_MAKE", None) in CONNECT
    with expected_protocol(Keithley707B, CONNECT):
        pass


def test_close_exclusive_close_open_all():
    exchanges = [
        *CONNECT,
        ('channel.close("1A01,1B03")', None),
        ('channel.exclusiveclose("1A05,2C12")', None),
        ('channel.open("allslots")', None),
    ]
    with expected_protocol(Keithley707B, exchanges) as matrix:
        matrix.close_channels(["1A01", "1B03"])
        matrix.exclusive_close(("1A05", "2C12"))
        matrix.open_all()


@pytest.mark.parametrize(
    ("reply", "channels"), [("1A01;1C09", ["1A01", "1C09"]), ("nil", []), ("1H12", ["1H12"])]
)
def test_closed_channels(reply, channels):
    exchanges = [*CONNECT, ('print(channel.getclose("allslots"))', reply)]
    with expected_protocol(Keithley707B, exchanges) as matrix:
        assert matrix.closed_channels() == channels


@pytest.mark.parametrize(
    "channels", [["1A13"], ["1I01"], ["7A01"], ["1a01"], ["1A1"], [], "1A01", ["1A01", 5]]
)
def test_bad_channel_names_send_nothing(channels):
    with expected_protocol(Keithley707B, CONNECT) as matrix:
        with pytest.raises(ConfigError):
            matrix.exclusive_close(channels)
        with pytest.raises(ConfigError):
            matrix.close_channels(channels)


def test_close_opens_every_crosspoint():
    with expected_protocol(Keithley707B, [*CONNECT, ('channel.open("allslots")', None)]) as m:
        m.close()
        assert m.closed
