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

import io
import json

import numpy as np

from xbarlab.chipdrivers.base import CheckedCrossbar
from xbarlab.chipdrivers.crossbar import ChipInfo, PulseShape
from xbarlab.chipdrivers.emulated import (
    _MAX_DEVICES,
    _MAX_SIDE,
    _SHAPE_DEFAULT,
    _int_param,
    _typed,
    _unpack_state,
)
from xbarlab.chipdrivers.factory import Spec
from xbarlab.emulator import mram_params, peripherals
from xbarlab.emulator.mram import MRAMArray
from xbarlab.errors import ConfigError, SpecError
from xbarlab.limits import SafetyLimits

#: layout of save_state blobs: an .npz of the chip state plus "meta" (JSON, UTF-8)
STATE_FORMAT = 1
#: the switching curve is treated as fully on from this many widths above threshold
_SWITCH_SIGMAS = 4.0


class EmulatedMRAM(CheckedCrossbar):
    """A ``Crossbar`` with in-memory logic over an emulated :class:`MRAMArray`.

    ``chip`` is the emulated array itself: tests use it for ground truth (stored bits,
    fabricated conductances); procedures must not.
    """

    def __init__(self, chip: MRAMArray, spec: str = "", limits: SafetyLimits | None = None):
        self.chip = chip
        self.clock = chip.clock
        self.info = _chip_info(chip, spec, limits or SafetyLimits())

    def _read(self, flat, v_read):
        return self.chip.read(flat)

    def _pulse(self, flat, polarity, amplitude, width, count):
        self.chip.pulse(flat, polarity, amplitude, width, count)

    def _mvm(self, x, transpose):
        return self.chip.mvm(x, transpose)

    def _logic(self, op, row_a, row_b, cols):
        return self.chip.logic(op, row_a, row_b, cols)

    def save_state(self) -> bytes:
        """The chip's full state (bits, RNG, virtual time) as an uncompressed .npz."""
        state = self.chip.get_state(copy=False)
        meta = {
            "format": STATE_FORMAT,
            "spec": self.info.backend,
            "shape": list(self.info.shape),
            "chip": state.pop("meta"),
        }
        buf = io.BytesIO()
        np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **state)
        return buf.getvalue()

    def load_state(self, blob: bytes) -> None:
        """Restore a ``save_state`` blob; ConfigError naming the difference (chip
        unchanged) if it comes from another shape, seed or parameter set."""
        meta, arrays = _unpack_state(blob)
        if meta.get("format") != STATE_FORMAT:
            raise ConfigError(
                f"chip state blob format {meta.get('format')!r} is not supported; this "
                f"version reads format {STATE_FORMAT}"
            )
        if meta.get("shape") != list(self.info.shape):
            raise ConfigError(
                f"chip state of shape {meta.get('shape')} (spec {meta.get('spec')!r}) "
                f"does not fit this {self.info.rows} x {self.info.cols} chip "
                f"({self.info.backend!r})"
            )
        self.chip.set_state({"meta": meta.get("chip"), **arrays})


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
        periphery={
            "dac_range_V": chip.periphery.dac_range,
            "dac_levels": chip.periphery.dac_levels,
            "adc_full_scale_A": chip.periphery.adc_bound * chip.periphery.unit_current(p.g_p),
            "adc_lsb_A": chip.periphery.adc_lsb(p.g_p) if chip.periphery.adc_codes else 0.0,
            "output_noise_A": chip.periphery.out_noise * chip.periphery.unit_current(p.g_p),
        },
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
    params = dict(spec.params)
    valid = (
        "rows",
        "cols",
        "seed",
        "preset",
        "periphery",
        *mram_params.field_names(),
        *peripherals.field_names(),
    )
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise SpecError(
            f"unknown parameter(s) {', '.join(unknown)} for emulator:mram; "
            f"valid: {', '.join(valid)}"
        )
    rows = _int_param(params.pop("rows", _SHAPE_DEFAULT), "rows", 1, _MAX_SIDE)
    cols = _int_param(params.pop("cols", _SHAPE_DEFAULT), "cols", 1, _MAX_SIDE)
    if rows * cols > _MAX_DEVICES:
        raise SpecError(
            f"rows x cols = {rows * cols} devices exceeds the emulator's "
            f"{_MAX_DEVICES} device limit; split the array into tiles"
        )
    seed = _int_param(params.pop("seed", 0), "seed", 0, 2**63 - 1)
    model = mram_params.load_preset(params.pop("preset", "default"))
    periphery = peripherals.load_periphery(params.pop("periphery", "default"))
    model = model.with_overrides(**_typed(params, model, mram_params.field_names()))
    periphery = periphery.with_overrides(**_typed(params, periphery, peripherals.field_names()))
    chip = MRAMArray(rows, cols, model, seed=seed, periphery=periphery)
    return EmulatedMRAM(chip, spec.text)
