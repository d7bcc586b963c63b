"""The verify loop every programming algorithm shares (:mod:`xbarlab.chipdrivers.programming`).

:class:`VerifyLoop` holds the inputs (checked once), the per-device state, the verify
step (acceptance, stuck detection), RESETs, the per-device pulse count and the trace.
An algorithm only chooses the SET pulse of the devices still below target.

Verify options, shared by every algorithm:

- ``verify_reads`` (n >= 1): each verify averages n reads, so read noise passes a
  device out of tolerance less often (the noise std falls as 1/sqrt(n) for
  uncorrelated reads);
- ``confirm_reads`` (m >= 0): a device that passes verify is read m more times and is
  accepted only when the mean of those reads is within tolerance as well (a second,
  independent look before the device is retired).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from xbarlab.chipdrivers.crossbar import Crossbar, PulseShape
from xbarlab.chipdrivers.selection import resolve
from xbarlab.errors import ConfigError

#: amplitude levels used when a backend takes one amplitude per pulse call
AMPLITUDE_LEVELS = 16
#: upper bound of verify_reads and confirm_reads (a typo guard, not physics)
MAX_READS = 1024


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
    when the run ended), or None; pulses: SET and RESET pulses applied to each device
    (int), or None; stuck_set: the unresponsive devices that stayed above target after
    RESETs (stuck at SET; the other unresponsive ones did not rise: stuck at RESET), or
    None.
    """

    converged: np.ndarray
    unresponsive: np.ndarray
    g_verify: np.ndarray
    tolerance: float
    trace: list[IterationStats] = field(default_factory=list)
    done_at: np.ndarray | None = None
    pulses: np.ndarray | None = None
    stuck_set: np.ndarray | None = None

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
        return self._converged_mean(self.done_at)

    @property
    def mean_pulses(self) -> float:
        """Mean pulses (SET and RESET) the converged devices received (NaN if unknown)."""
        return self._converged_mean(self.pulses)

    def _converged_mean(self, per_device: np.ndarray | None) -> float:
        """Mean of ``per_device`` over the converged devices (NaN if none or unknown)."""
        if per_device is None or not self.converged.any():
            return float("nan")
        return float(per_device[self.converged].mean())

    @property
    def total_pulses(self) -> int:
        return sum(s.pulses for s in self.trace)


@dataclass(frozen=True)
class VerifyOptions:
    """How a device is verified: ``reads`` averaged per verify (>= 1), ``confirm``
    extra reads before acceptance (>= 0)."""

    reads: int = 1
    confirm: int = 0

    def __post_init__(self):
        checks = (("verify_reads", self.reads, 1), ("confirm_reads", self.confirm, 0))
        for name, value, lo in checks:
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
            if not lo <= value <= MAX_READS:
                raise ConfigError(f"{name} must be in {lo} .. {MAX_READS}, got {value!r}")


