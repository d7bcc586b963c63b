"""``level-capacity``: how many conductance levels a population holds after a given time.

For every L in ``levels`` the procedure programs L equally spaced levels over
[lo, hi] x g_max onto the devices of ``region`` (each level on the same number of
devices, placed at random), waits ``read_after`` on the backend's clock, reads
(``reads`` averaged) and decodes every device to a level. The decoder is the one a
multilevel memory uses after drift: a reference per level (the median read of that
level's devices, as reference cells give) and thresholds halfway between neighbouring
references. It reports per L: the symbol error rate per level, the bit-error rate of a
Gray-coded ceil(log2 L)-bit cell (:func:`decode_levels`), the overlap of every pair of
neighbouring levels (the fraction of their devices on the wrong side of the threshold
between them), and the largest L whose BER stays at or below ``ber_threshold``.

Devices the programming algorithm flagged unresponsive are left out of the error
rates (a memory maps them out) and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarlab.chipdrivers.crossbar import ChipInfo, Crossbar
from xbarlab.chipdrivers.patterns import levels as level_pattern
from xbarlab.errors import ConfigError
from xbarlab.procedures.base import Plan, Procedure, Region, Step, region_param, wait_until
from xbarlab.procedures.params import param
from xbarlab.procedures.program_array import _algorithm, verify_options, verify_param


@dataclass(frozen=True)
class LevelCapacityParams:
    levels: tuple[int, ...] = param(
        (2, 4, 8, 16), lo=2, hi=64, help="numbers of levels L to try, each 2 .. 64"
    )
    lo: float = param(0.1, unit="g_max", lo=0, hi=1, lo_inclusive=False, help="lowest level")
    hi: float = param(0.9, unit="g_max", lo=0, hi=1, lo_inclusive=False, help="highest level")
    read_after: float = param(
        3600.0, unit="s", lo=0, hi=1e9, help="wait between programming and the read"
    )
    reads: int = param(1, lo=1, hi=1024, help="reads averaged at the read after the wait")
    ber_threshold: float = param(
        1e-2, lo=0, hi=1, lo_inclusive=False, help="largest bit-error rate a usable L may have"
    )
    region: str = region_param("all", "devices programmed")
    seed: int = param(0, lo=0, help="seed placing the levels on the devices")
    algorithm: str = verify_param("algorithm")
    tolerance: float | None = verify_param("tolerance")
    max_iterations: int = verify_param("max_iterations")
    verify_reads: int = verify_param("verify_reads")
    confirm_reads: int = verify_param("confirm_reads")

    def __post_init__(self):
        if not self.lo < self.hi:
            raise ConfigError(f"parameter lo = {self.lo:g} g_max must be below hi = {self.hi:g}")
        if len(set(self.levels)) != len(self.levels):
            raise ConfigError(f"parameter levels = {list(self.levels)} lists an L twice")
        Region.parse(self.region)


def gray_bits(symbols: np.ndarray) -> np.ndarray:
    """Gray code of non-negative integer symbols (adjacent symbols differ in one bit)."""
    s = np.asarray(symbols, dtype=np.int64)
    return s ^ (s >> 1)


def _popcount(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    count = np.zeros(x.shape, dtype=np.int64)
    while np.any(x):
        count += x & 1
        x = x >> 1
    return count


def decode_levels(g: np.ndarray, level: np.ndarray, usable: np.ndarray, n_levels: int) -> dict:
    """Decode reads ``g`` (S) of devices programmed to ``level`` (0 .. n_levels-1).

    References: the median read of each level's usable devices; thresholds halfway
    between neighbouring references. Returns the JSON-able ``ser_per_level``,
    ``ber_per_level`` and ``ber`` (Gray-coded ceil(log2 L)-bit cells; bit errors over
    bits), ``overlap`` (per neighbouring pair), ``references_S``, ``thresholds_S`` and
    the array ``decoded``.
    """
    g = np.asarray(g, dtype=np.float64).ravel()
    level = np.asarray(level, dtype=np.int64).ravel()
    usable = np.asarray(usable, dtype=bool).ravel()
    bits = max(int(np.ceil(np.log2(n_levels))), 1)
    refs = np.array(
        [
            np.median(g[usable & (level == k)]) if np.any(usable & (level == k)) else np.nan
            for k in range(n_levels)
        ]
    )
    if np.any(np.isnan(refs)):
        raise ConfigError(
            f"{int(np.isnan(refs).sum())} of {n_levels} levels have no usable device; "
            "program a larger region or fewer levels"
        )
    refs = np.maximum.accumulate(refs)  # a decoder needs ordered references
    thresholds = 0.5 * (refs[1:] + refs[:-1])
    decoded = np.searchsorted(thresholds, g, side="right")
    wrong_bits = _popcount(gray_bits(decoded) ^ gray_bits(level))
    ser, ber, overlap = [], [], []
    for k in range(n_levels):
        m = usable & (level == k)
        ser.append(float(np.mean(decoded[m] != k)))
        ber.append(float(wrong_bits[m].sum() / (m.sum() * bits)))
    for k in range(n_levels - 1):
        lo_m, hi_m = usable & (level == k), usable & (level == k + 1)
        wrong = np.count_nonzero(g[lo_m] >= thresholds[k]) + np.count_nonzero(
            g[hi_m] < thresholds[k]
        )
        overlap.append(float(wrong / max(lo_m.sum() + hi_m.sum(), 1)))
    n_usable = int(usable.sum())
    return {
        "ser_per_level": ser,
        "ber_per_level": ber,
        "ber": float(wrong_bits[usable].sum() / max(n_usable * bits, 1)),
        "ser": float(np.mean(decoded[usable] != level[usable])) if n_usable else 0.0,
        "overlap": overlap,
        "references_S": refs.tolist(),
        "thresholds_S": thresholds.tolist(),
        "bits_per_cell": bits,
        "decoded": decoded,
    }


def capacity(results: list[dict], threshold: float) -> int:
    """The largest L of ``results`` (dicts with ``n_levels``, ``ber``) with BER <= threshold
    (0 if none)."""
    ok = [r["n_levels"] for r in results if r["ber"] <= threshold]
    return int(max(ok)) if ok else 0


class LevelCapacity(Procedure):
    name = "level-capacity"
    Parameters = LevelCapacityParams
    summary_doc = (
        "Programs L equally spaced levels for each L, reads after a chosen time, decodes: "
        "level overlap, bit-error rate per level, the largest L with BER below a threshold."
    )

    def check(self, info: ChipInfo) -> None:
        p = self.params
        region = Region.parse(p.region)
        region.check(info)
        _algorithm(p.algorithm)
        n = np.arange(info.rows)[region.rows].size * np.arange(info.cols)[region.cols].size
        if n < 2 * max(p.levels):
            raise ConfigError(
                f"parameter levels: L = {max(p.levels)} needs at least {2 * max(p.levels)} "
                f"devices, the region holds {n}"
            )
        if p.hi * info.g_max <= info.g_min:
            raise ConfigError(f"parameter hi = {p.hi:g} g_max is below this chip's g_min")

    def n_steps(self, info: ChipInfo) -> int:
        return len(self.params.levels)

    def plan(self, xbar: Crossbar) -> Plan:
        p = self.params
        results = []
        for n_levels in sorted(p.levels):
            data = yield Step(
                f"levels-{n_levels:03d}", self._action(xbar, n_levels), f"{n_levels} levels"
            )
            results.append(
                {
                    "n_levels": n_levels,
                    "ber": float(data["ber"]),
                    "ser": float(data["ser"]),
                    "worst_overlap": float(np.max(data["overlap"])),
                    "unresponsive": int(np.count_nonzero(data["unresponsive"])),
                }
            )
        return {
            "read_after_s": p.read_after,
            "ber_threshold": p.ber_threshold,
            "max_levels": capacity(results, p.ber_threshold),
            "by_levels": results,
        }

    def _action(self, xbar: Crossbar, n_levels: int):
        p = self.params

        def action() -> dict:
            info = xbar.info
            region = Region.parse(p.region)
            sel = region.selection(info)
            shape = (np.arange(info.rows)[region.rows].size, np.arange(info.cols)[region.cols].size)
            lo = max(p.lo, info.g_min / info.g_max)
            targets = level_pattern(shape, info.g_max, n_levels, lo, p.hi, seed=p.seed)
            values = np.linspace(lo, p.hi, n_levels) * info.g_max
            level = np.argmin(np.abs(targets[..., None] - values.astype(np.float32)), axis=-1)
            res = _algorithm(p.algorithm)(xbar, targets, sel, **verify_options(p))
            t_prog = xbar.clock.now()
            wait_until(xbar, t_prog + p.read_after)
            g = np.mean([xbar.read(sel) for _ in range(p.reads)], axis=0).astype(np.float32)
            dec = decode_levels(g, level, ~res.unresponsive, n_levels)
            return {
                "n_levels": n_levels,
                "level_values_S": values,
                "targets": targets,
                "level": level.astype(np.int32),
                "g_verify": res.g_verify,
                "g_read": g,
                "converged": res.converged,
                "unresponsive": res.unresponsive,
                "stuck_set": res.stuck_set,
                "pulses": res.pulses,
                "tolerance_S": res.tolerance,
                "read_after_s": xbar.clock.now() - t_prog,
                "ber_threshold": p.ber_threshold,
                "decoded": dec.pop("decoded").reshape(shape).astype(np.int32),
                **{k: np.asarray(v) if isinstance(v, list) else v for k, v in dec.items()},
            }

        return action
