"""Keithley 2600B System SourceMeter driver (TSP), channel a or b, used as read SMU.

Commands and ranges: Series 2600B Reference Manual (2600BS-901-01), TSP command
reference (smuX.source.*, smuX.measure.*, errorqueue.*). The voltage range bound is
the 200 V range of the 2635B/2636B; smaller models refuse more (their error queue
reports it after configuration).
"""

from __future__ import annotations

from typing import Any

from xbarlab.errors import ConfigError
from xbarlab.instruments.visa import Choices, Range, SourceMeter, TspInstrument, smu_setting

CHANNELS = ("a", "b")


class Keithley2600(SourceMeter, TspInstrument):
    """One channel of a Keithley 2600B SMU as a voltage source measuring current.

    Parameters
    ----------
    resource : str
        VISA resource string, e.g. ``"TCPIP::10.0.0.5::5025::SOCKET"``.
    channel : {"a", "b"}
        Which SMU of the mainframe (``smua`` or ``smub``).
    max_voltage, max_current : float, optional
        Caller limits in V and A (see :class:`~xbarlab.instruments.visa.SourceMeter`).
    timeout_s : float
        Reply timeout in s.
    rm : pyvisa.ResourceManager, optional
        Default pyvisa-py (``"@py"``).
    """

    model = "Keithley 2600B"
    model_pattern = r"Keithley Instruments.*Model 26\d\dB"
    voltage_source_commands = (
        "{smu}.source.func = {smu}.OUTPUT_DCVOLTS",
        "{smu}.measure.autorangei = {smu}.AUTORANGE_ON",
    )
    measure_current_query = "print({smu}.measure.i())"

    source_voltage = smu_setting(
        "source_voltage",
        "print({smu}.source.levelv)",
        "{smu}.source.levelv = {value}",
        Range(-200.0, 200.0, source="2600B manual: smuX.source.levelv, 200 V range"),
    )
    current_limit = smu_setting(
        "current_limit",
        "print({smu}.source.limiti)",
        "{smu}.source.limiti = {value}",
        Range(1e-9, 3.0, source="2600B manual: smuX.source.limiti"),
    )
    nplc = smu_setting(
        "nplc",
        "print({smu}.measure.nplc)",
        "{smu}.measure.nplc = {value}",
        Range(0.001, 25.0, source="2600B manual: smuX.measure.nplc"),
    )
    output_enabled = smu_setting(
        "output_enabled",
        "print({smu}.source.output)",
        "{smu}.source.output = {smu}.{value}",
        Choices({True: "OUTPUT_ON", False: "OUTPUT_OFF"}),
    )

    def __init__(self, resource: str, *, channel: str = "a", **kwargs):
        if channel not in CHANNELS:
            raise ConfigError(f"channel = {channel!r} is not a 2600B channel; choose 'a' or 'b'")
        self.channel = channel
        super().__init__(resource, **kwargs)

    def fields(self) -> dict[str, Any]:
        """``{smu}`` is ``smua`` or ``smub``."""
        return {"smu": f"smu{self.channel}"}
