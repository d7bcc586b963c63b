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

from xbarlab.chipdrivers.crossbar import ChipInfo
from xbarlab.chipdrivers.emulated import (
    EmulatedCrossbar,
    chip_from_spec,
    described_chip_info,
)
from xbarlab.chipdrivers.factory import Spec
from xbarlab.emulator import rram_params
from xbarlab.emulator.board_firmware import rram_description, rram_limits
from xbarlab.emulator.rram import RRAMArray
from xbarlab.errors import ConfigError, SafetyError
from xbarlab.limits import SafetyLimits


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


def rram_chip_info(chip: RRAMArray, spec: str, limits: SafetyLimits) -> ChipInfo:
    """The chip's ChipInfo: window, recommended pulses (SET +1, RESET -1) and converters,
    as the emulated board reports them (:func:`~xbarlab.emulator.board_firmware.rram_description`).
    """
    p, d = chip.params, rram_description(chip, limits)
    reset_gradual_v, reset_gradual_w = d["gradual_reset_pulse"]
    forming = {
        "pristine": bool(p.pristine),
        "settable_compliance": True,
        "default_compliance_A": p.forming_compliance,
        "width_s": p.form_width_ref,
    }
    return described_chip_info(
        chip,
        spec,
        limits,
        "rram",
        d,
        (),
        d["reset_polarity"],
        reset_amplitude_range=list(d["reset_amplitude_range"]),
        gradual_reset_pulse={"amplitude_V": reset_gradual_v, "width_s": reset_gradual_w},
        forming=forming,
    )


def open_rram(spec: Spec) -> EmulatedRRAMCrossbar:
    """``emulator:rram?...``: the RRAM array of :mod:`xbarlab.emulator.rram`."""
    return EmulatedRRAMCrossbar(chip_from_spec(spec, rram_params, RRAMArray), spec.text)
