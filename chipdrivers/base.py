"""Validation shared by every backend: selections, safety limits, input shapes.

A backend subclasses :class:`CheckedCrossbar` and implements ``_read``, ``_pulse``
and ``_mvm`` on already-validated arguments. Every check happens here, before the
backend is called, so a bad call never reaches a device or a wire.
"""

from __future__ import annotations

import numpy as np

from xbarlab.chipdrivers.crossbar import ChipInfo
from xbarlab.chipdrivers.selection import resolve
from xbarlab.clock import Clock
from xbarlab.errors import ConfigError, SelectionError


class CheckedCrossbar:
    """Base class of backends: the public ``Crossbar`` methods with all checks."""

    info: ChipInfo
    clock: Clock

    def read(self, sel=None, *, v_read: float | None = None) -> np.ndarray:
        s = resolve(sel, self.info.shape)
        v = self.info.v_read if v_read is None else v_read
        self.info.limits.check_read_voltage(v)
        if not float(v) > 0:
            raise ConfigError(f"v_read must be > 0 V, got {v!r}")
        return self._read(s.flat, float(v)).reshape(s.shape)

    def pulse(self, sel, *, polarity: int, amplitude, width, count: int = 1) -> None:
        s = resolve(sel, self.info.shape, unique=True)
        if polarity not in (1, -1):
            raise ConfigError(f"polarity must be +1 or -1, got {polarity!r}")
        self.info.limits.check_pulse(amplitude, width, count)
        amp = self._per_device(amplitude, s.shape, "amplitude")
        wid = self._per_device(width, s.shape, "width")
        if s.size:
            self._pulse(s.flat, int(polarity), amp, wid, int(count))

    def mvm(self, x, *, transpose: bool = False, return_saturation: bool = False):
        x = np.asarray(x)
        n = self.info.mvm_shape[1 if transpose else 0]
        driven = "columns" if transpose else "rows"
        if x.ndim not in (1, 2) or x.shape[-1] != n:
            raise ConfigError(
                f"mvm input must have shape ({n},) or (batch, {n}) to drive the {n} "
                f"{driven}; got {x.shape}"
            )
        self.info.limits.check_read_voltage(x, "MVM input voltage")
        batch = np.ascontiguousarray(x.reshape(-1, n), dtype=np.float32)
        out, saturated = self._mvm(batch, bool(transpose))
        if x.ndim == 1:
            out, saturated = out[0], saturated[0]
        return (out, saturated) if return_saturation else out

    def logic(self, op: str, row_a: int, row_b: int, cols=None) -> np.ndarray:
        """In-memory Boolean logic (capability ``"logic"``): rows ``row_a`` and ``row_b``
        of each selected column are sensed at once against a reference.

        op: "and" or "or". row_a, row_b: two distinct row indices in 0..rows-1.
        cols: None (all columns), a 1-D array of column indices, or a boolean mask of
        length cols. Returns one bool per selected column (True = logic 1).
        """
        if "logic" not in self.info.capabilities:
            raise ConfigError(
                f"backend {self.info.backend!r} has no in-memory logic (capability 'logic' "
                "is absent); use an emulator:mram chip"
            )
        if op not in ("and", "or"):
            raise ConfigError(f"logic op must be 'and' or 'or', got {op!r}")
        ra = self._row_index(row_a, "row_a")
        rb = self._row_index(row_b, "row_b")
        if ra == rb:
            raise SelectionError(f"logic needs two distinct rows, got row_a = row_b = {ra}")
        return self._logic(op, ra, rb, self._logic_cols(cols))

    def _row_index(self, row, name: str) -> int:
        if isinstance(row, bool) or not isinstance(row, int | np.integer):
            raise SelectionError(f"{name} must be an integer row index, got {row!r}")
        if not 0 <= int(row) < self.info.rows:
            raise SelectionError(f"{name} = {int(row)} is outside 0..{self.info.rows - 1}")
        return int(row)

    def _logic_cols(self, cols) -> np.ndarray | None:
        """Column indices (intp, 1-D) of a logic call, or None for all columns."""
        if cols is None:
            return None
        c = np.asarray(cols)
        n = self.info.cols
        if c.dtype == bool:
            if c.shape != (n,):
                raise SelectionError(f"logic column mask must have shape ({n},), got {c.shape}")
            return np.flatnonzero(c)
        if c.ndim != 1 or (c.size and not np.issubdtype(c.dtype, np.integer)):
            raise SelectionError(
                f"logic cols must be a 1-D array of column indices or a ({n},) bool mask, "
                f"got dtype {c.dtype} shape {c.shape}"
            )
        if c.size and (c.min() < 0 or c.max() >= n):
            raise SelectionError(f"logic cols must be in 0..{n - 1}, got {c.min()}..{c.max()}")
        return c.astype(np.intp, copy=False)

    def close(self) -> None:
        """Release the chip; the emulator has nothing to release."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _per_device(self, value, shape: tuple[int, ...], name: str) -> np.ndarray:
        """A pulse parameter as a float64 vector: one value, or one per selected device."""
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 0:
            return arr.reshape(1)
        if "per_device_pulses" not in self.info.capabilities:
            raise ConfigError(
                f"backend {self.info.backend!r} takes one {name} per pulse call; "
                "pass a scalar or group devices by value"
            )
        try:
            return np.ascontiguousarray(np.broadcast_to(arr, shape).ravel())
        except ValueError:
            raise SelectionError(
                f"{name} of shape {arr.shape} does not match the selection's shape {shape}"
            ) from None

    # -- implemented by backends, called with validated arguments --------------------
    def _read(self, flat: np.ndarray | None, v_read: float) -> np.ndarray:
        raise NotImplementedError

    def _pulse(
        self,
        flat: np.ndarray | None,
        polarity: int,
        amplitude: np.ndarray,
        width: np.ndarray,
        count: int,
    ) -> None:
        raise NotImplementedError

    def _mvm(self, x: np.ndarray, transpose: bool) -> tuple[np.ndarray, np.ndarray]:
        """Currents in A (batch, n_out) and ADC saturation flags for a validated batch."""
        raise NotImplementedError

    def _logic(self, op: str, row_a: int, row_b: int, cols: np.ndarray | None) -> np.ndarray:
        """Sense-amplifier bits (bool) of ``op`` on two validated rows and columns."""
        raise NotImplementedError
