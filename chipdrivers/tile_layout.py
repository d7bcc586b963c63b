"""Where a tile's weights go: blocks of arrays, pair segments, and per-core specs.

A weight matrix (out x in) with k pairs per weight is a virtual matrix of ``in``
rows and ``k * out`` slots (slot ``p * out + j``: pair ``p`` of output ``j``), cut
into blocks of ``rows`` rows and ``cols // 2`` slots, one array per block. Pure
functions of shapes, plus :func:`open_arrays`, which opens the cores a list of weight
matrices needs from one spec template; :mod:`xbarlab.chipdrivers.tiles` and the trainers
use them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlencode

import numpy as np

from xbarlab.chipdrivers.crossbar import Crossbar
from xbarlab.chipdrivers.factory import open_crossbar, parse_spec
from xbarlab.errors import ConfigError


@dataclass(frozen=True)
class Segment:
    """Outputs [j0, j1) of pair ``pair``, held by a block at its local slots [s0, s0 + j1 - j0)."""

    pair: int
    j0: int
    j1: int
    s0: int

    @property
    def size(self) -> int:
        return self.j1 - self.j0


@dataclass(frozen=True)
class Block:
    """Inputs [row0, row1) on physical rows [0, row1 - row0) of array ``array``."""

    array: int
    row0: int
    row1: int
    segments: tuple[Segment, ...]

    @property
    def n_rows(self) -> int:
        return self.row1 - self.row0


def plan_layout(shape: tuple[int, int], rows: int, cols: int, pairs: int) -> list[Block]:
    """Blocks of a (out, in) weight matrix on arrays of rows x cols devices, one array each."""
    n_out, n_in = shape
    per_array = cols // 2
    n_slots = pairs * n_out
    blocks: list[Block] = []
    for r0 in range(0, n_in, rows):
        for a0 in range(0, n_slots, per_array):
            a1 = min(a0 + per_array, n_slots)
            segs = []
            for p in range(a0 // n_out, (a1 - 1) // n_out + 1):
                g0, g1 = max(a0, p * n_out), min(a1, (p + 1) * n_out)
                segs.append(Segment(p, g0 - p * n_out, g1 - p * n_out, g0 - a0))
            blocks.append(Block(len(blocks), r0, min(r0 + rows, n_in), tuple(segs)))
    return blocks


def arrays_needed(shape: tuple[int, int], rows: int, cols: int, pairs_per_weight: int = 1) -> int:
    """Arrays of rows x cols devices a (out, in) weight matrix needs."""
    n_out, n_in = shape
    return math.ceil(n_in / rows) * math.ceil(pairs_per_weight * n_out / (cols // 2))


def core_spec(spec: str, core: int) -> str:
    """The spec of core ``core`` of a multi-core template.

    ``{core}`` in the template is replaced by the core number (hardware: e.g.
    ``board:socket://host:5555?core={core}``). An ``emulator:`` spec gets a seed derived
    from its own (default 0): the first 63 bits of ``SeedSequence([seed, core])``, so
    cores of one tile, and tiles of different seeds, get different chips.
    """
    if "{core}" in spec:
        return spec.replace("{core}", str(core))
    parsed = parse_spec(spec)
    if parsed.scheme != "emulator":
        raise ConfigError(
            f"cannot derive per-core specs from {spec!r}: put {{core}} where the core number "
            "goes, e.g. board:socket://127.0.0.1:5555?core={core}"
        )
    params = dict(parsed.params)
    try:
        base = int(params.get("seed", 0))
    except ValueError:
        raise ConfigError(f"seed in {spec!r} must be an integer") from None
    state = np.random.SeedSequence([base, core]).generate_state(1, np.uint64)[0]
    params["seed"] = str(int(state >> np.uint64(1)))
    return f"{parsed.scheme}:{parsed.target}?{urlencode(params)}"


def open_arrays(spec: str, shapes, pairs_per_weight: int = 1) -> list[list[Crossbar]]:
    """The arrays of each (out, in) weight matrix in ``shapes``, opened from one spec.

    Core numbers count up over the matrices (see :func:`core_spec`); the first core's
    size decides how many each matrix needs (:func:`arrays_needed`). If any core fails
    to open, the cores already opened are closed before the error propagates, so the
    caller owns either every array or none. The caller closes them.
    """
    opened = [open_crossbar(core_spec(spec, 0))]
    try:
        info = opened[0].info
        counts = [arrays_needed(s, info.rows, info.cols, pairs_per_weight) for s in shapes]
        for c in range(1, sum(counts)):
            opened.append(open_crossbar(core_spec(spec, c)))
    except BaseException:
        for x in opened:
            x.close()
        raise
    starts = np.cumsum([0, *counts])
    return [opened[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]


class OwnedArrays:
    """Closes the crossbars an object opened itself (its ``_owned`` list), on ``close()``
    and on leaving a ``with`` block; crossbars a caller passed in stay the caller's."""

    _owned: list[Crossbar]

    def close(self) -> None:
        """Close the arrays opened from a spec (idempotent)."""
        for a in self._owned:
            a.close()
        self._owned = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
