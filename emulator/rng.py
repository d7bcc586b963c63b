"""Counter-based normal random numbers for compiled kernels.

Kernels cannot share numpy's ``Generator`` and drawing normals with it costs a
separate pass over memory (about 10-15 ns per number here). Instead a kernel
gets a 64-bit ``key``, drawn once per call from the chip's seeded Generator, and
computes normal number pairs at any position of the stream on the spot:
SplitMix64 (Steele, Lea & Flood, OOPSLA 2014) output ``counter`` of the stream
seeded with ``key``, turned into two standard normals by the Box-Muller
transform. Results are independent of thread count and order.

Two generators: :func:`normal_pair` (SplitMix64 and Box-Muller with libm's log, sqrt
and sin/cos; uniforms have 24 bits, so |z| <= 5.77, a truncated tail of probability
8e-9), used per device by the read and pulse kernels; and :func:`normal_pair_fast`,
used per output by the DAC and ADC kernels beside a BLAS product, where every
nanosecond counts: a 32-bit integer hash (Wellons' triple32) of the counter, and
Box-Muller with float32 polynomials for log, sin and cos (Cephes), so a loop that
calls it compiles to AVX2 vector code (about 1 ns a normal on one core of the 2-core test
machine, 1.5-2 ns on older cores, against 2.5 ns there for the fast path alone of a
table-driven ziggurat, which does not vectorise). Its radius
uses a 31-bit uniform: |z| <= 6.6, a truncated tail of probability 4e-11. Tests check
moments, tails, quantiles and angles of both against N(0, 1).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from xbarlab.errors import ConfigError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S16, _S27, _S30, _S31, _S40 = (np.uint64(s) for s in (16, 27, 30, 31, 40))
_MASK24 = np.uint64(0xFFFFFF)
_ONE = np.uint64(1)
_INV24 = np.float32(1.0 / (1 << 24))
_TWO_PI = np.float32(2.0 * math.pi)
_MINUS_TWO = np.float32(-2.0)
_MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


@njit(cache=True, inline="always")
def splitmix64(key, counter):
    """Output number ``counter`` of the SplitMix64 stream seeded with ``key`` (uint64)."""
    z = key + (counter + _ONE) * _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def normal_pair(key, counter):
    """Two independent float32 standard normals at stream position ``counter``."""
    h = splitmix64(key, np.uint64(counter))
    u1 = np.float32((h >> _S40) + _ONE) * _INV24  # (0, 1]
    u2 = np.float32((h >> _S16) & _MASK24) * _INV24  # [0, 1)
    r = math.sqrt(_MINUS_TWO * math.log(u1))
    a = _TWO_PI * u2
    return r * math.cos(a), r * math.sin(a)


@njit(cache=True, nogil=True, parallel=True)
def fill_normals(key, out):
    """Fill a 1-D float32 array: out[2c], out[2c + 1] = normal_pair(key, c)."""
    n = out.size
    for c in prange((n + 1) // 2):
        z0, z1 = normal_pair(key, c)
        out[2 * c] = z0
        if 2 * c + 1 < n:
            out[2 * c + 1] = z1


# -- the vectorisable generator of the peripheral kernels ------------------------------
# A loop that draws one normal pair per iteration from the functions below compiles to
# AVX2 vector code: 32-bit integer hashing, and log, sin and cos as float32 polynomials,
# with no table look-ups, branches or calls (numba's 32-bit integer arithmetic widens
# to 64 bits, hence the LLVM intrinsics).


@intrinsic
def _mix32(typingctx, x):
    """Wellons' "triple32" integer hash (bijective on 32 bits, full avalanche), as i32
    operations."""
    if x != types.uint32:
        return None

    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        v = args[0]
        for shift, mult in ((17, 0xED5AD4BB), (11, 0xAC4C1B51), (15, 0x31848BAB)):
            v = builder.xor(v, builder.lshr(v, ir.Constant(i32, shift)))
            v = builder.mul(v, ir.Constant(i32, mult))
        return builder.xor(v, builder.lshr(v, ir.Constant(i32, 14)))

    return types.uint32(types.uint32), codegen


@intrinsic
def _affine32(typingctx, c, mult, add):
    """(c * mult + add) mod 2^32 of integers c, mult, add, as i32 operations."""
    if not all(isinstance(t, types.Integer) for t in (c, mult, add)):
        return None

    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        a, m, k = (builder.trunc(v, i32) if v.type.width > 32 else v for v in args)
        return builder.add(builder.mul(a, m), k)

    return types.uint32(c, mult, add), codegen


@intrinsic
def _float_bits(typingctx, x):
    """The bit pattern of a float32 as int32."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def _bits_float(typingctx, x):
    """The float32 with a given int32 bit pattern."""
    if x != types.int32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


