"""Programming algorithms: pure functions over any ``Crossbar``.

Every algorithm is a closed loop (program-and-verify): read the devices still
outside tolerance, pulse them, repeat. Each iteration is vectorised over every
unconverged device (one read and a few pulse calls per iteration), so the same
code drives the emulator, a test board or a bench. They share one verify step
(:class:`~xbarlab.chipdrivers.program_loop.VerifyLoop`): acceptance, stuck
detection, the per-device pulse count and the per-iteration trace, and its options
``verify_reads`` (average n reads per verify) and ``confirm_reads`` (re-read before
accepting); they differ only in how they choose the SET pulse.

- :func:`write_verify`: generic; SET height proportional to the remaining error.
- :func:`program_iterative`: multilevel-PCM program-and-verify in the style of
  Papandreou et al., ISCAS 2011, "Programming algorithms for multilevel
  phase-change memory" (the closed-loop scheme behind the iterative programming of
  Joshi et al., Nat. Commun. 11, 2473 (2020)): RESET start, SET pulses whose height
  follows the remaining error through a per-device gain that adapts to how the
  device responded, RESET and retry on overshoot.
- :func:`program_ispp`: incremental step pulse programming: the SET height ramps by
  a fixed step per pulse (Suh et al., IEEE JSSC 30, 1149 (1995), for flash; used for
  multilevel RRAM and PCM, e.g. the 2-bit/cell RRAM comparison of ISPP and
  fixed-pulse verify cited in issue 11).
- :func:`program_fixed`: fixed-pulse verify: the same SET pulse every iteration
  until the device is within tolerance.

:data:`ALGORITHMS` names them for procedures and the CLI. :func:`program_rounds` runs
any of them in rounds with a settle time: after each settle every device is verified
again and only those that relaxed or drifted out of tolerance are re-programmed (the
multi-round programming that narrows the spread on chips such as NeuRRAM, Wan et al.,
Nature 608, 504 (2022)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xbarlab.chipdrivers.crossbar import Crossbar
from xbarlab.chipdrivers.program_loop import (
    IterationStats,
    ProgramResult,
    VerifyCallback,
    VerifyLoop,
    VerifyOptions,
    check_targets,
    full_drive,
    rc_of,
    set_at,
    set_scaled,
)
from xbarlab.chipdrivers.selection import resolve
from xbarlab.errors import ConfigError

__all__ = [
    "ALGORITHMS",
    "IterationStats",
    "ProgramResult",
    "RoundsResult",
    "program_fixed",
    "program_ispp",
    "program_iterative",
    "program_rounds",
    "write_verify",
]

_COMMON_DOC = """
    verify_reads : int
        Reads averaged at every verify, 1 .. 1024 (read noise falls as 1/sqrt(n)).
    confirm_reads : int
        Extra reads (averaged) a device that passed verify must also pass before it is
        accepted, 0 .. 1024 (0: accept on the verify read).
    on_iteration : callable, optional
        Called with each :class:`IterationStats` (progress display)."""


def write_verify(
    xbar: Crossbar,
    targets,
    sel=None,
    *,
    tolerance: float | None = None,
    max_iterations: int = 100,
    full_drive_error: float | None = None,
    reset_first: bool = True,
    patience: int = 20,
    verify_reads: int = 1,
    confirm_reads: int = 0,
    on_iteration: VerifyCallback | None = None,
) -> ProgramResult:
    """Program devices to target conductances with read-verify-pulse iterations.

    Devices below target get a SET pulse whose height grows with the remaining error
    (linearly over ``info.set_amplitude_range``, full height at ``full_drive_error``);
    devices above target are RESET and climb again (PCM cannot be lowered gradually).
    A device is given up as unresponsive when two RESETs in a row leave it above
    target (stuck at SET), or when ``patience`` SET pulses since its last RESET have
    moved it by less than the tolerance (stuck at RESET).

    Parameters
    ----------
    targets : array_like
        Target conductance in S, g_min <= target <= g_max, in the selection's shape.
    sel : selection, optional
        Devices to program (default all), see :mod:`xbarlab.chipdrivers.selection`.
    tolerance : float, optional
        Accepted |target - G| in S, > 0. Default 2% of g_max.
    max_iterations : int
        Verify iterations before giving up, >= 1.
    full_drive_error : float, optional
        Error in S at and above which the highest SET amplitude is used. Default 25%
        of g_max.
    reset_first : bool
        RESET every selected device before the first verify.
    patience : int
        SET pulses after which a device that has not moved is declared stuck.
    """
    opts = VerifyOptions(verify_reads, confirm_reads)
    loop = VerifyLoop(xbar, targets, sel, tolerance, max_iterations, patience, on_iteration, opts)
    full = full_drive(full_drive_error, xbar.info.g_max)

    def set_pulses(over, under, err):
        return set_scaled(xbar, loop.flat[under], err / full, loop.info)

    return loop.run(max_iterations, reset_first, set_pulses)


def program_iterative(
    xbar: Crossbar,
    targets,
    sel=None,
    *,
    tolerance: float | None = None,
    max_iterations: int = 100,
    reset_first: bool = True,
    full_drive_error: float | None = None,
    gain_step: float = 1.5,
    retry_gain: float = 0.5,
    patience: int = 20,
    verify_reads: int = 1,
    confirm_reads: int = 0,
    on_iteration: VerifyCallback | None = None,
) -> ProgramResult:
    """Iterative multilevel-PCM program-and-verify (Papandreou et al., ISCAS 2011).

    After an optional RESET of every device, each iteration reads the unconverged
    devices (``verify_reads`` reads averaged). A device within ``tolerance`` of its
    target is done (it is not read again: like the published algorithm, it is accepted
    on its verify read, read noise included, unless ``confirm_reads`` asks for a second
    look). A device above target by more than the tolerance has overshot: it is
    RESET and climbs again with its gain multiplied by ``retry_gain`` (a gentler
    approach). A device below target gets a SET pulse of height

        V = V_lo + (V_hi - V_lo) * clip(gain * error / full_drive_error, 0, 1)

    over ``info.set_amplitude_range``: proportional to the remaining error, through a
    per-device gain that adapts to the device. When the previous SET covered less than
    a quarter of the error it faced, the gain steps up by ``gain_step`` (a slow or
    saturating device is pushed harder); when it covered more than three quarters, it
    steps down by the same factor (the next pulse is gentler, so a device with large
    cycle-to-cycle spread overshoots less). Stuck devices are detected as in
    :func:`write_verify`.

    Parameters
    ----------
    targets : array_like
        Target conductance in S, g_min <= target <= g_max, in the selection's shape.
    sel : selection, optional
        Devices to program (default all), see :mod:`xbarlab.chipdrivers.selection`.
    tolerance : float, optional
        Half-width in S of the fixed acceptance band around each target, > 0. Default
        2% of g_max, as for :func:`write_verify`: 0.5 uS at the 25 uS g_max of the
        published PCM statistics. Like the published algorithms the band is fixed in
        conductance (not relative to the target); its width is an assumption of the
        order of the read noise at verify (Q_s law of Joshi 2020: 0.2-0.5 uS over
        the window), not a value fitted to the published programming spread.
    max_iterations : int
        Verify iterations before giving up, >= 1.
    reset_first : bool
        RESET every selected device before the first verify (a known start state).
    full_drive_error : float, optional
        Error in S that drives the highest SET amplitude at gain 1, > 0. Default 25% of
        g_max.
    gain_step : float
        Factor by which the per-device gain steps up or down, > 1.
    retry_gain : float
        Factor applied to the gain after an overshoot, 0 < retry_gain <= 1.
    patience : int
        SET pulses after which a device that has not moved is declared stuck, >= 1.
    """
    opts = VerifyOptions(verify_reads, confirm_reads)
    loop = VerifyLoop(xbar, targets, sel, tolerance, max_iterations, patience, on_iteration, opts)
    full = full_drive(full_drive_error, xbar.info.g_max)
    if not (np.isfinite(gain_step) and gain_step > 1):
        raise ConfigError(f"gain_step must be a finite number > 1, got {gain_step!r}")
    if not 0 < retry_gain <= 1:
        raise ConfigError(f"retry_gain must be in (0, 1], got {retry_gain!r}")
    n = loop.flat.size
    gain = np.ones(n, dtype=np.float32)
    err_before = np.zeros(n, dtype=np.float32)  # error each device faced at its last SET
    was_set = np.zeros(n, dtype=bool)

    def set_pulses(over, under, err):
        gain[over] = np.maximum(gain[over] * retry_gain, _GAIN_MIN)
        was_set[over] = False
        prev = was_set[under]
        covered = np.where(prev, 1.0 - err / np.maximum(err_before[under], 1e-30), 0.5)
        factor = np.where(covered < 0.25, gain_step, np.where(covered > 0.75, 1 / gain_step, 1))
        gain[under] = np.clip(gain[under] * factor, _GAIN_MIN, _GAIN_MAX)
        err_before[under] = err
        was_set[under] = True
        return set_scaled(xbar, loop.flat[under], gain[under] * err / full, loop.info)

    return loop.run(max_iterations, reset_first, set_pulses)


def program_ispp(
    xbar: Crossbar,
    targets,
    sel=None,
    *,
    tolerance: float | None = None,
    max_iterations: int = 100,
    reset_first: bool = True,
    v_start: float | None = None,
    v_step: float | None = None,
    patience: int = 40,
    verify_reads: int = 1,
    confirm_reads: int = 0,
    on_iteration: VerifyCallback | None = None,
) -> ProgramResult:
    """Incremental step pulse programming (ISPP): SET heights ramp by a fixed step.

    Each device below target gets a SET pulse of height ``v_start + k * v_step`` at its
    k-th SET since its last RESET (k = 0, 1, ...), capped at the top of
    ``info.set_amplitude_range``; the height does not depend on the error. A device
    that overshoots is RESET and restarts its ramp at ``v_start``.

    Parameters
    ----------
    targets, sel, tolerance, max_iterations, reset_first
        As for :func:`program_iterative`.
    v_start : float, optional
        First SET height in V, inside ``info.set_amplitude_range``. Default its bottom.
    v_step : float, optional
        Height step per pulse in V, > 0. Default 1/32 of the SET range.
    patience : int
        SET pulses after which a device that has not moved is declared stuck, >= 1
        (default 40: a ramp starts gently).
    """
    opts = VerifyOptions(verify_reads, confirm_reads)
    loop = VerifyLoop(xbar, targets, sel, tolerance, max_iterations, patience, on_iteration, opts)
    lo, hi = xbar.info.set_amplitude_range
    start = lo if v_start is None else _in_set_range("v_start", v_start, lo, hi)
    step = (hi - lo) / 32 if v_step is None else float(v_step)
    if not (np.isfinite(step) and 0 < step <= hi - lo):
        raise ConfigError(f"v_step must be in (0, {hi - lo:g}] V, got {v_step!r}")

    return loop.run(max_iterations, reset_first, _ramp(loop, start, step, hi))


def program_fixed(
    xbar: Crossbar,
    targets,
    sel=None,
    *,
    tolerance: float | None = None,
    max_iterations: int = 100,
    reset_first: bool = True,
    amplitude: float | None = None,
    patience: int = 40,
    verify_reads: int = 1,
    confirm_reads: int = 0,
    on_iteration: VerifyCallback | None = None,
) -> ProgramResult:
    """Fixed-pulse verify: the same SET pulse every iteration until within tolerance.

    Devices above target are RESET and climb again with the same pulse.

    Parameters
    ----------
    targets, sel, tolerance, max_iterations, reset_first
        As for :func:`program_iterative`.
    amplitude : float, optional
        SET height in V, inside ``info.set_amplitude_range``. Default 20% up the range
        (small steps, so few devices jump over the tolerance band).
    patience : int
        SET pulses after which a device that has not moved is declared stuck, >= 1.
    """
    opts = VerifyOptions(verify_reads, confirm_reads)
    loop = VerifyLoop(xbar, targets, sel, tolerance, max_iterations, patience, on_iteration, opts)
    lo, hi = xbar.info.set_amplitude_range
    if amplitude is None:
        amp = lo + 0.2 * (hi - lo)
    else:
        amp = _in_set_range("amplitude", amplitude, lo, hi)

    return loop.run(max_iterations, reset_first, _ramp(loop, amp, 0.0, hi))


def _ramp(loop: VerifyLoop, start: float, step: float, top: float):
    """SET rule of ISPP (and of fixed-pulse verify, ``step`` 0): height
    ``min(start + k * step, top)`` in V at a device's k-th SET since its last RESET."""

    def set_pulses(over, under, err):
        k = loop.sets_since_reset[under] - 1  # already counted for this iteration
        amp = np.minimum(start + step * k, top)
        return set_at(loop.xbar, loop.flat[under], amp, loop.info)

    return set_pulses


