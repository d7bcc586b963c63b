"""Programming algorithms: pure functions over any ``Crossbar``.

Both algorithms are closed loops (program-and-verify): read the devices still
outside tolerance, pulse them, repeat. Each iteration is vectorised over every
unconverged device (one read and a few pulse calls per iteration), so the same
code drives the emulator, a test board or a bench. They share one verify step
(:class:`_Loop`): acceptance, stuck detection and the per-iteration trace; they
differ only in how they choose the SET pulse.

- :func:`write_verify`: generic; SET height proportional to the remaining error.
- :func:`program_iterative`: multilevel-PCM program-and-verify in the style of
  Papandreou et al., ISCAS 2011, "Programming algorithms for multilevel
  phase-change memory" (the closed-loop scheme behind the iterative programming of
  Joshi et al., Nat. Commun. 11, 2473 (2020)): RESET start, SET pulses whose height
  follows the remaining error through a per-device gain that adapts to how the
  device responded, RESET and retry on overshoot.

:data:`ALGORITHMS` names them for procedures and the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from xbarlab.chipdrivers.crossbar import Crossbar, PulseShape
from xbarlab.chipdrivers.selection import resolve
from xbarlab.errors import ConfigError

#: amplitude levels used when a backend takes one amplitude per pulse call
_AMPLITUDE_LEVELS = 16


@dataclass(frozen=True)
class IterationStats:
    """One program-and-verify iteration.

    iteration: 1-based; converged: devices within tolerance so far; unresponsive:
    devices given up as not responding; mean_abs_error: mean |target - G| in S over
    all programmed devices at their latest read; pulses: pulses applied this iteration.
    """

    iteration: int
    converged: int
    unresponsive: int
    mean_abs_error: float
    pulses: int


@dataclass
class ProgramResult:
    """Outcome of a programming run, arrays in the selection's shape.

    converged: within tolerance at the last verify read; unresponsive: flagged as not
    responding to SET or RESET (stuck); g_verify: conductance in S at each device's last
    verify read; trace: one :class:`IterationStats` per iteration; done_at: the
    iteration at which each device was accepted or given up (0: still being programmed
    when the run ended), or None.
    """

    converged: np.ndarray
    unresponsive: np.ndarray
    g_verify: np.ndarray
    tolerance: float
    trace: list[IterationStats] = field(default_factory=list)
    done_at: np.ndarray | None = None

    @property
    def iterations(self) -> int:
        return len(self.trace)

    @property
    def converged_fraction(self) -> float:
        """Converged devices over devices not flagged unresponsive."""
        usable = np.count_nonzero(~self.unresponsive)
        return float(np.count_nonzero(self.converged & ~self.unresponsive) / max(usable, 1))

    @property
    def mean_iterations(self) -> float:
        """Mean verify iterations the converged devices needed (NaN if none or unknown)."""
        if self.done_at is None or not self.converged.any():
            return float("nan")
        return float(self.done_at[self.converged].mean())

    @property
    def total_pulses(self) -> int:
        return sum(s.pulses for s in self.trace)


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
    on_iteration: Callable[[IterationStats], None] | None = None,
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
    on_iteration : callable, optional
        Called with each :class:`IterationStats` (progress display).
    """
    loop = _Loop(xbar, targets, sel, tolerance, max_iterations, patience, on_iteration)
    full = _full_drive(full_drive_error, xbar.info.g_max)

    def set_pulses(over, under, err):
        return _set_scaled(xbar, loop.flat[under], err / full, loop.info)

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
    on_iteration: Callable[[IterationStats], None] | None = None,
) -> ProgramResult:
    """Iterative multilevel-PCM program-and-verify (Papandreou et al., ISCAS 2011).

    After an optional RESET of every device, each iteration reads the unconverged
    devices once. A device within ``tolerance`` of its target is done (it is not read
    again: like the published algorithm, it is accepted on one verify read, read noise
    included). A device above target by more than the tolerance has overshot: it is
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
    on_iteration : callable, optional
        Called with each :class:`IterationStats` (progress display).
    """
    loop = _Loop(xbar, targets, sel, tolerance, max_iterations, patience, on_iteration)
    full = _full_drive(full_drive_error, xbar.info.g_max)
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
        return _set_scaled(xbar, loop.flat[under], gain[under] * err / full, loop.info)

    return loop.run(max_iterations, reset_first, set_pulses)


