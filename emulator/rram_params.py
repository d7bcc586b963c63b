"""Parameters of the emulated 1T1R resistive RAM (RRAM) device, and its presets.

Every field has a unit and the source of its default. The update model is the
soft-bounds device of the resistive processing unit (RPU) specification (Gokmen &
Vlasov, Front. Neurosci. 10, 333 (2016); IBM aihwkit ``SoftBoundsDevice``):
bidirectional, state-dependent increments that shrink toward the bound a pulse
drives to, with cycle-to-cycle and device-to-device spread. The window and the
read noise follow 1T1R HfOx arrays used for analog compute (Yao et al., Nature
577, 641 (2020): 2-20 uS; Wan et al., Nature 608, 504 (2022), "NeuRRAM": about
1% short-term read noise, slow post-programming relaxation). The voltage
dependence is the exponential acceleration of the switching kinetics above a
threshold (Menzel et al., Adv. Funct. Mater. 21, 4487 (2011)). Defaults marked
"assumed" are plausible engineering values, not fits; fit your own chip.

State x = (G - g_lo) / (g_hi - g_lo) in [0, 1] with the device's own window. One
pulse of polarity +1 (SET) moves x by f (1 - x)^set_gamma, polarity -1 (RESET) by
-f x^reset_gamma, where f = 1 - exp(-step * drive * sens * max(1 + c2c z, 0)) is the
pulse's switching fraction (z standard normal per pulse): about step * drive with a
relative spread c2c for gentle pulses, saturating at a full switch for strong ones.

Forming: devices arrive pristine (pristine = True) at about g_pristine, deaf to SET and
RESET. A polarity +1 pulse train forms device i when its height reaches
v_form_i - v_form_per_decade log10(count width / form_width_ref) (v_form_i normal,
mean v_form, std v_form_std): the device then sits at compliance / form_v_c (log-normal
spread form_spread), above its window until its first switching pulse, or, when the
compliance current exceeds its own i_short_i, at g_short for good (over-formed short).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xbarlab.emulator import params_base
from xbarlab.emulator.params_base import DeviceParams, finite_number, require
from xbarlab.errors import ConfigError

#: switching fraction per pulse of the recommended full RESET pulse
FULL_RESET_FRACTION = 0.99
#: switching fraction per pulse at the top of the recommended gradual SET range
SET_RANGE_TOP_FRACTION = 0.5


@dataclass(frozen=True)
class RRAMParams(DeviceParams):
    """Device physics of one emulated RRAM array.

    Window and device-to-device variation
    -------------------------------------
    g_max : float
        Nominal upper bound (low-resistance state) in S. 20 uS (Yao 2020: 1T1R
        TiN/TaOx/HfOx/TiN cells programmed within 2-20 uS).
    g_min : float
        Nominal lower bound (high-resistance state) in S. 2 uS (Yao 2020).
    g_max_spread, g_min_spread : float
        Device-to-device relative std of each device's bounds. 0.05 and 0.1, assumed
        (Gokmen & Vlasov 2016 specify a 30% spread of the bounds for an RPU; oxide
        RRAM arrays programmed with verify keep a narrower window).
    step_spread : float
        Device-to-device log-normal sigma of the step size (both polarities). 0.3
        (Gokmen & Vlasov 2016: 30% device-to-device variation of dw_min).

    Updates (soft bounds)
    ---------------------
    set_step : float
        Switching fraction f_set of the reference SET pulse (dimensionless, about the
        fraction of the window one pulse covers at x = 0). 0.05: 20 pulses cover
        about two thirds of the window, as the 20-50 gradual levels of analog
        HfOx/TaOx RRAM (Yao 2020; Wu et al., VLSI 2018). Assumed within that range.
    reset_step : float
        Switching fraction f_reset of the reference gradual RESET pulse. 0.06: RESET
        slightly stronger than SET (up/down asymmetry), assumed.
    set_gamma, reset_gamma : float
        Exponents of the soft bounds (1 - x)^set_gamma and x^reset_gamma. 1.0 (linear
        soft bounds, Gokmen & Vlasov 2016; aihwkit SoftBoundsDevice).
    c2c : float
        Cycle-to-cycle relative std of the switching rate of one pulse (of one gentle
        update). 0.3 (Gokmen & Vlasov 2016: 30%).
    v_set_th, v_reset_th : float
        Pulse heights in V below which SET (polarity +1) or RESET (polarity -1) pulses
        do not switch. 0.7 V and 0.8 V, assumed (Yao 2020 program with 1-2 V pulses).
    v_set_ref, v_reset_ref : float
        Reference pulse heights in V (drive 1, switching fraction = set_step or
        reset_step). 1.0 V and 1.2 V, assumed.
    v_slope : float
        Voltage in V over which the switching rate grows e-fold above threshold:
        drive = expm1((|V| - v_th) / v_slope) / expm1((v_ref - v_th) / v_slope).
        0.1 V (Menzel 2011: about a decade of switching time per 0.2-0.3 V).
    width_ref : float
        Reference pulse width in s. 100 ns, assumed (Yao 2020 and Wan 2022 program
        with pulses of 10 ns to 1 us).
    width_exponent : float
        Drive scales as (width / width_ref)^width_exponent. 0.5, assumed.

    Read noise and relaxation
    -------------------------
    read_noise : float
        Std of one read, relative to G: Gaussian, independent per read. 0.01 (Wan
        2022; the ~1% short-term read noise aihwkit's ReRamWan2022NoiseModel adds).
    relax_t0 : float
        Time scale in s of retention relaxation: G(t) = G_prog + r log10(1 + t /
        relax_t0), t since the device's last programming pulse. 1 s, assumed.
    relax_rate : float
        Mean relaxation per decade of time toward the state-dependent value g_eq, as a
        fraction of (g_eq - G_prog). 0.01, assumed (small, as Wan 2022 report).
    relax_eq : float
        Where relaxation leads, as a fraction x of the window. 0.5, assumed.
    relax_std : float
        Std of the per-device relaxation per decade, as a fraction of the window,
        drawn at every programming event. 0.005 (aihwkit ReRamCMONoiseModel: the spread
        grows by about 0.1 uS per decade, over an 18 uS window).

    Defects and initial state
    -------------------------
    stuck_on_fraction, stuck_off_fraction : float
        Fractions of devices stuck at their upper (on) or lower (off) bound: 0.2%
        each, assumed (order of the yield loss of the 1T1R arrays of Yao 2020). On a
        pristine chip a stuck-off device never forms (it stays pristine: unformable);
        a stuck-on device forms and then ignores every pulse (stuck at SET).
    init_state, init_spread : float
        Mean and std of x after forming and the first RESET (the state of a chip
        opened with pristine = 0, near the lower bound). 0.05 and 0.02, assumed.

    Forming (electroforming of pristine devices)
    --------------------------------------------
    pristine : bool
        True: devices arrive unformed, as real chips do (SkyWater sky130 ReRAM
        documentation: cells must be formed before use); False: an already formed
        array with every device near its lower bound (init_state).
    g_pristine : float
        Median conductance in S of an unformed device. 0.1 uS (10 MOhm), assumed
        within the 1-10+ MOhm of pristine HfOx cells before forming.
    g_pristine_spread : float
        Device-to-device log-normal sigma of the pristine conductance. 0.5, assumed.
    v_form : float
        Mean forming voltage in V of a form_width_ref pulse (polarity +1): at or above
        a device's own forming voltage the filament forms. 2.8 V, assumed within the
        2.5-3.5 V of 1T1R HfOx forming (Wan et al. 2022 and Yao et al. 2020 form their
        arrays with ramped pulses of a few V; the issue's lab script ramps 1.3-4 V in
        0.05 V steps and stops at <= 50 kOhm).
    v_form_std : float
        Device-to-device std in V of the forming voltage (normal). 0.25 V, assumed
        (published forming-voltage distributions span about +-0.5 V).
    form_width_ref : float
        Pulse width in s at which the forming voltage is v_form. 1 us, assumed.
    v_form_per_decade : float
        Drop in V of the forming voltage per decade of stress time (pulse width x
        count) above form_width_ref, and rise below it: forming is a time-dependent
        dielectric breakdown. 0.1 V, assumed.
    forming_compliance : float
        Compliance current in A the chip limits forming to until it is changed
        (EmulatedRRAMCrossbar.set_compliance). 20 uA, assumed (low-current analog
        RRAM forms at tens of uA through the 1T1R transistor).
    form_v_c : float
        The formed state's conductance is forming_compliance / form_v_c (the
        universal relation R = V_C / I_C of filamentary RRAM, Ielmini, IEEE Trans.
        Electron Devices 58, 4309 (2011): V_C about 0.2-0.5 V). 0.4 V, assumed: the
        default compliance forms devices at about 50 uS (20 kOhm), above the window,
        and the first RESET brings them into it.
    form_spread : float
        Log-normal sigma of the formed conductance, drawn per forming event. 0.15,
        assumed.
    i_short : float
        Median per-device compliance current in A above which forming over-forms the
        device into a permanent short (stuck at g_short, ignores RESET). 200 uA,
        assumed (over-forming by compliance overshoot, Shrestha et al., NIST 2016
        "Analysis and control of RRAM overshoot current").
    i_short_spread : float
        Device-to-device log-normal sigma of i_short. 0.3, assumed.
    g_short : float
        Median conductance in S of an over-formed (shorted) device. 1 mS (1 kOhm),
        assumed.
    g_short_spread : float
        Log-normal sigma of the shorted conductance, per event. 0.1, assumed (every
        short reads well below 2 kOhm, the usual short criterion).

    Timing of the emulated array
    ----------------------------
    t_array_read : float
        Virtual time in s one ``read`` call takes. 100 us, assumed.
    t_pulse_gap : float
        Virtual time in s between pulses of a train. 1 us, assumed.
    """

    technology = "rram"
    _what = "RRAM parameter"

    g_max: float = 20e-6
    g_min: float = 2e-6
    g_max_spread: float = 0.05
    g_min_spread: float = 0.1
    step_spread: float = 0.3
    set_step: float = 0.05
    reset_step: float = 0.06
    set_gamma: float = 1.0
    reset_gamma: float = 1.0
    c2c: float = 0.3
    v_set_th: float = 0.7
    v_reset_th: float = 0.8
    v_set_ref: float = 1.0
    v_reset_ref: float = 1.2
    v_slope: float = 0.1
    width_ref: float = 100e-9
    width_exponent: float = 0.5
    read_noise: float = 0.01
    relax_t0: float = 1.0
    relax_rate: float = 0.01
    relax_eq: float = 0.5
    relax_std: float = 0.005
    stuck_on_fraction: float = 0.002
    stuck_off_fraction: float = 0.002
    init_state: float = 0.05
    init_spread: float = 0.02
    pristine: bool = True
    g_pristine: float = 0.1e-6
    g_pristine_spread: float = 0.5
    v_form: float = 2.8
    v_form_std: float = 0.25
    form_width_ref: float = 1e-6
    v_form_per_decade: float = 0.1
    forming_compliance: float = 20e-6
    form_v_c: float = 0.4
    form_spread: float = 0.15
    i_short: float = 200e-6
    i_short_spread: float = 0.3
    g_short: float = 1e-3
    g_short_spread: float = 0.1
    t_array_read: float = 100e-6
    t_pulse_gap: float = 1e-6

    def __post_init__(self):
        names = self.field_names()
        require(self, names, finite_number, "a finite number")
        require(self, names, lambda v: v >= 0, ">= 0")
        positive = (
            "g_max", "g_min", "set_step", "reset_step", "set_gamma", "reset_gamma",
            "v_set_ref", "v_reset_ref", "v_slope", "width_ref", "relax_t0",
            "g_pristine", "v_form", "form_width_ref", "forming_compliance", "form_v_c",
            "i_short", "g_short",
        )  # fmt: skip
        require(self, positive, lambda v: v > 0, "> 0")
        fractions = ("stuck_on_fraction", "stuck_off_fraction", "relax_eq", "init_state")
        require(self, fractions, lambda v: v <= 1, "in [0, 1]")  # >= 0 checked above
        if self.stuck_on_fraction + self.stuck_off_fraction > 1:
            raise ConfigError("stuck_on_fraction + stuck_off_fraction must be <= 1")
        if not self.g_min < self.g_max:
            raise ConfigError(f"g_min = {self.g_min:g} S must be below g_max = {self.g_max:g} S")
        if not self.g_pristine < self.g_min:
            raise ConfigError(
                f"g_pristine = {self.g_pristine:g} S must be below g_min = {self.g_min:g} S "
                "(unformed devices conduct less than formed ones)"
            )
        if not self.g_short > self.g_max:
            raise ConfigError(
                f"g_short = {self.g_short:g} S must be above g_max = {self.g_max:g} S "
                "(a short conducts more than any formed state)"
            )
        for kind in ("set", "reset"):
            th, ref = getattr(self, f"v_{kind}_th"), getattr(self, f"v_{kind}_ref")
            if not th < ref:
                raise ConfigError(f"need v_{kind}_th < v_{kind}_ref, got {th:g} V and {ref:g} V")

    # -- derived pulse heights ---------------------------------------------------------
    def drive(self, polarity: int, amplitude, width):
        """Drive (dimensionless, >= 0) of pulses of this polarity, height (V), width (s).

        0 at and below the threshold, 1 for the reference pulse, exponential above.
        Works on numbers and numpy arrays alike.
        """
        th, ref = self._levels(polarity)
        excess = np.maximum(np.abs(amplitude) - th, 0.0)
        scale = math.expm1((ref - th) / self.v_slope)
        shape = (np.asarray(width, dtype=np.float64) / self.width_ref) ** self.width_exponent
        return np.expm1(excess / self.v_slope) / scale * shape

    def amplitude_for(self, polarity: int, fraction: float) -> float:
        """Height in V of a width_ref pulse with the nominal switching fraction
        ``fraction`` (0 < fraction < 1) for a device of nominal step size."""
        th, ref = self._levels(polarity)
        step = self.set_step if polarity > 0 else self.reset_step
        drive = -math.log1p(-fraction) / step
        return th + self.v_slope * math.log1p(drive * math.expm1((ref - th) / self.v_slope))

    def _levels(self, polarity: int) -> tuple[float, float]:
        if polarity > 0:
            return self.v_set_th, self.v_set_ref
        return self.v_reset_th, self.v_reset_ref


#: the parameter names, in declaration order
field_names = RRAMParams.field_names


#: Named presets. "default" is the device described above.
PRESETS: dict[str, RRAMParams] = {
    "default": RRAMParams(),
    # An ideal-ish device for debugging algorithms: no variation, no defects, little noise.
    "ideal": RRAMParams(
        g_max_spread=0.0,
        g_min_spread=0.0,
        step_spread=0.0,
        c2c=0.0,
        read_noise=1e-6,
        relax_rate=0.0,
        relax_std=0.0,
        stuck_on_fraction=0.0,
        stuck_off_fraction=0.0,
        init_spread=0.0,
        pristine=False,
    ),
}


def load_preset(name_or_path: str) -> RRAMParams:
    """A named preset, or a preset JSON file if the argument is a path."""
    return params_base.load_preset(RRAMParams, PRESETS, name_or_path)
