"""Declarative base of the VISA instrument drivers (SCPI and TSP over pyvisa).

A driver declares each instrument setting once, as a :class:`Setting` with its get and
set command templates, a validator, a unit and a doc string; reading and writing the
attribute sends the commands. Validators raise (never clamp) before anything is sent,
and settings that source voltage or current are also checked against a limit the caller
gives (the chip's :class:`~xbarlab.limits.SafetyLimits`).

:class:`Instrument` owns the connection: it opens a pyvisa resource with newline
termination and a timeout, checks the identity on connect, reads the error queue after
configuration and brings the instrument to a safe state on every exit path (context
manager, :meth:`Instrument.close`, a ``finally`` in the caller). All traffic goes through
:meth:`Instrument.write` and :meth:`Instrument.query`, so tests can replace the resource
with a transcript (tests/instruments/transcript.py) and see every byte.
"""

from __future__ import annotations

import math
import numbers
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pyvisa.constants import ResourceAttribute, VisaBoolean
from pyvisa.errors import Error as VisaError

from xbarlab.errors import ConfigError, IdentityError, InstrumentError, SafetyError

#: What pyvisa raises on I/O failure (timeouts, lost connections).
_VISA_ERRORS = (VisaError, OSError)
#: Units a Setting may declare: SI units, power-line cycles, and "1" for dimensionless
#: quantities (counts, flags), the SI convention for a quantity of dimension one.
UNITS = frozenset({"V", "A", "s", "PLC", "1"})
#: How many entries of the error queue are read at most (a real queue holds ~32).
MAX_ERRORS = 64


def format_number(value: float) -> str:
    """A number as sent to the instrument: 12 significant digits, no trailing zeros."""
    return format(value, ".12g")


def _suffix(unit: str) -> str:
    """`` V`` after a number; nothing for the dimensionless unit "1"."""
    return "" if unit == "1" else f" {unit}"


@dataclass(frozen=True)
class Range:
    """A closed interval ``low <= value <= high`` (optionally integers only).

    ``source`` names where the bounds come from (manual table), for the reader.
    """

    low: float
    high: float
    integer: bool = False
    source: str = ""

    def check(self, name: str, value: Any, unit: str) -> float | int:
        """``value`` as float (or int), or ConfigError naming value, unit and range."""
        kind = "an integer" if self.integer else "a number"
        valid = isinstance(value, numbers.Real) and not isinstance(value, bool)
        number = float(value) if valid else math.nan
        if not math.isfinite(number) or (self.integer and number != int(number)):
            raise ConfigError(f"{name} = {value!r} is not {kind}; allowed {self.describe(unit)}")
        if not self.low <= number <= self.high:
            raise ConfigError(
                f"{name} = {number:.6g}{_suffix(unit)} is outside the instrument's range "
                f"{self.describe(unit)}; nothing was sent"
            )
        return int(number) if self.integer else number

    def describe(self, unit: str) -> str:
        """The interval in words, e.g. ``-210 V .. 210 V``."""
        return f"{self.low:.6g}{_suffix(unit)} .. {self.high:.6g}{_suffix(unit)}"


@dataclass(frozen=True)
class Choices:
    """One of a fixed set of values; ``encode`` maps each to its command token."""

    encode: Mapping[Any, str]

    def check(self, name: str, value: Any, unit: str) -> Any:
        """``value`` itself, or ConfigError listing the choices."""
        for choice in self.encode:
            if value == choice and type(value) is type(choice):
                return value
        raise ConfigError(f"{name} = {value!r} is not allowed; choose one of {self.describe(unit)}")

    def describe(self, unit: str) -> str:
        """The choices, e.g. ``True, False``."""
        return ", ".join(repr(c) for c in self.encode)


def parse_bool(reply: str) -> bool:
    """An instrument's boolean reply: ``1``/``0``, ``ON``/``OFF`` or TSP ``1.00000e+00``."""
    text = reply.strip().upper()
    if text in ("ON", "OFF"):
        return text == "ON"
    return float(text) != 0.0