_F = np.float32
_I = np.int32
#: log(1 + f) - f + f^2/2 = f^3 P(f) on [sqrt(1/2) - 1, sqrt(2) - 1]: the coefficients of
#: Cephes logf (S. L. Moshier, Cephes Math Library, 1984-1992), relative error < 1e-7
_LOG_P = tuple(
    _F(c)
    for c in (
        7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
        1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
        3.3333331174e-1,
    )
)  # fmt: skip
_LOG_P0, _LOG_P1, _LOG_P2, _LOG_P3, _LOG_P4, _LOG_P5, _LOG_P6, _LOG_P7, _LOG_P8 = _LOG_P
#: sin and cos on [-pi/4, pi/4]: Cephes sinf / cosf polynomials
_SIN1, _SIN2, _SIN3 = _F(-1.9515295891e-4), _F(8.3321608736e-3), _F(-1.6666654611e-1)
_COS1, _COS2, _COS3 = _F(2.443315711809948e-5), _F(-1.388731625493765e-3), _F(4.166664568298827e-2)
_LN2 = _F(math.log(2.0))
_SQRT2 = _F(math.sqrt(2.0))
_OCTANT = _F(math.pi / 4)
_INV21 = _F(1.0 / (1 << 21))
_INV31 = _F(1.0 / (1 << 31))
_HALF = _F(0.5)
_ONE_F = _F(1.0)
_MULT_A, _MULT_B = np.int64(0x9E3779B1), np.int64(0x85EBCA77)


@njit(cache=True, inline="always", error_model="numpy")
def _log(x):
    """Natural log of a positive normal float32 (Cephes logf's reduction and polynomial)."""
    bits = _float_bits(x)
    e = _I((bits >> _I(23)) - _I(127))
    m = _bits_float(_I((bits & _I(0x7FFFFF)) | _I(0x3F800000)))  # mantissa in [1, 2)
    big = m > _SQRT2
    m = m * _HALF if big else m
    e = _I(e + _I(big))
    f = m - _ONE_F
    z = f * f
    p = ((((_LOG_P0 * f + _LOG_P1) * f + _LOG_P2) * f + _LOG_P3) * f + _LOG_P4) * f + _LOG_P5
    p = ((p * f + _LOG_P6) * f + _LOG_P7) * f + _LOG_P8
    return _F(e) * _LN2 + (f + (p * f * z - _HALF * z))


@njit(cache=True, inline="always", error_model="numpy")
def _cos_sin_turn(j):
    """cos and sin of 2 pi j / 2^24 for a 24-bit integer j: octant from the top 3 bits,
    so the polynomials only see angles in [-pi/4, pi/4)."""
    octant = _I(j >> _I(21))
    quarter = _I((octant + _I(1)) >> _I(1))  # nearest quarter turn, 0..4
    t = (_F(_I(octant - _I(2) * quarter)) + _F(_I(j & _I(0x1FFFFF))) * _INV21) * _OCTANT
    z = t * t
    s = ((_SIN1 * z + _SIN2) * z + _SIN3) * z * t + t
    c = ((_COS1 * z + _COS2) * z + _COS3) * z * z - _HALF * z + _ONE_F
    q = _I(quarter & _I(3))  # rotate (c, s) by q quarter turns
    odd = (q & _I(1)) != 0
    cq = s if odd else c
    sq = c if odd else s
    cq = -cq if (q == _I(1)) | (q == _I(2)) else cq
    sq = -sq if q >= _I(2) else sq
    return cq, sq


@njit(cache=True, inline="always", error_model="numpy")
def normal_pair_fast(ka, kb, counter):
    """Two independent float32 standard normals at stream position ``counter`` of the
    stream keyed by (ka, kb) (:func:`split_key`), by Box-Muller.

    The radius uses a 31-bit uniform in (0, 1), so |z| <= 6.6 (a truncated tail of
    probability 4e-11); the angle a 24-bit one. Pure float32 and integer arithmetic, so a
    loop calling it vectorises.
    """
    h1 = _mix32(_affine32(counter, _MULT_A, ka))
    h2 = _mix32(_affine32(counter, _MULT_B, kb))
    u = (_F(_I(h1 >> np.uint32(1))) + _HALF) * _INV31
    r = math.sqrt(_F(-2.0) * _log(u))
    c, s = _cos_sin_turn(_I(h2 >> np.uint32(8)))
    return r * c, r * s


