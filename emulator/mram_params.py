"""Parameters of the emulated SOT-MRAM device and its sense amplifier, and presets.

Every field has a unit and the source of its default. The Monte-Carlo variation of
the resistance-area product (sigma 5 %) and of the TMR (sigma 10 %), the two-row
AND/OR sensing and the ~120 uA, 1 ns SOT write are those of the IMCE work (seed 003:
D. Fan et al., "IMCE: energy-efficient bit-wise in-memory convolution engine for deep
neural network", ASP-DAC 2018). Defaults marked "assumed" are plausible engineering
values, not fits: fit your own chip.

Resistances: R_P = RA / A (parallel, logic 1, high conductance) and
R_AP = R_P (1 + TMR) (antiparallel, logic 0, low conductance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xbarlab.emulator import params_base
from xbarlab.emulator.params_base import DeviceParams, require, strict_number
from xbarlab.errors import ConfigError

#: logic operations of the sense amplifier (two rows of a column sensed at once)
LOGIC_OPS = ("and", "or")


@dataclass(frozen=True)
class MRAMParams(DeviceParams):
    """Device physics and sensing of one emulated SOT-MRAM array.

    Magnetic tunnel junction
    ------------------------
    ra_product : float
        Resistance-area product of the parallel state in Ohm m^2. 1e-11 (10 Ohm um^2),
        assumed: a common value for CoFeB/MgO MTJs in MRAM compact models.
    junction_area : float
        MTJ area in m^2. 1.885e-15 (a 60 nm x 40 nm ellipse, pi/4 * 60e-9 * 40e-9),
        assumed. With ra_product: R_P = 5.3 kOhm, G_P = 189 uS.
    tmr : float
        Mean tunnel magnetoresistance ratio (R_AP - R_P) / R_P, dimensionless. 1.5
        (150 %), assumed (CoFeB/MgO MTJs reach 100-200 % at room temperature).
    ra_sigma : float
        Device-to-device relative std of the RA product (normal, fixed per device per
        chip seed). 0.05 (seed 003: Monte-Carlo with sigma = 5 % on RA_P).
    tmr_sigma : float
        Device-to-device relative std of the TMR (normal, fixed per device). 0.10
        (seed 003: sigma = 10 % process variation on the TMR).

    Read and sense amplifier
    ------------------------
    v_read : float
        Read (and logic-sense) voltage in V. 0.1 V, assumed (well below the write
        threshold: read disturb is neglected).
    read_noise : float
        Relative std of one conductance read (per device per read). 0.01, assumed.
    ref_position : float
        Placement of the logic reference between the two sum conductances it separates,
        0 < ref_position < 1: 0.5 is the midpoint (seed 003: R_ref at the midpoint).
        AND separates (P, AP) from (P, P); OR separates (AP, AP) from (P, AP). Moving
        it off 0.5 shrinks the sense margin on one side.
    sense_offset : float
        Std of the sense amplifier's input offset, fixed per column per chip seed,
        relative to the reference current. 0.01, assumed.
    sense_noise : float
        Std of the sense amplifier's noise, per operation, relative to the reference
        current. 0.01, assumed.

    SOT write (current through the heavy-metal line, not through the MTJ)
    ----------------------------------------------------------------------
    i_switch : float
        Critical SOT write current in A for pulses of width_ref or longer. 120e-6
        (seed 003: ~120 uA charge current, 1 ns switching).
    r_write : float
        Resistance in Ohm of the write path (heavy-metal line and write access
        transistor): a pulse of amplitude V drives V / r_write. 5 kOhm, assumed, so the
        switching threshold is 0.6 V.
    width_ref : float
        Pulse width in s from which the critical current is i_switch; shorter pulses
        need i_switch * width_ref / width (precessional regime). 1 ns (seed 003).
    switch_sigma : float
        Relative width of the thermal switching-probability curve around the
        threshold: P_switch = Phi((I / I_c - 1) / switch_sigma). 0.05, assumed.
    write_error_rate : float
        Probability that a pulse well above threshold still fails to switch a device
        (per device per pulse). 1e-6, assumed.
    v_write : float
        Recommended write pulse height in V (1.5 x the threshold). 0.9 V, assumed.
    write_width : float
        Recommended write pulse width in s. 10 ns, assumed (the shortest pulse the
        default safety limits allow).

    Timing of the emulated array
    ----------------------------
    t_array_read : float
        Virtual time in s one read or one logic operation takes. 10 ns, assumed.
    t_pulse_gap : float
        Virtual time in s between pulses of a train. 1 ns, assumed.
    """

    technology = "mram"
    _what = "MRAM parameter"

    ra_product: float = 1e-11
    junction_area: float = math.pi / 4 * 60e-9 * 40e-9
    tmr: float = 1.5
    ra_sigma: float = 0.05
    tmr_sigma: float = 0.10
    v_read: float = 0.1
    read_noise: float = 0.01
    ref_position: float = 0.5
    sense_offset: float = 0.01
    sense_noise: float = 0.01
    i_switch: float = 120e-6
    r_write: float = 5e3
    width_ref: float = 1e-9
    switch_sigma: float = 0.05
    write_error_rate: float = 1e-6
    v_write: float = 0.9
    write_width: float = 10e-9
    t_array_read: float = 10e-9
    t_pulse_gap: float = 1e-9

    def __post_init__(self):
        names = self.field_names()
        require(self, names, strict_number, "a number")
        require(self, names, lambda v: math.isfinite(v) and v >= 0, "finite and >= 0")
        positive = (
            "ra_product",
            "junction_area",
            "tmr",
            "v_read",
            "i_switch",
            "r_write",
            "width_ref",
            "v_write",
            "write_width",
        )
        require(self, positive, lambda v: v > 0, "> 0")
        if not 0 < self.ref_position < 1:
            raise ConfigError(
                f"MRAMParams.ref_position must be strictly between 0 and 1, got "
                f"{self.ref_position!r}"
            )
        if self.write_error_rate > 1:
            raise ConfigError(
                f"MRAMParams.write_error_rate must be in [0, 1], got {self.write_error_rate!r}"
            )

    # -- derived nominal quantities -----------------------------------------------------
    @property
    def r_p(self) -> float:
        """Nominal parallel-state resistance in Ohm (RA / A)."""
        return self.ra_product / self.junction_area

    @property
    def g_p(self) -> float:
        """Nominal parallel-state (logic 1) conductance in S."""
        return 1.0 / self.r_p

    @property
    def g_ap(self) -> float:
        """Nominal antiparallel-state (logic 0) conductance in S."""
        return 1.0 / (self.r_p * (1.0 + self.tmr))

    @property
    def v_switch(self) -> float:
        """Switching threshold in V of pulses of width_ref or longer (i_switch r_write)."""
        return self.i_switch * self.r_write

    def reference_conductance(self, op: str) -> float:
        """Sum conductance in S the sense amplifier compares two sensed devices against."""
        low, high = self._bracket(op)
        return low + self.ref_position * (high - low)

    def sense_margin(self, op: str) -> float:
        """Nominal sense margin of ``op``: distance from the reference to the nearest
        sum conductance, divided by the reference (dimensionless)."""
        low, high = self._bracket(op)
        ref = self.reference_conductance(op)
        return min(high - ref, ref - low) / ref

    def _bracket(self, op: str) -> tuple[float, float]:
        """The two nominal sum conductances (S) the reference of ``op`` separates."""
        gp, gap = self.g_p, self.g_ap
        if op == "and":
            return gp + gap, 2 * gp
        if op == "or":
            return 2 * gap, gp + gap
        raise ConfigError(f"logic op must be one of {', '.join(LOGIC_OPS)}, got {op!r}")


#: the parameter names, in declaration order
field_names = MRAMParams.field_names


#: Named presets. "default" is the seed-003 Monte-Carlo device described above.
PRESETS: dict[str, MRAMParams] = {
    "default": MRAMParams(),
    # Error-free sensing and writing: no variation, no noise, no write errors. IMCE
    # results on it are exact integers.
    "ideal": MRAMParams(
        ra_sigma=0.0,
        tmr_sigma=0.0,
        read_noise=0.0,
        sense_offset=0.0,
        sense_noise=0.0,
        switch_sigma=0.0,
        write_error_rate=0.0,
    ),
}


def load_preset(name_or_path: str) -> MRAMParams:
    """A named preset, or a preset JSON file if the argument is a path."""
    return params_base.load_preset(MRAMParams, PRESETS, name_or_path)
