"""xbarlab: lab control and emulation for analog in-memory-computing crossbar arrays.

The top package is the core layer: errors, safety limits, clocks, events and the
CLI. Device access lives in :mod:`xbarlab.chipdrivers`; start with
:func:`xbarlab.chipdrivers.open_crossbar`.
"""

import os

# Thread pools: numba's parallel kernels and OpenBLAS take turns on the same cores,
# many times per MVM. Idle OpenBLAS threads spin for about 2^28 cycles by default and
# idle OpenMP threads spin too, so whichever pool runs next waits a scheduler slice
# (about 8 ms on two cores). Both are asked to sleep when idle instead, unless the
# environment already says otherwise. This only takes effect if xbarlab is imported
# before numpy (OpenBLAS reads its settings when it loads).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from importlib.metadata import PackageNotFoundError, version  # noqa: E402

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