@njit(cache=True, inline="always", error_model="numpy")
def uniform_fast(k, counter):
    """A float32 uniform on [0, 1) with 24 bits, at position ``counter`` of stream ``k``
    (a uint32 from :func:`split_key`); vectorises like :func:`normal_pair_fast`."""
    return _F(_I(_mix32(_affine32(counter, _MULT_A, k)) >> np.uint32(8))) * _INV24


@njit(cache=True, inline="always")
def split_key(key):
    """The two 32-bit keys of :func:`normal_pair_fast` from a 64-bit kernel key."""
    h = splitmix64(key, np.uint64(0))
    return np.uint32(h & _MASK32), np.uint32(h >> _S32)


@njit(cache=True, inline="always", error_model="numpy")
def fill_row(ka, kb, z, b):
    """Row b of a (batch, m) float32 array with normals in the layout of
    :func:`pair_counter` (element (b, k) is component k % 2 of pair (b, k // 2))."""
    m = z.shape[1]
    base = np.int64(pair_counter(b, 0, m))
    for p in range(m // 2):
        z0, z1 = normal_pair_fast(ka, kb, base + p)
        z[b, 2 * p] = z0
        z[b, 2 * p + 1] = z1
    if m % 2:
        z[b, m - 1] = normal_pair_fast(ka, kb, base + m // 2)[0]


@njit(cache=True, inline="always")
def pair_counter(b, k, m):
    """Counter of the normal pair holding element (b, k) of a (batch, m) array; the
    element is component k % 2 (rows start on a fresh pair)."""
    return b * ((m + 1) // 2) + k // 2


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _fill_rows(key, out):
    ka, kb = split_key(key)
    for b in prange(out.shape[0]):
        fill_row(ka, kb, out, b)


def fill_fast_normals(key: np.uint64, out: np.ndarray) -> None:
    """Fill a float32 array (1-D, or 2-D in the row layout of :func:`pair_counter`) with
    the normals of :func:`normal_pair_fast` that the peripheral kernels draw for ``key``."""
    rows = out.reshape(1, -1) if out.ndim == 1 else out
    _fill_rows(np.uint64(key), rows)


class KeyStream:
    """Kernel keys from a seeded Generator, drawn in blocks.

    The keys and their order are exactly those of calling :func:`new_key` once per
    kernel call (a block of raw draws is the next raw draws); blocks only save the
    per-call cost of asking the Generator (a few microseconds, which matters for
    batch-1 MVMs).
    """

    def __init__(self, rng: np.random.Generator, block: int = 64):
        self._rng = rng
        self._block = block
        self._keys = np.empty(0, dtype=np.uint64)
        self._next = 0

    def __call__(self) -> np.uint64:
        if self._next == self._keys.size:
            self._keys = self._rng.bit_generator.random_raw(self._block).astype(np.uint64)
            self._next = 0
        self._next += 1
        return self._keys[self._next - 1]

    def get_state(self) -> tuple[dict, np.ndarray, int]:
        """(bit generator state, the block of keys drawn, position in it): what
        :meth:`set_state` needs to continue the same key sequence."""
        return self._rng.bit_generator.state, self._keys.copy(), int(self._next)

    def set_state(self, bit_state: dict, keys: np.ndarray, position: int) -> None:
        """Continue from a :meth:`get_state`; raises ConfigError before changing anything
        when the bit generator state is invalid or the position lies outside the block."""
        rng = np.random.Generator(np.random.PCG64())
        try:
            rng.bit_generator.state = bit_state
        except (TypeError, ValueError, KeyError) as exc:
            raise ConfigError(f"chip state has an invalid RNG state: {exc}") from None
        if not 0 <= position <= keys.size:
            raise ConfigError(f"key position {position} is outside 0..{keys.size}")
        self._rng, self._keys, self._next = rng, keys.astype(np.uint64), int(position)


def new_key(rng: np.random.Generator) -> np.uint64:
    """A fresh stream key from a seeded Generator."""
    return np.uint64(rng.bit_generator.random_raw())
