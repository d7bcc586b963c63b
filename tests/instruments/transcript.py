"""Exact-transcript harness for the VISA drivers: a fake pyvisa resource.

A test lists the exchanges it expects, in order, as ``(sent, reply)`` pairs: ``sent`` is
the command line without termination, ``reply`` the line the instrument answers (without
termination), ``None`` for a command that gets no answer, or an exception instance to
raise on the read (e.g. a pyvisa timeout). The fake fails the test on the first
command that differs, on a read with nothing to read, on traffic after close, and at the
end if an expected exchange was never used: a transcript test cannot pass by sending less.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from xbarlab.instruments.keithley707b import Keithley707B
from xbarlab.instruments.keithley2450 import Keithley2450
from xbarlab.instruments.keithley2600 import Keithley2600
from xbarlab.instruments.keysight33500 import Keysight33500B

#: (command sent, reply or None or exception to raise on read)
Exchange = tuple[str, "str | BaseException | None"]


class FakeResource:
    """Stands in for a ``pyvisa`` message-based resource (write, read, query, close)."""

    def __init__(self, exchanges: Sequence[Exchange], name: str, **attributes):
        self.name = name
        self.attributes = attributes
        self.sent: list[str] = []
        self.closed = False
        self._expected = list(exchanges)
        self._reply: str | BaseException | None = None

    def write(self, command: str) -> int:
        """Check ``command`` against the next expected exchange."""
        assert not self.closed, f"{command!r} written after close()"
        assert self._reply is None, f"{command!r} written while reply {self._reply!r} is unread"
        assert self._expected, f"unexpected {command!r}: the transcript is exhausted"
        sent, reply = self._expected.pop(0)
        assert command == sent, f"sent {command!r}, the transcript expects {sent!r}"
        self.sent.append(command)
        self._reply = reply
        return len(command) + 1

    def read(self) -> str:
        """The reply of the last command (raises it, if it is an exception)."""
        assert not self.closed, "read after close()"
        reply, self._reply = self._reply, None
        assert reply is not None, f"read, but {self.sent[-1:]} expects no reply"
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def query(self, command: str) -> str:
        self.write(command)
        return self.read()

    def set_visa_attribute(self, name, state) -> None:
        """Record a VISA attribute (e.g. TCP_NODELAY) with the open_resource ones."""
        self.attributes[str(name.name)] = state

    def close(self) -> None:
        self.closed = True

    def assert_done(self) -> None:
        """Fail if an expected exchange was not used or a reply was not read."""
        assert self._reply is None, f"reply {self._reply!r} never read"
        assert not self._expected, f"expected exchanges never sent: {self._expected}"


class FakeResourceManager:
    """``rm`` for a driver: ``open_resource`` returns one FakeResource with the transcript."""

    def __init__(self, exchanges: Sequence[Exchange]):
        self._exchanges = exchanges
        self.resource: FakeResource | None = None

    def open_resource(self, name: str, **attributes) -> FakeResource:
        assert self.resource is None, "the driver opened a second resource"
        self.resource = FakeResource(self._exchanges, name, **attributes)
        return self.resource


@contextmanager
def expected_protocol(
    driver, exchanges: Sequence[Exchange], resource: str = "TCPIP::fake::5025::SOCKET", **kwargs
) -> Iterator:
    """Connect ``driver`` to a transcript and yield it; fail if anything was left unused.

    ``exchanges`` includes the connect exchanges (identity, clear, ...). The driver is not
    closed here: tests of the safe state close it themselves, inside the block.
    """
    rm = FakeResourceManager(exchanges)
    instrument = driver(resource, rm=rm, **kwargs)
    yield instrument
    rm.resource.assert_done()


#: What each real instrument answers to *IDN? (firmware strings from the manuals' examples).
IDN = {
    Keithley2450: "KEITHLEY INSTRUMENTS,MODEL 2450,04096331,1.7.3c",
    Keithley2600: "Keithley Instruments Inc., Model 2636B, 4100001, 4.0.4",
    Keysight33500B: "Keysight Technologies,33522B,MY52800001,4.00-1.19-2.00-58-00",
    Keithley707B: "Keithley Instruments Inc., Model 707B, 04105420, 01.40a",
}
#: Commands each driver sends after the identity check, then the empty error queue.
SCPI_CONNECT = [("*CLS", None), ("SYST:ERR?", '0,"No error"')]
TSP_CONNECT = [("errorqueue.clear()", None), ("print(errorqueue.count)", "0.00000e+00")]
AFTER_IDN = {
    Keithley2450: SCPI_CONNECT,
    Keysight33500B: SCPI_CONNECT,
    Keithley2600: TSP_CONNECT,
    Keithley707B: [
        TSP_CONNECT[0],
        ("channel.connectrule = channel.BREAK_BEFORE_MAKE", None),
        TSP_CONNECT[1],
    ],
}
DRIVERS = list(IDN)


def connect(driver) -> list[Exchange]:
    """The exchanges a driver makes on connect: identity, setup commands, error queue."""
    return [("*IDN?", IDN[driver]), *AFTER_IDN[driver]]
