"""IMCE: a bit-wise in-memory convolution engine over any ``Crossbar`` with logic.

After seed 003 (D. Fan et al., IMCE, ASP-DAC 2018): M-bit unsigned inputs I and
N-bit weights W are split into bit-planes C_m(I) and C_n(W), written into rows of
a computational array, and

    I . W = sum_{m=0}^{M-1} sum_{n=0}^{N-1} s_n 2^(m+n) bitcount(AND(C_n(W), C_m(I)))

where AND is the chip's in-memory logic (two rows sensed at once) and bitcount and
shift are digital. Unsigned weights have s_n = 1. Signed weights are N-bit two's
complement: the planes are those of w mod 2^N and the MSB plane counts negatively,
s_{N-1} = -1 (w = -2^(N-1) b_{N-1} + sum_{n<N-1} 2^n b_n), so no extra operation
is needed.

Layout: every multiply-accumulate term is one "lane" (one column). Lanes of all
output positions are laid side by side across the columns, N weight rows and M
input rows per block of M + N rows; one ``logic`` call senses a whole row pair
across all columns, so a block of ``cols`` lanes costs two write pulses and M x N
logic calls. Successive blocks rotate over the free rows of the array.

The engine knows the bits it wrote, so it counts the AND bits the sense amplifier
got wrong (``stats``): the measured logic error rate of a run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarlab.chipdrivers.factory import open_crossbar
from xbarlab.errors import ConfigError


@dataclass
class IMCEStats:
    """Counters of one engine: logic calls, AND bits sensed, wrong AND bits, writes."""

    logic_calls: int = 0
    bits_sensed: int = 0
    bit_errors: int = 0
    write_calls: int = 0

    @property
    def error_rate(self) -> float:
        """Fraction of sensed AND bits that differ from the AND of the written bits."""
        return self.bit_errors / self.bits_sensed if self.bits_sensed else 0.0


class IMCE:
    """Bit-wise convolution engine on a chip with the ``logic`` capability.

    Parameters
    ----------
    xbar : Crossbar
        A chip with capabilities "logic" and "pulse" (e.g. ``emulator:mram?...``).
    input_bits : int
        M: inputs are unsigned integers 0 .. 2^M - 1.
    weight_bits : int
        N: weights are integers -2^(N-1) .. 2^(N-1) - 1 (signed, two's complement) or
        0 .. 2^N - 1 (unsigned).
    signed_weights : bool
        Two's-complement weights (default) or unsigned weights.
    rows : sequence of int, optional
        Array rows the engine may use (default: all). They are used in blocks of
        M + N rows; anything else on them is overwritten.
    verify : bool
        Read written rows back and rewrite devices that did not switch (at most
        ``max_rewrites`` times); off by default.
    """

    def __init__(
        self,
        xbar,
        input_bits: int = 4,
        weight_bits: int = 4,
        *,
        signed_weights: bool = True,
        rows=None,
        verify: bool = False,
        max_rewrites: int = 3,
    ):
        info = xbar.info
        missing = {"logic", "pulse"} - set(info.capabilities)
        if missing:
            raise ConfigError(
                f"IMCE needs a chip with capabilities 'logic' and 'pulse'; backend "
                f"{info.backend!r} lacks {', '.join(sorted(missing))} (use emulator:mram)"
            )
        for name, bits in (("input_bits", input_bits), ("weight_bits", weight_bits)):
            if (
                isinstance(bits, bool)
                or not isinstance(bits, int | np.integer)
                or not 1 <= bits <= 16
            ):
                raise ConfigError(f"IMCE {name} must be an integer in 1..16, got {bits!r}")
        self.xbar = xbar
        self.m_bits, self.n_bits = int(input_bits), int(weight_bits)
        self.signed = bool(signed_weights)
        self.verify, self.max_rewrites = bool(verify), int(max_rewrites)
        usable = np.arange(info.rows) if rows is None else np.unique(np.asarray(rows, np.intp))
        if usable.size and (usable.min() < 0 or usable.max() >= info.rows):
            raise ConfigError(f"IMCE rows must be in 0..{info.rows - 1}")
        per_block = self.m_bits + self.n_bits
        n_blocks = usable.size // per_block
        if n_blocks == 0:
            raise ConfigError(
                f"IMCE with {self.m_bits}-bit inputs and {self.n_bits}-bit weights needs "
                f"{per_block} rows, the chip offers {usable.size}; use fewer bits or a taller array"
            )
        self._blocks = usable[: n_blocks * per_block].reshape(n_blocks, per_block)
        self._next_block = 0
        sign = np.ones(self.n_bits, dtype=np.int64)
        if self.signed:
            sign[-1] = -1
        # coefficient s_n 2^(m+n) of each (m, n) plane pair
        self._coef = (
            2 ** (np.arange(self.m_bits)[:, None] + np.arange(self.n_bits)[None, :])
        ) * sign
        self.stats = IMCEStats()

    # -- public primitives ------------------------------------------------------------
    @property
    def weight_range(self) -> tuple[int, int]:
        """Smallest and largest weight the engine represents."""
        if self.signed:
            return -(2 ** (self.n_bits - 1)), 2 ** (self.n_bits - 1) - 1
        return 0, 2**self.n_bits - 1

    def dot(self, inputs, weights) -> np.ndarray:
        """Integer dot products computed in memory.

        inputs: (K,) or (B, K) integers in 0 .. 2^M - 1. weights: (K,) or (F, K)
        integers in :attr:`weight_range`. Returns int64 of shape (B, F), with the B or
        F axis dropped when that argument was 1-D.
        """
        x = self._check(inputs, 0, 2**self.m_bits - 1, "inputs")
        w = self._check(weights, *self.weight_range, "weights")
        x2, w2 = np.atleast_2d(x), np.atleast_2d(w)
        if x2.ndim != 2 or w2.ndim != 2 or x2.shape[1] != w2.shape[1]:
            raise ConfigError(
                f"dot needs inputs (K,) or (B, K) and weights (K,) or (F, K) with the same "
                f"K; got {np.shape(inputs)} and {np.shape(weights)}"
            )
        b, k = x2.shape
        f = w2.shape[0]
        lane_x = np.broadcast_to(x2[:, None, :], (b, f, k)).ravel()
        lane_w = np.broadcast_to(w2[None, :, :], (b, f, k)).ravel()
        group = np.repeat(np.arange(b * f), k)
        out = self._accumulate(lane_x, lane_w, group, b * f).reshape(b, f)
        if w.ndim == 1:
            out = out[:, 0]
        if x.ndim == 1:
            out = out[0]
        return out

    def conv2d(self, image, kernel) -> np.ndarray:
        """Valid 2-D cross-correlation (stride 1, no padding) computed in memory.

        image: (H, W) or (C, H, W) integers in 0 .. 2^M - 1. kernel: (kh, kw),
        (C, kh, kw) or (F, C, kh, kw) integers in :attr:`weight_range`. Returns int64
        (H - kh + 1, W - kw + 1), or (F, ...) for a 4-D kernel:
        out[f, y, x] = sum_{c, i, j} image[c, y + i, x + j] kernel[f, c, i, j].
        """
        img = self._check(image, 0, 2**self.m_bits - 1, "image")
        ker = self._check(kernel, *self.weight_range, "kernel")
        if img.ndim == 2:
            img = img[None]
        if img.ndim != 3 or ker.ndim not in (2, 3, 4):
            raise ConfigError(
                f"conv2d needs image (H, W) or (C, H, W) and kernel (kh, kw), (C, kh, kw) or "
                f"(F, C, kh, kw); got {np.shape(image)} and {np.shape(kernel)}"
            )
        k4 = ker.reshape((1,) * (4 - ker.ndim) + ker.shape)
        if ker.ndim == 2:
            k4 = np.broadcast_to(k4, (1, img.shape[0], *ker.shape))
        f, c, kh, kw = k4.shape
        if c != img.shape[0] or kh > img.shape[1] or kw > img.shape[2]:
            raise ConfigError(
                f"kernel {ker.shape} does not fit image {np.shape(image)}: channels must "
                "match and the kernel must not be larger than the image"
            )
        windows = np.lib.stride_tricks.sliding_window_view(img, (kh, kw), axis=(1, 2))
        ho, wo = windows.shape[1:3]
        cols = windows.transpose(1, 2, 0, 3, 4).reshape(ho * wo, c * kh * kw)
        out = self.dot(cols, k4.reshape(f, c * kh * kw))  # (P, F)
        out = out.T.reshape(f, ho, wo)
        return out if ker.ndim == 4 else out[0]

    # -- the engine -------------------------------------------------------------------
    def _check(self, a, lo: int, hi: int, name: str) -> np.ndarray:
        arr = np.asarray(a)
        if arr.size == 0:
            raise ConfigError(f"IMCE {name} is empty")
        if not np.issubdtype(arr.dtype, np.integer):
            if not np.issubdtype(arr.dtype, np.floating) or not np.all(arr == np.round(arr)):
                raise ConfigError(f"IMCE {name} must be integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        if arr.min() < lo or arr.max() > hi:
            raise ConfigError(
                f"IMCE {name} must be in {lo}..{hi}, got {arr.min()}..{arr.max()}; quantise "
                "first or change input_bits / weight_bits"
            )
        return arr

    def _accumulate(self, lane_x, lane_w, group, n_out: int) -> np.ndarray:
        """sum over lanes of each group of x * w, every product formed bit-wise in memory."""
        cols = self.xbar.info.cols
        x_planes = (lane_x[None, :] >> np.arange(self.m_bits)[:, None]) & 1
        w_planes = ((lane_w % (2**self.n_bits))[None, :] >> np.arange(self.n_bits)[:, None]) & 1
        total = np.zeros(n_out, dtype=np.int64)
        for start in range(0, lane_x.size, cols):
            stop = min(start + cols, lane_x.size)
            planes = np.concatenate([w_planes[:, start:stop], x_planes[:, start:stop]]).astype(bool)
            rows = self._write_block(planes)
            lanes = None if stop - start == cols else np.arange(stop - start)
            g = group[start:stop]
            for n in range(self.n_bits):
                for m in range(self.m_bits):
                    got = self.xbar.logic("and", int(rows[n]), int(rows[self.n_bits + m]), lanes)
                    expected = planes[n] & planes[self.n_bits + m]
                    self.stats.logic_calls += 1
                    self.stats.bits_sensed += got.size
                    self.stats.bit_errors += int(np.count_nonzero(got != expected))
                    counts = np.bincount(g, weights=got, minlength=n_out).astype(np.int64)
                    total += self._coef[m, n] * counts
        return total

    def _write_block(self, planes: np.ndarray) -> np.ndarray:
        """Write bit-planes (n_planes, n_lanes) into the next block of rows; its rows."""
        rows = self._blocks[self._next_block]
        self._next_block = (self._next_block + 1) % len(self._blocks)
        sel = (rows[:, None], np.arange(planes.shape[1])[None, :])
        self._write(sel, planes, ~planes)
        if self.verify:
            info = self.xbar.info
            threshold = 0.5 * (info.g_min + info.g_max)
            for _ in range(self.max_rewrites):
                g = self.xbar.read(sel)
                bad_ones, bad_zeros = planes & (g < threshold), ~planes & (g >= threshold)
                if not (bad_ones.any() or bad_zeros.any()):
                    break
                self._write(sel, bad_ones, bad_zeros)
        return rows

    def _write(self, sel, ones: np.ndarray, zeros: np.ndarray) -> None:
        """SET pulses (logic 1) where ``ones``, RESET pulses (logic 0) where ``zeros``,
        both masks over the block ``sel`` = (rows, lanes) index arrays."""
        info = self.xbar.info
        for sub, shape in ((ones, info.set_pulse), (zeros, info.reset_pulse)):
            if sub.any():
                mask = np.zeros(info.shape, dtype=bool)
                mask[sel] = sub
                self.xbar.pulse(
                    mask, polarity=shape.polarity, amplitude=shape.amplitude, width=shape.width
                )
                self.stats.write_calls += 1


# -- reference, Monte-Carlo error rates and the benchmark ------------------------------
def reference_conv2d(image, kernel) -> np.ndarray:
    """The exact integer result of :meth:`IMCE.conv2d`, by explicit loops over the kernel
    offsets in numpy (int64): what an error-free engine must return."""
    img = np.asarray(image, dtype=np.int64)
    ker = np.asarray(kernel, dtype=np.int64)
    img = img[None] if img.ndim == 2 else img
    k4 = ker.reshape((1,) * (4 - ker.ndim) + ker.shape)
    if ker.ndim == 2:
        k4 = np.broadcast_to(k4, (1, img.shape[0], *ker.shape))
    f, c, kh, kw = k4.shape
    ho, wo = img.shape[1] - kh + 1, img.shape[2] - kw + 1
    out = np.zeros((f, ho, wo), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = img[:, i : i + ho, j : j + wo]  # (C, Ho, Wo)
            out += np.einsum("fc,cyx->fyx", k4[:, :, i, j], patch)
    return out if ker.ndim == 4 else out[0]


def logic_error_rates(xbar, trials: int = 100_000, seed: int = 0) -> dict:
    """Monte-Carlo AND and OR error rates of a chip with capability "logic".

    Random bits are written into every row (write errors included, as in use), then
    rows (0, 1), (2, 3), ... are sensed in all columns with each op, with fresh data
    until at least ``trials`` column operations per op. Ground truth is the data the
    test meant to write. Returns {"and": rate, "or": rate, "trials": n per op}.
    """
    info = xbar.info
    if "logic" not in info.capabilities:
        raise ConfigError(f"backend {info.backend!r} has no in-memory logic")
    if info.rows < 2:
        raise ConfigError("logic error rates need at least two rows")
    rng = np.random.default_rng(seed)
    pairs = info.rows // 2
    errors = {"and": 0, "or": 0}
    n = 0
    while n < trials:
        bits = rng.random(info.shape) < 0.5
        for mask, shape in ((bits, info.set_pulse), (~bits, info.reset_pulse)):
            xbar.pulse(mask, polarity=shape.polarity, amplitude=shape.amplitude, width=shape.width)
        for p in range(pairs):
            a, b = bits[2 * p], bits[2 * p + 1]
            errors["and"] += int(np.count_nonzero(xbar.logic("and", 2 * p, 2 * p + 1) != (a & b)))
            errors["or"] += int(np.count_nonzero(xbar.logic("or", 2 * p, 2 * p + 1) != (a | b)))
        n += pairs * info.cols
    return {"and": errors["and"] / n, "or": errors["or"] / n, "trials": n}


def _workload(rng: np.random.Generator, m_bits: int, n_bits: int):
    """A random 3-channel 16 x 16 image and 4 signed 3 x 3 kernels."""
    image = rng.integers(0, 2**m_bits, size=(3, 16, 16))
    kernel = rng.integers(-(2 ** (n_bits - 1)), 2 ** (n_bits - 1), size=(4, 3, 3, 3))
    return image, kernel


def _rel_rms(got: np.ndarray, exact: np.ndarray) -> float:
    return float(np.linalg.norm(got - exact) / max(np.linalg.norm(exact), 1e-30))


def sense_margin_sweep(
    seed: int = 0,
    tmrs=(1.5, 1.0, 0.6, 0.4, 0.25),
    *,
    rows: int = 256,
    cols: int = 1024,
    trials: int = 1_000_000,
    input_bits: int = 4,
    weight_bits: int = 4,
    extra: str = "",
) -> list[dict]:
    """Logic error rate and IMCE output error versus sense margin.

    For each mean TMR a fresh ``emulator:mram`` chip (default Monte-Carlo variation,
    seed ``seed``) gives: the nominal AND/OR sense margins, the Monte-Carlo AND/OR
    error rates over ``trials`` column operations, the AND error rate the engine saw
    while convolving a random 3 x 16 x 16 image with four 3 x 3 x 3 kernels, and the
    relative RMS error of that convolution against the exact result. ``extra`` is
    appended to the spec (e.g. "&sense_noise=0.02").
    """
    rng = np.random.default_rng(seed)
    image, kernel = _workload(rng, input_bits, weight_bits)
    exact = reference_conv2d(image, kernel)
    out = []
    for tmr in tmrs:
        spec = f"emulator:mram?rows={rows}&cols={cols}&seed={seed}&tmr={tmr}{extra}"
        with open_crossbar(spec) as xbar:
            logic = _logic_figures(xbar, trials, seed)
            engine = IMCE(xbar, input_bits, weight_bits)
            got = engine.conv2d(image, kernel)
        out.append(
            {
                "tmr": float(tmr),
                **logic,
                "imce_bit_error_rate": engine.stats.error_rate,
                "imce_bits_sensed": engine.stats.bits_sensed,
                "output_rel_rms": _rel_rms(got, exact),
            }
        )
    return out


def reference_sweep(
    seed: int = 0,
    ref_positions=(0.5, 0.35, 0.25, 0.15),
    *,
    rows: int = 256,
    cols: int = 1024,
    trials: int = 1_000_000,
) -> list[dict]:
    """Logic error rates versus sense margin set by the reference placement (at the
    default TMR): the reference moved from the midpoint toward the lower sum shrinks the
    margin on that side. One row per ``ref_position``, as in :func:`sense_margin_sweep`
    (without the convolution)."""
    out = []
    for ref in ref_positions:
        spec = f"emulator:mram?rows={rows}&cols={cols}&seed={seed}&ref_position={ref}"
        with open_crossbar(spec) as xbar:
            out.append({"ref_position": float(ref), **_logic_figures(xbar, trials, seed)})
    return out


def _logic_figures(xbar, trials: int, seed: int) -> dict:
    """The chip's nominal AND/OR sense margins and its Monte-Carlo AND/OR error rates
    over ``trials`` column operations (:func:`logic_error_rates`)."""
    margins = xbar.info.details["sense_margin"]
    rates = logic_error_rates(xbar, trials, seed)
    return {
        "sense_margin_and": margins["and"],
        "sense_margin_or": margins["or"],
        "and_error_rate": rates["and"],
        "or_error_rate": rates["or"],
        "trials": rates["trials"],
    }


def imce_benchmark(seed: int = 0) -> dict:
    """What bench_devices.py reports for the IMCE engine (a few seconds).

    imce_exact: on an error-free chip (preset "ideal") the engine's convolution of a
    random 3 x 16 x 16 4-bit image with four signed 4-bit 3 x 3 x 3 kernels equals the
    numpy reference exactly. imce_error_rate: the fraction of wrong AND bits the
    engine sensed doing the same convolution on a default (seed 003 Monte-Carlo)
    chip; imce_output_rel_rms: that convolution's relative RMS error.
    sense_margin_sweep, reference_sweep: see those functions.
    """
    rng = np.random.default_rng(seed)
    image, kernel = _workload(rng, 4, 4)
    exact = reference_conv2d(image, kernel)
    with open_crossbar(f"emulator:mram?rows=16&cols=1024&seed={seed}&preset=ideal") as xbar:
        ideal = IMCE(xbar, 4, 4).conv2d(image, kernel)
    with open_crossbar(f"emulator:mram?rows=256&cols=1024&seed={seed}") as xbar:
        engine = IMCE(xbar, 4, 4)
        noisy = engine.conv2d(image, kernel)
        default_rates = logic_error_rates(xbar, 1_000_000, seed)
    return {
        "imce_exact": bool(np.array_equal(ideal, exact)),
        "imce_error_rate": engine.stats.error_rate,
        "imce_bits_sensed": engine.stats.bits_sensed,
        "imce_output_rel_rms": _rel_rms(noisy, exact),
        "logic_error_rate_and": default_rates["and"],
        "logic_error_rate_or": default_rates["or"],
        "logic_trials": default_rates["trials"],
        "sense_margin_sweep": sense_margin_sweep(seed),
        "reference_sweep": reference_sweep(seed),
    }
