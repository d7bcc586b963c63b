"""``program-array``: program devices to target conductances with a closed-loop algorithm.

Targets come from a named pattern (:mod:`xbarlab.chipdrivers.patterns`), an ``.npy``
file of conductances in S, or an ``.npy`` weight matrix mapped linearly onto
[lo, hi] x g_max. A file smaller than the chip is programmed into its top-left corner.
The programming parameters and the ``program`` step are shared with ``drift`` and
``retention`` (:class:`ProgramParams`, :func:`program_step`).

Verify options (``verify_reads``, ``confirm_reads``) apply to every algorithm. With
``rounds`` > 1 the step programs in rounds (:func:`~xbarlab.chipdrivers.programming.
program_rounds`): after each round it waits ``settle_time``, verifies every device
again and re-programs only those that relaxed out of tolerance; the per-round spread
and counts are recorded (``round_sigma_S``, ``round_out_of_tolerance``,
``round_reprogrammed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xbarlab.chipdrivers.crossbar import ChipInfo, Crossbar
from xbarlab.chipdrivers.patterns import PATTERNS, make_pattern
from xbarlab.chipdrivers.programming import program_rounds
from xbarlab.errors import ConfigError
from xbarlab.procedures.base import Plan, Procedure, Step, check_order
from xbarlab.procedures.params import param

ALGORITHM_NAMES = ("iterative", "write-verify", "ispp", "fixed-pulse")

#: the programming settings every programming procedure declares (``param`` arguments
#: by name); all but ``algorithm`` are keyword options of every algorithm
_VERIFY_PARAMS = {
    "algorithm": dict(default="iterative", choices=ALGORITHM_NAMES, help="programming algorithm"),
    "tolerance": dict(
        default=None,
        unit="S",
        lo=0,
        lo_inclusive=False,
        help="accepted |G - target| (default 2% of g_max)",
    ),
    "max_iterations": dict(default=100, lo=1, hi=10_000, help="verify iterations before giving up"),
    "verify_reads": dict(default=1, lo=1, hi=1024, help="reads averaged at every verify"),
    "confirm_reads": dict(
        default=0,
        lo=0,
        hi=1024,
        help="extra reads a passing device must also pass before acceptance",
    ),
}


def verify_param(name: str):
    """The declaration of the shared programming setting ``name``: one of algorithm,
    tolerance (S), max_iterations, verify_reads, confirm_reads."""
    return param(**_VERIFY_PARAMS[name])


def verify_options(p) -> dict:
    """The algorithm keyword options (tolerance, max_iterations, verify_reads,
    confirm_reads) of parameters ``p`` that declare them with :func:`verify_param`."""
    return {name: getattr(p, name) for name in list(_VERIFY_PARAMS)[1:]}


@dataclass(frozen=True)
class ProgramParams:
    """What to program and how (shared by program-array, drift and retention)."""

    pattern: str = param(
        "levels", choices=tuple(PATTERNS), help="named target pattern (unless a file is given)"
    )
    n_levels: int = param(8, lo=1, hi=64, help="conductance levels of the 'levels' pattern")
    lo: float = param(
        0.1,
        unit="g_max",
        lo=0,
        hi=1,
        lo_inclusive=False,
        help="lowest target as a fraction of g_max",
    )
    hi: float = param(
        0.8,
        unit="g_max",
        lo=0,
        hi=1,
        lo_inclusive=False,
        help="highest target as a fraction of g_max",
    )
    seed: int = param(0, lo=0, help="seed placing the levels of the 'levels' pattern")
    targets_file: str = param("", help=".npy file of target conductances in S (overrides pattern)")
    weights_file: str = param(
        "", help=".npy weight matrix mapped linearly onto [lo, hi] x g_max (overrides pattern)"
    )
    algorithm: str = verify_param("algorithm")
    tolerance: float | None = verify_param("tolerance")
    max_iterations: int = verify_param("max_iterations")
    verify_reads: int = verify_param("verify_reads")
    confirm_reads: int = verify_param("confirm_reads")
    rounds: int = param(
        1, lo=1, hi=100, help="programming rounds: re-verify after settle_time, re-program drifters"
    )
    settle_time: float = param(
        5.0, unit="s", lo=0, hi=1e6, help="wait after each round before re-verifying (rounds > 1)"
    )
    settle_reads: int = param(
        64, lo=1, hi=1024, help="reads averaged at the re-verify after each round (rounds > 1)"
    )

    def __post_init__(self):
        if self.lo > self.hi:
            check_order("lo", self.lo, "hi", self.hi, "g_max")
        if self.targets_file and self.weights_file:
            raise ConfigError("give only one of targets_file and weights_file")


def targets_for(p: ProgramParams, info: ChipInfo) -> np.ndarray:
    """Target conductances in S (float32): the whole chip, or a top-left block for files."""
    if p.targets_file:
        tgt = _load(p.targets_file, "targets_file", info)
        if tgt.size and not (tgt.min() >= info.g_min and tgt.max() <= info.g_max):
            raise ConfigError(
                f"parameter targets_file: targets span [{tgt.min():.4g}, {tgt.max():.4g}] S, "
                f"outside this chip's window [{info.g_min:.4g}, {info.g_max:.4g}] S"
            )
        return tgt.astype(np.float32)
    if p.weights_file:
        return _weights_to_g(_load(p.weights_file, "weights_file", info), p, info)
    kwargs = {"n_levels": p.n_levels, "seed": p.seed} if p.pattern == "levels" else {}
    g = make_pattern(p.pattern, info.shape, info.g_max, lo=p.lo, hi=p.hi, **kwargs)
    return np.maximum(g, np.float32(info.g_min))


def _weights_to_g(w: np.ndarray, p: ProgramParams, info: ChipInfo) -> np.ndarray:
    """Linear map of [w.min(), w.max()] onto [lo, hi] x g_max (the midpoint if constant)."""
    g_lo, g_hi = max(p.lo * info.g_max, info.g_min), p.hi * info.g_max
    span = float(w.max() - w.min()) if w.size else 0.0
    unit = (w - w.min()) / span if span > 0 else np.full_like(w, 0.5)
    return (g_lo + (g_hi - g_lo) * unit).astype(np.float32)


def _load(path: str, name: str, info: ChipInfo) -> np.ndarray:
    try:
        arr = np.load(Path(path), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"parameter {name} = {path!r}: cannot read an .npy array ({exc})"
        ) from None
    if arr.ndim != 2 or arr.shape[0] > info.rows or arr.shape[1] > info.cols or arr.size == 0:
        raise ConfigError(
            f"parameter {name} = {path!r}: array of shape {arr.shape} must be 2-D and fit "
            f"the {info.rows} x {info.cols} chip"
        )
    if arr.dtype.kind not in "fiu" or not np.all(np.isfinite(arr)):
        raise ConfigError(f"parameter {name} = {path!r}: values must be finite numbers")
    return arr.astype(np.float64)


def check_program(p: ProgramParams, info: ChipInfo) -> None:
    """Targets computable and inside the window; the algorithm available; tolerance sane."""
    targets_for(p, info)
    _algorithm(p.algorithm)
    if p.tolerance is not None and p.tolerance >= info.g_max - info.g_min:
        raise ConfigError(
            f"parameter tolerance = {p.tolerance:g} S must be below the window "
            f"g_max - g_min = {info.g_max - info.g_min:g} S"
        )


def _algorithm(name: str):
    """The programming function by name; write_verify on a chipdrivers without ALGORITHMS."""
    from xbarlab.chipdrivers import programming

    algorithms = getattr(programming, "ALGORITHMS", None)
    if algorithms is None:
        return programming.write_verify
    if name not in algorithms:
        raise ConfigError(f"parameter algorithm = {name!r}: need one of {', '.join(algorithms)}")
    return algorithms[name]


def program_step(xbar: Crossbar, p: ProgramParams) -> Step:
    """The ``program`` step: program, read the array back, record the per-iteration trace."""

    def action() -> dict:
        info = xbar.info
        targets = targets_for(p, info)
        r, c = targets.shape
        sel = None if targets.shape == info.shape else np.ix_(np.arange(r), np.arange(c))
        trace = []
        common = dict(verify_options(p), on_iteration=trace.append)
        extra = {}
        if p.rounds > 1:
            rounds = program_rounds(
                xbar,
                targets,
                sel,
                algorithm=p.algorithm,
                rounds=p.rounds,
                settle_time=p.settle_time,
                settle_reads=p.settle_reads,
                **common,
            )
            res = rounds.result
            extra = {
                "round_sigma_S": np.array(rounds.sigma),
                "round_out_of_tolerance": np.array(rounds.out_of_tolerance, dtype=np.int64),
                "round_reprogrammed": np.array(rounds.reprogrammed, dtype=np.int64),
                "settle_time_s": float(p.settle_time),
            }
        else:
            res = _algorithm(p.algorithm)(xbar, targets, sel, **common)
        t_programmed = xbar.clock.now()
        g_after = xbar.read(sel)
        usable = ~res.unresponsive
        return {
            "targets": targets,
            "g_verify": res.g_verify,
            "g_after": g_after,
            "converged": res.converged,
            "unresponsive": res.unresponsive,
            "stuck_set": res.stuck_set,
            "pulses": res.pulses,
            "done_at": res.done_at,
            "trace_converged": np.array([s.converged for s in trace], dtype=np.int64),
            "trace_mean_abs_error_S": np.array([s.mean_abs_error for s in trace]),
            "trace_pulses": np.array([s.pulses for s in trace], dtype=np.int64),
            "t_programmed_s": t_programmed,
            "tolerance_S": res.tolerance,
            "converged_fraction": res.converged_fraction,
            "mean_abs_error_S": float(np.mean(np.abs(g_after - targets)[usable]))
            if usable.any()
            else 0.0,
            **extra,
        }

    return Step("program", action, "programming")


def program_summary(data) -> dict:
    """The JSON summary of a ``program`` step's data."""
    return {
        "devices": int(np.size(data["targets"])),
        "converged_fraction": float(data["converged_fraction"]),
        "unresponsive": int(np.count_nonzero(data["unresponsive"])),
        "iterations": int(np.size(data["trace_pulses"])),
        "total_pulses": int(np.sum(data["trace_pulses"])),
        "tolerance_S": float(data["tolerance_S"]),
        "mean_abs_error_S": float(data["mean_abs_error_S"]),
        **_rounds_summary(data),
    }


def _rounds_summary(data) -> dict:
    """Per-round spread and counts of a ``program`` step run in rounds (else nothing)."""
    if "round_sigma_S" not in data:
        return {}
    return {
        "round_sigma_S": [float(v) for v in np.ravel(data["round_sigma_S"])],
        "round_out_of_tolerance": [int(v) for v in np.ravel(data["round_out_of_tolerance"])],
        "round_reprogrammed": [int(v) for v in np.ravel(data["round_reprogrammed"])],
    }


class ProgramArray(Procedure):
    name = "program-array"
    Parameters = ProgramParams
    summary_doc = (
        "Programs devices to target conductances (pattern, .npy targets or weights) with "
        "closed-loop program-and-verify; records the per-iteration trace."
    )

    def check(self, info: ChipInfo) -> None:
        check_program(self.params, info)

    def n_steps(self, info: ChipInfo) -> int:
        return 1

    def plan(self, xbar: Crossbar) -> Plan:
        data = yield program_step(xbar, self.params)
        return {"algorithm": self.params.algorithm, **program_summary(data)}
