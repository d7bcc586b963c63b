"""Parameters of the emulated phase-change memory (PCM) device, and its presets.

Every field has a unit and the source of its default. Drift and read-noise laws
are the published statistical fit to one million PCM devices (Nandakumar et al.,
ICECS 2019; used in Joshi et al., Nat. Commun. 11, 2473 (2020) and in IBM
aihwkit's ``PCMLikeNoiseModel``). The SET-increment model follows the shape of the
PCM synapse model of Nandakumar et al., J. Appl. Phys. 124, 152135 (2018):
state-dependent, saturating mean increments with cycle-to-cycle spread
comparable to the mean. Defaults marked "assumed" are plausible engineering values,
not fits; fit your own chip with the calibration tools.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarlab.emulator import params_base
from xbarlab.emulator.params_base import DeviceParams, require
from xbarlab.errors import ConfigError


@dataclass(frozen=True)
class PCMParams(DeviceParams):
    """Device physics of one emulated PCM array.

    Window and variability
    ----------------------
    g_max : float
        Nominal saturation (fully SET) conductance in S. 25 uS: the normalisation
        conductance of the published 1M-device drift and noise fits (Joshi 2020).
    g_min : float
        Lowest conductance in S a device reads (floor of the RESET state). 0.1 uS, assumed.
    g_max_spread : float
        Device-to-device relative std of each device's saturation conductance. 0.05, assumed.
    reset_g_mean, reset_g_std : float
        Conductance in S right after a RESET: normal, clipped at g_min. 0.3 uS and
        0.1 uS, assumed (amorphous state well below 1 uS as in Joshi 2020, Fig. 2).

    SET (partial crystallisation)
    -----------------------------
    set_step : float
        Mean increment at G = 0 for the reference pulse, as a fraction of the device's
        saturation conductance: 0.08 (2 uS of 25 uS; Nandakumar 2018 reports increments
        of order 1-2 uS per pulse at low conductance).
    set_state_exponent : float
        Mean increment scales as (1 - G/g_sat)^set_state_exponent: sub-linear,
        saturating toward g_sat. 1.0 (Nandakumar 2018, linear decrease of the mean
        increment with G).
    set_c2c : float
        Cycle-to-cycle std of one increment divided by its mean. 1.0 (Nandakumar 2018:
        the spread is comparable to the mean).
    sensitivity_spread : float
        Device-to-device log-normal sigma of SET sensitivity. 0.3, assumed.
    v_set_min : float
        Pulse height in V below which a pulse does not crystallise (threshold
        switching not reached). 0.5 V, assumed.
    v_set_ref : float
        Reference SET pulse height in V (drive factor 1). 1.0 V, assumed.
    v_reset : float
        Pulse height in V at and above which the cell melts and RESETs. 1.5 V, assumed.
    width_ref : float
        Reference SET pulse width in s. 50 ns (Nandakumar 2018 use 50 ns SET pulses).
    width_exponent : float
        Increment scales as (width/width_ref)^width_exponent: sub-linear. 0.5, assumed.

    Drift  G(t) = G_prog (t/t0)^-nu, t from the last programming pulse
    -----------------------------------------------------------------
    t0 : float
        Drift reference time in s: 20 s (Joshi 2020). Reads earlier than t0 see G_prog.
    nu_slope, nu_offset, nu_min, nu_max : float
        mean nu = clamp(nu_slope ln(G/g_max) + nu_offset, nu_min, nu_max):
        -0.0155, 0.0244, 0.049, 0.1 (1M-device fit, Joshi 2020).
    nu_std_slope, nu_std_offset, nu_std_min, nu_std_max : float
        std nu = clamp(nu_std_slope ln(G/g_max) + nu_std_offset, ...):
        -0.0125, -0.0059, 0.008, 0.045 (same fit). nu is drawn per device per
        programming event and clipped at 0.

    Post-programming relaxation
    ---------------------------
    After a programming pulse the conductance relaxes by the relative amount
    h(dt) (relax_mean + relax_std z), z standard normal per device and programming
    event, h(dt) = min(ln(1 + dt/relax_tau) / ln(1 + relax_t_end/relax_tau), 1): the
    spread grows with log time and settles toward a state-dependent value (relax_mean G)
    within seconds, on top of drift. Short-term relaxation and broadening of the
    programmed distribution right after programming are described by Le Gallo &
    Sebastian, J. Phys. D 53, 213002 (2020), Sec. 5, and Nandakumar et al., J. Appl.
    Phys. 124, 152135 (2018); Joshi 2020 (Fig. 2) shows the programmed distribution
    widening over the first tens of seconds. Magnitudes here are assumed, chosen so the
    spread 25 s after iterative programming stays near the published programming spread
    (benchmarks/bench_programming.py).
    relax_mean : float
        Mean relative conductance change at full relaxation: -0.01, assumed.
    relax_std : float
        Device-to-device std of the relative change at full relaxation: 0.025, assumed.
    relax_tau : float
        Time constant in s of the log-time growth; 0 disables relaxation. 0.1 s, assumed.
    relax_t_end : float
        Time in s after the pulse at which relaxation is complete: 10 s, assumed
        (seconds, before the drift law's reference time t0 = 20 s takes over; Le Gallo
        & Sebastian 2020).

    Read noise (accumulated 1/f)
    ----------------------------
    q_s_coeff, q_s_exponent, q_s_max : float
        Q_s = min(q_s_coeff / (G/g_max)^q_s_exponent, q_s_max): 0.0088, 0.65, 0.2
        (same fit).
    t_read : float
        Read duration in s in sigma_rel = Q_s sqrt(ln((t + t_read)/(2 t_read))): 250 ns
        (same fit). No noise for t <= t_read.

    Defects and endurance
    ---------------------
    stuck_set_fraction, stuck_reset_fraction : float
        Fractions of devices stuck at SET (g_sat) or RESET from fabrication: 0.1% each
        (assumed, order of the yield loss reported for large PCM arrays).
    endurance_median : float
        Median number of RESET cycles after which a device sticks: 1e8 (PCM
        endurance of 1e6-1e9 cycles, Burr et al., JVST B 28, 223 (2010)).
    endurance_spread : float
        Log-normal sigma of per-device endurance. 0.5, assumed.
    endurance_stuck_set_fraction : float
        Fraction of worn-out devices that fail stuck at SET (the rest at RESET). 0.5,
        assumed.

    Timing of the emulated array
    ----------------------------
    t_array_read : float
        Virtual time in s one ``read`` or ``mvm`` call takes. 100 us, assumed.
    t_pulse_gap : float
        Virtual time in s between pulses of a train. 1 us, assumed.
    """

    technology = "pcm"
    _what = "PCM parameter"

    g_max: float = 25e-6
    g_min: float = 0.1e-6
    g_max_spread: float = 0.05
    reset_g_mean: float = 0.3e-6
    reset_g_std: float = 0.1e-6
    set_step: float = 0.08
    set_state_exponent: float = 1.0
    set_c2c: float = 1.0
    sensitivity_spread: float = 0.3
    v_set_min: float = 0.5
    v_set_ref: float = 1.0
    v_reset: float = 1.5
    width_ref: float = 50e-9
    width_exponent: float = 0.5
    t0: float = 20.0
    nu_slope: float = -0.0155
    nu_offset: float = 0.0244
    nu_min: float = 0.049
    nu_max: float = 0.1
    nu_std_slope: float = -0.0125
    nu_std_offset: float = -0.0059
    nu_std_min: float = 0.008
    nu_std_max: float = 0.045
    relax_mean: float = -0.01
    relax_std: float = 0.025
    relax_tau: float = 0.1
    relax_t_end: float = 10.0
    q_s_coeff: float = 0.0088
    q_s_exponent: float = 0.65
    q_s_max: float = 0.2
    t_read: float = 250e-9
    stuck_set_fraction: float = 0.001
    stuck_reset_fraction: float = 0.001
    endurance_median: float = 1e8
    endurance_spread: float = 0.5
    endurance_stuck_set_fraction: float = 0.5
    t_array_read: float = 100e-6
    t_pulse_gap: float = 1e-6

    def __post_init__(self):
        names = self.field_names()
        require(self, names, lambda v: isinstance(v, int | float) and v == v, "a number")
        positive = (
            "g_max",
            "g_min",
            "set_step",
            "v_set_ref",
            "v_reset",
            "width_ref",
            "t0",
            "q_s_coeff",
            "t_read",
            "endurance_median",
        )
        require(self, positive, lambda v: v > 0, "> 0")
        fractions = ("stuck_set_fraction", "stuck_reset_fraction", "endurance_stuck_set_fraction")
        require(self, fractions, lambda v: 0 <= v <= 1, "in [0, 1]")
        if self.stuck_set_fraction + self.stuck_reset_fraction > 1:
            raise ConfigError("stuck_set_fraction + stuck_reset_fraction must be <= 1")
        if self.relax_std < 0 or self.relax_tau < 0:
            raise ConfigError(
                "PCMParams.relax_std and relax_tau must be >= 0, got "
                f"{self.relax_std!r} and {self.relax_tau!r}"
            )
        if not -0.5 < self.relax_mean < 0.5:
            raise ConfigError(
                f"PCMParams.relax_mean must be in (-0.5, 0.5), got {self.relax_mean!r}"
            )
        if self.relax_tau > 0 and not self.relax_t_end > 0:
            raise ConfigError(f"PCMParams.relax_t_end must be > 0 s, got {self.relax_t_end!r}")
        if not self.g_min < self.g_max:
            raise ConfigError(f"g_min = {self.g_min:g} S must be below g_max = {self.g_max:g} S")
        if not self.v_set_min < self.v_set_ref < self.v_reset:
            raise ConfigError(
                "need v_set_min < v_set_ref < v_reset, got "
                f"{self.v_set_min:g} V, {self.v_set_ref:g} V, {self.v_reset:g} V"
            )

    def nu_mean(self, g):
        """The mean drift exponent at conductance g (S, scalar or array): the clamped law
        clamp(nu_slope ln(G/g_max) + nu_offset, nu_min, nu_max)."""
        return np.clip(
            self.nu_slope * np.log(g / self.g_max) + self.nu_offset, self.nu_min, self.nu_max
        )


#: the parameter names, in declaration order
field_names = PCMParams.field_names


#: Named presets. "default" is the published-law device described above.
PRESETS: dict[str, PCMParams] = {
    "default": PCMParams(),
    # An ideal-ish device for debugging algorithms: no defects, little noise.
    "ideal": PCMParams(
        g_max_spread=0.0,
        sensitivity_spread=0.0,
        set_c2c=0.0,
        stuck_set_fraction=0.0,
        stuck_reset_fraction=0.0,
        q_s_coeff=1e-9,
        nu_min=0.0,
        nu_max=0.0,
        nu_offset=0.0,
        nu_slope=0.0,
        nu_std_min=0.0,
        nu_std_max=0.0,
        nu_std_offset=0.0,
        nu_std_slope=0.0,
        relax_mean=0.0,
        relax_std=0.0,
        relax_tau=0.0,
    ),
}


def load_preset(name_or_path: str) -> PCMParams:
    """A named preset, or a preset JSON file if the argument is a path."""
    return params_base.load_preset(PCMParams, PRESETS, name_or_path)
