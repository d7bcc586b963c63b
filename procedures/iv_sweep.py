"""``iv-sweep``: read current I = G V of selected devices over a list of read voltages.

Every voltage is checked against the chip's ``max_read_voltage`` before anything runs:
a read above it would disturb the stored state. One step per voltage; the summary
gives the mean current per voltage and the conductance of a least-squares line
through the origin per device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarlab.chipdrivers.crossbar import ChipInfo, Crossbar
from xbarlab.procedures.base import Plan, Procedure, Region, Step, region_param
from xbarlab.procedures.params import param


@dataclass(frozen=True)
class IVSweepParams:
    voltages: tuple[float, ...] = param(
        (0.05, 0.1, 0.15, 0.2),
        unit="V",
        lo=0,
        lo_inclusive=False,
        help="read voltages, each <= the chip's max_read_voltage",
    )
    region: str = region_param("0:4,0:4", "devices to sweep")

    def __post_init__(self):
        Region.parse(self.region)


class IVSweep(Procedure):
    name = "iv-sweep"
    Parameters = IVSweepParams
    summary_doc = "Reads the current I = G V of selected devices over a list of read voltages."

    def check(self, info: ChipInfo) -> None:
        Region.parse(self.params.region).check(info)
        for v in self.params.voltages:
            info.limits.check_read_voltage(v, "parameter voltages: read voltage")

    def n_steps(self, info: ChipInfo) -> int:
        return len(self.params.voltages)

    def plan(self, xbar: Crossbar) -> Plan:
        sel = Region.parse(self.params.region).selection(xbar.info)
        volts, currents = [], []
        for k, v in enumerate(self.params.voltages):

            def sweep(v=v) -> dict:
                g = xbar.read(sel, v_read=v)
                return {"v_V": v, "g": g, "i_A": (g * np.float32(v)).astype(np.float32)}

            data = yield Step(f"v-{k:03d}", sweep, f"V = {v:g} V")
            volts.append(float(data["v_V"]))
            currents.append(np.asarray(data["i_A"], dtype=np.float64))
        v = np.array(volts)
        i = np.stack(currents)
        g_fit = np.tensordot(v, i, axes=(0, 0)) / np.dot(v, v)
        return {
            "devices": int(np.size(currents[0])),
            "voltages_V": volts,
            "mean_current_A": [float(c.mean()) for c in currents],
            "g_fit_mean_S": float(g_fit.mean()),
        }