def _in_set_range(name: str, value, lo: float, hi: float) -> float:
    v = float(value)
    if not lo <= v <= hi:
        raise ConfigError(
            f"{name} = {value!r} V must lie in this chip's SET range [{lo:g}, {hi:g}] V"
        )
    return v


for _f in (write_verify, program_iterative, program_ispp, program_fixed):
    _f.__doc__ = _f.__doc__.rstrip() + "\n" + _COMMON_DOC + "\n    "

#: bounds of program_iterative's per-device gain
_GAIN_MIN, _GAIN_MAX = 1 / 16, 16.0

#: the programming algorithms by name (procedures and the CLI choose among these)
ALGORITHMS = {
    "iterative": program_iterative,
    "write-verify": write_verify,
    "ispp": program_ispp,
    "fixed-pulse": program_fixed,
}


@dataclass
class RoundsResult:
    """Outcome of :func:`program_rounds`.

    result: the rounds merged into one :class:`ProgramResult` (pulses summed, the
    latest verify of each device, the traces one after another); sigma: per round, the
    std in S of G - target over usable devices at the read ``settle_time`` after the
    round; rms: the same as root mean square (bias included); out_of_tolerance: per
    round, usable devices outside the tolerance at that read; reprogrammed: per round,
    devices programmed in it; g_settle: conductance in S at the last settle read.
    """

    result: ProgramResult
    sigma: list[float] = field(default_factory=list)
    rms: list[float] = field(default_factory=list)
    out_of_tolerance: list[int] = field(default_factory=list)
    reprogrammed: list[int] = field(default_factory=list)
    g_settle: np.ndarray | None = None