#: bounds of program_iterative's per-device gain
_GAIN_MIN, _GAIN_MAX = 1 / 16, 16.0


#: the programming algorithms by name (procedures and the CLI choose among these)
ALGORITHMS: dict[str, Callable[..., ProgramResult]] = {
    "iterative": program_iterative,
    "write-verify": write_verify,
}


class _Loop:
    """What every program-and-verify run shares: inputs checked, per-device state,
    the verify step (acceptance and stuck detection), RESETs and the trace.

    Device arrays are indexed 0..n-1 over the selection; ``flat`` maps them to the
    chip's flat indices and ``active`` lists the devices still being programmed.
    """

    def __init__(self, xbar, targets, sel, tolerance, max_iterations, patience, on_iteration):
        info = xbar.info
        s = resolve(sel, info.shape)
        self.xbar, self.info, self.shape = xbar, info, s.shape
        self.flat = np.arange(info.rows * info.cols) if s.flat is None else s.flat
        self.tgt = _check_targets(targets, s.shape, info.g_min, info.g_max)
        self.tol = 0.02 * info.g_max if tolerance is None else float(tolerance)
        _check_settings(self.tol, max_iterations, patience)
        self.patience = int(patience)
        self.on_iteration = on_iteration
        n = self.flat.size
        self.g_verify = np.zeros(n, dtype=np.float32)
        self.converged = np.zeros(n, dtype=bool)
        self.unresponsive = np.zeros(n, dtype=bool)
        self.reset_fail = np.zeros(n, dtype=np.int32)
        self.sets_since_reset = np.zeros(n, dtype=np.int32)
        self.g_at_reset = np.zeros(n, dtype=np.float32)
        self.just_reset = np.zeros(n, dtype=bool)
        self.done_at = np.zeros(n, dtype=np.int32)
        self.active = np.arange(n)
        self.trace: list[IterationStats] = []

    def run(self, max_iterations: int, reset_first: bool, set_pulses) -> ProgramResult:
        """Verify, RESET the overshot, ``set_pulses(over, under, err_under)`` the rest."""
        if reset_first and self.flat.size:
            self.reset(self.active)
        for _ in range(int(max_iterations)):
            if self.active.size == 0:
                break
            err = self.verify()
            over, under = self.active[err < -self.tol], self.active[err > self.tol]
            self.sets_since_reset[under] += 1
            pulses = self.reset(over) + set_pulses(over, under, err[err > self.tol])
            self.record(pulses)
        return self.result()

    def reset(self, dev: np.ndarray) -> int:
        """RESET devices ``dev`` (selection indices); returns the pulse count."""
        self.just_reset[dev] = True
        self.sets_since_reset[dev] = 0
        return _pulse(self.xbar, self.flat[dev], self.info.reset_pulse)

    def verify(self) -> np.ndarray:
        """Read the active devices, retire the converged and the stuck ones.

        Returns target - G in S of the devices still active (same order as ``active``).
        """
        act, tol = self.active, self.tol
        g = self.xbar.read(_rc(self.flat[act], self.info.cols))
        self.g_verify[act] = g
        err = self.tgt[act] - g
        jr = self.just_reset[act]
        self.g_at_reset[act[jr]] = g[jr]
        fails = self.reset_fail[act]
        self.reset_fail[act] = np.where(jr, np.where(err < -tol, fails + 1, 0), fails)
        moved = g - self.g_at_reset[act]
        slow = (self.sets_since_reset[act] >= self.patience) & (moved < tol)
        dead = (self.reset_fail[act] >= 2) | slow
        ok = np.abs(err) <= tol
        self.unresponsive[act[dead]] = True
        self.converged[act[ok]] = True
        self.done_at[act[ok | dead]] = len(self.trace) + 1
        self.just_reset[act] = False
        keep = ~(ok | dead)
        self.active = act[keep]
        return err[keep]

    def record(self, pulses: int) -> None:
        n = self.flat.size
        stats = IterationStats(
            len(self.trace) + 1,
            int(self.converged.sum()),
            int(self.unresponsive.sum()),
            float(np.mean(np.abs(self.tgt - self.g_verify))) if n else 0.0,
            pulses,
        )
        self.trace.append(stats)
        if self.on_iteration is not None:
            self.on_iteration(stats)

    def result(self) -> ProgramResult:
        s = self.shape
        return ProgramResult(
            self.converged.reshape(s),
            self.unresponsive.reshape(s),
            self.g_verify.reshape(s),
            self.tol,
            self.trace,
            self.done_at.reshape(s),
        )


