"""The procedure contract: a procedure describes its steps, the runner executes them.

As in Bluesky, a procedure's :meth:`Procedure.plan` is a generator that yields
:class:`Step` objects and receives each step's data back (fresh, or loaded from the
store on resume), so a plan may only use what its steps return. Nothing in a plan
outside a step's ``action`` touches hardware; the runner records every step under its
``step_id``, checkpoints, pauses, aborts and resumes. Plans are testable by listing
the steps they yield.

Shared helpers for the procedures live here too: pulse checks against the chip's
limits, device regions and log-spaced read times.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from xbarlab.chipdrivers.crossbar import ChipInfo, Crossbar, PulseShape
from xbarlab.errors import ConfigError
from xbarlab.procedures import params as P
from xbarlab.procedures.params import param


@dataclass(frozen=True)
class Step:
    """One unit of recorded hardware work.

    step_id: unique within the run and stable across resume (e.g. ``"read-007"``);
    action: does the work and returns the record data (numpy arrays or JSON-able values);
    message: progress text.
    """

    step_id: str
    action: Callable[[], Mapping[str, Any]]
    message: str = ""


Plan = Generator[Step, Mapping[str, Any], Mapping[str, Any]]


class Procedure:
    """Base class of measurement procedures (see the module docstring)."""

    name: ClassVar[str]
    Parameters: ClassVar[type]
    summary_doc: ClassVar[str]

    def __init__(self, params):
        if not isinstance(params, self.Parameters):
            raise TypeError(f"{self.name} needs {self.Parameters.__name__}, got {params!r}")
        self.params = params

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Procedure:
        """A procedure from CLI strings or YAML values, validated (ConfigError if bad)."""
        return cls(P.parse(cls.Parameters, values))

    def parameters_json(self) -> dict:
        """The parameters as stored in the run catalog."""
        return P.to_json(self.params)

    def check(self, info: ChipInfo) -> None:
        """Refuse (ConfigError or SafetyError) what this chip cannot do, before any access."""

    def n_steps(self, info: ChipInfo) -> int | None:
        """Number of steps for progress bars (an upper bound, or None if unknown)."""
        return None

    def plan(self, xbar: Crossbar) -> Plan:
        """Yield Steps, receive their data, return the run summary (JSON-able dict)."""
        raise NotImplementedError


# -- helpers shared by procedures ---------------------------------------------------


def pulse_of(default: PulseShape, amplitude: float | None, width: float | None) -> PulseShape:
    """The chip's recommended pulse with the parameters that were given replacing it."""
    return PulseShape(
        default.amplitude if amplitude is None else amplitude,
        default.width if width is None else width,
        default.polarity,
    )


def check_pulse(info: ChipInfo, pulse: PulseShape, count: int = 1) -> None:
    """SafetyError naming the limit if ``pulse`` is beyond the chip's limits."""
    info.limits.check_pulse(pulse.amplitude, pulse.width, count)


def log_times(t_first: float, t_last: float, n: int) -> np.ndarray:
    """``n`` read times in s, log-spaced from t_first to t_last (float64)."""
    return np.geomspace(t_first, t_last, n)


def wait_until(xbar: Crossbar, t: float) -> None:
    """Sleep on the backend's clock until it reads ``t`` (s); no-op if already past."""
    dt = t - xbar.clock.now()
    if dt > 0:
        xbar.clock.sleep(dt)


def check_order(first: str, a: float, second: str, b: float, unit: str = "s") -> None:
    """ConfigError unless a < b (cross-field check in a Parameters ``__post_init__``)."""
    if not a < b:
        raise ConfigError(f"parameter {first} = {a:g} {unit} must be below {second} = {b:g} {unit}")


