"""``forming``: electroform pristine RRAM devices with a ramp of pulses under compliance.

Devices arrive pristine (MOhm, deaf to SET and RESET). The procedure applies polarity
+1 pulses of rising height, ``v_start`` to ``v_stop`` in ``v_step`` (defaults 1.3 V to
4 V in 0.05 V, as published lab scripts ramp the gate of 1T1R cells; without a v_stop
the ramp ends at 4 V or at the chip's voltage limit if that is lower), reads every
device after each step and stops pulsing a device as soon as its resistance is at or
below ``r_threshold`` (default 50 kOhm; a device formed above it, e.g. at a low
compliance, stays in the ramp). Each step pulses and reads only the devices
still unformed (one vectorised pulse and read per step); devices formed before the run
(resistance at or below ``r_formed`` on the first read) are never pulsed.

Compliance: ``Crossbar.pulse`` has no compliance argument. A chip whose
``info.details["forming"]["settable_compliance"]`` is true (the emulated RRAM chip)
offers ``set_compliance(current)``: with the ``compliance`` parameter given, every ramp
step sets it before pulsing and puts the previous value back afterwards (so a resumed
run, which skips recorded steps, never relies on a setting made in another step).
Without it, the chip's own compliance (its present setting, or the source limit a
hardware backend programs) applies.

After the ramp a RESET check (two ``info.reset_pulse`` pulses on every device that reached
the threshold, then a read) finds devices that formed badly: *shorted* (resistance
below ``r_short`` after the RESET) and *stuck_set* (formed, above
``r_short``, but the RESET left more than half their conductance). The check also leaves
the good devices in their high-resistance state, ready for programming. A device formed
below ``r_short`` that RESETs normally (high compliance) is formed, not shorted; without
the check, resistance below ``r_short`` after forming counts as shorted.

Records: ``initial`` (first read, ``g``), ``ramp-NNN`` (``v_V``, ``pos``: flat positions
in the region pulsed at that step, ``g``: their read after the pulse, ``compliance_A``),
``reset-check`` (``pos``, ``g``) and ``result``, the per-device maps and the histogram for
plots: ``v_form_V`` (NaN where not formed by this run), ``r_form_ohm``, ``g_reset_S``,
``status`` (uint8, :data:`STATUS_CODES`), ``hist_edges_V`` and ``hist_counts``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from xbarlab.chipdrivers.crossbar import ChipInfo, Crossbar, PulseShape
from xbarlab.errors import ConfigError, SafetyError
from xbarlab.procedures.base import (
    Plan,
    Procedure,
    Region,
    Step,
    check_order,
    check_pulse,
    region_param,
    run_plan,
)
from xbarlab.procedures.params import param, positive_param

#: status map codes of the ``result`` record
FORMED, UNFORMABLE, SHORTED, STUCK_SET, ALREADY_FORMED = 0, 1, 2, 3, 4
STATUS_CODES = {
    "formed": FORMED,
    "unformable": UNFORMABLE,
    "shorted": SHORTED,
    "stuck_set": STUCK_SET,
    "already_formed": ALREADY_FORMED,
}
#: a formed device whose conductance after the RESET check is above this fraction of
#: its post-form conductance did not respond to RESET
_RESET_DROP = 0.5
#: RESET pulses of the check: two, so that one pulse's cycle-to-cycle miss (about 4e-4
#: per pulse on the emulated chip) does not pass for a stuck device
_RESET_PULSES = 2
#: last ramp height in V without a v_stop (the lab script of issue 11 ramps to 4 V)
V_STOP_DEFAULT = 4.0


@dataclass(frozen=True)
class FormingParams:
    region: str = region_param("all", "devices to form")
    v_start: float = positive_param(1.3, "V", "first forming pulse height")
    v_stop: float | None = positive_param(
        None, "V", "last forming pulse height (default: 4 V, or the chip's voltage limit if lower)"
    )
    v_step: float = param(
        0.05, unit="V", lo=0.001, hi=1.0, help="forming pulse height increment per step"
    )
    width: float = positive_param(1e-6, "s", "forming pulse width")
    compliance: float | None = positive_param(
        None, "A", "forming compliance current (default: the chip's present setting)"
    )
    r_threshold: float = positive_param(50e3, "ohm", "stop a device at R <= this")
    r_short: float = positive_param(2e3, "ohm", "R below this after forming: shorted")
    r_formed: float = positive_param(
        1e6, "ohm", "R <= this on the first read: formed before the run, skipped"
    )
    reset_check: bool = param(
        True, help="RESET every formed device once and read: finds shorts, leaves HRS"
    )

    def __post_init__(self):
        Region.parse(self.region)
        if self.v_stop is not None:
            check_order("v_start", self.v_start, "v_stop", self.v_stop, "V")
        check_order("r_short", self.r_short, "r_threshold", self.r_threshold, "ohm")
        check_order("r_threshold", self.r_threshold, "r_formed", self.r_formed, "ohm")


def stop_voltage(p: FormingParams, info: ChipInfo) -> float:
    """The last ramp height in V: v_stop, or the lower of V_STOP_DEFAULT and the chip's
    max_voltage when v_stop is not given."""
    if p.v_stop is not None:
        return p.v_stop
    return min(V_STOP_DEFAULT, info.limits.max_voltage)


def ramp_voltages(p: FormingParams, v_stop: float) -> np.ndarray:
    """Pulse heights in V of the ramp: v_start, v_start + v_step, ... up to v_stop."""
    n = int(math.floor((v_stop - p.v_start) / p.v_step + 1e-9)) + 1
    return np.round(p.v_start + p.v_step * np.arange(n), 9)


def settable_compliance(info: ChipInfo) -> bool:
    """True if the chip offers ``set_compliance`` (see the module docstring)."""
    forming = info.details.get("forming")
    return isinstance(forming, dict) and bool(forming.get("settable_compliance"))


class Forming(Procedure):
    name = "forming"
    Parameters = FormingParams
    summary_doc = (
        "Forms pristine RRAM devices: ramped +1 pulses under compliance, each device "
        "stopped at R <= r_threshold; forming voltage and post-form resistance per "
        "device, unformable and shorted devices, yield."
    )

    def check(self, info: ChipInfo) -> None:
        p = self.params
        Region.parse(p.region).check(info)
        v_stop = stop_voltage(p, info)
        check_order("v_start", p.v_start, "v_stop (the chip's voltage limit)", v_stop, "V")
        check_pulse(info, PulseShape(v_stop, p.width, 1))
        if p.reset_check:
            check_pulse(info, info.reset_pulse, _RESET_PULSES)
        if p.compliance is not None:
            if not settable_compliance(info):
                raise ConfigError(
                    f"parameter compliance: chip {info.backend!r} has no settable compliance "
                    "(details['forming']['settable_compliance']); leave compliance unset so "
                    "the chip's own current limit applies"
                )
            if p.compliance > info.limits.compliance_current:
                raise SafetyError(
                    "compliance_current",
                    p.compliance,
                    info.limits.compliance_current,
                    "A",
                    "parameter compliance",
                )

    def n_steps(self, info: ChipInfo) -> int:
        return ramp_voltages(self.params, stop_voltage(self.params, info)).size + 3

    def plan(self, xbar: Crossbar) -> Plan:
        p = self.params
        info = xbar.info
        region = Region.parse(p.region)
        rows = np.arange(info.rows)[region.rows]
        cols = np.arange(info.cols)[region.cols]
        shape = (rows.size, cols.size)
        row_of = np.repeat(rows, cols.size)
        col_of = np.tile(cols, rows.size)

        def sel(pos: np.ndarray):
            return (row_of[pos], col_of[pos])

        first = yield Step("initial", lambda: {"g": xbar.read(sel(np.arange(row_of.size)))})
        g0 = np.asarray(first["g"], dtype=np.float64).ravel()
        already = g0 >= 1.0 / p.r_formed
        active = ~already
        g_form = np.full(row_of.size, np.nan)
        v_form = np.full(row_of.size, np.nan)
        pulses, steps = 0, 0
        compliance = p.compliance
        voltages = ramp_voltages(p, stop_voltage(p, info))
        for k, v in enumerate(voltages):
            pos = np.flatnonzero(active)
            if pos.size == 0:
                break
            data = yield Step(
                f"ramp-{k:03d}",
                lambda v=v, pos=pos: _ramp_step(xbar, sel(pos), pos, float(v), p),
                f"forming {v:.2f} V: {pos.size} devices",
            )
            pos = np.asarray(data["pos"], dtype=np.intp)
            g = np.asarray(data["g"], dtype=np.float64).ravel()
            done = g >= 1.0 / p.r_threshold
            v_form[pos[done]] = float(data["v_V"])
            g_form[pos[done]] = g[done]
            active[pos[done]] = False
            pulses += int(pos.size)
            steps += 1
            compliance = data.get("compliance_A", compliance)
        reached = np.isfinite(g_form)
        g_reset = np.full(row_of.size, np.nan)
        if p.reset_check and reached.any():
            pos = np.flatnonzero(reached)
            data = yield Step(
                "reset-check",
                lambda pos=pos: _reset_step(xbar, sel(pos), pos),
                f"RESET check of {pos.size} formed devices",
            )
            g_reset[np.asarray(data["pos"], dtype=np.intp)] = np.asarray(data["g"]).ravel()
        status = _status(already, reached, g_form, g_reset, p)
        edges = np.append(voltages, voltages[-1] + p.v_step) - p.v_step / 2

        def result() -> dict:
            ok = status == FORMED
            counts, _ = np.histogram(v_form[ok | (status == STUCK_SET)], bins=edges)
            return {
                "v_form_V": v_form.reshape(shape).astype(np.float32),
                "r_form_ohm": (1.0 / g_form).reshape(shape).astype(np.float32),
                "g_reset_S": g_reset.reshape(shape).astype(np.float32),
                "status": status.reshape(shape).astype(np.uint8),
                "hist_edges_V": edges.astype(np.float64),
                "hist_counts": counts.astype(np.int64),
            }

        res = yield Step("result", result, "forming maps")
        summary = forming_summary(res, pulses, steps, compliance)
        return {**summary, "v_stop_V": float(voltages[-1])}


def _ramp_step(xbar, s, pos: np.ndarray, v: float, p: FormingParams) -> dict:
    """Set the compliance (if asked), pulse the still-unformed devices at ``v``, read them;
    the previous compliance is restored on every exit path."""
    previous = None
    if p.compliance is not None:
        previous = xbar.compliance
        xbar.set_compliance(p.compliance)
    try:
        used = getattr(xbar, "compliance", None)
        xbar.pulse(s, polarity=1, amplitude=v, width=p.width)
        g = xbar.read(s)
    finally:
        if previous is not None:
            xbar.set_compliance(previous)
    return {
        "v_V": v,
        "pos": pos.astype(np.int32),
        "g": np.asarray(g, dtype=np.float32),
        "compliance_A": None if used is None else float(used),
    }


def _reset_step(xbar, s, pos: np.ndarray) -> dict:
    """Two RESET pulses (the chip's recommended full RESET) on the formed devices, a read."""
    r = xbar.info.reset_pulse
    xbar.pulse(s, polarity=r.polarity, amplitude=r.amplitude, width=r.width, count=_RESET_PULSES)
    return {"pos": pos.astype(np.int32), "g": np.asarray(xbar.read(s), dtype=np.float32)}


def _status(already, reached, g_form, g_reset, p: FormingParams) -> np.ndarray:
    """Per-device status code (STATUS_CODES) from the recorded reads."""
    status = np.full(already.size, UNFORMABLE, dtype=np.uint8)
    checked = np.isfinite(g_reset)
    with np.errstate(invalid="ignore"):
        low = np.where(checked, g_reset, g_form) > 1.0 / p.r_short
        short = reached & low
        deaf = reached & ~short & checked & (g_reset > _RESET_DROP * g_form)
    status[reached] = FORMED
    status[deaf] = STUCK_SET
    status[short] = SHORTED
    status[already] = ALREADY_FORMED
    return status


def forming_summary(res: dict, pulses: int, steps: int, compliance) -> dict[str, Any]:
    """The run summary from the ``result`` record: counts, yield, forming-voltage stats;
    ``steps``: ramp steps run; ``compliance`` (A): the one the ramp ran with (None if
    the chip does not say).

    forming_yield: devices formed and not shorted (stuck_set counts as formed: its
    filament formed) over the devices that were pristine at the start; None if none were.
    """
    status = np.asarray(res["status"]).ravel()
    v = np.asarray(res["v_form_V"], dtype=np.float64).ravel()
    r = np.asarray(res["r_form_ohm"], dtype=np.float64).ravel()
    counts = {name: int(np.count_nonzero(status == code)) for name, code in STATUS_CODES.items()}
    attempted = status.size - counts["already_formed"]
    formed = counts["formed"] + counts["stuck_set"]
    good = (status == FORMED) | (status == STUCK_SET)
    vs, rs = v[good], r[good]

    def stat(fn, x):  # rounded: the maps hold float32
        return round(float(fn(x)), 6) if x.size else None

    return {
        "devices": int(status.size),
        **counts,
        "forming_yield": formed / attempted if attempted else None,
        "v_form_mean_V": stat(np.mean, vs),
        "v_form_std_V": stat(np.std, vs),
        "v_form_min_V": stat(np.min, vs),
        "v_form_max_V": stat(np.max, vs),
        "r_form_median_ohm": stat(np.median, rs),
        "pulses": int(pulses),
        "ramp_steps": int(steps),
        "compliance_A": None if compliance is None else float(compliance),
        "status_codes": dict(STATUS_CODES),
    }


def forming_benchmark(
    seed: int = 0, rows: int = 64, cols: int = 64, over_compliance: float = 400e-6
) -> dict[str, Any]:
    """Form a pristine emulated RRAM chip with the procedure's defaults; then a second
    chip of the same seed with ``over_compliance`` (A) to show over-forming.

    Keys: forming_yield, shorted_by_forming (defaults), unformable, stuck_set,
    v_form_mean_V, v_form_std_V, v_form_true_mean_V, v_form_true_std_V (the model's
    per-device forming voltages of the formed devices), r_form_median_ohm, pulses,
    over_compliance_A, shorted_over_compliance, devices.
    """
    from xbarlab.chipdrivers import open_crossbar

    spec = f"emulator:rram?rows={rows}&cols={cols}&seed={seed}"
    with open_crossbar(spec) as xbar:
        data, s = run_plan(Forming(FormingParams()), xbar)
        formed = np.isfinite(data["result"]["v_form_V"]).ravel()
        true_v = xbar.chip.v_form[formed].astype(np.float64)
    with open_crossbar(spec) as xbar:
        _, over = run_plan(Forming(FormingParams(compliance=over_compliance)), xbar)
    return {
        "devices": s["devices"],
        "forming_yield": s["forming_yield"],
        "shorted_by_forming": s["shorted"],
        "unformable": s["unformable"],
        "stuck_set": s["stuck_set"],
        "v_form_mean_V": s["v_form_mean_V"],
        "v_form_std_V": s["v_form_std_V"],
        "v_form_true_mean_V": float(true_v.mean()) if true_v.size else None,
        "v_form_true_std_V": float(true_v.std()) if true_v.size else None,
        "r_form_median_ohm": s["r_form_median_ohm"],
        "pulses": s["pulses"],
        "over_compliance_A": over_compliance,
        "shorted_over_compliance": over["shorted"],
    }
