"""Analog tiles: a logical weight matrix on differential device pairs over one or more arrays.

An :class:`AnalogTile` holds a weight matrix ``W`` (out x in) on conductances and
computes ``X @ W.T`` (forward) and ``D @ W`` (backward) with the arrays' analog
MVM, returning results in the weight domain. It owns the mapping from weights to
devices, the split over several arrays, the input scaling and the bound
management; everything below it is a :class:`~xbarlab.chipdrivers.crossbar.Crossbar`.

Mapping (all conductances in S)
-------------------------------
Inputs drive rows, outputs are read on columns: logical input ``i`` sits on a
row, logical output ``j`` on a pair of columns. With ``g_scale = g_range *
(g_max - g_min) / weight_scale`` (S per weight unit), pair ``p`` of weight
``w`` holds::

    G+ = g_min + max(w_p, 0) * g_scale        G- = g_min + max(-w_p, 0) * g_scale

so ``G+ - G- = w_p * g_scale``. With k pairs per weight and significance
``sig_p = significance ** (k - 1 - p)`` (pair 0 most significant), the weight the
devices hold is ``W_hat = sum_p sig_p (G+_p - G-_p) / (g_scale * sum_p sig_p)``.
Pairs are programmed most significant first; each later pair is targeted at
``W`` plus the error the earlier pairs left (read back after programming),
divided by its significance (clipped to the window [g_min, g_max]), so the
tolerance-limited error shrinks by about ``sum_p sig_p / sig_(k-1)``.

Ternary weights and few-level inputs (seeds 000 and 002)
-------------------------------------------------------
``weight_levels=3`` holds a ternary matrix {-a, 0, +a} on one device pair per
weight: ``+a -> (G+, G-) = (g_on, g_off)``, ``0 -> (g_off, g_off)``,
``-a -> (g_off, g_on)`` with ``g_off = g_min`` (the RESET floor) and ``g_on = g_min +
g_range * (g_max - g_min)``; it is the mapping above with ``weight_scale = a``, so
programming targets only these two conductances (most devices sit at g_off, which
the RESET that starts programming already reaches). Weights that are not exactly
ternary are refused. ``input_levels=n`` (odd, e.g. 7: three per polarity and zero)
quantises each forward input in the tile before the MVM: ``x -> r * round(x * L / r)
/ L`` with ``L = (n - 1) / 2`` levels per polarity, clipped to [-r, r], where ``r`` is
``input_range`` (fixed, in input units) or each vector's max |x|. The levels sit on
whole steps of the chip's own DAC (its levels per polarity must be a multiple of L),
so the chip adds no rounding of its own.

Layout (:mod:`xbarlab.chipdrivers.tile_layout`): blocks of ``rows`` inputs and
``cols // 2`` pair slots, one array per block. On a chip with the capability
``differential_columns`` slot ``s`` uses columns ``2s`` (G+) and ``2s + 1`` (G-)
and the chip returns their difference; otherwise columns ``[0, cols // 2)`` hold
G+, ``[cols // 2, 2 * (cols // 2))`` hold G-, and the tile subtracts. Partial sums
of row blocks are added digitally. Devices outside the used rectangle of a block
are never driven or read and are left as they are.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from xbarlab.chipdrivers.crossbar import Crossbar
from xbarlab.chipdrivers.scaling import normalise, scale_rows
from xbarlab.chipdrivers.tile_layout import Block, OwnedArrays, open_arrays
from xbarlab.chipdrivers.tile_programming import TileProgramming
from xbarlab.chipdrivers.tile_report import ProgramReport
from xbarlab.errors import ConfigError

#: bound management divides the input by this factor per retry
_RETRY_DIVISOR = 2


class AnalogTile(TileProgramming, OwnedArrays):
    """A weight matrix W (out x in) on differential device pairs of one or more arrays.

    Parameters
    ----------
    arrays : list of Crossbar
        Arrays (cores) available to the tile, all of the same shape and readout.
    pairs_per_weight : int
        Device pairs per weight, k >= 1.
    significance : float
        Pair p has significance significance ** (k - 1 - p) (pair 0 most significant),
        >= 1.
    weight_scale : float, optional
        Weight magnitude (weight units) mapped to g_range of the conductance window,
        > 0. Default: max |W| of each programmed matrix. |W| may not exceed it.
    g_range : float
        Fraction of the window g_max - g_min that weight_scale maps to, 0 < g_range <= 1.
    max_bound_retries : int
        Times an input vector whose outputs saturated the ADC is repeated with its input
        halved (rounded to a whole DAC level when the chip describes its DAC), >= 0.
    weight_levels : int, optional
        None: analog weights. 3: ternary weights {-a, 0, +a} (see the module docstring),
        one pair per weight (pairs_per_weight must be 1); :meth:`program` refuses
        weights that are not exactly ternary, and a given weight_scale must equal a.
    input_levels : int, optional
        Quantise forward inputs in the tile to this many levels, odd, >= 3 (7: three per
        polarity and zero, seed 000); None: inputs go to the chip's DAC as they are.
    input_range : float, optional
        Input magnitude (input units) that maps to the top input level; inputs beyond it
        are clipped, > 0; only with input_levels. None: each vector's max |x|.

    Attributes
    ----------
    last_saturated : int
        Outputs (vector, output) of the last forward/backward call that were still
        saturated after bound management.
    last_retries : int
        Vector repetitions bound management needed in the last call.
    report : ProgramReport or None
        Outcome of the last :meth:`program`.
    output_scale : numpy.ndarray or None
        Per-output factor (out,) that the tile applies as ``diag(output_scale) @ W``
        (forward outputs, backward inputs), e.g. drift compensation; None: 1.
        :meth:`set_output_scale` sets it; :meth:`program` clears it.
    """

    def __init__(
        self,
        arrays: list[Crossbar],
        *,
        pairs_per_weight: int = 1,
        significance: float = 1.0,
        weight_scale: float | None = None,
        g_range: float = 0.8,
        max_bound_retries: int = 3,
        weight_levels: int | None = None,
        input_levels: int | None = None,
        input_range: float | None = None,
    ):
        self.arrays = list(arrays)
        if not self.arrays:
            raise ConfigError("an AnalogTile needs at least one array")
        info = self.arrays[0].info
        for k, a in enumerate(self.arrays):
            i = a.info
            if (i.rows, i.cols, i.mvm_shape) != (info.rows, info.cols, info.mvm_shape) or (
                "differential_columns" in i.capabilities
            ) != ("differential_columns" in info.capabilities):
                raise ConfigError(
                    f"array {k} ({i.backend}) has shape {i.shape} and MVM shape {i.mvm_shape}, "
                    f"array 0 has {info.shape} and {info.mvm_shape}: a tile needs identical arrays"
                )
            if not {"mvm", "read", "pulse"} <= i.capabilities:
                raise ConfigError(f"array {k} ({i.backend}) lacks read, pulse or mvm")
        if int(pairs_per_weight) != pairs_per_weight or pairs_per_weight < 1:
            raise ConfigError(f"pairs_per_weight must be an integer >= 1, got {pairs_per_weight!r}")
        if not (np.isfinite(significance) and significance >= 1):
            raise ConfigError(f"significance must be >= 1, got {significance!r}")
        if weight_scale is not None and not (np.isfinite(weight_scale) and weight_scale > 0):
            raise ConfigError(f"weight_scale must be > 0 (weight units), got {weight_scale!r}")
        if not 0 < g_range <= 1:
            raise ConfigError(f"g_range must be in (0, 1], got {g_range!r}")
        self.info = info
        self.differential = "differential_columns" in info.capabilities
        if self.differential and info.mvm_shape[1] * 2 != info.cols:
            raise ConfigError(f"differential chip with mvm_shape {info.mvm_shape}: expected cols/2")
        self.pairs_per_weight = int(pairs_per_weight)
        self.significance = float(significance)
        k = self.pairs_per_weight
        self._sig = np.array([self.significance ** (k - 1 - p) for p in range(k)])
        self._sig_sum = float(self._sig.sum())
        self.weight_scale_option = weight_scale
        self.g_range = float(g_range)
        self.g_min = max(a.info.g_min for a in self.arrays)
        self.g_max = min(a.info.g_max for a in self.arrays)
        self.v_full_scale = self._full_scale_voltage()
        # without an ADC range nothing saturates: no flags to fetch, no bound management
        self._can_saturate = info.periphery.get("adc_full_scale_A", 0.0) is not None
        self._set_levels(weight_levels, input_levels, input_range)
        self.max_bound_retries = max_bound_retries
        self.shape: tuple[int, int] | None = None
        self.weight_scale = float("nan")
        self.g_scale = float("nan")
        self.report: ProgramReport | None = None
        self.last_saturated = 0
        self.last_retries = 0
        self._blocks: list[Block] = []
        self._forward_takes: list[tuple[Block, partial]] = []
        self._owned: list[Crossbar] = []
        # (array, transpose) -> (scale, offset) of each raw output current, see
        # set_readout_correction
        self._readout_fix: dict[tuple[int, bool], tuple[np.ndarray, np.ndarray]] = {}
        self.output_scale: np.ndarray | None = None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_spec(cls, weights, spec: str, *, tolerance=None, max_iterations: int = 100, **options):
        """Open as many cores of ``spec`` as a weight matrix needs and build a tile on them.

        weights: a (out, in) shape, or the matrix itself (then it is also programmed).
        spec: template passed through :func:`core_spec` per core. options: constructor
        arguments of :class:`AnalogTile`; tolerance, max_iterations: see :meth:`program`.
        The tile owns the cores and closes them in :meth:`close`. A 512 x 4096 layer on
        the 64 differential 256 x 256 cores of a HERMES-like chip (seed 004)::

            AnalogTile.from_spec(W, "emulator:pcm?periphery=hermes&differential=1&seed=1")
        """
        w = None if _is_shape(weights) else np.asarray(weights, dtype=np.float64)
        shape = tuple(int(n) for n in (weights if w is None else w.shape))
        if len(shape) != 2 or min(shape) < 1:
            raise ConfigError(f"weights must be a (out, in) matrix or shape, got shape {shape}")
        [arrays] = open_arrays(spec, [shape], options.get("pairs_per_weight", 1))
        try:
            tile = cls(arrays, **options)
            tile._owned = list(arrays)
            if w is not None:
                tile.program(w, tolerance=tolerance, max_iterations=max_iterations)
        except BaseException:
            for a in arrays:
                a.close()
            raise
        return tile

    @property
    def max_bound_retries(self) -> int:
        return self._retries

    @max_bound_retries.setter
    def max_bound_retries(self, value: int) -> None:
        if int(value) != value or value < 0:
            raise ConfigError(f"max_bound_retries must be an integer >= 0, got {value!r}")
        self._retries = int(value)
        self._scales = self._retry_scales(self._retries)

    def _full_scale_voltage(self) -> np.float32:
        """Input voltage in V that max |x| maps to: DAC full scale, within the read limit."""
        v = min(_dac_range(a.info) for a in self.arrays)
        v = min(v, *(a.info.limits.max_read_voltage for a in self.arrays))
        v32 = np.float32(v)
        return np.nextafter(v32, np.float32(0)) if v32 > v else v32

    def _set_levels(self, weight_levels, input_levels, input_range) -> None:
        """Check and store the ternary-weight and input-quantisation options."""
        if weight_levels is not None and weight_levels != 3:
            raise ConfigError(
                f"weight_levels must be None (analog weights) or 3 (ternary {{-a, 0, +a}}), "
                f"got {weight_levels!r}"
            )
        if weight_levels == 3 and self.pairs_per_weight != 1:
            raise ConfigError(
                f"weight_levels=3 holds each ternary weight on one device pair; got "
                f"pairs_per_weight={self.pairs_per_weight}: use pairs_per_weight=1"
            )
        self.weight_levels = None if weight_levels is None else 3
        if input_levels is not None and not (
            int(input_levels) == input_levels and input_levels >= 3 and input_levels % 2 == 1
        ):
            raise ConfigError(
                f"input_levels must be an odd integer >= 3 (7: three per polarity and zero), "
                f"got {input_levels!r}"
            )
        if input_range is not None:
            if input_levels is None:
                raise ConfigError("input_range applies to quantised inputs: give input_levels")
            if not (np.isfinite(input_range) and input_range > 0):
                raise ConfigError(f"input_range must be > 0 (input units), got {input_range!r}")
        self.input_levels = None if input_levels is None else int(input_levels)
        self.input_range = None if input_range is None else float(input_range)
        self._input_steps = 0 if input_levels is None else (int(input_levels) - 1) // 2
        dac = int(self.info.periphery.get("dac_levels", 0) or 0)
        if self._input_steps and dac:
            steps = self._input_steps
            if dac % steps:
                raise ConfigError(
                    f"input_levels={input_levels} ({steps} per polarity) do not fall on whole "
                    f"steps of the chip's DAC ({dac} levels per polarity): use a chip whose DAC "
                    f"levels are a multiple of {steps} (e.g. dac_bits=3 or 7 on the emulator) "
                    "or input_levels=None"
                )
            dac_v = min(_dac_range(a.info) for a in self.arrays)
            if not np.isclose(self.v_full_scale, dac_v, rtol=1e-6, atol=0):
                raise ConfigError(
                    f"input_levels needs the DAC's full scale ({dac_v:.6g} V) as the tile's "
                    f"input full scale, but the read-voltage limit caps it at "
                    f"{float(self.v_full_scale):.6g} V: raise max_read_voltage or lower the "
                    "DAC range"
                )

    def _retry_scales(self, retries: int) -> np.ndarray:
        """Input scale per attempt: 1, 1/2, 1/4 ...; on whole DAC levels when the DAC is known.

        ChipInfo.periphery["dac_levels"] gives the DAC's levels per polarity; rounding the
        scale to a whole level keeps a full-scale input exact instead of off by up to half
        a level.
        """
        scales = float(_RETRY_DIVISOR) ** -np.arange(retries + 1, dtype=np.float64)
        levels = int(self.info.periphery.get("dac_levels", 0) or 0)
        if levels > 0 and self._input_steps:
            # quantised inputs: whole multiples of steps / levels keep every input level
            # on a whole DAC step; scales that would repeat are dropped
            unit = self._input_steps / levels
            scales = np.maximum(np.round(scales / unit), 1) * unit
            scales = scales[np.r_[True, np.diff(scales) < 0]]
        elif levels > 0:
            scales = np.maximum(np.round(scales * levels), 1) / levels
        return scales.astype(np.float32)

    # -- run-time corrections -----------------------------------------------------------
    def set_readout_correction(self, array: int, transpose: bool, scale, offset) -> None:
        """Correct each raw output current of one array and direction as ``I * scale + offset``.

        Readout calibration (xbarlab.calibration.readout) estimates them; the tile applies
        them to the chip's currents before pairing and bound management, so every
        physical output is corrected with its own gain and offset.

        array: index into ``arrays``; transpose: the direction (False: forward, column
        outputs; True: transposed, row outputs); scale: dimensionless, offset: A, each
        finite with shape (n_outputs,) of that direction (``info.mvm_shape``).
        """
        if not (int(array) == array and 0 <= array < len(self.arrays)):
            raise ConfigError(f"array must be in 0..{len(self.arrays) - 1}, got {array!r}")
        n = self.info.mvm_shape[0] if transpose else self.info.mvm_shape[1]
        fix = tuple(np.asarray(v, dtype=np.float32) for v in (scale, offset))
        for name, v in zip(("scale", "offset"), fix, strict=True):
            if v.shape != (n,) or not np.all(np.isfinite(v)):
                raise ConfigError(
                    f"readout correction {name} must be finite with shape ({n},) for "
                    f"transpose={bool(transpose)}, got shape {v.shape}"
                )
        self._readout_fix[(int(array), bool(transpose))] = fix

    def clear_readout_correction(self) -> None:
        """Use the chip's currents as they come (no readout correction)."""
        self._readout_fix = {}

    def set_output_scale(self, scale) -> None:
        """Scale the held weights per output: W -> diag(scale) @ W at run time.

        scale: a number or an (out,) array, finite and > 0 (dimensionless), or None for
        no scaling. Drift compensation sets it to undo the conductance decay since
        programming; programming new weights clears it.
        """
        self._check_programmed()
        if scale is None:
            self.output_scale = None
            return
        s = np.broadcast_to(np.asarray(scale, dtype=np.float32), (self.shape[0],))
        if not np.all(np.isfinite(s) & (s > 0)):
            raise ConfigError(f"output scale must be finite and > 0, got {scale!r}")
        self.output_scale = s.copy()

    # -- MVM ----------------------------------------------------------------------------
    def forward(self, x) -> np.ndarray:
        """Y = X @ W.T in weight units (float32).

        x: inputs, shape (in,) or (batch, in), any finite values; each vector is scaled
        by its max |x| per array so that it spans the DAC full scale.
        Returns shape (out,) or (batch, out).
        """
        x, single = self._batch(x, 1, "forward")
        one_pass = len(self._blocks) == 1 and len(self._blocks[0].segments) == 1
        y = None if one_pass else np.zeros((x.shape[0], self.shape[0]), np.float32)
        self.last_retries = self.last_saturated = 0
        for block, take in self._forward_takes:
            # zero vectors are driven as zeros and scaled back by 0: exact zeros out
            xs = x[:, block.row0 : block.row1]
            if self._input_steps:
                u, norm = self._quantised_inputs(xs)
            else:
                u, norm = normalise(xs, self.v_full_scale, self.info.rows, "forward")
            g, s = self._measure(block.array, u, False, take)
            for seg in block.segments:
                k = slice(seg.s0, seg.s0 + seg.size)
                c = self._out_scale[seg.pair]
                if one_pass:  # scale in place: no fresh output array to fault in
                    y = g[:, k]
                    scale_rows(y, norm, float(c))
                else:
                    y[:, seg.j0 : seg.j1] += g[:, k] * (norm * c)[:, None]
                if s is not None:
                    self.last_saturated += int(np.count_nonzero(s[:, k]))
        y = np.ascontiguousarray(y)  # a view of the chip's output when it has spare columns
        if self.output_scale is not None:
            y *= self.output_scale
        return y[0] if single else y

    def backward(self, d) -> np.ndarray:
        """D @ W in weight units (float32), through the transposed MVM.

        d: output-side vectors, shape (out,) or (batch, out). Returns (in,) or (batch, in).
        """
        if "mvm_transpose" not in self.info.capabilities:
            raise ConfigError(f"{self.info.backend!r} has no transposed MVM (mvm_transpose)")
        d, single = self._batch(d, 0, "backward")
        if self.output_scale is not None:
            d = d * self.output_scale
        out = np.zeros((d.shape[0], self.shape[1]), dtype=np.float32)
        self.last_retries = self.last_saturated = 0
        half = self.info.cols // 2
        n_drive = self.info.mvm_shape[1]
        for block in self._blocks:
            take = partial(_first, n=block.n_rows)
            for seg in block.segments:
                v, norm = normalise(d[:, seg.j0 : seg.j1], self.v_full_scale, seg.size, "backward")
                u = np.zeros((d.shape[0], n_drive), dtype=np.float32)
                u[:, seg.s0 : seg.s0 + seg.size] = v
                if not self.differential:
                    u[:, half + seg.s0 : half + seg.s0 + seg.size] = -v
                g, s = self._measure(block.array, u, True, take)
                f = norm[:, None] * self._out_scale[seg.pair]
                out[:, block.row0 : block.row1] += g * f
                if s is not None:
                    self.last_saturated += int(np.count_nonzero(s))
        return out[0] if single else out

    def _quantised_inputs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Voltages (batch, rows) on the input_levels grid and the input scale per vector.

        x: (batch, n <= rows) inputs. Each value becomes ``r * k / L`` with ``k`` the
        nearest integer in [-L, L] to ``x * L / r`` (r: input_range or the vector's
        max |x|), driven as ``k / L`` of the full-scale voltage; returns those voltages
        (float32, zero-padded) and r per vector (what outputs are scaled back by).
        """
        steps = np.float32(self._input_steps)
        if self.input_range is None:
            u, norm = normalise(x, self.v_full_scale, self.info.rows, "forward")
            k = np.rint(u * (steps / self.v_full_scale))
        else:
            x = np.asarray(x, dtype=np.float32)
            if not np.all(np.isfinite(x)):
                raise ConfigError("forward input holds NaN or infinity")
            k = np.zeros((x.shape[0], self.info.rows), np.float32)
            r = np.float32(self.input_range)
            np.clip(np.rint(x * (steps / r)), -steps, steps, out=k[:, : x.shape[1]])
            norm = np.full(x.shape[0], r, np.float32)
        return (k * (self.v_full_scale / steps)).astype(np.float32), norm

    def _pair_outputs(self, cur: np.ndarray, sat: np.ndarray | None, m: int):
        """Currents (A) and saturation flags (or None) of the first m slots: G+ minus G-."""
        if self.differential:
            return cur[:, :m], None if sat is None else sat[:, :m]
        h = self.info.cols // 2
        both = None if sat is None else sat[:, :m] | sat[:, h : h + m]
        return cur[:, :m] - cur[:, h : h + m], both

    def _measure(self, array: int, u: np.ndarray, transpose: bool, take):
        """Output currents in A at the applied scale, with bound management.

        array: index of the array; its readout correction, if any, is applied to the raw
        currents. u: (n, inputs) float32 voltages, |u| <= v_full_scale; take(currents, saturated)
        picks (and pairs) the used outputs. Vectors with a saturated output are repeated
        at the next smaller input scale c; each saturated output takes the value of that
        repetition divided by c, so every output is in units of the full input scale.
        Saturation flags are None when nothing saturated (or the readout has no ADC range).
        """
        xbar = self.arrays[array]
        fix = self._readout_fix.get((array, transpose))
        if not self._can_saturate:
            return take(_corrected(xbar.mvm(u, transpose=transpose), fix), None)
        cur, s = xbar.mvm(u, transpose=transpose, return_saturation=True)
        g, s = take(_corrected(cur, fix), s)
        if not s.any():  # the usual case, one flat check
            return g, None
        todo = np.flatnonzero(s.any(axis=1))
        for c in self._scales[1:]:
            if len(todo) == 0:
                break
            self.last_retries += int(todo.size)
            cur2, s2 = xbar.mvm(u[todo] * c, transpose=transpose, return_saturation=True)
            g2, s2 = take(_corrected(cur2, fix), s2)
            was = s[todo]
            g[todo] = np.where(was, g2 / c, g[todo])
            s[todo] = was & s2
            todo = todo[s[todo].any(axis=1)]
        return g, s

    def _batch(self, x, axis: int, name: str) -> tuple[np.ndarray, bool]:
        self._check_programmed()
        n = self.shape[axis]
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim not in (1, 2) or arr.shape[-1] != n:
            side = "in" if axis == 1 else "out"
            raise ConfigError(
                f"{name} input must have shape ({n},) or (batch, {n}) ({side} = {n} of the "
                f"{self.shape[0]} x {self.shape[1]} weight matrix); got {arr.shape}"
            )
        return arr.reshape(-1, n), arr.ndim == 1

    def _check_programmed(self) -> None:
        if self.shape is None:
            raise ConfigError("the tile holds no weights yet: call program(W) first")


def _dac_range(info) -> float:
    """DAC full scale in V from the chip's description, else its read voltage."""
    return float(info.periphery.get("dac_range_V", info.v_read))


def _corrected(cur: np.ndarray, fix: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Raw currents (A) with a readout correction (scale, offset) applied, if any."""
    if fix is None:
        return cur
    return cur * fix[0] + fix[1]


def _first(cur: np.ndarray, sat: np.ndarray | None, n: int):
    """Currents and saturation flags (or None) of the first n outputs."""
    return cur[:, :n], None if sat is None else sat[:, :n]


def _is_shape(value) -> bool:
    return isinstance(value, tuple) and all(isinstance(n, int | np.integer) for n in value)
