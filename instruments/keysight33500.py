"""Keysight 33500B waveform generator driver (SCPI), used as the pulse source of a bench.

One channel (1 or 2) is set to pulse function, bursts of N pulses on a bus trigger
(``*TRG``), high-impedance load so that the programmed levels are what the chip sees.
Ranges: Keysight 33500B Series data sheet and the SCPI reference of the 33500B user's
guide (FUNCtion:PULSe, BURSt, TRIGger, OUTPut:LOAD).
"""

from __future__ import annotations

from typing import Any

from xbarlab.errors import ConfigError, InstrumentError
from xbarlab.instruments.visa import (
    Choices,
    Range,
    ScpiInstrument,
    Setting,
    caller_limit,
    parse_bool,
    validate_all,
)

CHANNELS = (1, 2)


class Keysight33500B(ScpiInstrument):
    """One channel of a Keysight 33500B as a triggered pulse source.

    Parameters
    ----------
    resource : str
        VISA resource string, e.g. ``"TCPIP::10.0.0.6::5025::SOCKET"``.
    channel : {1, 2}
        Output channel.
    max_voltage : float, optional
        Largest ``abs`` pulse level the driver will send, in V (the chip's
        ``SafetyLimits.max_voltage``); default the instrument's range.
    timeout_s : float
        Reply timeout in s (a long burst must finish within it, see :meth:`trigger`).
    rm : pyvisa.ResourceManager, optional
        Default pyvisa-py (``"@py"``).
    """

    model = "Keysight 33500B"
    model_pattern = r"(Agilent|Keysight) Technologies,335\d\dB"

    high_level = Setting(
        "SOUR{ch}:VOLT:HIGH?",
        "SOUR{ch}:VOLT:HIGH {value}",
        validator=Range(-10.0, 10.0, source="33500B data sheet: amplitude into high-Z"),
        unit="V",
        doc="Pulse top level (the pulse amplitude when the low level is 0 V).",
        limit="max_voltage",
    )
    low_level = Setting(
        "SOUR{ch}:VOLT:LOW?",
        "SOUR{ch}:VOLT:LOW {value}",
        validator=Range(-10.0, 10.0, source="33500B data sheet: amplitude into high-Z"),
        unit="V",
        doc="Pulse base level.",
        limit="max_voltage",
    )
    pulse_width = Setting(
        "SOUR{ch}:FUNC:PULS:WIDT?",
        "SOUR{ch}:FUNC:PULS:WIDT {value}",
        validator=Range(16e-9, 1e6, source="33500B data sheet: pulse width"),
        unit="s",
        doc="Pulse width at 50 % of the amplitude.",
    )
    edge_time = Setting(
        "SOUR{ch}:FUNC:PULS:TRAN:BOTH?",
        "SOUR{ch}:FUNC:PULS:TRAN:BOTH {value}",
        validator=Range(8.4e-9, 1e-6, source="33500B data sheet: pulse edge time"),
        unit="s",
        doc="Rise and fall time (10 % to 90 %) of the pulse edges.",
    )
    period = Setting(
        "SOUR{ch}:FUNC:PULS:PER?",
        "SOUR{ch}:FUNC:PULS:PER {value}",
        validator=Range(33e-9, 1e6, source="33500B data sheet: pulse period"),
        unit="s",
        doc="Pulse period (spacing of the pulses in a burst).",
    )
    burst_count = Setting(
        "SOUR{ch}:BURS:NCYC?",
        "SOUR{ch}:BURS:NCYC {value}",
        validator=Range(1, 100_000_000, integer=True, source="33500B guide: BURSt:NCYCles"),
        unit="1",
        doc="Pulses per trigger.",
        parse=lambda reply: int(float(reply)),
    )
    output_enabled = Setting(
        "OUTP{ch}?",
        "OUTP{ch} {value}",
        validator=Choices({True: "ON", False: "OFF"}),
        unit="1",
        doc="Channel output on (True) or off (False).",
        parse=parse_bool,
    )

    def __init__(
        self, resource: str, *, channel: int = 1, max_voltage: float | None = None, **kwargs
    ):
        if channel not in CHANNELS or isinstance(channel, bool):
            raise ConfigError(f"channel = {channel!r} is not a 33500B channel; choose 1 or 2")
        self.channel = int(channel)
        self.max_voltage = caller_limit(type(self), "high_level", "max_voltage", max_voltage)
        super().__init__(resource, **kwargs)

    def fields(self) -> dict[str, Any]:
        """``{ch}`` is the channel number."""
        return {"ch": self.channel}

    def configure_pulse(
        self,
        *,
        amplitude: float,
        width: float,
        edge_time: float = 8.4e-9,
        period: float | None = None,
        count: int = 1,
    ) -> None:
        """Bursts of ``count`` pulses from 0 V to ``amplitude`` on each :meth:`trigger`.

        amplitude: pulse height in V, 0 < amplitude <= max_voltage.
        width: pulse width in s (at 50 %), >= edge_time.
        edge_time: rise and fall time in s.
        period: pulse spacing in s, >= width + edge_time; default 2 * (width + edge_time).
        count: pulses per trigger, >= 1.
        Everything is validated before the first command; the output is switched on
        (it stays at 0 V until triggered) and the error queue is checked.
        """
        levels = {"low_level": 0.0, "high_level": amplitude}
        commands = validate_all(self, {**levels, "pulse_width": width, "edge_time": edge_time})
        if period is None:
            period = 2.0 * (float(width) + float(edge_time))
        commands += validate_all(self, {"period": period, "burst_count": count})
        _check_shape(amplitude, width, edge_time, period)
        ch = self.channel
        for command in (
            f"SOUR{ch}:FUNC PULS",
            f"OUTP{ch}:LOAD INF",
            *commands,
            f"SOUR{ch}:BURS:MODE TRIG",
            f"SOUR{ch}:BURS:STAT ON",
            f"TRIG{ch}:SOUR BUS",
            f"OUTP{ch} ON",
        ):
            self.write(command)
        self.check_errors("configure_pulse")

    def trigger(self) -> None:
        """Fire one burst (``*TRG``) and wait until it is done (``*OPC?``)."""
        self.write("*TRG")
        reply = self.query("*OPC?")
        if reply != "1":
            raise InstrumentError(f"*OPC? answered {reply!r} instead of '1'", instrument=self.name)

    def shutdown(self) -> None:
        """Output off (the safe state)."""
        self.output_enabled = False


def _check_shape(amplitude: float, width: float, edge_time: float, period: float) -> None:
    """The pulse must rise above 0 V, reach its top and end before the next one starts."""
    if amplitude <= 0:
        raise ConfigError(f"amplitude = {amplitude:.6g} V must be > 0 V (the low level is 0 V)")
    if width < edge_time:
        raise ConfigError(
            f"width = {width:.6g} s is shorter than edge_time = {edge_time:.6g} s; "
            "the pulse would not reach its amplitude"
        )
    if period < width + edge_time:
        raise ConfigError(
            f"period = {period:.6g} s is shorter than width + edge_time = {width + edge_time:.6g} s"
        )