def program_rounds(
    xbar: Crossbar,
    targets,
    sel=None,
    *,
    algorithm: str = "iterative",
    rounds: int = 3,
    settle_time: float = 60.0,
    verify_reads: int = 1,
    settle_reads: int | None = None,
    on_iteration: VerifyCallback | None = None,
    **options,
) -> RoundsResult:
    """Program in ``rounds``: program, settle, verify every device, re-program only
    those out of tolerance, and so on.

    Round 1 programs every selected device with ``ALGORITHMS[algorithm]``. Each round
    (also one with nothing left to program) ends ``settle_time`` later with a read of
    every selected device (``verify_reads``
    averaged); the devices then outside the tolerance and not flagged unresponsive
    are programmed again in the next round, from where they are (no RESET first;
    the algorithm RESETs those above target). Relaxation and drift after the settle
    are what the later rounds correct.

    Parameters
    ----------
    targets, sel
        As for the algorithms.
    algorithm : str
        A key of :data:`ALGORITHMS`.
    rounds : int
        Programming rounds, >= 1.
    settle_time : float
        Wait in s (backend clock) between the end of a round and its verify, >= 0.
    verify_reads : int
        Reads averaged at every verify of the algorithm, 1 .. 1024.
    settle_reads : int, optional
        Reads averaged at the read after each settle, 1 .. 1024 (default verify_reads).
    **options
        Further keyword options of the algorithm (tolerance, confirm_reads, ...).
    """
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"algorithm {algorithm!r} is unknown; use one of {', '.join(ALGORITHMS)}")
    if isinstance(rounds, bool) or int(rounds) != rounds or rounds < 1:
        raise ConfigError(f"rounds must be an integer >= 1, got {rounds!r}")
    if not (np.isfinite(settle_time) and settle_time >= 0):
        raise ConfigError(f"settle_time must be >= 0 s, got {settle_time!r}")
    settle_reads = verify_reads if settle_reads is None else settle_reads
    VerifyOptions(verify_reads, 0)
    VerifyOptions(settle_reads, 0)
    program = ALGORITHMS[algorithm]
    info = xbar.info
    s = resolve(sel, info.shape)
    flat = np.arange(info.rows * info.cols) if s.flat is None else s.flat
    tgt = check_targets(targets, s.shape, info.g_min, info.g_max)
    n = flat.size
    merged = None
    out = RoundsResult(result=None)  # type: ignore[arg-type]
    reset_first = bool(options.pop("reset_first", True))
    todo = np.arange(n)
    for k in range(int(rounds)):
        if k == 0 or todo.size:  # a round with every device in tolerance only settles
            res = program(
                xbar,
                tgt[todo],
                rc_of(flat[todo], info.cols),
                reset_first=reset_first and k == 0,
                verify_reads=verify_reads,
                on_iteration=on_iteration,
                **options,
            )
            merged = _flatten(res) if k == 0 else _merge(merged, res, todo)
        out.reprogrammed.append(int(todo.size))
        xbar.clock.sleep(float(settle_time))
        rc = rc_of(flat, info.cols)
        g = np.mean([xbar.read(rc) for _ in range(int(settle_reads))], axis=0)
        usable = ~merged.unresponsive
        err = (g - tgt).astype(np.float64)
        bad = usable & (np.abs(err) > merged.tolerance)
        out.sigma.append(float(err[usable].std()) if usable.any() else float("nan"))
        out.rms.append(float(np.sqrt(np.mean(err[usable] ** 2))) if usable.any() else float("nan"))
        out.out_of_tolerance.append(int(bad.sum()))
        out.g_settle = g.astype(np.float32).reshape(s.shape)
        todo = np.flatnonzero(bad)
    out.result = _shaped(merged, s.shape) if n else merged
    return out