def _rc(flat: np.ndarray, cols: int) -> tuple[np.ndarray, np.ndarray]:
    return flat // cols, flat % cols


def _pulse(xbar: Crossbar, flat: np.ndarray, shape: PulseShape) -> int:
    if flat.size:
        xbar.pulse(
            _rc(flat, xbar.info.cols),
            polarity=shape.polarity,
            amplitude=shape.amplitude,
            width=shape.width,
        )
    return int(flat.size)


def _set_scaled(xbar: Crossbar, flat: np.ndarray, drive: np.ndarray, info) -> int:
    """SET pulses whose height is interpolated over the SET range by drive in [0, 1]."""
    if flat.size == 0:
        return 0
    lo, hi = info.set_amplitude_range
    amp = lo + (hi - lo) * np.clip(drive, 0.0, 1.0)
    sp = info.set_pulse
    if "per_device_pulses" in info.capabilities:
        xbar.pulse(_rc(flat, info.cols), polarity=sp.polarity, amplitude=amp, width=sp.width)
        return int(flat.size)
    levels = np.round((amp - lo) / (hi - lo) * (_AMPLITUDE_LEVELS - 1)).astype(int)
    for level in np.unique(levels):
        a = lo + (hi - lo) * level / (_AMPLITUDE_LEVELS - 1)
        xbar.pulse(
            _rc(flat[levels == level], info.cols), polarity=sp.polarity, amplitude=a, width=sp.width
        )
    return int(flat.size)


def _full_drive(full_drive_error: float | None, g_max: float) -> float:
    full = 0.25 * g_max if full_drive_error is None else float(full_drive_error)
    if not full > 0:
        raise ConfigError(f"full_drive_error must be > 0 S, got {full_drive_error!r}")
    return full


def _check_targets(targets, shape, g_min: float, g_max: float) -> np.ndarray:
    try:
        tgt = np.asarray(targets, dtype=np.float32)
    except (TypeError, ValueError):
        raise ConfigError("targets must be conductances in S (numbers)") from None
    if tgt.shape != tuple(shape):
        raise ConfigError(f"targets have shape {tgt.shape}, the selection has shape {shape}")
    if not np.all(np.isfinite(tgt)):
        bad = int(np.count_nonzero(~np.isfinite(tgt)))
        raise ConfigError(f"{bad} target(s) are NaN or infinite; give every device a target in S")
    if tgt.size and not (tgt.min() >= g_min and tgt.max() <= g_max):
        raise ConfigError(
            f"targets must lie in the conductance window [{g_min:.4g}, {g_max:.4g}] S; "
            f"got [{tgt.min():.4g}, {tgt.max():.4g}] S"
        )
    return tgt.ravel()


def _check_settings(tol: float, max_iterations: int, patience: int) -> None:
    if not tol > 0:
        raise ConfigError(f"tolerance must be > 0 S, got {tol!r}")
    if int(max_iterations) < 1:
        raise ConfigError(f"max_iterations must be >= 1, got {max_iterations!r}")
    if int(patience) < 1:
        raise ConfigError(f"patience must be >= 1, got {patience!r}")
