"""``retention``: read devices at log-spaced times over a long duration.

Without programming (the default) it watches whatever state the chip holds; with
``program=true`` it first runs the ``program`` step of program-array. The first read
is the reference: each later read records the fraction of devices still within
``rel_tolerance`` of their initial conductance.
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
    check_order,
    log_times,
    region_param,
)
from xbarlab.procedures.drift import timed_read
from xbarlab.procedures.params import param, positive_param
from xbarlab.procedures.program_array import (
    ProgramParams,
    check_program,
    program_step,
    program_summary,
)

#: conductance in S below which a device's relative change is not computed
_G_FLOOR = 1e-12


@dataclass(frozen=True)
class RetentionParams(ProgramParams):
    program: bool = param(False, help="program the targets first (program-array parameters)")
    region: str = region_param("all", "devices to read")
    n_reads: int = param(20, lo=1, hi=1000, help="reads after the initial one, log-spaced")
    t_first: float = positive_param(60.0, "s", "first read after the initial one")
    duration: float = positive_param(2.592e6, "s", "last read after the initial one")
    rel_tolerance: float = param(
        0.2, lo=0, lo_inclusive=False, help="allowed |G - G_initial| / G_initial (fraction)"
    )

    def __post_init__(self):
        super().__post_init__()
        Region.parse(self.region)
        check_order("t_first", self.t_first, "duration", self.duration)


class Retention(Procedure):
    name = "retention"
    Parameters = RetentionParams
    summary_doc = (
        "Reads devices at log-spaced times over a long duration (optionally after "
        "programming); fraction still within tolerance of their initial conductance."
    )

    def check(self, info: ChipInfo) -> None:
        Region.parse(self.params.region).check(info)
        if self.params.program:
            check_program(self.params, info)

    def n_steps(self, info: ChipInfo) -> int:
        return self.params.n_reads + 1 + int(self.params.program)

    def plan(self, xbar: Crossbar) -> Plan:
        p = self.params
        summary = {}
        if p.program:
            summary["programming"] = program_summary((yield program_step(xbar, p)))
        sel = Region.parse(p.region).selection(xbar.info)

        def initial() -> dict:
            return {"t_start_s": xbar.clock.now(), "g": xbar.read(sel)}

        first = yield Step("initial", initial, "initial read")
        g0, t_ref = first["g"], float(first["t_start_s"])
        tol = p.rel_tolerance * np.maximum(np.abs(g0), _G_FLOOR)

        def read(t: float) -> dict:
            data = timed_read(xbar, t_ref, t, sel)
            data["fraction_within"] = float(np.mean(np.abs(data["g"] - g0) <= tol))
            return data

        t_s, within = [], []
        for k, t in enumerate(log_times(p.t_first, p.duration, p.n_reads)):
            data = yield Step(f"read-{k:03d}", lambda t=t: read(t), f"retention read {k + 1}")
            t_s.append(float(data["t_s"]))
            within.append(float(data["fraction_within"]))
            g_last = data["g"]
        rel = (g_last - g0) / np.maximum(np.abs(g0), _G_FLOOR)
        return {
            **summary,
            "devices": int(np.size(g0)),
            "rel_tolerance": p.rel_tolerance,
            "read_times_s": t_s,
            "fraction_within": within,
            "final_fraction_within": within[-1],
            "mean_rel_change": float(np.mean(rel)),
        }
