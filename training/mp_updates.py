"""The chip side of mixed-precision training (:mod:`xbarlab.training.mixed_precision`).

- :func:`device_map`: where each weight's G+ and G- devices sit on a tile's arrays;
- :func:`characterise_set`, :func:`characterise_reset`: the mean SET increment and
  gradual RESET decrement (S) of a layer's devices, which set the update thresholds;
- :class:`LayerUpdates`: one weight layer's update state: the float64 accumulator chi,
  SET pulses on a unipolar chip (PCM), signed SET/RESET updates on the device with more
  room on a bipolar chip (RRAM) with the per-device conductance estimate that chooses
  between them, and the refresh of saturated pairs.

Pulses are grouped by count: one pulse call per distinct count per array and step,
never a call per device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarlab.chipdrivers.crossbar import Crossbar
from xbarlab.chipdrivers.programming import program_iterative
from xbarlab.chipdrivers.tile_layout import plan_layout
from xbarlab.chipdrivers.tiles import AnalogTile
from xbarlab.errors import ConfigError
from xbarlab.procedures.pulse_response import increment_table
from xbarlab.training.layers import AnalogLinear

__all__ = [
    "DeviceMap",
    "LayerUpdates",
    "characterise_reset",
    "characterise_set",
    "device_map",
    "pulse_curve",
]


@dataclass(frozen=True)
class DeviceMap:
    """Devices of a layer's weights (flattened row-major over (out, in)).

    array: array index in the tile per weight; row: physical row; plus, minus: the
    columns of G+ and G-.
    """

    array: np.ndarray
    row: np.ndarray
    plus: np.ndarray
    minus: np.ndarray


def device_map(tile: AnalogTile, shape: tuple[int, int]) -> DeviceMap:
    """Where each weight (j, i) of a (out, in) matrix sits on the tile's arrays.

    Uses the tile's layout (:func:`plan_layout`) with one pair per weight; see the module
    docstring for the column convention.
    """
    if tile.pairs_per_weight != 1:
        raise ConfigError(
            f"mixed-precision training uses one device pair per weight; the tile has "
            f"pairs_per_weight = {tile.pairs_per_weight}"
        )
    n_out, n_in = shape
    info = tile.info
    array = np.empty(n_out * n_in, dtype=np.intp)
    row, slot = np.empty_like(array), np.empty_like(array)
    for block in plan_layout(shape, info.rows, info.cols, 1):
        i = np.arange(block.row0, block.row1)
        for seg in block.segments:
            j = np.arange(seg.j0, seg.j1)
            flat = (j[:, None] * n_in + i[None, :]).ravel()
            array[flat] = block.array
            row[flat] = np.tile(i - block.row0, j.size)
            slot[flat] = np.repeat(seg.s0 + j - seg.j0, i.size)
    if tile.differential:
        return DeviceMap(array, row, 2 * slot, 2 * slot + 1)
    return DeviceMap(array, row, slot, info.cols // 2 + slot)


def pulse_curve(
    xbar: Crossbar, sel, *, polarity: int, amplitude: float, width: float, n_pulses: int
) -> np.ndarray:
    """Conductance in S (float64, shape (n_pulses + 1, devices)) of the devices ``sel``
    read before and after each of ``n_pulses`` identical pulses."""
    curve = [xbar.read(sel)]
    for _ in range(n_pulses):
        xbar.pulse(sel, polarity=polarity, amplitude=amplitude, width=width)
        curve.append(xbar.read(sel))
    return np.stack(curve).astype(np.float64).reshape(n_pulses + 1, -1)


def _curve_summary(g: np.ndarray, amplitude: float, width: float, **figures) -> dict:
    """The JSON-ready record of a pulse curve ``g``: the pulse, the devices, ``figures``
    and the mean curve ``mean_g_S``."""
    return {
        "amplitude_V": float(amplitude),
        "width_s": float(width),
        "devices": int(g.shape[1]),
        "n_pulses": int(g.shape[0] - 1),
        **figures,
        "mean_g_S": g.mean(axis=1).tolist(),
    }


def characterise_reset(
    xbar: Crossbar, sel, *, amplitude: float, width: float, n_pulses: int, g_floor: float
) -> dict:
    """Mean gradual RESET decrement (S, > 0) of the devices ``sel`` from where they are:
    n identical RESET pulses (polarity -1), one read before and after each.

    The decrement is the mean over pulses that started above ``g_floor`` (S). Returns a
    JSON-ready dict: amplitude_V, width_s, devices, n_pulses, mean_decrement_S, mean_g_S.
    """
    g = pulse_curve(xbar, sel, polarity=-1, amplitude=amplitude, width=width, n_pulses=n_pulses)
    before, dec = g[:-1], -np.diff(g, axis=0)
    above = before > g_floor
    mean_dec = float(dec[above].mean()) if above.any() else float("nan")
    if not mean_dec > 0:
        raise ConfigError(
            f"RESET pulses of {amplitude:.3g} V, {width:.3g} s did not lower the conductance "
            f"(mean decrement {mean_dec:.3g} S above {g_floor:.3g} S); raise the RESET "
            "amplitude"
        )
    return _curve_summary(g, amplitude, width, mean_decrement_S=mean_dec)


def characterise_set(
    xbar: Crossbar, sel, *, amplitude: float, width: float, n_pulses: int, g_limit: float
) -> dict:
    """Mean SET increment of the devices ``sel``: RESET, then n identical SET pulses.

    A quick pulse-response (as the ``pulse-response`` procedure does, without a run):
    one read after the RESET and after every pulse. The increment that sets epsilon is
    the mean over pulses that started below ``g_limit`` (S), the range the trainer keeps
    devices in (refresh threshold).

    Returns a JSON-ready dict: amplitude_V, width_s, devices, n_pulses,
    mean_increment_S, mean_g_S (the mean curve), increment_vs_g (binned table).
    """
    rp = xbar.info.reset_pulse
    xbar.pulse(sel, polarity=rp.polarity, amplitude=rp.amplitude, width=rp.width)
    pol = xbar.info.set_pulse.polarity
    g = pulse_curve(xbar, sel, polarity=pol, amplitude=amplitude, width=width, n_pulses=n_pulses)
    before, inc = g[:-1], np.diff(g, axis=0)
    below = before < g_limit
    if not below.any():
        raise ConfigError(
            f"no device started a SET pulse below {g_limit:.3g} S during the characterisation; "
            "the devices may be stuck: try another seed or array"
        )
    mean_inc = float(inc[below].mean())
    if not mean_inc > 0:
        raise ConfigError(
            f"SET pulses of {amplitude:.3g} V, {width:.3g} s did not raise the conductance "
            f"(mean increment {mean_inc:.3g} S); raise the amplitude within the chip's SET range"
        )
    return {
        **_curve_summary(g, amplitude, width, mean_increment_S=mean_inc),
        "increment_vs_g": increment_table(g, xbar.info.g_max),
    }


class LayerUpdates:
    """One weight layer during mixed-precision training: its tile, chi and device map."""

    def __init__(self, tile: AnalogTile, linear: AnalogLinear, dmap: DeviceMap, pulse):
        self.tile, self.linear, self.dmap = tile, linear, dmap
        self.amplitude, self.width = pulse
        self.polarity = tile.info.set_pulse.polarity
        self.chi = np.zeros(tile.shape, dtype=np.float64)
        self.epsilon = float("nan")
        self.stuck = np.zeros(self.chi.size, dtype=bool)  # pairs a refresh could not program
        self.touched = np.zeros(self.chi.size, dtype=bool)  # weights pulsed this epoch
        self.by_array = [np.flatnonzero(dmap.array == a) for a in range(len(tile.arrays))]
        self.bipolar = "unipolar" not in tile.info.capabilities
        self.reset_pulse = (float("nan"), float("nan"))  # gradual RESET (V, s), bipolar only
        self.epsilon_reset = float("nan")
        self.g_est = np.zeros((2, self.chi.size), dtype=np.float64)  # G+, G- estimates (S)

    def update(self, lr: float) -> int:
        """Bias step, chi accumulation and the pulses it calls for; returns pulses."""
        lin = self.linear
        lin.b -= np.float32(lr) * lin.grad_b
        self.chi -= lr * lin.grad_W
        chi = self.chi.reshape(-1)
        if self.bipolar:
            return self._update_bipolar(chi)
        count = np.floor(np.abs(chi) / self.epsilon).astype(np.int64)
        flat = np.flatnonzero(count)
        if flat.size == 0:
            return 0
        n = count[flat]
        positive = chi[flat] > 0
        chi[flat] -= np.where(positive, n, -n) * self.epsilon
        cols = np.where(positive, self.dmap.plus[flat], self.dmap.minus[flat])
        rows, arrays = self.dmap.row[flat], self.dmap.array[flat]
        for a in np.unique(arrays) if len(self.tile.arrays) > 1 else (0,):
            on = slice(None) if len(self.tile.arrays) == 1 else arrays == a
            self._pulse(self.tile.arrays[a], rows[on], cols[on], n[on])
        self.touched[flat] = True
        return int(n.sum())

    def _pulse(self, xbar: Crossbar, rows, cols, n, polarity: int | None = None) -> None:
        """One SET call (or RESET call: polarity -1) per distinct pulse count on this array."""
        pol = self.polarity if polarity is None else polarity
        amp, wid = (self.amplitude, self.width) if pol == self.polarity else self.reset_pulse
        for c in np.unique(n):
            k = n == c
            xbar.pulse((rows[k], cols[k]), polarity=pol, amplitude=amp, width=wid, count=int(c))

    def _update_bipolar(self, chi: np.ndarray) -> int:
        """Signed updates on a bipolar chip: SET or RESET on the device with more room."""
        t, d = self.tile, self.dmap
        gp, gm = self.g_est
        positive = chi > 0
        room_set = t.g_max - np.where(positive, gp, gm)
        room_reset = np.where(positive, gm, gp) - t.g_min
        use_set = room_set >= room_reset
        eps = np.where(use_set, self.epsilon, self.epsilon_reset)
        count = np.floor(np.abs(chi) / eps).astype(np.int64)
        flat = np.flatnonzero(count)
        if flat.size == 0:
            return 0
        n, pos, up = count[flat], positive[flat], use_set[flat]
        chi[flat] -= np.where(pos, n, -n) * eps[flat]
        on_plus = pos == up  # SET on G+ (positive) or RESET on G+ (negative)
        cols = np.where(on_plus, d.plus[flat], d.minus[flat])
        step = np.where(up, self.epsilon, -self.epsilon_reset) * t.g_scale * n
        est = self.g_est[np.where(on_plus, 0, 1), flat]
        self.g_est[np.where(on_plus, 0, 1), flat] = np.clip(est + step, t.g_min, t.g_max)
        rows, arrays = d.row[flat], d.array[flat]
        for a in np.unique(arrays):
            for polarity, on in ((1, up), (-1, ~up)):
                sel = on & (arrays == a)
                if sel.any():
                    self._pulse(t.arrays[a], rows[sel], cols[sel], n[sel], polarity)
        self.touched[flat] = True
        return int(n.sum())

    def sense(self) -> None:
        """Read every device of the layer (one read per array) into the estimates g_est."""
        d = self.dmap
        for a, w in enumerate(self.by_array):
            sel = (np.concatenate([d.row[w], d.row[w]]), np.concatenate([d.plus[w], d.minus[w]]))
            g = self.tile.arrays[a].read(sel).astype(np.float64).reshape(2, -1)
            self.g_est[:, w] = g

    def refresh(self, threshold: float, max_iterations: int) -> int:
        """Re-program pairs whose G+ or G- exceeds ``threshold`` (S); returns their number.

        Read both devices, keep the difference, RESET both (program_iterative starts
        with a RESET) and program the difference onto one of them, the other at the
        window's floor. Differences wider than [g_min, threshold) are clipped: a refreshed
        pair must leave room for further SET pulses. Pairs that fail to program (stuck
        devices) are not refreshed again.
        """
        t, d = self.tile, self.dmap
        hi = t.g_min + 0.9 * (threshold - t.g_min)
        done = 0
        for a, w in enumerate(self.by_array):
            rows = np.concatenate([d.row[w], d.row[w]])
            sel = (rows, np.concatenate([d.plus[w], d.minus[w]]))
            g = t.arrays[a].read(sel).astype(np.float64).reshape(2, -1)
            due = (g.max(axis=0) > threshold) & ~self.stuck[w]
            if not due.any():
                continue
            diff = g[0, due] - g[1, due]
            targets = np.clip(
                t.g_min + np.concatenate([np.maximum(diff, 0), np.maximum(-diff, 0)]), t.g_min, hi
            )
            res = program_iterative(
                t.arrays[a],
                targets.astype(np.float32),
                (
                    np.tile(rows[: w.size][due], 2),
                    np.concatenate([d.plus[w][due], d.minus[w][due]]),
                ),
                max_iterations=max_iterations,
            )
            self.stuck[w[due]] |= res.unresponsive.reshape(2, -1).any(axis=0)
            done += int(due.sum())
        return done
