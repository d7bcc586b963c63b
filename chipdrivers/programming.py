"""Programming algorithms: pure functions over any ``Crossbar``.

Closed-loop write-verify: read the devices still outside tolerance, pulse them,
repeat. Each iteration is vectorised over every unconverged device (one read and
at most two pulse calls per iteration), so the same code drives the emulator, a
test board or a bench. Later algorithms (iterative PCM programming with width
adaptation, noise-aware verify) live here too.
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
    """One write-verify iteration.

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
    verify read; trace: one :class:`IterationStats` per iteration.
    """

    converged: np.ndarray
    unresponsive: np.ndarray
    g_verify: np.ndarray
    tolerance: float
    trace: list[IterationStats] = field(default_factory=list)

    @property
    def iterations(self) -> int:
        return len(self.trace)

    @property
    def converged_fraction(self) -> float:
        """Converged devices over devices not flagged unresponsive."""
        usable = np.count_nonzero(~self.unresponsive)
        return float(np.count_nonzero(self.converged & ~self.unresponsive) / max(usable, 1))

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
    info = xbar.info
    s = resolve(sel, info.shape)
    flat = np.arange(info.rows * info.cols) if s.flat is None else s.flat
    tgt = _check_targets(targets, s.shape, info.g_min, info.g_max)
    tol = 0.02 * info.g_max if tolerance is None else float(tolerance)
    full = 0.25 * info.g_max if full_drive_error is None else float(full_drive_error)
    _check_settings(tol, full, max_iterations, patience)

    n = flat.size
    g_verify = np.zeros(n, dtype=np.float32)
    converged = np.zeros(n, dtype=bool)
    unresponsive = np.zeros(n, dtype=bool)
    reset_fail = np.zeros(n, dtype=np.int32)
    sets_since_reset = np.zeros(n, dtype=np.int32)
    g_at_reset = np.zeros(n, dtype=np.float32)
    just_reset = np.zeros(n, dtype=bool)
    active = np.arange(n)
    if reset_first and n:
        _pulse(xbar, flat, info.reset_pulse)
        just_reset[:] = True
    trace: list[IterationStats] = []
    for it in range(1, max_iterations + 1):
        if active.size == 0:
            break
        g = xbar.read(_rc(flat[active], info.cols))
        g_verify[active] = g
        err = tgt[active] - g
        # give up on devices that do not respond
        jr = just_reset[active]
        g_at_reset[active[jr]] = g[jr]
        reset_fail[active] = np.where(
            jr & (err < -tol), reset_fail[active] + 1, np.where(jr, 0, reset_fail[active])
        )
        moved = g - g_at_reset[active]
        dead = (reset_fail[active] >= 2) | ((sets_since_reset[active] >= patience) & (moved < tol))
        unresponsive[active[dead]] = True
        ok = np.abs(err) <= tol
        converged[active[ok]] = True
        keep = ~(ok | dead)
        active, err = active[keep], err[keep]
        over, under = err < -tol, err > tol
        just_reset[:] = False
        just_reset[active[over]] = True
        sets_since_reset[active[over]] = 0
        sets_since_reset[active[under]] += 1
        pulses = _pulse(xbar, flat[active[over]], info.reset_pulse)
        pulses += _set_scaled(xbar, flat[active[under]], err[under] / full, info)
        stats = IterationStats(
            it,
            int(converged.sum()),
            int(unresponsive.sum()),
            float(np.mean(np.abs(tgt - g_verify))) if n else 0.0,
            pulses,
        )
        trace.append(stats)
        if on_iteration is not None:
            on_iteration(stats)
    shape = s.shape
    return ProgramResult(
        converged.reshape(shape), unresponsive.reshape(shape), g_verify.reshape(shape), tol, trace
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


def _check_settings(tol: float, full: float, max_iterations: int, patience: int) -> None:
    if not tol > 0:
        raise ConfigError(f"tolerance must be > 0 S, got {tol!r}")
    if not full > 0:
        raise ConfigError(f"full_drive_error must be > 0 S, got {full!r}")
    if int(max_iterations) < 1:
        raise ConfigError(f"max_iterations must be >= 1, got {max_iterations!r}")
    if int(patience) < 1:
        raise ConfigError(f"patience must be >= 1, got {patience!r}")
