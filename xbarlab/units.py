"""SI-unit conventions and conversions at the edge.

Code works in SI base units everywhere: conductance in S, voltage in V, current
in A, time in s. Conductances and currents are float32 arrays, times float64.
Conversion to uS, mV or ns happens only where humans read numbers (CLI
summaries, GUI labels), through the helpers below.
"""

from __future__ import annotations

import numpy as np

MICRO = 1e-6
NANO = 1e-9


def to_uS(g_S):
    """Conductance in S -> uS, for display only."""
    return np.asarray(g_S, dtype=np.float64) / MICRO


def fmt_seconds(t_s: float) -> str:
    """Human-readable duration: ns, us, ms, s, min, h or d."""
    t = abs(t_s)
    for unit, scale in (("d", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0)):
        if t >= scale:
            return f"{t_s / scale:.3g} {unit}"
    for unit, scale in (("ms", 1e-3), ("us", 1e-6)):
        if t >= scale:
            return f"{t_s / scale:.3g} {unit}"
    return f"{t_s / NANO:.3g} ns"