class VerifyLoop:
    """What every program-and-verify run shares: inputs checked, per-device state,
    the verify step (acceptance and stuck detection), RESETs and the trace.

    Device arrays are indexed 0..n-1 over the selection; ``flat`` maps them to the
    chip's flat indices and ``active`` lists the devices still being programmed.
    """

    def __init__(
        self,
        xbar,
        targets,
        sel,
        tolerance,
        max_iterations,
        patience,
        on_iteration,
        verify: VerifyOptions | None = None,
    ):
        info = xbar.info
        s = resolve(sel, info.shape)
        self.xbar, self.info, self.shape = xbar, info, s.shape
        self.flat = np.arange(info.rows * info.cols) if s.flat is None else s.flat
        self.tgt = check_targets(targets, s.shape, info.g_min, info.g_max)
        self.tol = 0.02 * info.g_max if tolerance is None else float(tolerance)
        _check_settings(self.tol, max_iterations, patience)
        self.opts = verify or VerifyOptions()
        self.patience = int(patience)
        self.on_iteration = on_iteration
        n = self.flat.size
        self.g_verify = np.zeros(n, dtype=np.float32)
        self.converged = np.zeros(n, dtype=bool)
        self.unresponsive = np.zeros(n, dtype=bool)
        self.stuck_set = np.zeros(n, dtype=bool)
        self.reset_fail = np.zeros(n, dtype=np.int32)
        self.sets_since_reset = np.zeros(n, dtype=np.int32)
        self.g_at_reset = np.zeros(n, dtype=np.float32)
        self.just_reset = np.zeros(n, dtype=bool)
        self.done_at = np.zeros(n, dtype=np.int32)
        self.pulses = np.zeros(n, dtype=np.int32)
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
            self.pulses[under] += 1
            self.record(pulses)
        return self.result()

    def reset(self, dev: np.ndarray) -> int:
        """RESET devices ``dev`` (selection indices); returns the pulse count."""
        self.just_reset[dev] = True
        self.sets_since_reset[dev] = 0
        self.pulses[dev] += 1
        return pulse_shape(self.xbar, self.flat[dev], self.info.reset_pulse)

    def read(self, dev: np.ndarray, n: int) -> np.ndarray:
        """Mean of ``n`` reads (S, float32) of devices ``dev`` (selection indices)."""
        rc = rc_of(self.flat[dev], self.info.cols)
        g = self.xbar.read(rc).astype(np.float64)
        for _ in range(n - 1):
            g += self.xbar.read(rc)
        return (g / n).astype(np.float32)

    def verify(self) -> np.ndarray:
        """Read the active devices, retire the converged and the stuck ones.

        Returns target - G in S of the devices still active (same order as ``active``).
        """
        act, tol = self.active, self.tol
        g = self.read(act, self.opts.reads)
        err = self.tgt[act] - g
        ok = np.abs(err) <= tol
        if self.opts.confirm and ok.any():
            g_c = self.read(act[ok], self.opts.confirm)
            g[ok] = g_c
            err[ok] = self.tgt[act[ok]] - g_c
            ok[ok] = np.abs(err[ok]) <= tol
        self.g_verify[act] = g
        jr = self.just_reset[act]
        self.g_at_reset[act[jr]] = g[jr]
        fails = self.reset_fail[act]
        self.reset_fail[act] = np.where(jr, np.where(err < -tol, fails + 1, 0), fails)
        moved = g - self.g_at_reset[act]
        slow = (self.sets_since_reset[act] >= self.patience) & (moved < tol)
        high = self.reset_fail[act] >= 2
        dead = high | slow
        self.unresponsive[act[dead]] = True
        self.stuck_set[act[dead & high]] = True
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
            self.pulses.reshape(s),
            self.stuck_set.reshape(s),
        )


def rc_of(flat: np.ndarray, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) index arrays of flat device indices."""
    return flat // cols, flat % cols


def pulse_shape(xbar: Crossbar, flat: np.ndarray, shape: PulseShape) -> int:
    """One pulse of ``shape`` on devices ``flat``; returns the pulse count."""
    if flat.size:
        xbar.pulse(
            rc_of(flat, xbar.info.cols),
            polarity=shape.polarity,
            amplitude=shape.amplitude,
            width=shape.width,
        )
    return int(flat.size)


def set_at(xbar: Crossbar, flat: np.ndarray, amp: np.ndarray, info) -> int:
    """SET pulses of per-device height ``amp`` in V (inside info.set_amplitude_range).

    A backend without per-device pulses gets one call per amplitude level, the heights
    rounded to AMPLITUDE_LEVELS levels over the SET range.
    """
    if flat.size == 0:
        return 0
    sp = info.set_pulse
    amp = np.broadcast_to(np.asarray(amp, dtype=np.float64), flat.shape)
    if "per_device_pulses" in info.capabilities:
        xbar.pulse(rc_of(flat, info.cols), polarity=sp.polarity, amplitude=amp, width=sp.width)
        return int(flat.size)
    lo, hi = info.set_amplitude_range
    levels = np.round((amp - lo) / (hi - lo) * (AMPLITUDE_LEVELS - 1)).astype(int)
    for level in np.unique(levels):
        a = lo + (hi - lo) * level / (AMPLITUDE_LEVELS - 1)
        xbar.pulse(
            rc_of(flat[levels == level], info.cols),
            polarity=sp.polarity,
            amplitude=a,
            width=sp.width,
        )
    return int(flat.size)


def set_scaled(xbar: Crossbar, flat: np.ndarray, drive: np.ndarray, info) -> int:
    """SET pulses whose height is interpolated over the SET range by drive in [0, 1]."""
    lo, hi = info.set_amplitude_range
    return set_at(xbar, flat, lo + (hi - lo) * np.clip(drive, 0.0, 1.0), info)


def full_drive(full_drive_error: float | None, g_max: float) -> float:
    full = 0.25 * g_max if full_drive_error is None else float(full_drive_error)
    if not full > 0:
        raise ConfigError(f"full_drive_error must be > 0 S, got {full_drive_error!r}")
    return full


def check_targets(targets, shape, g_min: float, g_max: float) -> np.ndarray:
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


VerifyCallback = Callable[[IterationStats], None]
