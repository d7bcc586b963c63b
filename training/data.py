"""Training data: scikit-learn's bundled digits set and an MNIST IDX-file reader.

Everything here is offline: the digits set ships inside scikit-learn (1797 8x8
images, no download), and IDX files (the MNIST format) are files the user supplies.
Images become float32 rows in [0, 1] (one row per sample, shape (n, features));
labels become int64.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xbarlab.errors import ConfigError

#: IDX type codes (third byte of the magic number) and their big-endian numpy types
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
#: the two bytes every gzip stream starts with (MNIST files are usually gzipped)
_GZIP_MAGIC = b"\x1f\x8b"
#: maximum pixel value of the digits set (4-bit grey levels)
_DIGITS_MAX = 16.0


@dataclass(frozen=True)
class Dataset:
    """A classification data set split into train and test parts.

    x_train, x_test: float32, shape (n, features), values in [0, 1];
    y_train, y_test: int64 class labels 0..n_classes-1, shape (n,).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def load_digits(seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """scikit-learn's digits set (1797 images of 8x8 pixels, 10 classes), split by seed.

    Parameters
    ----------
    seed : int
        Seed of the split; the same seed gives the same split on every machine.
    test_fraction : float
        Fraction of samples in the test part, 0 < test_fraction < 1. The split is
        stratified: every class keeps its share in both parts.
    """
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = (bunch.data / _DIGITS_MAX).astype(np.float32)
    return split(x, bunch.target.astype(np.int64), seed=seed, test_fraction=test_fraction)


def split(x, y, *, seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """A stratified train/test split of (x, y), fixed by ``seed``.

    Each class is shuffled by its own draw from ``numpy.random.default_rng(seed)`` and
    its first round(test_fraction * n_class) samples go to the test part.
    """
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ConfigError(f"x must be (n, features) and y (n,); got {x.shape} and {y.shape}")
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[: int(round(test_fraction * idx.size))]] = True
    train_idx, test_idx = rng.permutation(np.flatnonzero(~test)), np.flatnonzero(test)
    return Dataset(x[train_idx], y[train_idx], x[test_idx], y[test_idx])


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format), plain or gzipped.

    Layout: magic ``00 00 TT ND`` (TT the type code, see :data:`IDX_TYPES`; ND the
    number of dimensions), ND big-endian uint32 sizes, then the data in C order.

    Returns
    -------
    numpy.ndarray
        The array in its native-endian dtype, shape given by the header.

    Raises
    ------
    ConfigError
        The file is missing, the magic number or type code is wrong, or the data
        length does not match the header.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise ConfigError(f"cannot read IDX file {str(path)!r}: {exc}") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise ConfigError(
            f"{str(path)!r} is not an IDX file: magic {raw[:4].hex()!r} should start "
            "with 0000 (then type code and number of dimensions)"
        )
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        valid = ", ".join(f"0x{c:02x}" for c in IDX_TYPES)
        raise ConfigError(f"{str(path)!r}: unknown IDX type code 0x{code:02x}; valid: {valid}")
    if ndim < 1 or len(raw) < 4 + 4 * ndim:
        raise ConfigError(f"{str(path)!r}: header with {ndim} dimension(s) is truncated or empty")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    dtype = IDX_TYPES[code]
    body = len(raw) - 4 - 4 * ndim
    expected = int(np.prod(dims)) * dtype.itemsize
    if body != expected:
        raise ConfigError(
            f"{str(path)!r}: header says shape {dims} of {dtype.name} ({expected} bytes) but "
            f"the file holds {body} data bytes"
        )
    data = np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def load_idx_dataset(
    images,
    labels,
    test_images=None,
    test_labels=None,
    *,
    seed: int = 0,
    test_fraction: float = 0.25,
) -> Dataset:
    """A :class:`Dataset` from IDX image and label files (e.g. MNIST).

    Images (n, h, w) become rows of h * w features scaled to [0, 1] by the type's
    range (255 for unsigned bytes; other types by their min..max range). With test files the split
    is theirs; without, the training files are split by :func:`split`.
    """
    if (test_images is None) != (test_labels is None):
        raise ConfigError("give both test_images and test_labels, or neither")
    x, y = _idx_pair(images, labels)
    if test_images is None:
        return split(x, y, seed=seed, test_fraction=test_fraction)
    xt, yt = _idx_pair(test_images, test_labels)
    if xt.shape[1] != x.shape[1]:
        raise ConfigError(f"test images have {xt.shape[1]} features, training {x.shape[1]}")
    return Dataset(x, y, xt, yt)


def _idx_pair(images, labels) -> tuple[np.ndarray, np.ndarray]:
    """Images as float32 rows in [0, 1] and labels as int64, checked against each other."""
    img, lab = read_idx(images), read_idx(labels)
    if lab.ndim != 1 or img.ndim < 2 or img.shape[0] != lab.shape[0]:
        raise ConfigError(
            f"images {str(images)!r} of shape {img.shape} and labels {str(labels)!r} of shape "
            f"{lab.shape} do not match: expected (n, ...) images and (n,) labels"
        )
    if not np.issubdtype(lab.dtype, np.integer) or (lab.size and lab.min() < 0):
        raise ConfigError(f"labels {str(labels)!r} must be integers >= 0")
    x = img.reshape(img.shape[0], -1).astype(np.float32)
    if img.dtype == np.uint8:
        x /= 255.0
    elif x.size:
        lo, hi = float(x.min()), float(x.max())
        x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return x, lab.astype(np.int64)
