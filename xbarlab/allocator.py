"""Keep freed array memory in the process: glibc malloc settings for repeated MVMs.

An emulated MVM allocates several arrays of 0.25 to 4 MB per call (DAC voltages,
the products, ADC output, the tile's scaled inputs) and frees them before the next
call. glibc hands the freed top of its heap back to the operating system once it
exceeds the trim threshold, and then every new array is faulted in again page by
page. Its default thresholds adapt to the largest block freed so far, so whether
that happens depends on the heap's layout: on the 2-core test machine the same
256 x 256 device-mode MVM of 1024 vectors took 2.5 or 4.5 times numpy's product
from one process to the next. Fixed thresholds keep up to TRIM_THRESHOLD of freed
memory for reuse, as the caching allocators of array frameworks do.
"""

from __future__ import annotations

import ctypes
import os
import sys

#: glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: freed memory at the top of the heap kept for reuse, in bytes
TRIM_THRESHOLD = 128 << 20
#: blocks from this size on get their own mapping, in bytes (glibc's largest dynamic value)
MMAP_THRESHOLD = 32 << 20
#: environment variables by which a user (or Dask's nanny) sets these thresholds itself
_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


def keep_freed_memory() -> bool:
    """Set glibc's trim and mmap thresholds to TRIM_THRESHOLD and MMAP_THRESHOLD.

    Returns True when both took effect. Does nothing and returns False off Linux, on a
    C library without ``mallopt`` (musl), or when the environment sets either threshold:
    the user's choice wins.
    """
    if not sys.platform.startswith("linux") or any(v in os.environ for v in _USER_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mmap_ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    return bool(mmap_ok) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
