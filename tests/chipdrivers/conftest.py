"""Fixtures of the chipdrivers tests: a valid station.yaml document (3 x 2 chip)."""

from __future__ import annotations

import copy

import pytest

_STATION = {
    "chip": {
        "rows": 3,
        "cols": 2,
        "technology": "pcm",
        "g_min": 1e-7,
        "g_max": 2.5e-5,
        "v_read": 0.2,
        "set_pulse": {"amplitude": 1.2, "width": 1e-7},
        "reset_pulse": {"amplitude": 2.2, "width": 1e-7},
        "set_amplitude_range": [0.9, 1.9],
    },
    "limits": {"max_voltage": 2.5, "compliance_current": 1e-4},
    "instruments": {
        "smu": {"driver": "keithley2600", "resource": "TCPIP::h::5025::SOCKET", "channel": "b"},
        "pulse": {"driver": "keysight33500b", "resource": "TCPIP::h::5026::SOCKET"},
        "switch": {"driver": "keithley707b", "resource": "TCPIP::h::5027::SOCKET"},
    },
    "wiring": {"layout": "default"},
}


@pytest.fixture
def station_doc() -> dict:
    """A fresh copy of a valid station document (tests may modify it)."""
    return copy.deepcopy(_STATION)
