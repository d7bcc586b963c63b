"""Rules every VISA driver keeps, checked over all of them (a new driver joins DRIVERS)."""

from __future__ import annotations

import inspect
import math

import pytest
from pyvisa import constants
from pyvisa.constants import VisaBoolean
from pyvisa.errors import VisaIOError

from tests.instruments.transcript import (
    DRIVERS,
    IDN,
    FakeResourceManager,
    connect,
    expected_protocol,
)
from xbarlab.errors import IdentityError, InstrumentError, XbarlabError
from xbarlab.instruments.visa import UNITS, Choices, Range, ScpiInstrument, Setting

#: The safe state each driver leaves on close.
SAFE_STATE = {
    "Keithley2450": [":SOUR:VOLT:LEV 0", ":OUTP OFF"],
    "Keithley2600": ["smua.source.levelv = 0", "smua.source.output = smua.OUTPUT_OFF"],
    "Keysight33500B": ["OUTP1 OFF"],
    "Keithley707B": ['channel.open("allslots")'],
}
#: One configuration call per driver, the step after which the error queue is read.
CONFIGURE = {
    "Keithley2450": lambda d: d.configure_voltage_source(current_limit=1e-4),
    "Keithley2600": lambda d: d.configure_voltage_source(current_limit=1e-4),
    "Keysight33500B": lambda d: d.configure_pulse(amplitude=1.0, width=1e-7),
    "Keithley707B": None,  # its configuration is the connect rule, checked on connect
}


def settings(driver) -> list[Setting]:
    found = {}
    for cls in reversed(driver.__mro__):
        found.update({k: v for k, v in vars(cls).items() if isinstance(v, Setting)})
    return list(found.values())


ALL_SETTINGS = [(d, s) for d in DRIVERS for s in settings(d)]
SETTING_IDS = [f"{d.__name__}.{s.name}" for d, s in ALL_SETTINGS]


@pytest.mark.parametrize(("driver", "setting"), ALL_SETTINGS, ids=SETTING_IDS)
def test_every_setting_is_declared_with_unit_doc_and_validator(driver, setting):
    assert setting.unit in UNITS
    assert len(setting.doc) > 10 and setting.doc in (setting.__doc__ or "")
    assert isinstance(setting.validator, (Range, Choices))
    if isinstance(setting.validator, Range):
        assert setting.validator.low < setting.validator.high
        assert setting.validator.source, "cite where the range comes from"
    if setting.unit in ("V", "A"):
        assert setting.limit in ("max_voltage", "max_current"), "sources need a caller limit"


def bad_values(setting) -> list:
    if isinstance(setting.validator, Choices):
        return ["maybe", 2, None]
    v = setting.validator
    return [v.high * 1.5 + 1, v.low - abs(v.low) - 1, math.nan, math.inf, "1", None, True]


@pytest.mark.parametrize(("driver", "setting"), ALL_SETTINGS, ids=SETTING_IDS)
def test_every_setter_refuses_bad_values_before_sending(driver, setting):
    with expected_protocol(driver, connect(driver)) as instrument:
        for value in bad_values(setting):
            with pytest.raises(XbarlabError, match=setting.name):
                setattr(instrument, setting.name, value)


