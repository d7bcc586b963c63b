"""The emulated bench's wiring: matrix layout, relay state and the physics of routes.

A real bench is an SMU, a pulse generator and a switch matrix whose crosspoints
connect instrument buses (matrix rows A..H) to array lines (matrix columns).
:class:`BenchWiring` says which matrix column each array line sits on and which bus
plays which role; :class:`Bench` holds the matrix's relay state and answers the two
physical questions the instruments ask: which devices does a source bus reach
through the closed crosspoints (row line on the bus and column line on ground, or the
other way round), and what current do they carry (I = G V with read noise from the
chip's ``read``), or which devices a pulse burst reaches, with which polarity (the
chip's ``pulse``). A device sees a pulse of voltage V on its row line (column grounded)
as polarity sign(V), on its column line (row grounded) as polarity -sign(V): that is
how a bench RESETs a bipolar (RRAM) chip, by a negative pulse or by swapping the lines
on the matrix. A unipolar (PCM) chip switches on amplitude and width alone.

Sneak paths are not modelled (1T1R array, selected transistors on); a matrix column
closed on a source bus and on ground shorts the source (the SMU reads its compliance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xbarlab.emulator.board_firmware import apply_pulse
from xbarlab.errors import ConfigError

SLOTS, BUSES, COLUMNS_PER_SLOT = 6, "ABCDEFGH", 12
#: default buses: SMU HI, pulse generator output, ground (SMU LO, generator return)
DEFAULT_BUSES = {"smu": "A", "pulse": "B", "ground": "C"}


@dataclass(frozen=True)
class BenchWiring:
    """Matrix column of each array row and column line, and the bus roles.

    ``row_lines[r]`` / ``col_lines[c]`` are flat matrix columns, 0-based:
    (slot - 1) * 12 + (column - 1). ``buses`` maps smu, pulse, ground to bus letters.
    """

    row_lines: tuple[int, ...]
    col_lines: tuple[int, ...]
    buses: tuple[tuple[str, str], ...] = tuple(DEFAULT_BUSES.items())

    @classmethod
    def default(cls, rows: int, cols: int) -> BenchWiring:
        """Rows on matrix columns 1..R, columns on R+1..R+C, 12 per slot."""
        n = rows + cols
        if n > SLOTS * COLUMNS_PER_SLOT:
            raise ConfigError(
                f"a {rows} x {cols} array needs {n} matrix columns; a 707B has "
                f"{SLOTS * COLUMNS_PER_SLOT} (six 12-column cards)"
            )
        return cls(tuple(range(rows)), tuple(range(rows, n)))

    @classmethod
    def from_lines(cls, rows, cols, buses: dict | None = None) -> BenchWiring:
        """From station.yaml line names ``"105"`` (slot 1, column 5) and bus letters."""

        def flat(name: str) -> int:
            slot, col = int(name[0]), int(name[1:])
            if not (1 <= slot <= SLOTS and 1 <= col <= COLUMNS_PER_SLOT and len(name) == 3):
                raise ConfigError(f"matrix column {name!r} is not <slot 1..6><column 01..12>")
            return (slot - 1) * COLUMNS_PER_SLOT + col - 1

        merged = {**DEFAULT_BUSES, **(buses or {})}
        return cls(tuple(map(flat, rows)), tuple(map(flat, cols)), tuple(merged.items()))

    def bus(self, role: str) -> int:
        return BUSES.index(dict(self.buses)[role])


class Bench:
    """Relay state of the matrix plus the physics of routed sources on the chip.

    Parameters
    ----------
    chip : PCMArray or RRAMArray
        The emulated array (callers hold the lab's lock around every instrument call).
    wiring : BenchWiring, optional
        Default layout for the chip's shape when omitted.
    seed : int
        Seed of the instruments' own noise (SMU noise floor).
    """

    def __init__(self, chip, wiring: BenchWiring | None = None, seed: int = 0):
        self.chip = chip
        self.wiring = wiring or BenchWiring.default(chip.rows, chip.cols)
        self.closed = np.zeros((len(BUSES), SLOTS * COLUMNS_PER_SLOT), dtype=bool)
        self._rows = np.asarray(self.wiring.row_lines, dtype=np.intp)
        self._cols = np.asarray(self.wiring.col_lines, dtype=np.intp)
        self.ground = self.wiring.bus("ground")
        self._routes: dict[tuple[int, bool], tuple[np.ndarray, bool]] = {}

    def set_closed(self, closed: np.ndarray) -> None:
        """New relay state (bool, buses x matrix columns)."""
        self.closed = closed
        self._routes.clear()

    def routed(self, bus: int, reverse: bool = False) -> tuple[np.ndarray, bool]:
        """Flat indices of the devices whose row is on ``bus`` and column on ground (with
        ``reverse``: column on ``bus``, row on ground), and whether some matrix column
        joins ``bus`` straight to ground (a short). Cached until the relays change."""
        route = self._routes.get((bus, reverse))
        if route is None:
            hot, cold = (self._cols, self._rows) if reverse else (self._rows, self._cols)
            a = np.flatnonzero(self.closed[bus, hot])
            b = np.flatnonzero(self.closed[self.ground, cold])
            rows, cols = (b, a) if reverse else (a, b)
            idx = (rows[:, None] * self.chip.cols + cols[None, :]).ravel()  # row-major
            route = idx, bool(np.any(self.closed[bus] & self.closed[self.ground]))
            self._routes[(bus, reverse)] = route
        return route

    def conductance(self, bus: int) -> float:
        """Summed read-noisy conductance in S seen from ``bus`` (inf when shorted): the
        devices reached either way round (a read does not care which line is hot)."""
        idx, short = self.routed(bus)
        if short:
            return math.inf
        rev, _ = self.routed(bus, reverse=True)
        if rev.size:
            idx = np.union1d(idx, rev)  # disjoint (a line on bus and ground is a short)
        return float(self.chip.read(idx).sum(dtype=np.float64)) if idx.size else 0.0

    def pulse(self, bus: int, voltage: float, width: float, count: int) -> None:
        """``count`` pulses of ``voltage`` V (signed, bus against ground) and ``width`` s
        on the devices ``bus`` reaches: polarity sign(voltage) on those whose row is on
        the bus, the opposite on those whose column is, one burst after the other
        (nothing when the bus is shorted)."""
        idx, short = self.routed(bus)
        if short:
            return
        sign = -1 if voltage < 0 else 1
        rev, _ = self.routed(bus, reverse=True)
        for devices, polarity in ((idx, sign), (rev, -sign)):
            if devices.size:
                amplitude, w = np.array([voltage]), np.array([width])
                apply_pulse(self.chip, devices, amplitude, w, count, polarity)