@dataclass(frozen=True)
class Region:
    """A rectangle of devices ``rows r0:r1, cols c0:c1`` (Python slices), or all devices.

    Written ``"r0:r1,c0:c1"`` in parameters, e.g. ``"0:4,0:8"``; ``""`` or ``"all"``
    selects every device.
    """

    rows: slice
    cols: slice

    @classmethod
    def parse(cls, text: str, name: str = "region") -> Region:
        if text.strip().lower() in ("", "all"):
            return cls(slice(0, None), slice(0, None))
        parts = text.split(",")
        try:
            if len(parts) != 2:
                raise ValueError
            rows, cols = (_slice(p) for p in parts)
        except ValueError:
            raise ConfigError(
                f"parameter {name} = {text!r} is not allowed: need 'r0:r1,c0:c1' "
                "(row and column ranges, e.g. 0:4,0:8) or 'all'"
            ) from None
        return cls(rows, cols)

    def check(self, info: ChipInfo, name: str = "region") -> None:
        """ConfigError if the rectangle is empty or leaves the chip."""
        for sl, size, axis in ((self.rows, info.rows, "rows"), (self.cols, info.cols, "cols")):
            stop = size if sl.stop is None else sl.stop
            if stop > size or sl.start >= stop:
                raise ConfigError(
                    f"parameter {name}: {axis} {sl.start}:{stop} must be a non-empty range "
                    f"inside 0:{size} of this {info.rows} x {info.cols} chip"
                )

    def selection(self, info: ChipInfo):
        """The region as a Crossbar selection: None for the whole chip, else (rows, cols)
        index arrays broadcasting to the (r1 - r0, c1 - c0) block."""
        rows = np.arange(info.rows)[self.rows]
        cols = np.arange(info.cols)[self.cols]
        if rows.size == info.rows and cols.size == info.cols:
            return None
        return np.ix_(rows, cols)


def _slice(text: str) -> slice:
    lo, sep, hi = text.strip().partition(":")
    if not sep:
        start = int(lo)
        return slice(start, start + 1)
    start = int(lo) if lo.strip() else 0
    stop = int(hi) if hi.strip() else None
    if start < 0 or (stop is not None and stop <= start):
        raise ValueError(text)
    return slice(start, stop)


def region_param(default: str = "all", what: str = "devices"):
    """The declaration of a ``region`` parameter (see :class:`Region`)."""
    return param(default, help=f"{what}: 'r0:r1,c0:c1' (row, column ranges) or 'all'")


def amplitude_param(pulse: str, default: str = "the chip's"):
    """The declaration of an optional pulse height in V, > 0 (None: ``default``)."""
    return param(
        None, unit="V", lo=0, lo_inclusive=False, help=f"{pulse} height (default: {default})"
    )


def width_param(pulse: str):
    """The declaration of an optional pulse width in s, > 0 (None: the chip's)."""
    return param(
        None, unit="s", lo=0, lo_inclusive=False, help=f"{pulse} width (default: the chip's)"
    )


def run_plan(procedure: Procedure, xbar: Crossbar) -> tuple[dict[str, dict], dict]:
    """Execute a procedure's plan directly, without a runner or a run store.

    Every step's action runs once, in order, and its data goes back to the plan: for
    benchmarks, tests and scripts that need no recording, pause or resume. It does not
    call ``procedure.check``; call that first to refuse what the chip cannot do.

    Returns
    -------
    data : dict
        Each step's data (a dict) by step id, in execution order.
    summary : dict
        The plan's summary.

    Raises
    ------
    ValueError
        If the plan yields a step id twice (a runner resuming the run would skip the
        second step).
    """
    plan = procedure.plan(xbar)
    data: dict[str, dict] = {}
    try:
        step = next(plan)
        while True:
            if step.step_id in data:
                raise ValueError(
                    f"the plan of {procedure.name!r} yielded step id {step.step_id!r} twice; "
                    "step ids must be unique within a run"
                )
            data[step.step_id] = dict(step.action())
            step = plan.send(data[step.step_id])
    except StopIteration as stop:
        return data, dict(stop.value or {})
