"""Fitting the emulator's PCM laws to a measured chip, from stored runs only.

Input is a characterisation campaign in the run store (see :data:`CHARACTERIZE`): a
``pulse-response`` child (RESET, then SET pulses with a read after each) and a ``drift``
child (program levels, read at log-spaced times, per-device nu). :func:`fit_run` reads
their records and returns a :class:`~xbarlab.emulator.pcm_params.PCMParams` whose laws
match the data, plus the measured points of every law for the plot report. It is a pure
function of the stored records: it never touches a chip.

What is fitted and how
----------------------
- SET increment: mean increment versus the conductance before the pulse, a straight
  line A (1 - G/g_sat) on devices below 60% of g_max (the law with
  ``set_state_exponent`` = 1); ``set_step`` = A / (g_max E[sens]), where E[sens] =
  exp(sigma^2/2) of the (unfitted) log-normal sensitivity spread. ``set_c2c`` from the
  spread of the increments, the device-to-device part and the read noise removed (the
  read noise from the data: consecutive increments share a read, which anti-correlates
  them).
- nu mean and std versus G: per level, then a line in ln(G/g_max) with optional
  plateaus (the published clamped law), chosen by BIC. The clamp bounds are the fitted
  curve's extremes over the measured levels: the law is not extrapolated. The std is
  corrected for the fit noise that read noise adds to every device's nu.
- Q_s versus G: the read noise is the relative residual G/G_fit - 1 of every device's
  drift fit; its expected square is about Q_s^2 sum_k w_k^2 (1 - h_kk) (w_k the noise
  growth at read k, h the hat matrix), which gives Q_s per level; then a power law in
  G/g_max. At the lowest level (tens of percent of noise) it reads high.
- Stuck fractions: devices already above g_max/2 right after the RESET (stuck SET), and
  devices that rose by less than 5% of g_max over all SET pulses (stuck RESET).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xbarlab.emulator.pcm_params import PCMParams
from xbarlab.errors import ConfigError

#: the characterisation campaign (parameters of procedures; run by the CLI layer)
CHARACTERIZE: dict[str, Any] = {
    "steps": [
        {"procedure": "pulse-response", "params": {"n_pulses": 30}},
        {
            "procedure": "drift",
            "params": {
                "pattern": "levels",
                "n_levels": 8,
                "lo": 0.1,
                "hi": 0.9,
                "n_reads": 20,
                "t_first": 30.0,
                "duration": 86400.0,
            },
        },
    ]
}

_SET_FIT_MAX = 0.6  # fraction of g_max: above it increments are clipped at g_sat
_STUCK_SET_G = 0.5  # fraction of g_max read right after a RESET
_STUCK_RESET_RISE = 0.05  # fraction of g_max a responsive device exceeds over the pulses


@dataclass
class Law:
    """One fitted law over its measured points (for the report): x and y with units."""

    name: str
    x_label: str
    y_label: str
    x: np.ndarray
    y: np.ndarray
    x_fit: np.ndarray
    y_fit: np.ndarray


@dataclass
class FitResult:
    """The fitted parameters (a full PCMParams) and the laws they came from."""

    params: PCMParams
    fitted: dict[str, float]
    laws: list[Law] = field(default_factory=list)


def fit_run(store, run_id: str, base: PCMParams | None = None) -> FitResult:
    """Fit PCM parameters to the characterisation campaign ``run_id`` in ``store``.

    ``base`` supplies every parameter that is not fitted (default: the published
    defaults), and ``t_read``/``t0``/``sensitivity_spread`` used by the fits.
    """
    base = base or PCMParams()
    g_max = float(store.run(run_id).chip_info.get("g_max", base.g_max))
    pulse, drift = _child(store, run_id, "pulse-response"), _child(store, run_id, "drift")
    fitted: dict[str, float] = {"g_max": g_max}
    laws: list[Law] = []
    g_pulse = store.arrays(pulse, "g").astype(np.float64)
    fitted.update(_fit_set(g_pulse, g_max, base, laws))
    fitted.update(_fit_stuck(g_pulse, g_max))
    fitted.update(_fit_drift(store, drift, g_max, base, laws))
    return FitResult(base.with_overrides(**fitted), fitted, laws)


def _child(store, run_id: str, procedure: str) -> str:
    kids = [r for r in store.runs(parent=run_id) if r.procedure == procedure]
    done = [r for r in kids if r.status == "completed"]
    if not done:
        raise ConfigError(
            f"run {run_id} has no completed {procedure!r} child run; run "
            "`xbarlab calibrate characterize` first"
        )
    return done[-1].run_id


def _fit_set(g: np.ndarray, g_max: float, base: PCMParams, laws: list[Law]) -> dict:
    """SET increment: a line A - B G on increments below _SET_FIT_MAX g_max; its
    cycle-to-cycle spread without the read noise of the two reads each increment spans."""
    g = g.reshape(g.shape[0], -1)
    responsive = (g[-1] - g[0]) > _STUCK_RESET_RISE * g_max
    before, inc = g[:-1, responsive].ravel(), np.diff(g[:, responsive], axis=0).ravel()
    low = before < _SET_FIT_MAX * g_max
    if low.sum() < 10:
        raise ConfigError("pulse-response has fewer than 10 SET increments below 0.6 g_max")
    slope, a = np.polyfit(before[low], inc[low], 1)
    e_sens = np.exp(base.sensitivity_spread**2 / 2)
    pred = np.maximum(a + slope * before, 1e-12)
    rel = np.where(low, inc / pred, np.nan).reshape(g.shape[0] - 1, -1)
    # var(s (1 + c z)) / E[s]^2 = (1 + c^2) E[s^2]/E[s]^2 - 1, with E[s^2]/E[s]^2 = e^sigma^2
    ratio = np.exp(base.sensitivity_spread**2)
    c2c2 = (np.nanvar(rel) - 2 * _read_noise(rel, ratio) + 1) / ratio - 1
    x = np.linspace(0, _SET_FIT_MAX * g_max, 9)
    centres = 0.5 * (x[1:] + x[:-1])
    which = np.clip(np.searchsorted(x, before[low]) - 1, 0, 7)
    means = np.array(
        [inc[low][which == k].mean() if (which == k).any() else np.nan for k in range(8)]
    )
    laws.append(
        Law(
            "set_increment",
            "G before pulse (uS)",
            "mean SET increment (uS)",
            centres * 1e6,
            means * 1e6,
            x * 1e6,
            (a + slope * x) * 1e6,
        )
    )
    return {"set_step": float(a / (g_max * e_sens)), "set_c2c": float(np.sqrt(max(c2c2, 0.0)))}


def _read_noise(rel: np.ndarray, ratio: float) -> float:
    """Variance of one read's noise relative to the mean increment, from the data.

    rel: (pulses, devices) relative increments (NaN where unused). Consecutive
    increments of a device share a read, whose noise enters one with + and the next
    with -, so their covariance is Var(s)/E[s]^2 - n = (ratio - 1) - n: the device's
    sensitivity s correlates them, the shared read anti-correlates them.
    """
    a, b = rel[:-1], rel[1:]
    both = ~(np.isnan(a) | np.isnan(b))
    if both.sum() < 10:
        return 0.0
    a, b = a[both], b[both]
    cov = np.mean((a - a.mean()) * (b - b.mean()))
    return max(ratio - 1 - cov, 0.0)


def _fit_stuck(g: np.ndarray, g_max: float) -> dict:
    """Stuck fractions: high right after RESET (SET), or no rise under SET pulses (RESET)."""
    g = g.reshape(g.shape[0], -1)
    stuck_set = g[0] > _STUCK_SET_G * g_max
    stuck_reset = ~stuck_set & ((g.max(axis=0) - g[0]) < _STUCK_RESET_RISE * g_max)
    return {
        "stuck_set_fraction": float(stuck_set.mean()),
        "stuck_reset_fraction": float(stuck_reset.mean()),
    }


def _fit_drift(store, run_id: str, g_max: float, base: PCMParams, laws: list[Law]) -> dict:
    """nu mean/std and Q_s per programmed level, then their laws in ln(G/g_max)."""
    prog = store.record(run_id, "program")
    targets = np.asarray(prog["targets"], dtype=np.float64).ravel()
    good = (np.asarray(prog["converged"]) & ~np.asarray(prog["unresponsive"])).ravel()
    t = store.arrays(run_id, "t_s").astype(np.float64)
    g = store.arrays(run_id, "g").astype(np.float64).reshape(t.size, -1)[:, good]
    targets = targets[good]
    x = np.log(t)
    xc = x - x.mean()
    sxx = xc @ xc
    y = np.log(np.maximum(g, 1e-12))
    slope = xc @ y / sxx
    # relative residuals in linear space: at low G the noise is tens of percent and
    # log(1 + eps) would overstate it
    rel = g / np.exp(y.mean(axis=0) + np.outer(xc, slope))
    res = rel - rel.mean(axis=0)
    w2 = np.log(np.maximum((t + base.t_read) / (2 * base.t_read), 1.0))
    h = 1 / t.size + xc**2 / sxx
    q2_dev = (res**2).sum(axis=0) / (w2 @ (1 - h))
    nu_noise = (xc**2 @ w2) / sxx**2  # var of a device's fitted nu per unit Q_s^2
    levels = np.unique(targets)
    if levels.size < 3:
        raise ConfigError(f"the drift run has {levels.size} usable levels; the fit needs >= 3")
    nu_m, nu_s, q_s = [], [], []
    for level in levels:
        m = targets == level
        q2 = q2_dev[m].mean()
        nu_m.append(-slope[m].mean())
        nu_s.append(np.sqrt(max(slope[m].var() - q2 * nu_noise, 0.0)))
        q_s.append(np.sqrt(q2))
    lnr = np.log(levels / g_max)
    out = {}
    for prefix, values, label in (("nu", nu_m, "nu mean"), ("nu_std", nu_s, "nu std")):
        law = _clamped_line(lnr, np.array(values))
        out.update({f"{prefix}_{k}": v for k, v in law.items()})
        laws.append(_law(prefix, label, levels, values, g_max, _clamped(law)))
    e, log_c = np.polyfit(lnr, np.log(q_s), 1)
    out.update({"q_s_coeff": float(np.exp(log_c)), "q_s_exponent": float(-e)})
    out["q_s_max"] = float(max(base.q_s_max, max(q_s)))
    laws.append(_law("q_s", "Q_s", levels, q_s, g_max, lambda r: np.exp(log_c + e * r)))
    return out


def _law(name, label, levels, values, g_max, curve) -> Law:
    x_fit = np.linspace(levels.min(), levels.max(), 50)
    return Law(
        name,
        "programmed G (uS)",
        f"{label} (1)",
        levels * 1e6,
        np.asarray(values, float),
        x_fit * 1e6,
        curve(np.log(x_fit / g_max)),
    )


def _clamped(law: dict):
    return lambda r: np.clip(law["slope"] * r + law["offset"], law["min"], law["max"])


def _clamped_line(x: np.ndarray, y: np.ndarray) -> dict:
    """clamp(slope x + offset, min, max) by least squares, plateaus chosen by BIC.

    Points are sorted by x; every split into [plateau] line [plateau] with at least two
    points on the line is tried. The clamp bounds are the fitted curve's extremes over
    the measured x: no extrapolation beyond the data.
    """
    order = np.argsort(x)
    x, y = x[order], y[order]
    n = x.size
    best = None
    for i in range(n - 1):
        for j in range(i + 2, n + 1):
            slope, offset = np.polyfit(x[i:j], y[i:j], 1)
            fit = slope * x + offset
            fit[:i] = y[:i].mean() if i else fit[:i]
            fit[j:] = y[j:].mean() if j < n else fit[j:]
            sse = max(float(((y - fit) ** 2).sum()), 1e-30)
            k = 2 + (i > 0) + (j < n)
            bic = n * np.log(sse / n) + k * np.log(n)
            if best is None or bic < best[0]:
                best = (bic, slope, offset, fit)
    _, slope, offset, fit = best
    return {
        "slope": float(slope),
        "offset": float(offset),
        "min": float(fit.min()),
        "max": float(fit.max()),
    }
