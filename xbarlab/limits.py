"""Safety limits of a chip and the checks that enforce them.

Limits are checked in chipdrivers before anything reaches a device:
a violation raises :class:`~xbarlab.errors.SafetyError` naming the limit and
the value, and the device state is untouched. Validators raise; they never clamp.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np

from xbarlab.errors import ConfigError, SafetyError

#: float32 arrays from this size on are checked by one compiled pass (xbarlab.magnitude);
#: below it numpy's two reductions cost less than the call
_COMPILED_PEAK_MIN = 256
_F32 = np.dtype(np.float32)


@functools.cache
def _magnitude():
    """The module xbarlab.magnitude, imported on first use: importing the core must not
    load numba."""
    from xbarlab import magnitude

    return magnitude


@dataclass(frozen=True)
class SafetyLimits:
    """What a chip tolerates; every pulse and read is checked against it.

    Attributes
    ----------
    max_voltage : float
        Largest programming pulse height in V (absolute value).
    max_read_voltage : float
        Largest read or MVM input voltage in V (absolute value); above it a read
        would disturb the stored state.
    max_pulse_width : float
        Longest programming pulse in s.
    min_pulse_width : float
        Shortest pulse in s the drivers may request.
    max_pulse_count : int
        Most pulses one ``pulse`` call may apply to a device.
    compliance_current : float
        Current limit in A that hardware backends program into their sources.
    """

    max_voltage: float = 2.5
    max_read_voltage: float = 0.3
    max_pulse_width: float = 10e-6
    min_pulse_width: float = 10e-9
    max_pulse_count: int = 10_000
    compliance_current: float = 500e-6

    def __post_init__(self):
        for name, value in asdict(self).items():
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not np.isfinite(value)
                or value <= 0
            ):
                raise ConfigError(f"SafetyLimits.{name} must be a positive number, got {value!r}")
        if int(self.max_pulse_count) != self.max_pulse_count:
            raise ConfigError(
                f"SafetyLimits.max_pulse_count must be an integer, got {self.max_pulse_count!r}"
            )
        if self.min_pulse_width > self.max_pulse_width:
            raise ConfigError(
                f"SafetyLimits.min_pulse_width = {self.min_pulse_width:g} s is larger than "
                f"max_pulse_width = {self.max_pulse_width:g} s"
            )

    def to_dict(self) -> dict:
        """Limits as a JSON-ready dict whose keys carry the SI unit."""
        return {
            "max_voltage_V": self.max_voltage,
            "max_read_voltage_V": self.max_read_voltage,
            "max_pulse_width_s": self.max_pulse_width,
            "min_pulse_width_s": self.min_pulse_width,
            "max_pulse_count": self.max_pulse_count,
            "compliance_current_A": self.compliance_current,
        }

    def check_pulse(self, amplitude, width, count) -> None:
        """Raise SafetyError unless every pulse parameter is within limits.

        amplitude: pulse height in V, 0 < |amplitude| <= max_voltage (scalar or array)
        width: pulse width in s, min_pulse_width <= width <= max_pulse_width
        count: pulses per device, 1 <= count <= max_pulse_count
        """
        amp = _finite(amplitude, "amplitude", "V")
        wid = _finite(width, "width", "s")
        if amp.size and np.min(np.abs(amp)) <= 0:
            raise ConfigError("amplitude must be non-zero: a 0 V pulse does nothing")
        _check_max(np.abs(amp), self.max_voltage, "max_voltage", "V", "pulse amplitude")
        _check_max(wid, self.max_pulse_width, "max_pulse_width", "s", "pulse width")
        if wid.size and np.min(wid) < self.min_pulse_width:
            bad = float(np.min(wid))
            raise SafetyError(
                "min_pulse_width", bad, self.min_pulse_width, "s", "pulse width", below=True
            )
        if not _is_positive_int(count):
            raise ConfigError(f"count must be a positive integer, got {count!r}")
        _check_max(np.asarray(count), self.max_pulse_count, "max_pulse_count", "", "pulse count")

    @functools.cached_property
    def _read_limit_bits(self) -> int:
        """float32 bit pattern of max_read_voltage (float32 inputs compare at their own
        precision: 0.3 V in float32 is 0.30000001)."""
        return _magnitude().float32_bits(self.max_read_voltage)

    def check_read_voltage(self, voltage, what: str = "read voltage") -> None:
        """Raise SafetyError unless |voltage| <= max_read_voltage (scalar or array, in V).

        One pass and no temporary array: this runs on every MVM input batch.
        """
        v = np.asarray(voltage)
        if v.size == 0:
            return
        dtype = v.dtype
        if dtype.kind not in "fiu":
            raise ConfigError(f"{what} must be numbers in V, got dtype {dtype}")
        if dtype == _F32 and v.size >= _COMPILED_PEAK_MIN and v.flags.c_contiguous:
            magnitude = _magnitude()
            if magnitude.peak_bits(v) <= self._read_limit_bits:
                return  # the usual case: one compiled pass, one integer comparison
            peak = magnitude.peak_magnitude(v)
        else:
            peak = max(float(v.max()), -float(v.min()))
        if not math.isfinite(peak):
            raise ConfigError(f"{what} must be finite; the input holds NaN or infinity")
        # compare at the input's precision: 0.3 V in float32 is 0.30000001
        limit = self.max_read_voltage
        if dtype.kind == "f":
            limit = float(dtype.type(limit))
        if peak > limit:
            raise SafetyError("max_read_voltage", peak, self.max_read_voltage, "V", what)


def _is_positive_int(value) -> bool:
    try:
        return not isinstance(value, bool) and int(value) == value and value >= 1
    except (TypeError, ValueError, OverflowError):
        return False


def _finite(value, name: str, unit: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in {unit}, got {value!r}") from None
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return arr


def _check_max(values: np.ndarray, allowed: float, limit: str, unit: str, what: str) -> None:
    if values.size and np.max(values) > allowed:
        raise SafetyError(limit, float(np.max(values)), allowed, unit, what)