@pytest.mark.parametrize(("driver", "setting"), ALL_SETTINGS, ids=SETTING_IDS)
def test_every_command_template_is_complete(driver, setting):
    """Templates format with the driver's fields: no placeholder reaches the instrument."""
    with expected_protocol(driver, connect(driver)) as instrument:
        v = setting.validator
        valid = next(iter(v.encode)) if isinstance(v, Choices) else v.low
        for command in (
            setting.command(instrument, valid),
            setting.get_command.format(**instrument.fields()),
        ):
            assert "{" not in command and "}" not in command


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.__name__)
def test_public_api_is_documented(driver):
    assert driver.__doc__ and "resource" in driver.__doc__
    for name, member in inspect.getmembers(driver, inspect.isfunction):
        if not name.startswith("_"):
            assert member.__doc__, f"{driver.__name__}.{name} has no docstring"


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.__name__)
def test_connect_sets_termination_and_timeout(driver):
    with expected_protocol(driver, connect(driver), timeout_s=2.5) as instrument:
        attributes = instrument._resource.attributes
    assert attributes == {
        "read_termination": "\n",
        "write_termination": "\n",
        "timeout": 2500,
        "tcpip_nodelay": VisaBoolean.true,
    }


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.__name__)
def test_close_leaves_the_safe_state_on_every_exit_path(driver):
    safe = [(command, None) for command in SAFE_STATE[driver.__name__]]
    # context manager, normal exit and exit by an exception
    with expected_protocol(driver, [*connect(driver), *safe]) as instrument:
        with instrument:
            pass
    with expected_protocol(driver, [*connect(driver), *safe]) as instrument:
        with pytest.raises(KeyboardInterrupt), instrument:
            raise KeyboardInterrupt
    # an explicit close in the caller's finally, twice: the second does nothing
    with expected_protocol(driver, [*connect(driver), *safe]) as instrument:
        try:
            pass
        finally:
            instrument.close()
            instrument.close()
    assert instrument.closed
    with pytest.raises(InstrumentError, match="closed"):
        instrument.write("*RST")


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.__name__)
def test_connection_is_released_when_the_shutdown_fails(driver):
    rm = FakeResourceManager(connect(driver))
    instrument = driver("TCPIP::fake::5025::SOCKET", rm=rm)

    def lost(command):
        raise VisaIOError(constants.StatusCode.error_connection_lost)

    rm.resource.write = lost
    with pytest.raises(InstrumentError, match="cannot send"):
        instrument.close()
    assert rm.resource.closed and instrument.closed


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.__name__)
def test_identity_mismatch_raises_and_sends_nothing_else(driver):
    others = [IDN[d] for d in DRIVERS if d is not driver] + ["", "ACME,DMM 1,0,1"]
    for answer in others:
        rm = FakeResourceManager([("*IDN?", answer)])
        with pytest.raises(IdentityError, match=f"expected a {driver.model} .*{answer!r}") as info:
            driver("TCPIP::fake::5025::SOCKET", rm=rm)
        assert "TCPIP::fake::5025::SOCKET" in str(info.value)
        rm.resource.assert_done()
        assert rm.resource.closed


def queue_with_one_error(driver) -> list:
    if issubclass(driver, ScpiInstrument):
        return [("SYST:ERR?", '-222,"Data out of range"'), ("SYST:ERR?", '0,"No error"')]
    return [
        ("print(errorqueue.count)", "1.00000e+00"),
        ("print(errorqueue.next())", "-2.22000e+02\tData out of range\t2\t0"),
    ]


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.__name__)
def test_error_after_connect_raises_with_code_and_message(driver):
    exchanges = [*connect(driver)[:-1], *queue_with_one_error(driver)]
    rm = FakeResourceManager(exchanges)
    with pytest.raises(InstrumentError, match="after connect: -222: Data out of range") as info:
        driver("TCPIP::fake::5025::SOCKET", rm=rm)
    assert info.value.code == -222
    rm.resource.assert_done()
    assert rm.resource.closed


class Lenient:
    """A resource that accepts every command and answers queries from a table."""

    def __init__(self, replies: dict[str, list[str]]):
        self.replies = replies
        self.sent: list[str] = []
        self._reply = None

    def write(self, command):
        self.sent.append(command)
        if command in self.replies:
            self._reply = self.replies[command].pop(0)

    def read(self):
        reply, self._reply = self._reply, None
        return reply

    def set_visa_attribute(self, name, state):
        pass

    def close(self):
        pass


@pytest.mark.parametrize(
    "driver", [d for d in DRIVERS if CONFIGURE[d.__name__]], ids=lambda d: d.__name__
)
def test_error_after_configuration_raises_with_code_and_message(driver):
    clean, queued = connect(driver)[-1], queue_with_one_error(driver)
    replies = {"*IDN?": [IDN[driver]], clean[0]: [clean[1]]}
    for query, reply in queued:
        replies.setdefault(query, []).append(reply)
    resource = Lenient(replies)
    rm = FakeResourceManager([])
    rm.open_resource = lambda name, **attributes: resource
    instrument = driver("TCPIP::fake::5025::SOCKET", rm=rm)
    with pytest.raises(InstrumentError, match="-222: Data out of range") as info:
        CONFIGURE[driver.__name__](instrument)
    assert info.value.code == -222
    assert all(not replies[query] for query in replies), "the whole queue was read"