class Setting:
    """One instrument setting, declared once: commands, validator, unit, doc.

    Parameters
    ----------
    get_command, set_command : str
        Command templates. ``{value}`` is the encoded value; other fields (``{smu}``,
        ``{ch}``) come from :meth:`Instrument.fields`, e.g. the channel.
    validator : Range or Choices
        Checked before anything is written; raises ConfigError, never clamps.
    unit : str
        One of :data:`UNITS`.
    doc : str
        What the setting is, for ``help()`` and generated tables.
    parse : callable
        Turns the reply to ``get_command`` into a value (default float).
    limit : str, optional
        Name of an instrument attribute (``max_voltage``, ``max_current``) holding a
        caller's safety limit on ``abs(value)``; exceeding it raises SafetyError.
    """

    def __init__(
        self,
        get_command: str,
        set_command: str,
        *,
        validator: Range | Choices,
        unit: str,
        doc: str,
        parse: Callable[[str], Any] = float,
        limit: str | None = None,
    ):
        self.get_command = get_command
        self.set_command = set_command
        self.validator = validator
        self.unit = unit
        self.doc = doc
        self.parse = parse
        self.limit = limit
        self.name = ""
        self.__doc__ = f"{doc} Unit: {unit}; allowed {validator.describe(unit)}."

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instrument: Instrument | None, owner: type | None = None):
        if instrument is None:
            return self
        reply = instrument.query(self.get_command.format(**instrument.fields()))
        return instrument.parse_reply(reply, self.parse, what=self.name)

    def __set__(self, instrument: Instrument, value: Any) -> None:
        instrument.write(self.command(instrument, value))

    def command(self, instrument: Instrument, value: Any) -> str:
        """The set command for ``value``, after validation (raises, sends nothing)."""
        checked = self.validator.check(self.name, value, self.unit)
        if self.limit is not None:
            allowed = getattr(instrument, self.limit)
            if abs(checked) > allowed:
                raise SafetyError(self.limit, abs(checked), allowed, self.unit, self.name)
        if isinstance(self.validator, Choices):
            token = self.validator.encode[checked]
        else:
            token = format_number(checked)
        return self.set_command.format(value=token, **instrument.fields())


class Instrument:
    """A connected VISA instrument; subclasses declare Settings and commands.

    Parameters
    ----------
    resource : str
        VISA resource string, e.g. ``"TCPIP::10.0.0.5::5025::SOCKET"``.
    timeout_s : float
        Longest wait for a reply, in s (1e-3 .. 3600).
    rm : pyvisa.ResourceManager, optional
        Default ``pyvisa.ResourceManager("@py")`` (pyvisa-py, no vendor VISA needed).

    Subclasses set :attr:`model_pattern` (regex matched against the ``*IDN?`` reply) and
    implement :meth:`shutdown` (safe state) and the error-queue reading.
    """

    model_pattern: ClassVar[str] = ""
    #: Human model name, for messages.
    model: ClassVar[str] = ""
    #: Commands sent after the identity check (clear errors, connect rules, ...).
    connect_commands: ClassVar[tuple[str, ...]] = ()

    def __init__(self, resource: str, *, timeout_s: float = 5.0, rm=None):
        Range(1e-3, 3600.0).check("timeout_s", timeout_s, "s")
        self.resource_name = resource
        self.timeout_s = float(timeout_s)
        self._resource = _open(resource, self.timeout_s, rm, self.model)
        try:
            self._check_identity()
            for command in self.connect_commands:
                self.write(command)
            self.check_errors("connect")
        except BaseException:
            self._resource.close()
            raise

    # -- the traffic layer (tests replace the resource, not these) --------------------
    def write(self, command: str) -> None:
        """Send one command line (termination added by the resource)."""
        if self._resource is None:
            raise InstrumentError(f"cannot send {command!r}: closed", instrument=self.name)
        try:
            self._resource.write(command)
        except _VISA_ERRORS as exc:
            raise InstrumentError(f"cannot send {command!r}: {exc}", instrument=self.name) from exc

    def query(self, command: str) -> str:
        """Send ``command`` and return the reply line without termination."""
        self.write(command)
        try:
            return self._resource.read().strip()
        except _VISA_ERRORS as exc:
            raise InstrumentError(
                f"no reply to {command!r} within {self.timeout_s:g} s: {exc}",
                instrument=self.name,
            ) from exc

    def parse_reply(self, reply: str, parse: Callable[[str], Any], *, what: str) -> Any:
        """``parse(reply)``, or InstrumentError quoting the reply."""
        try:
            return parse(reply)
        except (TypeError, ValueError):
            raise InstrumentError(
                f"unexpected reply {reply!r} for {what}", instrument=self.name
            ) from None

    # -- identity, errors, safe state --------------------------------------------------
    @property
    def name(self) -> str:
        """Driver and resource, e.g. ``Keithley2450 at TCPIP::...`` (for messages)."""
        return f"{type(self).__name__} at {self.resource_name}"

    def fields(self) -> dict[str, Any]:
        """Template fields of the Setting commands (e.g. the channel); none by default."""
        return {}

    def identity(self) -> str:
        """The instrument's ``*IDN?`` reply."""
        return self.query("*IDN?")

    def _check_identity(self) -> None:
        answer = self.identity()
        if not re.search(self.model_pattern, answer, flags=re.IGNORECASE):
            raise IdentityError(
                f"expected a {self.model} but the instrument answered *IDN? with {answer!r}; "
                "check the resource string",
                instrument=self.name,
            )

    def read_errors(self) -> list[tuple[int, str]]:
        """Empty the instrument's error queue: (code, message) pairs, oldest first."""
        raise NotImplementedError

    def check_errors(self, after: str = "configuration") -> None:
        """Raise InstrumentError (first code, every message) if the error queue is not empty."""
        errors = self.read_errors()
        if errors:
            listed = "; ".join(f"{code}: {message}" for code, message in errors)
            raise InstrumentError(
                f"instrument reported {len(errors)} error(s) after {after}: {listed}",
                code=errors[0][0],
                instrument=self.name,
            )

    def shutdown(self) -> None:
        """Bring outputs to a safe state (0 V, off; switches open)."""
        raise NotImplementedError

    def close(self) -> None:
        """Safe state, then release the connection (idempotent; the resource is released
        even when the shutdown fails)."""
        if self._resource is None:
            return
        try:
            self.shutdown()
        finally:
            resource, self._resource = self._resource, None
            resource.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._resource is None

    def __enter__(self) -> Instrument:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{self.name}{' (closed)' if self.closed else ''}>"


