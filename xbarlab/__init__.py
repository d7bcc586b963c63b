"""xbarlab: lab control and emulation for analog in-memory-computing crossbar arrays.

The top package is the core layer: errors, safety limits, clocks, events and the
CLI. Device access lives in :mod:`xbarlab.chipdrivers`; start with
:func:`xbarlab.chipdrivers.open_crossbar`.
"""

import os

# Thread pools: numba's parallel kernels and OpenBLAS take turns on the same cores,
# several times per MVM. Idle OpenBLAS threads spin for about 2^28 cycles by default and
# idle OpenMP threads spin too, so whichever pool runs next waits a scheduler slice
# (about 8 ms on two cores). OpenBLAS threads are asked to spin 2^14 cycles (a few
# microseconds: across the gaps between the passes of one MVM, where waking a sleeping
# thread costs 10-40 us on a virtual machine, yet not into numba's parallel passes, which
# run only on 100 us of work or more) and OpenMP threads to sleep at once, unless the
# environment already says otherwise. This only takes effect if xbarlab is imported
# before numpy (OpenBLAS reads its settings when it loads). Measured on the 2-core test
# machine: 2^14 against 2^4 took a 256 x 256 tile MVM of 64 vectors from 1.2 to 1.05
# times numpy's product; 2^16 made it 1.3.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "14")
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
