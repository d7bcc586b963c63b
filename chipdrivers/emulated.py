"""The emulator backend: an emulated chip behind the checked ``Crossbar`` interface.

Spec: ``emulator:pcm?rows=R&cols=C&seed=S&preset=NAME_OR_JSON&periphery=NAME``
followed by any ``<PCMParams field>=value`` or ``<PeripheralParams field>=value``.

The chip's full state (devices, programming events, RNG, virtual time) is saved to
and restored from bytes (capability ``"state"``), so a campaign's store can keep
the emulated chip the way a real chip keeps its state physically.
"""

from __future__ import annotations

import importlib
import io
import json
import zipfile

import numpy as np

from xbarlab.chipdrivers.base import CheckedCrossbar
from xbarlab.chipdrivers.crossbar import ChipInfo, PulseShape
from xbarlab.chipdrivers.factory import Spec
from xbarlab.emulator import PCMArray, pcm_params, peripherals
from xbarlab.emulator.board_firmware import chip_description
from xbarlab.errors import ConfigError, SpecError
from xbarlab.limits import SafetyLimits

#: technologies the emulator offers: name -> (module, opener). Each opener takes the
#: parsed Spec; its module is imported on first use (pcm lives here).
TECHNOLOGIES = {
    "pcm": ("xbarlab.chipdrivers.emulated", "open_pcm"),
    "rram": ("xbarlab.chipdrivers.emulated_rram", "open_rram"),
    "mram": ("xbarlab.chipdrivers.emulated_mram", "open_mram"),
}
_SHAPE_DEFAULT = 256
_MAX_SIDE = 16384
_MAX_DEVICES = 1 << 26  # 64 M devices, about 2.4 GB of state
_READ_VOLTAGE = 0.2
#: layout of save_state blobs: an .npz of the chip state arrays plus "meta" (JSON, UTF-8)
STATE_FORMAT = 1


class EmulatedCrossbar(CheckedCrossbar):
    """A ``Crossbar`` over an emulated :class:`~xbarlab.emulator.PCMArray`.

    ``chip`` is the emulated device array itself: tests use it for ground truth
    (stuck maps, noise-free conductance); procedures must not. The RRAM and MRAM
    backends subclass it (own ``__init__`` and pulse; read, MVM and state shared).
    """

    def __init__(self, chip: PCMArray, spec: str = "", limits: SafetyLimits | None = None):
        self.chip = chip
        self.clock = chip.clock
        self.info = _chip_info(chip, spec, limits or SafetyLimits())

    def _read(self, flat, v_read):
        return self.chip.read(flat)

    def _pulse(self, flat, polarity, amplitude, width, count):
        self.chip.pulse(flat, amplitude, width, count)

    def _mvm(self, x, transpose):
        return self.chip.mvm(x, transpose)

    def save_state(self) -> bytes:
        """The chip's full state as an uncompressed .npz (no pickle), about 33 bytes per
        device plus a few kB; ``load_state`` on a chip opened from the same spec
        continues bit-identically."""
        state = self.chip.get_state(copy=False)  # serialised right here: no copy needed
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
        """Restore a ``save_state`` blob. ConfigError naming the difference, and the chip
        unchanged, if the blob is not a chip state or comes from another shape, seed or
        parameter set."""
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


