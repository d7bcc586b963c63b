"""``drift-compensation``: measure drift-compensation factors of an array's MVM outputs.

Right after programming (or now, with ``program=false``) the array's forward MVM
outputs for a fixed set of reference inputs are recorded; at log-spaced times later
the same inputs are measured again and the least-squares factors that map the new
outputs back to the reference are computed, one global factor and one per output
column (:mod:`xbarlab.chipdrivers.drift_reference`, the same factors tiles use).
A separate set of random test inputs measures how well each kind of factor restores
the outputs: ``error_raw``, ``error_global`` and ``error_column`` are relative errors
||a y - y0|| / ||y0|| of the test outputs against their values at the reference time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarlab.chipdrivers.crossbar import ChipInfo, Crossbar
from xbarlab.chipdrivers.drift_reference import drift_factors, reference_inputs, relative_error
from xbarlab.errors import ConfigError
from xbarlab.procedures.base import Plan, Procedure, Step, check_order, log_times, wait_until
from xbarlab.procedures.params import param, positive_param
from xbarlab.procedures.program_array import (
    ProgramParams,
    check_program,
    program_step,
    program_summary,
)


@dataclass(frozen=True)
class DriftCompensationParams(ProgramParams):
    program: bool = param(True, help="program the targets first (false: use the array as it is)")
    n_ref: int = param(32, lo=1, hi=4096, help="reference input vectors (all-ones, then +-1)")
    n_test: int = param(64, lo=1, hi=4096, help="random test input vectors for the error figures")
    repeats: int = param(4, lo=1, hi=1000, help="MVMs averaged per measurement")
    n_times: int = param(5, lo=1, hi=1000, help="measurements after the reference, log-spaced")
    t_first: float = positive_param(60.0, "s", "first measurement after the reference")
    duration: float = positive_param(86400.0, "s", "last measurement after the reference")

    def __post_init__(self):
        super().__post_init__()
        if self.n_times > 1:
            check_order("t_first", self.t_first, "duration", self.duration)


def input_full_scale(info: ChipInfo) -> float:
    """Input voltage in V that an input of 1 maps to: DAC full scale, within the read limit."""
    return min(float(info.periphery.get("dac_range_V", info.v_read)), info.limits.max_read_voltage)


class DriftCompensation(Procedure):
    name = "drift-compensation"
    Parameters = DriftCompensationParams
    summary_doc = (
        "Records MVM outputs for reference inputs after programming, measures them again at "
        "log-spaced times and fits global and per-column drift-compensation factors."
    )

    def check(self, info: ChipInfo) -> None:
        if "mvm" not in info.capabilities:
            raise ConfigError(
                f"drift-compensation needs a chip with the 'mvm' capability; {info.backend!r} "
                f"has {', '.join(sorted(info.capabilities))}"
            )
        if self.params.program:
            check_program(self.params, info)

    def n_steps(self, info: ChipInfo) -> int:
        return self.params.n_times + 1 + int(self.params.program)

    def plan(self, xbar: Crossbar) -> Plan:
        p = self.params
        summary = {}
        if p.program:
            summary = program_summary((yield program_step(xbar, p)))
        ref = yield Step("reference", lambda: self._reference(xbar), "reference outputs")
        t_ref = float(ref["t_s"])
        rows = []
        times = log_times(p.t_first, p.duration, p.n_times) if p.n_times > 1 else [p.duration]
        for k, t in enumerate(times):
            data = yield Step(
                f"measure-{k:03d}",
                lambda t=t: self._measure(xbar, ref, t_ref + t),
                f"drift-compensation measurement {k + 1}/{p.n_times}",
            )
            rows.append(
                {
                    key: float(data[key])
                    for key in ("t_s", "factor_global", "error_raw", "error_global", "error_column")
                }
            )
        last = rows[-1]
        return {
            **summary,
            "factor_global": last["factor_global"],
            "error_raw": last["error_raw"],
            "error_global": last["error_global"],
            "error_column": last["error_column"],
            "times": rows,
        }

    def _outputs(self, xbar: Crossbar, x: np.ndarray) -> np.ndarray:
        """Forward MVM outputs in A for inputs x in [-1, 1], averaged over ``repeats``."""
        v = (x * np.float32(input_full_scale(xbar.info))).astype(np.float32)
        return np.mean([xbar.mvm(v) for _ in range(self.params.repeats)], axis=0, dtype=np.float64)

    def _reference(self, xbar: Crossbar) -> dict:
        p, n_in = self.params, xbar.info.mvm_shape[0]
        x_ref = reference_inputs(p.n_ref, n_in, p.seed)
        rng = np.random.default_rng([p.seed, 1])
        x_test = rng.uniform(-1, 1, (p.n_test, n_in)).astype(np.float32)
        return {
            "t_s": xbar.clock.now(),
            "x_ref": x_ref,
            "x_test": x_test,
            "y0_ref_A": self._outputs(xbar, x_ref),
            "y0_test_A": self._outputs(xbar, x_test),
        }

    def _measure(self, xbar: Crossbar, ref, t: float) -> dict:
        wait_until(xbar, t)
        t_s = xbar.clock.now() - float(ref["t_s"])
        y_ref = self._outputs(xbar, np.asarray(ref["x_ref"]))
        y_test = self._outputs(xbar, np.asarray(ref["x_test"]))
        y0_ref, y0_test = np.asarray(ref["y0_ref_A"]), np.asarray(ref["y0_test_A"])
        a_global = drift_factors(y0_ref, y_ref, "global")
        a_column = drift_factors(y0_ref, y_ref, "column")
        return {
            "t_s": t_s,
            "y_ref_A": y_ref,
            "y_test_A": y_test,
            "factor_global": a_global,
            "factor_column": a_column,
            "error_raw": relative_error(y0_test, y_test),
            "error_global": relative_error(y0_test, a_global * y_test),
            "error_column": relative_error(y0_test, a_column * y_test),
        }
