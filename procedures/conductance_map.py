"""``conductance-map``: read every selected device several times; mean and std per device.

One step per repeat (a whole-array read each), then a ``stats`` step that records the
per-device mean and standard deviation: the read-noise map of the chip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarlab.chipdrivers.crossbar import ChipInfo, Crossbar
from xbarlab.procedures.base import Plan, Procedure, Region, Step, region_param
from xbarlab.procedures.params import param


@dataclass(frozen=True)
class ConductanceMapParams:
    repeats: int = param(10, lo=1, hi=10_000, help="reads of every device")
    region: str = region_param("all", "devices to read")
    v_read: float | None = param(
        None, unit="V", lo=0, lo_inclusive=False, help="read voltage (default: the chip's)"
    )

    def __post_init__(self):
        Region.parse(self.region)


class ConductanceMap(Procedure):
    name = "conductance-map"
    Parameters = ConductanceMapParams
    summary_doc = "Reads all (or selected) devices repeatedly; per-device mean and std."

    def check(self, info: ChipInfo) -> None:
        Region.parse(self.params.region).check(info)
        if self.params.v_read is not None:
            info.limits.check_read_voltage(self.params.v_read, "parameter v_read")

    def n_steps(self, info: ChipInfo) -> int:
        return self.params.repeats + 1

    def plan(self, xbar: Crossbar) -> Plan:
        p = self.params
        sel = Region.parse(p.region).selection(xbar.info)
        reads = []
        for k in range(p.repeats):
            data = yield Step(
                f"read-{k:03d}",
                lambda: {"t_s": xbar.clock.now(), "g": xbar.read(sel, v_read=p.v_read)},
                f"read {k + 1}/{p.repeats}",
            )
            reads.append(data["g"])

        def stats() -> dict:
            stack = np.stack(reads).astype(np.float64)
            return {
                "g_mean": stack.mean(axis=0).astype(np.float32),
                "g_std": stack.std(axis=0).astype(np.float32),
            }

        s = yield Step("stats", stats, "statistics")
        return {
            "devices": int(np.size(s["g_mean"])),
            "repeats": p.repeats,
            "g_mean_S": float(np.mean(s["g_mean"])),
            "g_mean_min_S": float(np.min(s["g_mean"])),
            "g_mean_max_S": float(np.max(s["g_mean"])),
            "g_std_mean_S": float(np.mean(s["g_std"])),
        }
