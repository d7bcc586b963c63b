"""The emulated SOT-MRAM backend: ``emulator:mram?...`` behind the checked ``Crossbar``.

Spec: ``emulator:mram?rows=R&cols=C&seed=S&preset=NAME_OR_JSON&periphery=NAME``
followed by any ``<MRAMParams field>=value`` or ``<PeripheralParams field>=value``,
e.g. ``emulator:mram?rows=64&cols=256&seed=1&tmr=0.8``.

Devices are binary: pulse polarity +1 writes P (logic 1, high conductance), -1 writes
AP (logic 0). Besides read, pulse and a binary-weight MVM, the chip has the
capability ``"logic"``: :meth:`CheckedCrossbar.logic` senses two rows at once and
returns AND or OR of every selected column (seed 003).
"""

from __future__ import annotations

from xbarlab.chipdrivers.crossbar import ChipInfo, PulseShape
from xbarlab.chipdrivers.emulated import EmulatedCrossbar, chip_from_spec
from xbarlab.chipdrivers.factory import Spec
from xbarlab.emulator import mram_params
from xbarlab.emulator.mram import MRAMArray
from xbarlab.errors import ConfigError
from xbarlab.limits import SafetyLimits

#: the switching curve is treated as fully on from this many widths above threshold
_SWITCH_SIGMAS = 4.0


class EmulatedMRAM(EmulatedCrossbar):
    """A ``Crossbar`` with in-memory logic over an emulated :class:`MRAMArray`.

    ``chip`` is the emulated array itself: tests use it for ground truth (stored bits,
    fabricated conductances); procedures must not. Read, MVM and the chip state blob
    (bits, RNG, virtual time) work as for PCM.
    """

    def __init__(self, chip: MRAMArray, spec: str = "", limits: SafetyLimits | None = None):
        self.chip = chip
        self.clock = chip.clock
        self.info = _chip_info(chip, spec, limits or SafetyLimits())

    def _pulse(self, flat, polarity, amplitude, width, count):
        self.chip.pulse(flat, polarity, amplitude, width, count)

    def _logic(self, op, row_a, row_b, cols):
        return self.chip.logic(op, row_a, row_b, cols)


def _chip_info(chip: MRAMArray, spec: str, limits: SafetyLimits) -> ChipInfo:
    p = chip.params
    if p.v_write > limits.max_voltage:
        raise ConfigError(
            f"MRAM write pulse v_write = {p.v_write:g} V exceeds the safety limit "
            f"max_voltage = {limits.max_voltage:g} V; lower v_write"
        )
    if not limits.min_pulse_width <= p.write_width <= limits.max_pulse_width:
        raise ConfigError(
            f"MRAM write_width = {p.write_width:g} s is outside the safety limits "
            f"{limits.min_pulse_width:g} .. {limits.max_pulse_width:g} s"
        )
    if p.v_read > limits.max_read_voltage:
        raise ConfigError(
            f"MRAM v_read = {p.v_read:g} V exceeds max_read_voltage = "
            f"{limits.max_read_voltage:g} V; lower v_read"
        )
    # threshold of write_width pulses, and the start of the stochastic switching range
    v_c = p.v_switch * max(1.0, p.width_ref / p.write_width)
    lo = min(max(v_c * (1 - _SWITCH_SIGMAS * p.switch_sigma), 1e-3), p.v_write)
    margins = {op: p.sense_margin(op) for op in mram_params.LOGIC_OPS}
    return ChipInfo(
        rows=chip.rows,
        cols=chip.cols,
        technology="mram",
        g_min=p.g_ap,
        g_max=p.g_p,
        limits=limits,
        capabilities=frozenset(
            {"read", "pulse", "mvm", "mvm_transpose", "logic", "binary", "virtual_time", "state"}
        ),
        v_read=p.v_read,
        set_pulse=PulseShape(p.v_write, p.write_width, 1),
        reset_pulse=PulseShape(p.v_write, p.write_width, -1),
        set_amplitude_range=(lo, p.v_write),
        mvm_shape=chip.mvm_shape,
        periphery=chip.periphery.describe(p.g_p),
        backend=spec,
        details={
            "seed": chip.seed,
            "model": p.to_dict(),
            "periphery": chip.periphery.to_dict(),
            "logic_ops": list(mram_params.LOGIC_OPS),
            "switch_threshold_V": v_c,
            "sense_margin": margins,
        },
    )


def open_mram(spec: Spec) -> EmulatedMRAM:
    """``emulator:mram?...``: the SOT-MRAM array of :mod:`xbarlab.emulator.mram`."""
    return EmulatedMRAM(chip_from_spec(spec, mram_params, MRAMArray), spec.text)
