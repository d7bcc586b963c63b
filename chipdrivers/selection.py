"""Device selections: ``None``, a boolean mask, or ``(rows, cols)`` index arrays.

:func:`resolve` turns any accepted form into flat row-major device indices plus
the shape results are returned in, and rejects everything else with a message
that says what was wrong. Backends receive only resolved selections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarlab.errors import SelectionError

_FORMS = (
    "sel must be None (all devices), a boolean mask of shape (rows, cols), "
    "or a (rows, cols) tuple of integer index arrays"
)


@dataclass(frozen=True)
class Selection:
    """A resolved selection.

    flat: flat row-major device indices (intp, C-contiguous); ``None`` means all
    devices in order. shape: shape of per-device results for this selection.
    """

    flat: np.ndarray | None
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


def resolve(sel, shape: tuple[int, int], *, unique: bool = False) -> Selection:
    """Resolve ``sel`` against an array of ``shape``.

    unique: reject selections naming a device twice (pulses: use ``count`` instead).
    """
    if sel is None:
        return Selection(None, tuple(shape))
    if isinstance(sel, tuple):
        return _from_indices(sel, shape, unique)
    arr = np.asarray(sel)
    if arr.dtype == bool:
        return _from_mask(arr, shape)
    raise SelectionError(f"{_FORMS}; got {type(sel).__name__} of dtype {arr.dtype}")


def _from_mask(mask: np.ndarray, shape) -> Selection:
    if mask.shape != tuple(shape):
        raise SelectionError(
            f"boolean mask has shape {mask.shape}, the array is {tuple(shape)}; "
            "a mask must match the array exactly"
        )
    flat = np.flatnonzero(mask).astype(np.intp)
    return Selection(flat, (flat.size,))


def _from_indices(sel: tuple, shape, unique: bool) -> Selection:
    if len(sel) != 2:
        raise SelectionError(f"{_FORMS}; got a tuple of length {len(sel)}")
    idx = []
    for axis, (name, part) in enumerate(zip(("row", "column"), sel, strict=True)):
        arr = np.asarray(part)
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
            if arr.size == 0:
                arr = arr.astype(np.intp)
            else:
                raise SelectionError(
                    f"{name} indices must be integers, got dtype {arr.dtype}; "
                    "use a boolean mask of the full array shape to select by mask"
                )
        n = shape[axis]
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            bad = int(arr.min()) if arr.min() < 0 else int(arr.max())
            raise SelectionError(f"{name} index {bad} out of range 0..{n - 1}")
        idx.append(arr.astype(np.intp, copy=False))  # no wrap-around in rows * cols + c
    try:
        rows, cols = np.broadcast_arrays(*idx)
    except ValueError:
        raise SelectionError(
            f"row indices of shape {idx[0].shape} and column indices of shape "
            f"{idx[1].shape} do not broadcast together"
        ) from None
    flat = np.ascontiguousarray((rows * shape[1] + cols).ravel(), dtype=np.intp)
    if unique and flat.size > 1 and _has_duplicates(flat):
        raise SelectionError(
            "the selection names some devices more than once; select each device once "
            "and use count= for repeated pulses"
        )
    return Selection(flat, rows.shape)


def _has_duplicates(flat: np.ndarray) -> bool:
    """True if an index occurs twice. A sort and a neighbour compare: ``np.unique`` is
    about 50x slower on a million indices (hash-based in numpy 2) and holds the GIL
    for that long, stalling every other thread (the GUI's) during large pulse calls."""
    s = np.sort(flat)
    return bool(np.any(s[1:] == s[:-1]))
