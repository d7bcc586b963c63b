"""Numba helpers shared by the device-model kernels (pcm_kernels, rram_kernels).

Both device models select devices the same way and lay out the random normals of a
pulse train the same way, so the two kernel modules import these instead of each
keeping a copy:

- selection: ``n`` selected devices at flat indices ``idx[k]``, or ``idx`` empty and
  the selection is all devices in order (no index array of 8 bytes per device);
- normals of a pulse call of ``count`` pulses: selected device k owns the normal
  pairs ``k * pairs_per_device(count) + j // 2`` of the call's key, normal j = 0 for
  the newly programmed state and normal j = p + 1 for pulse p.

The helpers are inlined into the kernels that use them, and numba's on-disk cache does
not notice an edit here: after one, delete the cache files
(``find . -name '*.nb[ic]' -delete``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from xbarlab.emulator.rng import normal_pair


@njit(cache=True, inline="always")
def device(idx, k):
    """Flat index of the k-th selected device (``idx`` empty: all devices)."""
    # both branches int64: a parfor index is unsigned, and uint64 | int64 unifies to float
    return np.int64(k) if idx.size == 0 else np.int64(idx[k])


@njit(cache=True, inline="always")
def pairs_per_device(count):
    """Normal pairs each device draws in a pulse call: count + 1 normals, rounded up."""
    return (count + 2) // 2


@njit(cache=True, inline="always")
def pulse_normal(key, base, p, z_spare):
    """Normal p + 1 (the spread of pulse p) of the device whose pairs start at ``base``,
    and the spare normal for pulse p + 1.

    Normal p + 1 is the first of pair base + (p + 1) // 2 when p + 1 is even (its second
    normal is the spare), else the spare of the previous call, which stays the spare.
    Start with the second normal of pair ``base`` (normal 1) as the spare.
    """
    j = p + 1
    if j % 2 == 0:
        return normal_pair(key, base + j // 2)
    return z_spare, z_spare
