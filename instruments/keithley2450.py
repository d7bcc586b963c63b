"""Keithley 2450 SourceMeter driver (SCPI), used as the read SMU of a bench.

Commands and ranges: Keithley 2450 Reference Manual (2450-901-01), SCPI command
reference (:SOURce, :SENSe, :OUTPut, :SYSTem:ERRor).
"""

from __future__ import annotations

from xbarlab.instruments.visa import (
    Choices,
    Range,
    ScpiInstrument,
    Setting,
    SourceMeter,
    parse_bool,
)

_ON_OFF = Choices({True: "ON", False: "OFF"})


class Keithley2450(SourceMeter, ScpiInstrument):
    """Keithley 2450 SMU as a voltage source measuring current.

    Parameters
    ----------
    resource : str
        VISA resource string, e.g. ``"TCPIP::10.0.0.5::5025::SOCKET"``.
    max_voltage, max_current : float, optional
        Caller limits in V and A (see :class:`~xbarlab.instruments.visa.SourceMeter`).
    timeout_s : float
        Reply timeout in s.
    rm : pyvisa.ResourceManager, optional
        Default pyvisa-py (``"@py"``).
    """

    model = "Keithley 2450"
    model_pattern = r"KEITHLEY INSTRUMENTS.*MODEL 2450"
    voltage_source_commands = (
        ":SOUR:FUNC VOLT",
        ":SENS:FUNC 'CURR'",
        ":SENS:CURR:RANG:AUTO ON",
    )
    measure_current_query = ":READ?"

    source_voltage = Setting(
        ":SOUR:VOLT?",
        ":SOUR:VOLT:LEV {value}",
        validator=Range(-210.0, 210.0, source="2450 manual: voltage source ranges, 200 V range"),
        unit="V",
        doc="Source voltage level.",
        limit="max_voltage",
    )
    current_limit = Setting(
        ":SOUR:VOLT:ILIM?",
        ":SOUR:VOLT:ILIM {value}",
        validator=Range(1e-9, 1.05, source="2450 manual: :SOURce:VOLTage:ILIMit"),
        unit="A",
        doc="Current limit (compliance) while sourcing voltage.",
        limit="max_current",
    )
    nplc = Setting(
        ":SENS:CURR:NPLC?",
        ":SENS:CURR:NPLC {value}",
        validator=Range(0.01, 10.0, source="2450 manual: :SENSe:CURRent:NPLCycles"),
        unit="PLC",
        doc="Current measurement integration time in power-line cycles.",
    )
    output_enabled = Setting(
        ":OUTP?",
        ":OUTP {value}",
        validator=_ON_OFF,
        unit="1",
        doc="Source output on (True) or off (False).",
        parse=parse_bool,
    )
