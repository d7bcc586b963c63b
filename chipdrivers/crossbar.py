"""The one interface to a chip: the ``Crossbar`` protocol and its ``ChipInfo``.

Everything above chipdrivers (procedures, calibration, training, GUI) talks to a
chip only through :class:`Crossbar`. Conventions: SI units (S, V, A, s); float32
conductances and currents; shape (rows, cols); ``mvm(x)`` drives rows and sums
currents on columns, ``transpose=True`` drives columns and sums on rows.

Selections (``sel``): ``None`` for all devices, a boolean mask of shape
(rows, cols), or a tuple ``(rows, cols)`` of integer index arrays (broadcast
together). See :mod:`xbarlab.chipdrivers.selection`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from xbarlab.clock import Clock
from xbarlab.limits import SafetyLimits

#: Capabilities a backend may declare in ``ChipInfo.capabilities``.
CAPABILITIES = {
    "read": "conductance read of any selection",
    "pulse": "programming pulses on any selection",
    "mvm": "analog matrix-vector product, rows driven",
    "mvm_transpose": "analog matrix-vector product, columns driven",
    "differential_columns": "column pairs are subtracted before the ADC: one output per pair",
    "per_device_pulses": "one pulse call may give each device its own amplitude and width",
    "unipolar": "pulse polarity is ignored (switching is thermal, e.g. PCM)",
    "virtual_time": "the clock is virtual: sleep returns at once",
    "state": "save_state() -> bytes and load_state(bytes) keep and restore the full chip state",
    "logic": "in-memory Boolean logic: logic(op, row_a, row_b) senses two rows at once",
    "binary": "devices hold one of two states: a SET or RESET pulse switches, it does not step",
}


@dataclass(frozen=True)
class PulseShape:
    """A programming pulse. amplitude: height in V; width: duration in s; polarity: +1 or -1."""

    amplitude: float
    width: float
    polarity: int = 1

    def to_dict(self) -> dict:
        return {"amplitude_V": self.amplitude, "width_s": self.width, "polarity": self.polarity}


@dataclass(frozen=True)
class ChipInfo:
    """What a backend tells about its chip.

    Attributes
    ----------
    rows, cols : int
        Array shape.
    technology : str
        Device technology, e.g. ``"pcm"``.
    g_min, g_max : float
        Usable conductance window in S.
    limits : SafetyLimits
        Checked before anything is sent to the chip.
    capabilities : frozenset of str
        Keys of :data:`CAPABILITIES`.
    v_read : float
        Default read voltage in V.
    set_pulse, reset_pulse : PulseShape
        Recommended SET (gradual increase) and RESET pulses.
    set_amplitude_range : tuple of float
        (lowest, highest) SET pulse height in V over which SET pulses act gradually;
        programming algorithms adapt the amplitude inside it.
    mvm_shape : tuple of int
        (inputs, outputs) of a forward MVM; (rows, cols) unless the periphery pairs
        columns (capability ``differential_columns``), then (rows, cols // 2).
    periphery : dict
        The MVM's converters, SI keys: ``dac_range_V`` (full-scale input), ``dac_levels``
        (levels per polarity, 0 = unquantised), ``adc_full_scale_A``, ``adc_lsb_A``
        (0 = unquantised), ``output_noise_A``; backends add what else they know.
    backend : str
        The spec string the chip was opened with.
    details : dict
        Backend-specific description (model parameters, seed, firmware ...).
    """

    rows: int
    cols: int
    technology: str
    g_min: float
    g_max: float
    limits: SafetyLimits
    capabilities: frozenset[str]
    v_read: float
    set_pulse: PulseShape
    reset_pulse: PulseShape
    set_amplitude_range: tuple[float, float]
    mvm_shape: tuple[int, int] | None = None
    periphery: dict[str, Any] = field(default_factory=dict)
    backend: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.mvm_shape is None:
            object.__setattr__(self, "mvm_shape", (self.rows, self.cols))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    def to_dict(self) -> dict:
        """JSON-ready description; keys carry SI units where they have one."""
        return {
            "backend": self.backend,
            "rows": self.rows,
            "cols": self.cols,
            "technology": self.technology,
            "g_min_S": self.g_min,
            "g_max_S": self.g_max,
            "v_read_V": self.v_read,
            "limits": self.limits.to_dict(),
            "capabilities": sorted(self.capabilities),
            "mvm_shape": list(self.mvm_shape),
            "periphery": self.periphery,
            "set_pulse": self.set_pulse.to_dict(),
            "reset_pulse": self.reset_pulse.to_dict(),
            "set_amplitude_range_V": list(self.set_amplitude_range),
            "details": self.details,
        }


@runtime_checkable
class Crossbar(Protocol):
    """A crossbar array on some backend (emulator, test board, instrument bench)."""

    info: ChipInfo
    clock: Clock

    def read(self, sel=None, *, v_read: float | None = None) -> np.ndarray:
        """Conductance in S (float32) of the selected devices.

        v_read: read voltage in V, 0 < v_read <= limits.max_read_voltage
        (default info.v_read). The result has shape (rows, cols) for ``sel=None``,
        (n,) for a mask (row-major order), or the broadcast shape of index arrays.
        """
        ...

    def pulse(self, sel, *, polarity: int, amplitude, width, count: int = 1) -> None:
        """Apply ``count`` pulses to every selected device.

        polarity: +1 or -1. amplitude: pulse height in V, 0 < amplitude <=
        limits.max_voltage. width: pulse width in s, limits.min_pulse_width <= width <=
        limits.max_pulse_width. amplitude and width may be arrays, one value per selected
        device, when the backend has the ``per_device_pulses`` capability.
        """
        ...

    def mvm(self, x, *, transpose: bool = False, return_saturation: bool = False):
        """Currents in A (float32) for input voltages x in V, shape (n,) or (batch, n).

        Forward: n = info.mvm_shape[0] inputs drive the rows, info.mvm_shape[1] outputs.
        transpose=True: the outputs' side is driven and the rows are read.
        return_saturation: also return a bool array, True where the ADC saturated.
        """
        ...

    def close(self) -> None:
        """Release the chip: outputs to a safe state, connections closed."""
        ...