def _flatten(res: ProgramResult) -> ProgramResult:
    """A ProgramResult with 1-D copies of its per-device arrays."""
    arrays = [np.array(a).ravel() for a in (res.converged, res.unresponsive, res.g_verify)]
    extra = [None if a is None else np.array(a).ravel() for a in (res.done_at, res.pulses)]
    stuck = None if res.stuck_set is None else np.array(res.stuck_set).ravel()
    return ProgramResult(*arrays, res.tolerance, list(res.trace), *extra, stuck)


def _merge(merged: ProgramResult, res: ProgramResult, todo: np.ndarray) -> ProgramResult:
    """Fold round ``res`` of devices ``todo`` (indices into merged's arrays) into merged."""
    offset = merged.iterations
    merged.converged[todo] = np.ravel(res.converged)
    merged.unresponsive[todo] |= np.ravel(res.unresponsive)
    merged.g_verify[todo] = np.ravel(res.g_verify)
    if merged.pulses is not None and res.pulses is not None:
        merged.pulses[todo] += np.ravel(res.pulses)
    if merged.done_at is not None and res.done_at is not None:
        merged.done_at[todo] = np.where(
            np.ravel(res.done_at) > 0, np.ravel(res.done_at) + offset, 0
        )
    if merged.stuck_set is not None and res.stuck_set is not None:
        merged.stuck_set[todo] |= np.ravel(res.stuck_set)
    others = np.ones(merged.converged.size, dtype=bool)
    others[todo] = False
    base = int(np.count_nonzero(merged.converged & others))
    for st in res.trace:
        merged.trace.append(
            IterationStats(
                offset + st.iteration,
                base + st.converged,
                int(np.count_nonzero(merged.unresponsive & others)) + st.unresponsive,
                st.mean_abs_error,
                st.pulses,
            )
        )
    return merged


def _shaped(res: ProgramResult, shape) -> ProgramResult:
    def r(a):
        return None if a is None else a.reshape(shape)

    return ProgramResult(
        r(res.converged),
        r(res.unresponsive),
        r(res.g_verify),
        res.tolerance,
        res.trace,
        r(res.done_at),
        r(res.pulses),
        r(res.stuck_set),
    )
