"""What programming a tile achieved: one write-verify result per (array, pair)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xbarlab.chipdrivers.programming import ProgramResult


@dataclass(frozen=True)
class PartResult:
    """Write-verify of the devices of one pair on one array (``array`` indexes tile.arrays)."""

    array: int
    pair: int
    result: ProgramResult


@dataclass
class ProgramReport:
    """Outcome of :meth:`AnalogTile.program`.

    weight_scale: weight magnitude mapped to g_range of the window (weight units);
    g_scale: conductance per weight unit in S; parts: one write-verify result per
    (array, pair); max_abs_error: largest |W_hat - W| read back after programming, in
    weight units.
    """

    weight_scale: float
    g_scale: float
    parts: list[PartResult] = field(default_factory=list)
    max_abs_error: float = float("nan")

    @property
    def converged_fraction(self) -> float:
        """Converged devices over devices not flagged unresponsive, over all arrays."""
        ok = sum(
            int(np.count_nonzero(r.result.converged & ~r.result.unresponsive)) for r in self.parts
        )
        usable = sum(int(np.count_nonzero(~r.result.unresponsive)) for r in self.parts)
        return ok / max(usable, 1)

    @property
    def unresponsive(self) -> int:
        """Devices given up as stuck, over all arrays."""
        return sum(int(np.count_nonzero(r.result.unresponsive)) for r in self.parts)

    def per_array(self) -> list[dict]:
        """JSON-ready summary per array: converged fraction, unresponsive devices, pulses."""
        out: dict[int, dict] = {}
        for part in self.parts:
            r = part.result
            d = out.setdefault(
                part.array, {"array": part.array, "devices": 0, "converged": 0, "unresponsive": 0}
            )
            d["devices"] += int(r.converged.size)
            d["converged"] += int(np.count_nonzero(r.converged & ~r.unresponsive))
            d["unresponsive"] += int(np.count_nonzero(r.unresponsive))
            d["pulses"] = d.get("pulses", 0) + r.total_pulses
        for d in out.values():
            d["converged_fraction"] = d["converged"] / max(d["devices"] - d["unresponsive"], 1)
        return [out[k] for k in sorted(out)]
