"""xbarlab: lab control and emulation for analog in-memory-computing crossbar arrays.

The top package is the core layer: errors, safety limits, clocks, events and the
CLI. Device access lives in :mod:`xbarlab.chipdrivers`; start with
:func:`xbarlab.chipdrivers.open_crossbar`.
"""

import os

# Thread pools: numba's parallel kernels and OpenBLAS take turns on the same cores,
# several times per MVM. Idle OpenMP threads spin by default, so a product after a numba
# pass waited a scheduler slice (about 8 ms on two cores): they are asked to sleep at
# once. Idle OpenBLAS threads spin about 2^28 cycles (tens of ms) by default, keeping a
# core busy long after the last product: they are asked to spin 2^20 cycles (a few
# hundred microseconds), enough to bridge the passes of one MVM and the gap to the next
# one in a loop (waking a sleeping thread costs 10-40 us on a virtual machine), short
# enough to hand the core back soon when the process turns to other work. Either
# setting already in the environment wins. This only takes effect if xbarlab is
# imported before numpy (OpenBLAS reads its settings when it loads). The README's
# "Threads" section has the measurements.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from importlib.metadata import PackageNotFoundError, version  # noqa: E402

from xbarlab.allocator import keep_freed_memory
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

keep_freed_memory()

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
