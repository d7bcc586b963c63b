"""Keithley 707B switching matrix driver (TSP), the router of a bench.

Channel names are slot digit, row letter, two-digit column (``"1A05"``): up to six
8 x 12 matrix cards (rows A..H, columns 01..12). On connect the driver sets the connect
rule to break-before-make: make-before-break can weld reed relays.
Commands: Model 707B Reference Manual (707B-901-01), channel.* TSP functions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from xbarlab.errors import ConfigError
from xbarlab.instruments.visa import TspInstrument

#: A crosspoint of a 707B matrix card: slot 1..6, row A..H, column 01..12.
CHANNEL = re.compile(r"[1-6][A-H](0[1-9]|1[0-2])")


class Keithley707B(TspInstrument):
    """Keithley 707B matrix: close, exclusively close, open and list crosspoints.

    Parameters
    ----------
    resource : str
        VISA resource string, e.g. ``"TCPIP::10.0.0.7::5025::SOCKET"``.
    timeout_s : float
        Reply timeout in s.
    rm : pyvisa.ResourceManager, optional
        Default pyvisa-py (``"@py"``).
    """

    model = "Keithley 707B"
    model_pattern = r"Keithley Instruments.*Model 707B"
    connect_commands = (
        *TspInstrument.connect_commands,
        "channel.connectrule = channel.BREAK_BEFORE_MAKE",
    )

    def close_channels(self, channels: Sequence[str]) -> None:
        """Close ``channels`` (e.g. ``["1A01", "1C09"]``) in addition to those closed."""
        self.write(f'channel.close("{channel_list(channels)}")')

    def exclusive_close(self, channels: Sequence[str]) -> None:
        """Close exactly ``channels``: every other crosspoint opens first."""
        self.write(f'channel.exclusiveclose("{channel_list(channels)}")')

    def open_all(self) -> None:
        """Open every crosspoint of every slot."""
        self.write('channel.open("allslots")')

    def closed_channels(self) -> list[str]:
        """The closed crosspoints, as the matrix reports them (the read-back of a route)."""
        reply = self.query('print(channel.getclose("allslots"))')
        if reply in ("nil", ""):
            return []
        return reply.split(";")

    def shutdown(self) -> None:
        """Open every crosspoint (the safe state)."""
        self.open_all()


def channel_list(channels: Sequence[str]) -> str:
    """``channels`` as the comma-separated list TSP expects, each name checked first."""
    if isinstance(channels, str) or len(channels) == 0:
        raise ConfigError(
            f"channels = {channels!r} must be a non-empty list of names like ['1A01', '1C09']"
        )
    for name in channels:
        if not isinstance(name, str) or not CHANNEL.fullmatch(name):
            raise ConfigError(
                f"channel {name!r} is not a 707B crosspoint: slot 1..6, row A..H, "
                "column 01..12, e.g. '1A05'; nothing was sent"
            )
    return ",".join(channels)