def _unpack_state(blob: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """Metadata and arrays of a save_state blob; ConfigError if it is not one."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (EOFError, OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"not an emulator chip state blob ({exc})") from None
    if not isinstance(meta, dict):
        raise ConfigError("not an emulator chip state blob (metadata is not a JSON object)")
    return meta, arrays


def _chip_info(chip: PCMArray, spec: str, limits: SafetyLimits) -> ChipInfo:
    """The chip's ChipInfo; window, pulses and converters as the emulated board reports them."""
    d = chip_description(chip, limits)
    return described_chip_info(chip, spec, limits, "pcm", d, ("unipolar",), 1)


def described_chip_info(
    chip, spec: str, limits: SafetyLimits, technology: str, d: dict, extra, reset_polarity: int,
    **details,
) -> ChipInfo:  # fmt: skip
    """ChipInfo of an emulated analog array from its board description ``d`` (window,
    pulses, SET range, periphery): what the emulated board reports, so the in-process
    backend and ``board:`` agree. extra: capabilities beyond the analog ones; details:
    added to the seed, model and periphery in ``ChipInfo.details``."""
    return ChipInfo(
        rows=chip.rows,
        cols=chip.cols,
        technology=technology,
        g_min=d["g_min"],
        g_max=d["g_max"],
        limits=limits,
        capabilities=analog_capabilities(chip.periphery, *extra),
        v_read=_READ_VOLTAGE,
        set_pulse=PulseShape(*d["set_pulse"], 1),
        reset_pulse=PulseShape(*d["reset_pulse"], reset_polarity),
        set_amplitude_range=d["set_amplitude_range"],
        mvm_shape=chip.mvm_shape,
        periphery=d["periphery"],
        backend=spec,
        details={
            "seed": chip.seed,
            "model": chip.params.to_dict(),
            "periphery": chip.periphery.to_dict(),
            **details,
        },
    )


def analog_capabilities(periphery, *extra: str) -> frozenset[str]:
    """Capabilities of an emulated analog array (PCM, RRAM) plus ``extra``:
    ``differential_columns`` when the periphery reads column pairs differentially."""
    caps = {"read", "pulse", "mvm", "mvm_transpose", "per_device_pulses", "virtual_time", "state"}
    if periphery.differential:
        caps.add("differential_columns")
    return frozenset(caps.union(extra))


def open_emulator(spec: Spec):
    """Opener registered for the ``emulator:`` scheme: dispatch on the technology."""
    if spec.target not in TECHNOLOGIES:
        raise SpecError(
            f"unknown emulated technology {spec.target!r} in {spec.text!r}; "
            f"valid: {', '.join(TECHNOLOGIES)}"
        )
    module, name = TECHNOLOGIES[spec.target]
    return getattr(importlib.import_module(module), name)(spec)


def open_pcm(spec: Spec) -> EmulatedCrossbar:
    """``emulator:pcm?...``: the PCM array of :mod:`xbarlab.emulator.pcm`."""
    return EmulatedCrossbar(chip_from_spec(spec, pcm_params, PCMArray), spec.text)


def chip_from_spec(spec: Spec, params_module, array_cls):
    """The emulated array an ``emulator:<technology>?...`` spec describes.

    Every spec parameter is checked before the array is built: ``rows`` and ``cols``
    (1.._MAX_SIDE, default 256, at most _MAX_DEVICES devices), ``seed`` (>= 0),
    ``preset`` (a preset name or JSON file of the technology's model), ``periphery``
    (a periphery preset), then any field of the model or of the periphery as an
    override. An unknown parameter or a bad value raises SpecError naming it.

    Parameters
    ----------
    spec : Spec
        The parsed spec; ``spec.target`` is the technology name used in errors.
    params_module : module
        The technology's parameter module (``pcm_params``, ``rram_params``,
        ``mram_params``): its ``field_names()`` and ``load_preset(name_or_path)``.
    array_cls : type
        The emulated array, built as ``array_cls(rows, cols, model, seed=, periphery=)``.
    """
    params = dict(spec.params)
    valid = (
        "rows",
        "cols",
        "seed",
        "preset",
        "periphery",
        *params_module.field_names(),
        *peripherals.field_names(),
    )
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise SpecError(
            f"unknown parameter(s) {', '.join(unknown)} for emulator:{spec.target}; "
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
    model = params_module.load_preset(params.pop("preset", "default"))
    periphery = peripherals.load_periphery(params.pop("periphery", "default"))
    model = model.with_overrides(**_typed(params, model, params_module.field_names()))
    periphery = periphery.with_overrides(**_typed(params, periphery, peripherals.field_names()))
    return array_cls(rows, cols, model, seed=seed, periphery=periphery)


def _typed(params: dict[str, str], defaults, names: tuple[str, ...]) -> dict:
    """Spec values of the fields ``names``, converted to the type of their defaults."""
    out = {}
    for name in names:
        if name in params:
            kind = type(getattr(defaults, name))
            if kind is bool:
                out[name] = _bool_param(params[name], name)
            elif kind is int:
                out[name] = _int_param(params[name], name, 0, 2**31)
            else:
                out[name] = _float_param(params[name], name)
    return out


def _bool_param(value: str, name: str) -> bool:
    words = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    try:
        return words[value.strip().lower()]
    except KeyError:
        raise SpecError(
            f"spec parameter {name} must be 1/0, true/false or yes/no, got {value!r}"
        ) from None


def _int_param(value, name: str, lo: int, hi: int) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise SpecError(f"spec parameter {name} must be an integer, got {value!r}") from None
    if not lo <= v <= hi:
        raise SpecError(f"spec parameter {name} = {v} is outside {lo}..{hi}")
    return v


def _float_param(value: str, name: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise SpecError(f"spec parameter {name} must be a number, got {value!r}") from None
    if not np.isfinite(v):
        raise SpecError(f"spec parameter {name} must be finite, got {value!r}")
    return v
