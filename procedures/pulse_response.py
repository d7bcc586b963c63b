"""``pulse-response``: conductance after each of n identical SET pulses.

The device characterisation curve: after an optional RESET, ``n_pulses`` SET pulses of
one amplitude and width, with a read after each. The summary gives the mean curve and
the mean increment per pulse as a function of the conductance it started from (for
PCM it shrinks as G approaches saturation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarlab.chipdrivers.crossbar import ChipInfo, Crossbar
from xbarlab.procedures.base import (
    Plan,
    Procedure,
    Region,
    Step,
    amplitude_param,
    check_pulse,
    pulse_of,
    region_param,
    width_param,
)
from xbarlab.procedures.params import param

#: bins over [0, g_max] for the increment-versus-G table
_G_BINS = 8


@dataclass(frozen=True)
class PulseResponseParams:
    n_pulses: int = param(20, lo=1, hi=10_000, help="SET pulses, one read after each")
    amplitude: float | None = amplitude_param("SET")
    width: float | None = width_param("SET")
    reset_first: bool = param(True, help="RESET the devices before the first SET pulse")
    region: str = region_param("all", "devices to pulse")

    def __post_init__(self):
        Region.parse(self.region)


class PulseResponse(Procedure):
    name = "pulse-response"
    Parameters = PulseResponseParams
    summary_doc = (
        "Applies n SET pulses (after a RESET) and reads G after each: the characterisation "
        "curve and the mean increment per pulse versus G."
    )

    def check(self, info: ChipInfo) -> None:
        Region.parse(self.params.region).check(info)
        check_pulse(info, pulse_of(info.set_pulse, self.params.amplitude, self.params.width))
        if self.params.reset_first:
            check_pulse(info, info.reset_pulse)

    def n_steps(self, info: ChipInfo) -> int:
        return self.params.n_pulses + 1

    def plan(self, xbar: Crossbar) -> Plan:
        p = self.params
        info = xbar.info
        sel = Region.parse(p.region).selection(info)
        sp = pulse_of(info.set_pulse, p.amplitude, p.width)

        def start() -> dict:
            if p.reset_first:
                rp = info.reset_pulse
                xbar.pulse(sel, polarity=rp.polarity, amplitude=rp.amplitude, width=rp.width)
            return {"g": xbar.read(sel)}

        def set_pulse() -> dict:
            xbar.pulse(sel, polarity=sp.polarity, amplitude=sp.amplitude, width=sp.width)
            return {"g": xbar.read(sel)}

        curve = [(yield Step("start", start, "reset"))["g"]]
        for k in range(p.n_pulses):
            data = yield Step(f"pulse-{k:04d}", set_pulse, f"pulse {k + 1}/{p.n_pulses}")
            curve.append(data["g"])
        g = np.stack(curve).astype(np.float64)
        return {
            "devices": int(np.size(curve[0])),
            "amplitude_V": sp.amplitude,
            "width_s": sp.width,
            "mean_g_S": g.reshape(len(curve), -1).mean(axis=1).tolist(),
            "increment_vs_g": increment_table(g, info.g_max),
        }


def increment_table(g: np.ndarray, g_max: float) -> list[dict]:
    """Mean increment per pulse binned by the conductance before the pulse.

    g: conductance in S, shape (n_pulses + 1, ...devices).
    """
    before = g[:-1].ravel()
    inc = (g[1:] - g[:-1]).ravel()
    edges = np.linspace(0.0, g_max, _G_BINS + 1)
    idx = np.clip(np.searchsorted(edges, before, side="right") - 1, 0, _G_BINS - 1)
    rows = []
    for k in range(_G_BINS):
        m = idx == k
        if m.any():
            rows.append(
                {
                    "g_S": float(before[m].mean()),
                    "mean_increment_S": float(inc[m].mean()),
                    "samples": int(m.sum()),
                }
            )
    return rows
