"""The emulated RRAM backend: ``emulator:rram?...`` behind the checked ``Crossbar``.

Spec: ``emulator:rram?rows=R&cols=C&seed=S&preset=NAME_OR_JSON&periphery=NAME``
followed by any ``<RRAMParams field>=value`` or ``<PeripheralParams field>=value``,
e.g. ``emulator:rram?rows=64&cols=64&seed=1&differential=1&c2c=0.5``.

Switching is bipolar: pulses of polarity +1 SET (raise G) and -1 RESET (lower G)
gradually, so the chip has no ``unipolar`` capability. ``info.set_pulse`` is the
reference gradual SET pulse; ``info.reset_pulse`` a strong RESET pulse that takes a
device to near its lower bound in one pulse (switching fraction
``rram_params.FULL_RESET_FRACTION``), as programming algorithms expect from a RESET;
``details["reset_amplitude_range"]`` is the range of gentle, gradual RESET heights.
Save and restore of the chip state work as for PCM (capability ``"state"``).

Forming and compliance: devices arrive pristine unless the spec says ``pristine=0``.
A polarity +1 pulse at or above a device's forming voltage (about 2.8 V) forms it
under the chip's compliance current. The ``Crossbar.pulse`` interface has no
compliance argument, so the compliance is a setting of the chip, as the gate voltage
of a 1T1R array or the current limit of an SMU is: it starts at the model's
``forming_compliance`` and :meth:`EmulatedRRAMCrossbar.set_compliance` changes it
(checked against ``limits.compliance_current``; kept in the saved chip state).
``details["forming"]`` says so (``settable_compliance``), and procedures look there.
The voltage limit of this chip is 4 V instead of the generic 2.5 V: forming pristine
HfOx cells needs up to 3-4 V (published forming ramps end at 4 V).
"""

from __future__ import annotations

from xbarlab.chipdrivers.crossbar import ChipInfo, PulseShape
from xbarlab.chipdrivers.emulated import (
    _READ_VOLTAGE,
    EmulatedCrossbar,
    analog_capabilities,
    chip_from_spec,
)
from xbarlab.chipdrivers.factory import Spec
from xbarlab.emulator import rram_params
from xbarlab.emulator.rram import RRAMArray
from xbarlab.emulator.rram_params import FULL_RESET_FRACTION, SET_RANGE_TOP_FRACTION
from xbarlab.errors import ConfigError, SafetyError, SpecError
from xbarlab.limits import SafetyLimits

#: lowest gradual pulse height as a fraction of the way from threshold to reference
_RANGE_BOTTOM = 0.1
#: pulse-height limit in V of the emulated RRAM chip: forming ramps of pristine 1T1R
#: HfOx cells end at 4 V (the issue's lab script; forming voltages of 2.5-3.5 V)
MAX_VOLTAGE = 4.0


def rram_limits() -> SafetyLimits:
    """The emulated RRAM chip's default limits: the generic ones with a 4 V pulse limit."""
    return SafetyLimits(max_voltage=MAX_VOLTAGE)


class EmulatedRRAMCrossbar(EmulatedCrossbar):
    """A ``Crossbar`` over an emulated :class:`~xbarlab.emulator.rram.RRAMArray`.

    ``chip`` is the emulated array itself (ground truth for tests; procedures must not
    use it). Pulse polarity selects SET (+1) or RESET (-1).
    """

    def __init__(self, chip: RRAMArray, spec: str = "", limits: SafetyLimits | None = None):
        self.chip = chip
        self.clock = chip.clock
        self.info = rram_chip_info(chip, spec, limits or rram_limits())

    def _pulse(self, flat, polarity, amplitude, width, count):
        self.chip.pulse(flat, amplitude, width, count, polarity=polarity)

    @property
    def compliance(self) -> float:
        """The compliance current in A that limits forming."""
        return self.chip.compliance

    def set_compliance(self, current: float) -> None:
        """Set the forming compliance current in A, 0 < current <= limits.compliance_current.

        ConfigError for a value that is not a positive number; SafetyError above the
        chip's compliance limit. Nothing changes on either error.
        """
        try:
            value = float(current)
        except (TypeError, ValueError):
            raise ConfigError(f"compliance must be a number in A, got {current!r}") from None
        if not (value > 0 and value < float("inf")):
            raise ConfigError(f"compliance must be a finite number > 0 A, got {current!r}")
        allowed = self.info.limits.compliance_current
        if value > allowed:
            raise SafetyError("compliance_current", value, allowed, "A", "compliance current")
        self.chip.set_compliance(value)


def gradual_range(p: rram_params.RRAMParams, polarity: int) -> tuple[float, float]:
    """(lowest, highest) pulse height in V over which pulses of ``polarity`` act
    gradually: a tenth of the way from threshold to reference, up to the height of
    nominal switching fraction SET_RANGE_TOP_FRACTION."""
    th, ref = (p.v_set_th, p.v_set_ref) if polarity > 0 else (p.v_reset_th, p.v_reset_ref)
    return (th + _RANGE_BOTTOM * (ref - th), p.amplitude_for(polarity, SET_RANGE_TOP_FRACTION))


def rram_chip_info(chip: RRAMArray, spec: str, limits: SafetyLimits) -> ChipInfo:
    """The chip's ChipInfo: window, recommended pulses (SET +1, RESET -1) and converters.

    g_min is two device-to-device spreads above the nominal lower bound (every device
    but a few reaches it); g_max is the nominal upper bound.
    """
    p, pp = chip.params, chip.periphery
    lo, hi = gradual_range(p, 1)
    reset_amp = p.amplitude_for(-1, FULL_RESET_FRACTION)
    for name, v in (("SET range top", hi), ("full RESET pulse", reset_amp)):
        if v > limits.max_voltage:
            raise SpecError(
                f"the RRAM model's {name} needs {v:.3g} V, above the {limits.max_voltage:g} V "
                "voltage limit; lower the thresholds (v_set_th, v_reset_th) or v_slope"
            )
    return ChipInfo(
        rows=chip.rows,
        cols=chip.cols,
        technology="rram",
        g_min=min(p.g_min * (1 + 2 * p.g_min_spread), 0.5 * p.g_max),
        g_max=p.g_max,
        limits=limits,
        capabilities=analog_capabilities(pp),
        v_read=_READ_VOLTAGE,
        set_pulse=PulseShape(p.v_set_ref, p.width_ref, 1),
        reset_pulse=PulseShape(reset_amp, p.width_ref, -1),
        set_amplitude_range=(lo, hi),
        mvm_shape=chip.mvm_shape,
        periphery=pp.describe(p.g_max),
        backend=spec,
        details={
            "seed": chip.seed,
            "model": p.to_dict(),
            "periphery": pp.to_dict(),
            "reset_amplitude_range": list(gradual_range(p, -1)),
            "gradual_reset_pulse": {"amplitude_V": p.v_reset_ref, "width_s": p.width_ref},
            "forming": {
                "pristine": bool(p.pristine),
                "settable_compliance": True,
                "default_compliance_A": p.forming_compliance,
                "width_s": p.form_width_ref,
            },
        },
    )


def open_rram(spec: Spec) -> EmulatedRRAMCrossbar:
    """``emulator:rram?...``: the RRAM array of :mod:`xbarlab.emulator.rram`."""
    return EmulatedRRAMCrossbar(chip_from_spec(spec, rram_params, RRAMArray), spec.text)
