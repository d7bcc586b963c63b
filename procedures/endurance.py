"""``endurance``: SET/RESET cycling in blocks until the switching window closes.

A cycle is ``set_count`` SET pulses followed by one RESET pulse. After each block of
``block_cycles`` cycles, the last cycle's SET and RESET states are read, giving each
device's window G_set / G_reset. Cycling stops when the median window falls below
``min_window`` (the devices have worn out, stuck at SET or RESET) or at ``max_cycles``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarlab.chipdrivers.crossbar import ChipInfo, Crossbar, PulseShape
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

#: conductance in S used instead of a RESET read at or below zero (window stays finite)
_G_FLOOR = 1e-12


@dataclass(frozen=True)
class EnduranceParams:
    block_cycles: int = param(100, lo=1, hi=1_000_000, help="SET/RESET cycles per block")
    max_cycles: int = param(10_000, lo=1, hi=10**9, help="stop after this many cycles")
    min_window: float = param(
        2.0, lo=1, lo_inclusive=False, help="stop when the median G_set/G_reset falls below"
    )
    region: str = region_param("all", "devices to cycle")
    set_amplitude: float | None = amplitude_param("SET", default="top of SET range")
    set_width: float | None = width_param("SET")
    set_count: int = param(10, lo=1, hi=10_000, help="SET pulses per cycle")
    reset_amplitude: float | None = amplitude_param("RESET")
    reset_width: float | None = width_param("RESET")

    def __post_init__(self):
        Region.parse(self.region)


class Endurance(Procedure):
    name = "endurance"
    Parameters = EnduranceParams
    summary_doc = (
        "SET/RESET cycling in blocks until the window G_set/G_reset closes below a ratio "
        "or max_cycles; records the window per block."
    )

    def pulses(self, info: ChipInfo) -> tuple[PulseShape, PulseShape]:
        """The SET and RESET pulses: the parameters, else the chip's recommendations."""
        p = self.params
        set_default = PulseShape(info.set_amplitude_range[1], info.set_pulse.width)
        return (
            pulse_of(set_default, p.set_amplitude, p.set_width),
            pulse_of(info.reset_pulse, p.reset_amplitude, p.reset_width),
        )

    def check(self, info: ChipInfo) -> None:
        Region.parse(self.params.region).check(info)
        set_p, reset_p = self.pulses(info)
        check_pulse(info, set_p, self.params.set_count)
        check_pulse(info, reset_p)

    def n_steps(self, info: ChipInfo) -> int:
        return -(-self.params.max_cycles // self.params.block_cycles)

    def plan(self, xbar: Crossbar) -> Plan:
        p = self.params
        sel = Region.parse(p.region).selection(xbar.info)
        set_p, reset_p = self.pulses(xbar.info)

        def pulse(shape: PulseShape, count: int = 1) -> None:
            xbar.pulse(
                sel,
                polarity=shape.polarity,
                amplitude=shape.amplitude,
                width=shape.width,
                count=count,
            )

        def block(cycles_before: int, n: int) -> dict:
            for _ in range(n - 1):
                pulse(set_p, p.set_count)
                pulse(reset_p)
            pulse(set_p, p.set_count)
            g_set = xbar.read(sel)
            pulse(reset_p)
            g_reset = xbar.read(sel)
            window = g_set / np.maximum(g_reset, _G_FLOOR)
            return {
                "cycles": cycles_before + n,
                "g_set": g_set,
                "g_reset": g_reset,
                "window": window.astype(np.float32),
                "window_median": float(np.median(window)),
                "closed_fraction": float(np.mean(window < p.min_window)),
            }

        cycles, blocks = 0, []
        while cycles < p.max_cycles:
            n = min(p.block_cycles, p.max_cycles - cycles)
            k = len(blocks)
            data = yield Step(
                f"block-{k:04d}", lambda c=cycles, n=n: block(c, n), f"cycles {cycles + n}"
            )
            cycles = int(data["cycles"])
            blocks.append(
                {
                    "cycles": cycles,
                    "window_median": float(data["window_median"]),
                    "closed_fraction": float(data["closed_fraction"]),
                }
            )
            if blocks[-1]["window_median"] < p.min_window:
                break
        return {
            "cycles": cycles,
            "window_closed": blocks[-1]["window_median"] < p.min_window,
            "initial_window_median": blocks[0]["window_median"],
            "final_window_median": blocks[-1]["window_median"],
            "blocks": blocks,
        }