class ScpiInstrument(Instrument):
    """An SCPI instrument: ``*CLS`` on connect, ``SYST:ERR?`` until ``0,"No error"``."""

    connect_commands = ("*CLS",)

    def read_errors(self) -> list[tuple[int, str]]:
        """``SYST:ERR?`` until it answers code 0."""
        errors = []
        for _ in range(MAX_ERRORS):
            reply = self.query("SYST:ERR?")
            code_text, _, message = reply.partition(",")
            code = self.parse_reply(code_text, int, what="SYST:ERR?")
            if code == 0:
                break
            errors.append((code, message.strip().strip('"')))
        return errors


class TspInstrument(Instrument):
    """A TSP (Lua) instrument: ``errorqueue.clear()`` on connect, ``errorqueue.next()``."""

    connect_commands = ("errorqueue.clear()",)

    def read_errors(self) -> list[tuple[int, str]]:
        """``errorqueue.count`` entries of ``errorqueue.next()`` (code, message, ...)."""
        reply = self.query("print(errorqueue.count)")
        count = int(self.parse_reply(reply, float, what="errorqueue.count"))
        errors = []
        for _ in range(min(count, MAX_ERRORS)):
            code_text, _, rest = self.query("print(errorqueue.next())").partition("\t")
            code = int(self.parse_reply(code_text, float, what="errorqueue.next()"))
            errors.append((code, rest.split("\t")[0]))
        return errors


def validate_all(instrument: Instrument, values: Mapping[str, Any]) -> list[str]:
    """Set commands for several Settings, all validated before any is sent.

    ``values`` maps Setting names to values, in sending order.
    """
    cls = type(instrument)
    return [getattr(cls, name).command(instrument, value) for name, value in values.items()]


def _open(resource: str, timeout_s: float, rm, model: str):
    """Open ``resource`` with newline termination and the timeout (in ms for pyvisa)."""
    if rm is None:
        import pyvisa

        rm = pyvisa.ResourceManager("@py")
    try:
        opened = rm.open_resource(
            resource,
            read_termination="\n",
            write_termination="\n",
            timeout=round(timeout_s * 1000),
        )
    except (*_VISA_ERRORS, ValueError) as exc:
        raise InstrumentError(f"cannot open {model} at {resource!r}: {exc}") from exc
    if resource.upper().endswith("::SOCKET"):
        try:
            _disable_nagle(opened)
        except Exception as exc:  # pyvisa-py raises plain Exceptions here
            opened.close()
            raise InstrumentError(f"cannot set TCP_NODELAY on {resource!r}: {exc}") from exc
    return opened


