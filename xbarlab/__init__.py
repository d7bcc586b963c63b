"""xbarlab: lab control and emulation for analog in-memory-computing crossbar arrays.

The top package is the core layer: errors, safety limits, clocks, events and the
CLI. Device access lives in :mod:`xbarlab.chipdrivers`; start with
:func:`xbarlab.chipdrivers.open_crossbar`.
"""

from importlib.metadata import PackageNotFoundError, version

from xbarlab.clock import Clock, RealClock, VirtualClock
from xbarlab.errors import (
    BackendError,
    ConfigError,
    SafetyError,
    SelectionError,
    SpecError,
    XbarlabError,
)
from xbarlab.limits import SafetyLimits

try:
    __version__ = version("xbarlab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "BackendError",
    "Clock",
    "ConfigError",
    "RealClock",
    "SafetyError",
    "SafetyLimits",
    "SelectionError",
    "SpecError",
    "VirtualClock",
    "XbarlabError",
    "__version__",
]
