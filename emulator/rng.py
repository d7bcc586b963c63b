"""Counter-based normal random numbers for compiled kernels.

Kernels cannot share numpy's ``Generator`` and drawing normals with it costs a
separate pass over memory (about 10-15 ns per number here). Instead a kernel
gets a 64-bit ``key``, drawn once per call from the chip's seeded Generator, and
computes normal number pairs at any position of the stream on the spot:
SplitMix64 (Steele, Lea & Flood, OOPSLA 2014) output ``counter`` of the stream
seeded with ``key``, turned into two standard normals by the Box-Muller
transform. Results are independent of thread count and order.

Two transforms: :func:`normal_pair` (Box-Muller: two normals for a log, a sqrt and
a sin/cos; uniforms have 24 bits, so |z| <= 5.77, a truncated tail of probability
8e-9) and :func:`normal2` (the ziggurat of Marsaglia & Tsang, J. Stat. Softw. 5(8),
2000, 256 layers on 24-bit values: exact up to that resolution, and ~99% of draws
cost half a hash, a compare and a multiply, which is what output-noise kernels running beside
a BLAS product can afford). Tests check
moments, tails and quantiles of both against N(0, 1).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S16, _S27, _S30, _S31, _S40 = (np.uint64(s) for s in (16, 27, 30, 31, 40))
_MASK24 = np.uint64(0xFFFFFF)
_ONE = np.uint64(1)
_INV24 = np.float32(1.0 / (1 << 24))
_TWO_PI = np.float32(2.0 * math.pi)
_MINUS_TWO = np.float32(-2.0)


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


@njit(cache=True, parallel=True)
def fill_normals(key, out):
    """Fill a 1-D float32 array: out[2c], out[2c + 1] = normal_pair(key, c)."""
    n = out.size
    for c in prange((n + 1) // 2):
        z0, z1 = normal_pair(key, c)
        out[2 * c] = z0
        if 2 * c + 1 < n:
            out[2 * c + 1] = z1


_ZIG_R = 3.6541528853610088  # start of the tail


def _ziggurat_tables(value_bits: int = 24):
    """Marsaglia & Tsang (2000) tables for the normal density with 256 layers (r =
    3.6541528853610088, v = 4.92867323399e-3), for ``value_bits``-bit signed values;
    about 1.5% of draws miss the fast path (2.8% with the paper's 128 layers)."""
    layers = 256
    m1 = 2.0 ** (value_bits - 1)
    dn = tn = _ZIG_R
    vn = 4.92867323399e-3
    kn = np.zeros(layers, dtype=np.int64)
    wn = np.zeros(layers, dtype=np.float64)
    fn = np.zeros(layers, dtype=np.float64)
    q = vn / math.exp(-0.5 * dn * dn)
    kn[0], kn[1] = int(dn / q * m1), 0
    wn[0], wn[-1] = q / m1, dn / m1
    fn[0], fn[-1] = 1.0, math.exp(-0.5 * dn * dn)
    for i in range(layers - 2, 0, -1):
        dn = math.sqrt(-2.0 * math.log(vn / dn + math.exp(-0.5 * dn * dn)))
        kn[i + 1] = int(dn / tn * m1)
        tn = dn
        fn[i] = math.exp(-0.5 * dn * dn)
        wn[i] = dn / m1
    return kn, wn, fn


#: ziggurat tables (kn, wn, fn) for 24-bit values; kernels take them as arguments,
#: unpacked once outside their loops (numba cannot cache parallel functions that read
#: global arrays, and unpacking a tuple of arrays per element costs reference counts)
ZIGGURAT = _ziggurat_tables()
_MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S11 = np.uint64(11)
_LAYER = np.int64(255)
_S8 = np.int64(8)
_INV53 = 1.0 / (1 << 53)
_SLOW_SALT = np.uint64(0xD1B54A32D192ED03)


@njit(cache=True, inline="always")
def _split(word):
    """A 32-bit word as a 24-bit signed value and an 8-bit layer index."""
    v = np.int64(np.int32(np.uint32(word)))
    return v >> _S8, v & _LAYER


@njit(cache=True, inline="always")
def _uniform(h):
    """(0, 1] from the top 53 bits."""
    return (np.float64(h >> _S11) + 1.0) * _INV53


@njit(cache=True, inline="always")
def _normal_slow(key, counter, hz, iz, kn, wn, fn):
    """Ziggurat rejection and tail, drawing more numbers from a per-draw sub-stream."""
    sub = splitmix64(key ^ _SLOW_SALT, np.uint64(counter))
    draw = np.uint64(0)
    while True:
        x = hz * wn[iz]
        if iz == 0:  # tail beyond r (Marsaglia 1964)
            while True:
                draw += _ONE
                xt = -math.log(_uniform(splitmix64(sub, draw))) / _ZIG_R
                draw += _ONE
                yt = -math.log(_uniform(splitmix64(sub, draw)))
                if yt + yt >= xt * xt:
                    return _ZIG_R + xt if hz > 0 else -_ZIG_R - xt
        draw += _ONE
        u = _uniform(splitmix64(sub, draw))
        if fn[iz] + u * (fn[iz - 1] - fn[iz]) < math.exp(-0.5 * x * x):
            return x
        draw += _ONE
        hz, iz = _split(splitmix64(sub, draw) & _MASK32)
        if abs(hz) < kn[iz]:
            return hz * wn[iz]


@njit(cache=True, inline="always")
def _one(key, draw, word, kn, wn, fn):
    hz, iz = _split(word)
    if abs(hz) < kn[iz]:
        return np.float32(hz * wn[iz])
    return np.float32(_normal_slow(key, draw, hz, iz, kn, wn, fn))


@njit(cache=True, inline="always")
def normal2(key, counter, kn, wn, fn):
    """Two independent float32 standard normals at stream position ``counter``.

    Ziggurat (exact): ~99% of draws cost half a hash, a compare and a multiply.
    kn, wn, fn: the arrays of :data:`ZIGGURAT`.
    """
    c = np.uint64(counter)
    h = splitmix64(key, c)
    z0 = _one(key, c + c, h & _MASK32, kn, wn, fn)
    z1 = _one(key, c + c + _ONE, h >> _S32, kn, wn, fn)
    return z0, z1


_NAN32 = np.float32(np.nan)


@njit(cache=True, inline="always")
def fill_fast(key, z, b, kn, wn):
    """Row b of a (batch, m) array in the layout of :func:`pair_counter`, fast path only:
    accepted draws, NaN where a draw needs the slow path (about 1.5%).

    Call-free, so the loop stays tight (~2.5 ns a normal), and it indexes z[b, k]
    instead of taking a row view (views in parallel loops share a reference count that
    the threads then fight over). :func:`redraw_rows` finishes the NaNs.
    """
    m = z.shape[1]
    base = np.uint64(pair_counter(b, 0, m))
    for k in range(0, m - 1, 2):
        h = splitmix64(key, base + np.uint64(k >> 1))
        hz, iz = _split(h & _MASK32)
        z[b, k] = np.float32(hz * wn[iz]) if abs(hz) < kn[iz] else _NAN32
        hz, iz = _split(h >> _S32)
        z[b, k + 1] = np.float32(hz * wn[iz]) if abs(hz) < kn[iz] else _NAN32
    if m % 2:
        hz, iz = _split(splitmix64(key, base + np.uint64(m >> 1)) & _MASK32)
        z[b, m - 1] = np.float32(hz * wn[iz]) if abs(hz) < kn[iz] else _NAN32


@njit(cache=True)
def redraw_rows(key, z, lo, hi, kn, wn, fn):
    """Finish rows lo..hi of a (batch, m) array filled by :func:`fill_fast`: the exact
    slow path for every NaN, in one call."""
    m = z.shape[1]
    for b in range(lo, hi):
        base = np.uint64(pair_counter(b, 0, m))
        for k in range(m):
            if z[b, k] != z[b, k]:
                c = base + np.uint64(k >> 1)
                h = splitmix64(key, c)
                hz, iz = _split(h & _MASK32 if k % 2 == 0 else h >> _S32)
                draw = c + c + np.uint64(k % 2)
                z[b, k] = np.float32(_normal_slow(key, draw, hz, iz, kn, wn, fn))


@njit(cache=True, inline="always")
def pair_counter(b, k, m):
    """Counter of the normal pair holding element (b, k) of a (batch, m) array; the
    element is component k % 2 (rows start on a fresh pair)."""
    return b * ((m + 1) // 2) + k // 2


@njit(cache=True, parallel=True)
def _fill_rows(key, out, kn, wn, fn):
    m = out.shape[1]
    for b in prange(out.shape[0]):
        for k in range(0, m, 2):
            z0, z1 = normal2(key, pair_counter(b, k, m), kn, wn, fn)
            out[b, k] = z0
            if k + 1 < m:
                out[b, k + 1] = z1


def fill_ziggurat(key: np.uint64, out: np.ndarray) -> None:
    """Fill a float32 array (1-D, or 2-D in the row layout of :func:`pair_counter`)."""
    rows = out.reshape(1, -1) if out.ndim == 1 else out
    _fill_rows(key, rows, *ZIGGURAT)


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


def new_key(rng: np.random.Generator) -> np.uint64:
    """A fresh stream key from a seeded Generator."""
    return np.uint64(rng.bit_generator.random_raw())