class SourceMeter(Instrument):
    """What both SMUs share: voltage sourcing with caller limits and a safe shutdown.

    Subclasses declare the Settings ``source_voltage``, ``current_limit``, ``nplc`` and
    ``output_enabled`` with :func:`smu_setting` (which adds the caller limits), the
    commands that select voltage sourcing and current sensing, and the reading query.

    Parameters
    ----------
    max_voltage : float, optional
        Largest ``abs(source_voltage)`` the driver will send, in V (the chip's
        ``SafetyLimits.max_voltage``); default the instrument's range.
    max_current : float, optional
        Largest ``current_limit`` (compliance) the driver will send, in A (the chip's
        ``SafetyLimits.compliance_current``); default the instrument's range.
    """

    #: Commands that make the SMU source voltage and measure current (autoranged).
    voltage_source_commands: ClassVar[tuple[str, ...]] = ()
    #: Query whose reply is one current reading in A.
    measure_current_query: ClassVar[str] = ""

    def __init__(
        self,
        resource: str,
        *,
        max_voltage: float | None = None,
        max_current: float | None = None,
        **kwargs,
    ):
        self.max_voltage = caller_limit(type(self), "source_voltage", "max_voltage", max_voltage)
        self.max_current = caller_limit(type(self), "current_limit", "max_current", max_current)
        super().__init__(resource, **kwargs)

    def configure_voltage_source(self, *, current_limit: float, nplc: float = 0.01) -> None:
        """Source voltage, measure current (autorange), then check the error queue.

        current_limit: compliance in A, within the instrument's range and <= max_current.
        nplc: integration time in power-line cycles (short is fast, long is quiet).
        All values are validated before the first command is sent.
        """
        limits = validate_all(self, {"current_limit": current_limit, "nplc": nplc})
        fields = self.fields()
        for command in (*(c.format(**fields) for c in self.voltage_source_commands), *limits):
            self.write(command)
        self.check_errors("configure_voltage_source")

    def measure_current(self) -> float:
        """One current reading in A at the present source voltage."""
        reply = self.query(self.measure_current_query.format(**self.fields()))
        return self.parse_reply(reply, float, what="measure_current")

    def shutdown(self) -> None:
        """Source 0 V, then output off (the safe state)."""
        self.source_voltage = 0.0
        self.output_enabled = False


#: What the four settings of every SMU share: unit, doc, caller limit, reply parser.
_SMU_SETTINGS: dict[str, tuple[str, str, str | None, Callable[[str], Any]]] = {
    "source_voltage": ("V", "Source voltage level.", "max_voltage", float),
    "current_limit": (
        "A",
        "Current limit (compliance) while sourcing voltage.",
        "max_current",
        float,
    ),
    "nplc": ("PLC", "Current measurement integration time in power-line cycles.", None, float),
    "output_enabled": ("1", "Source output on (True) or off (False).", None, parse_bool),
}


def smu_setting(
    name: str, get_command: str, set_command: str, validator: Range | Choices
) -> Setting:
    """One of the :class:`SourceMeter` settings, with the unit, doc and limit all SMUs share.

    A driver gives only what differs between instruments (command templates and the
    manual's range), so no SMU can declare its source voltage without ``max_voltage``.
    name: one of ``source_voltage``, ``current_limit``, ``nplc``, ``output_enabled``.
    """
    unit, doc, limit, parse = _SMU_SETTINGS[name]
    return Setting(
        get_command, set_command, validator=validator, unit=unit, doc=doc, parse=parse, limit=limit
    )


def caller_limit(cls: type, setting: str, name: str, value: float | None) -> float:
    """A caller's limit on a Setting, within the Setting's own range (default its maximum)."""
    validator = getattr(cls, setting).validator
    if value is None:
        return float(validator.high)
    return float(Range(0.0, validator.high).check(name, value, getattr(cls, setting).unit))


def _disable_nagle(opened) -> None:
    """TCP_NODELAY on a raw-socket resource: VISA's documented default.

    Without it a command followed by a query waits for the peer's delayed ACK (about
    40 ms per exchange on Linux). pyvisa-py 0.8 neither applies the default nor accepts
    the attribute (its setter is not wired), so its session socket is set directly.
    """
    sessions = getattr(getattr(opened, "visalib", None), "sessions", {})
    sock = getattr(sessions.get(getattr(opened, "session", None)), "interface", None)
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    else:
        opened.set_visa_attribute(ResourceAttribute.tcpip_nodelay, VisaBoolean.true)
