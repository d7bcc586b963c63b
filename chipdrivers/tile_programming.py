"""Programming half of :class:`~xbarlab.chipdrivers.tiles.AnalogTile`: weights to
conductance targets on device pairs, closed-loop programming, and reading the held
weights back.

A mixin: it works on the tile's mapping state (``arrays``, ``info``, ``pairs_per_weight``,
significances, conductance window, ``differential``) set by ``AnalogTile.__init__``, and
sets what the MVM half needs (``shape``, the layout blocks, ``g_scale`` and the output
factors). The mapping itself is described in :mod:`xbarlab.chipdrivers.tiles`.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from xbarlab.chipdrivers.programming import write_verify
from xbarlab.chipdrivers.tile_layout import Block, Segment, arrays_needed, plan_layout
from xbarlab.chipdrivers.tile_report import PartResult, ProgramReport
from xbarlab.errors import ConfigError


class TileProgramming:
    """program(), read_weights() and the weight <-> conductance mapping of a tile."""

    def program(
        self,
        weights,
        *,
        tolerance: float | None = None,
        max_iterations: int = 100,
        algorithm=write_verify,
    ):
        """Program a weight matrix onto the arrays with a closed-loop programming algorithm.

        Parameters
        ----------
        weights : array_like
            W, shape (out, in), weight units; |W| <= weight_scale. A ternary tile
            (``weight_levels=3``) takes only {-a, 0, +a}.
        tolerance : float, optional
            Accepted conductance error per device in S (the algorithm's default when None;
            on a ternary tile :data:`TERNARY_TOLERANCE` of g_on - g_off).
        max_iterations : int
            Write-verify iterations per pair and array.
        algorithm : callable
            A program-and-verify function with the signature of
            :func:`~xbarlab.chipdrivers.programming.write_verify` (default), e.g.
            :func:`~xbarlab.chipdrivers.programming.program_iterative` for multilevel PCM.

        Returns
        -------
        ProgramReport
            Per-array results, the scales used and the read-back weight error.
        """
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 2 or min(w.shape) < 1 or not np.all(np.isfinite(w)):
            raise ConfigError(f"weights must be a finite (out, in) matrix, got shape {w.shape}")
        need = arrays_needed(w.shape, self.info.rows, self.info.cols, self.pairs_per_weight)
        if need > len(self.arrays):
            raise ConfigError(
                f"a {w.shape[0]} x {w.shape[1]} weight matrix with {self.pairs_per_weight} "
                f"pair(s) per weight needs {need} arrays of {self.info.rows} x {self.info.cols}; "
                f"the tile has {len(self.arrays)}. Give more arrays or use AnalogTile.from_spec"
            )
        peak = float(np.max(np.abs(w)))
        scale = peak if self.weight_scale_option is None else float(self.weight_scale_option)
        if not scale > 0:
            raise ConfigError("W is all zeros: pass weight_scale= to fix the conductance scale")
        if self.weight_levels == 3:
            _check_ternary(w, self.weight_scale_option)
        if peak > scale * (1 + 1e-6):
            raise ConfigError(
                f"max |W| = {peak:.6g} exceeds weight_scale = {scale:.6g}; clip W or raise "
                "weight_scale"
            )
        self.shape = (int(w.shape[0]), int(w.shape[1]))
        self.output_scale = None
        self._blocks = plan_layout(
            self.shape, self.info.rows, self.info.cols, self.pairs_per_weight
        )
        self._forward_takes = [
            (b, partial(self._pair_outputs, m=max(seg.s0 + seg.size for seg in b.segments)))
            for b in self._blocks
        ]
        self.weight_scale = scale
        self.g_scale = self.g_range * (self.g_max - self.g_min) / scale
        if self.weight_levels == 3 and tolerance is None:
            tolerance = TERNARY_TOLERANCE * self.g_range * (self.g_max - self.g_min)
        # weight units per S of each pair's output: its significance over g_scale times
        # the sum of significances
        self._factors = (self._sig / (self.g_scale * self._sig_sum)).astype(np.float32)
        # weight units per A and per V of input scale: what outputs are multiplied by
        self._out_scale = (self._factors / self.v_full_scale).astype(np.float32)
        report = ProgramReport(scale, self.g_scale)
        held = np.zeros_like(w)  # sum of sig_q * W_hat_q over the pairs programmed so far
        total = self._sig.sum()
        for p in range(self.pairs_per_weight):
            later = self._sig[p + 1 :].sum()
            target = (total * w - held - later * w) / self._sig[p]
            for block in self._blocks:
                for seg in block.segments:
                    if seg.pair != p:
                        continue
                    t = target[seg.j0 : seg.j1, block.row0 : block.row1].T
                    g = self._conductances(t)
                    sel = self._devices(block, seg)
                    xbar = self.arrays[block.array]
                    res = algorithm(
                        xbar, g, sel, tolerance=tolerance, max_iterations=max_iterations
                    )
                    report.parts.append(PartResult(block.array, p, res))
                    got = self._weights_of(xbar.read(sel), seg.size)
                    held[seg.j0 : seg.j1, block.row0 : block.row1] += self._sig[p] * got
        report.max_abs_error = float(np.max(np.abs(held / total - w)))
        self.report = report
        return report

    def _conductances(self, t: np.ndarray) -> np.ndarray:
        """(G+ | G-) targets in S, shape (rows, 2 n), for weights t of shape (rows, n)."""
        g = (
            self.g_min
            + np.concatenate([np.maximum(t, 0), np.maximum(-t, 0)], axis=1) * self.g_scale
        )
        lo, hi = _inside_float32(self.g_min, self.g_max)
        return np.clip(g, lo, hi).astype(np.float32)

    def _devices(self, block: Block, seg: Segment) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) selection of a segment's devices: G+ columns, then G- columns."""
        s = np.arange(seg.s0, seg.s0 + seg.size)
        if self.differential:
            cols = np.concatenate([2 * s, 2 * s + 1])
        else:
            cols = np.concatenate([s, self.info.cols // 2 + s])
        return np.arange(block.n_rows)[:, None], cols[None, :]

    def _weights_of(self, g: np.ndarray, n: int) -> np.ndarray:
        """Weights (n, rows) of one pair from its read (G+ | G-) conductances (rows, 2 n)."""
        g = g.astype(np.float64)
        return ((g[:, :n] - g[:, n:]) / self.g_scale).T

    def read_weights(self) -> np.ndarray:
        """The weights W_hat (out, in) the devices hold now, from a conductance read."""
        self._check_programmed()
        w = np.zeros(self.shape)
        for block in self._blocks:
            for seg in block.segments:
                g = self.arrays[block.array].read(self._devices(block, seg))
                sig = self._sig[seg.pair]
                w[seg.j0 : seg.j1, block.row0 : block.row1] += sig * self._weights_of(g, seg.size)
        return w / self._sig.sum()


#: default programming tolerance of a ternary tile as a fraction of g_on - g_off: the two
#: levels only need telling apart and the network is trained with 10% weight noise. On
#: the default emulated PCM (g_on at 0.9 of the window) it cut the verify iterations per
#: device of the digits MLP from 5.1 to 4.5 (0.02 g_max band), and the read-back weight
#: error std from read noise and programming from 6.2% to 6.7% of a; deployed accuracy
#: did not change (0.972 to 0.973, seeds 0-2)
TERNARY_TOLERANCE = 0.05

#: relative spread of the non-zero |W| that still counts as one ternary level a (float32
#: weights converted to float64 and back stay far inside it)
_TERNARY_RTOL = 1e-6


def _check_ternary(w: np.ndarray, weight_scale: float | None) -> None:
    """Raise ConfigError unless w holds only {-a, 0, +a} (and a == weight_scale if given)."""
    mag = np.abs(w[w != 0])
    if mag.size == 0:
        return
    lo, hi = float(mag.min()), float(mag.max())
    if hi - lo > _TERNARY_RTOL * hi:
        n = np.unique(mag).size
        raise ConfigError(
            f"weight_levels=3 needs ternary weights {{-a, 0, +a}}; W has {n} distinct non-zero "
            f"magnitudes ({lo:.6g} .. {hi:.6g}). Ternarise W first, e.g. with "
            "xbarlab.training.hwa.ternarize(W), or use an analog tile (weight_levels=None)"
        )
    if weight_scale is not None and abs(hi - weight_scale) > _TERNARY_RTOL * hi:
        raise ConfigError(
            f"a ternary tile maps a = {hi:.6g} to g_on; weight_scale = {weight_scale:.6g} "
            "differs: leave weight_scale=None (or set it to a)"
        )


def _inside_float32(lo: float, hi: float) -> tuple[np.float32, np.float32]:
    """float32 bounds that lie inside [lo, hi] (write_verify compares float32 targets)."""
    lo32, hi32 = np.float32(lo), np.float32(hi)
    if lo32 < lo:
        lo32 = np.nextafter(lo32, np.float32(np.inf))
    if hi32 > hi:
        hi32 = np.nextafter(hi32, np.float32(0))
    return lo32, hi32
