"""Peripheral circuits around an emulated array: DAC, ADC, mismatch, IR drop.

Parameters are declared once in :class:`PeripheralParams` with units and sources;
named presets cover the usual cases. Currents and voltages are SI; the ADC range
and output noise are given in "weight units" as in IBM aihwkit's IOParameters
(one unit = the current of one g_max device at full-scale input, g_max * dac_range,
in A), so presets carry over between array sizes and device technologies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from xbarlab.emulator.params_base import ModelParams, require
from xbarlab.errors import ConfigError


@dataclass(frozen=True)
class PeripheralParams(ModelParams):
    """DAC, ADC and wiring of one emulated array.

    Attributes
    ----------
    dac_bits : int
        Signed input DAC resolution: 2^(bits-1) - 1 levels per polarity (7 bits: 63).
        0 = ideal (no quantisation, no clipping). Default 7 (aihwkit default
        inp_res = 1/(2^7 - 2)).
    dac_range : float
        DAC full-scale voltage in V; inputs beyond it are clipped. 0.2 V, the read
        voltage of the emulated PCM (assumed).
    dac_stochastic : bool
        Stochastic instead of nearest rounding of the input (aihwkit inp_sto_round).
    input_noise : float
        Std of additive input noise, relative to dac_range. Default 0 (aihwkit inp_noise).
    adc_bits : int
        ADC resolution: two's-complement codes -2^(bits-1) .. 2^(bits-1) - 1, so 2^bits
        levels with a step of full scale / 2^(bits-1); 0 = ideal (no quantisation, no
        saturation). Default 9 (as aihwkit's default out_res, about 1/2^9 of the range).
    adc_bound : float
        ADC full scale in weight units (full-scale current = adc_bound * g_max *
        dac_range, A). Default 12 (aihwkit out_bound).
    out_noise : float
        Std of additive output noise in weight units. Default 0.06 (aihwkit out_noise;
        about 1.3 LSB at 9 bits and bound 12).
    gain_std : float
        Relative std of the per-output gain mismatch of the TIA/ADC chain, drawn once per
        chip from its seed. Default 0.
    offset_std : float
        Std of the per-output offset, in ADC LSB (for an ideal ADC, in 1/256 of the
        full scale). Default 0.
    r_wire : float
        Wire resistance per cross-point segment in Ohm; > 0 folds IR drop into the
        array's effective conductance with the ladder model of emulator/irdrop.py
        (validated against an exact nodal solve). Default 0.
    differential : bool
        Column pairs (2j, 2j+1) are subtracted in the current domain before the ADC
        (forward), or driven with +x and -x (transposed): one logical output per pair.
    device_noise : bool
        Include the devices' read noise in MVM outputs. Off only to study the periphery
        alone. Default True.
    t_mvm : float
        Virtual time in s one input vector of an MVM takes. 1 us, assumed (the 256x256
        HERMES core of seed 004 needs about 130 ns per MVM).
    """

    _what = "peripheral parameter"

    dac_bits: int = 7
    dac_range: float = 0.2
    dac_stochastic: bool = False
    input_noise: float = 0.0
    adc_bits: int = 9
    adc_bound: float = 12.0
    out_noise: float = 0.06
    gain_std: float = 0.0
    offset_std: float = 0.0
    r_wire: float = 0.0
    differential: bool = False
    device_noise: bool = True
    t_mvm: float = 1e-6

    def __post_init__(self):
        for name in ("dac_bits", "adc_bits"):
            bits = getattr(self, name)
            if int(bits) != bits or not 0 <= bits <= 24:
                raise ConfigError(
                    f"PeripheralParams.{name} must be an integer in 0..24, got {bits!r}"
                )
        require(self, ("dac_range", "adc_bound"), lambda v: v > 0, "> 0")
        nonnegative = ("input_noise", "out_noise", "gain_std", "offset_std", "r_wire", "t_mvm")
        require(self, nonnegative, lambda v: np.isfinite(v) and v >= 0, ">= 0")

    @cached_property
    def dac_levels(self) -> int:
        """Input levels per polarity (0: ideal DAC)."""
        return 2 ** (int(self.dac_bits) - 1) - 1 if self.dac_bits else 0

    @property
    def adc_codes(self) -> int:
        """2^(bits-1): the ADC's codes run from -adc_codes to adc_codes - 1 (0: ideal ADC)."""
        return 2 ** (int(self.adc_bits) - 1) if self.adc_bits else 0

    def unit_current(self, g_max: float) -> float:
        """Current in A of one weight unit: g_max (S) times dac_range (V)."""
        return g_max * self.dac_range

    def adc_lsb(self, g_max: float) -> float:
        """ADC step in A: the full-scale current divided by 2^(bits-1) (by 256, the step
        of the default 9-bit ADC, for an ideal ADC: the unit of offset_std)."""
        return self.adc_bound * self.unit_current(g_max) / (self.adc_codes or 256)

    def describe(self, g_max: float) -> dict:
        """The converters as ``ChipInfo.periphery`` reports them (SI keys), for an array
        whose weight unit is g_max (S): no ADC gives adc_full_scale_A None and adc_lsb_A 0."""
        unit = self.unit_current(g_max)
        return {
            "dac_range_V": self.dac_range,
            "dac_levels": self.dac_levels,
            "adc_full_scale_A": self.adc_bound * unit if self.adc_codes else None,
            "adc_lsb_A": self.adc_lsb(g_max) if self.adc_codes else 0.0,
            "output_noise_A": self.out_noise * unit,
            "gain_std": self.gain_std,
            "r_wire_ohm": self.r_wire,
        }


#: the parameter names, in declaration order
field_names = PeripheralParams.field_names


#: Named presets.
PRESETS: dict[str, PeripheralParams] = {
    # Exact currents: no DAC/ADC, no output noise (device read noise remains).
    "ideal": PeripheralParams(dac_bits=0, adc_bits=0, out_noise=0.0),
    # Close to the default forward pass of published AIMC simulators (aihwkit
    # IOParameters: 7-bit input, 9-bit output, bound 12, output noise 0.06).
    "default": PeripheralParams(),
    # imec analog inference accelerator of seed 002: ternary weights, 7-bit activations,
    # 6-bit ADC.
    "imec": PeripheralParams(dac_bits=7, adc_bits=6, out_noise=0.06),
    # IBM HERMES 64-core PCM chip (seed 004; Khaddam-Aljameh et al., VLSI 2021):
    # 8-bit inputs (PWM) and 8-bit outputs (CCO-based ADCs).
    "hermes": PeripheralParams(dac_bits=8, adc_bits=8, out_noise=0.04),
}


def load_periphery(name: str) -> PeripheralParams:
    """A named peripheral preset; an unknown name lists the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown peripheral preset {name!r}; valid: {', '.join(PRESETS)}"
        ) from None


@dataclass(frozen=True)
class Mismatch:
    """Per-output gain (dimensionless) and offset (A) of one chip instance and direction."""

    gain: np.ndarray
    offset: np.ndarray

    @classmethod
    def draw(cls, n: int, params: PeripheralParams, lsb: float, rng: np.random.Generator):
        gain = 1.0 + params.gain_std * rng.standard_normal(n)
        offset = params.offset_std * lsb * rng.standard_normal(n)
        return cls(gain.astype(np.float32), offset.astype(np.float32))
