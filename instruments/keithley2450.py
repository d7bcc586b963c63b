"""Keithley 2450 SourceMeter driver (SCPI), used as the read SMU of a bench.

Commands and ranges: Keithley 2450 Reference Manual (2450-901-01), SCPI command
reference (:SOURce, :SENSe, :OUTPut, :SYSTem:ERRor).
"""

from __future__ import annotations

from xbarlab.instruments.visa import Choices, Range, ScpiInstrument, SourceMeter, smu_setting


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

    source_voltage = smu_setting(
        "source_voltage",
        ":SOUR:VOLT?",
        ":SOUR:VOLT:LEV {value}",
        Range(-210.0, 210.0, source="2450 manual: voltage source ranges, 200 V range"),
    )
    current_limit = smu_setting(
        "current_limit",
        ":SOUR:VOLT:ILIM?",
        ":SOUR:VOLT:ILIM {value}",
        Range(1e-9, 1.05, source="2450 manual: :SOURce:VOLTage:ILIMit"),
    )
    nplc = smu_setting(
        "nplc",
        ":SENS:CURR:NPLC?",
        ":SENS:CURR:NPLC {value}",
        Range(0.01, 10.0, source="2450 manual: :SENSe:CURRent:NPLCycles"),
    )
    output_enabled = smu_setting(
        "output_enabled", ":OUTP?", ":OUTP {value}", Choices({True: "ON", False: "OFF"})
    )
