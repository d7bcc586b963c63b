"""The transcript harness itself: it must fail whenever the traffic differs."""

from __future__ import annotations

import pytest

from tests.instruments.transcript import FakeResource, connect, expected_protocol
from xbarlab.instruments.keithley2450 import Keithley2450

CONNECT = connect(Keithley2450)


def test_an_unused_exchange_fails():
    with pytest.raises(AssertionError, match="never sent.*:OUTP OFF"):
        with expected_protocol(Keithley2450, [*CONNECT, (":OUTP OFF", None)]):
            pass


def test_a_different_command_fails():
    with pytest.raises(AssertionError, match="sent ':OUTP ON', the transcript expects ':OUTP OFF'"):
        with expected_protocol(Keithley2450, [*CONNECT, (":OUTP OFF", None)]) as smu:
            smu.output_enabled = True


def test_an_extra_command_fails():
    with pytest.raises(AssertionError, match="exhausted"):
        with expected_protocol(Keithley2450, CONNECT) as smu:
            smu.output_enabled = True


@pytest.mark.parametrize(
    ("steps", "match"),
    [
        (lambda r: (r.write("A"), r.read()), "expects no reply"),
        (lambda r: (r.write("B"), r.write("A")), "while reply 'b' is unread"),
        (lambda r: (r.close(), r.write("B")), "after close"),
        (lambda r: (r.write("B"), r.assert_done()), "reply 'b' never read"),
    ],
)
def test_misuse_of_the_resource_fails(steps, match):
    transcript = [("A", None), ("B", "b")] if "no reply" in match else [("B", "b"), ("A", None)]
    resource = FakeResource(transcript, "fake")
    with pytest.raises(AssertionError, match=match):
        steps(resource)
