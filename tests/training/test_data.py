"""Data: the digits split and the IDX reader on small files the tests write."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from xbarlab.errors import ConfigError
from xbarlab.training.data import load_digits, load_idx_dataset, read_idx, split


def write_idx(path, array: np.ndarray, code: int, gz: bool = False) -> None:
    """An IDX file: magic 00 00 code ndim, big-endian uint32 dims, big-endian data."""
    big = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    raw = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.astype(big).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def test_digits_shapes_ranges_and_stratified_split():
    d = load_digits(seed=0)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.x_train.shape[1] == 64 and d.n_features == 64 and d.n_classes == 10
    assert len(d.y_train) + len(d.y_test) == 1797
    assert len(d.y_test) == pytest.approx(0.25 * 1797, abs=10)
    assert d.x_train.min() == 0.0 and d.x_train.max() == 1.0
    # stratified: each class holds its share of the test part within one sample
    counts = np.bincount(np.concatenate([d.y_train, d.y_test]))
    assert np.all(np.abs(np.bincount(d.y_test) - 0.25 * counts) <= 1)


def test_digits_split_fixed_by_seed():
    a, b, c = load_digits(seed=1), load_digits(seed=1), load_digits(seed=2)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.x_test, c.x_test)


def test_split_rejects_bad_fraction():
    with pytest.raises(ConfigError, match="test_fraction"):
        split(np.zeros((4, 2)), np.zeros(4), test_fraction=1.0)


@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
def test_read_idx_round_trip_every_type(tmp_path, code):
    a = np.arange(24).reshape(2, 3, 4) % 100
    write_idx(tmp_path / "a.idx", a, code)
    got = read_idx(tmp_path / "a.idx")
    assert got.shape == (2, 3, 4) and got.dtype.isnative
    np.testing.assert_array_equal(got, a)


def test_read_idx_gzipped(tmp_path):
    a = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    write_idx(tmp_path / "l.idx.gz", a, 0x08, gz=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "l.idx.gz"), a)


def test_read_idx_errors(tmp_path):
    bad_magic = tmp_path / "bad"
    bad_magic.write_bytes(b"\x01\x00\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ConfigError, match="not an IDX file"):
        read_idx(bad_magic)
    bad_type = tmp_path / "type"
    bad_type.write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ConfigError, match="unknown IDX type code 0x07"):
        read_idx(bad_type)
    short = tmp_path / "short"
    write_idx(short, np.zeros((2, 3), np.uint8), 0x08)
    short.write_bytes(short.read_bytes()[:-1])
    with pytest.raises(ConfigError, match=r"shape \(2, 3\).*5 data bytes"):
        read_idx(short)
    with pytest.raises(ConfigError, match="cannot read"):
        read_idx(tmp_path / "missing")


def test_load_idx_dataset_scales_and_splits(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(40, 4, 5)).astype(np.uint8)
    lab = np.repeat(np.arange(4), 10).astype(np.uint8)
    write_idx(tmp_path / "img", img, 0x08)
    write_idx(tmp_path / "lab", lab, 0x08)
    d = load_idx_dataset(tmp_path / "img", tmp_path / "lab", seed=0, test_fraction=0.5)
    assert d.x_train.shape == (20, 20) and d.x_test.shape == (20, 20)
    assert np.bincount(d.y_test).tolist() == [5, 5, 5, 5]
    # each row is its image over 255
    row = d.x_test[0]
    match = np.flatnonzero(np.all(np.float32(img.reshape(40, -1) / 255.0) == row, axis=1))
    assert match.size == 1 and lab[match[0]] == d.y_test[0]
    t = load_idx_dataset(tmp_path / "img", tmp_path / "lab", tmp_path / "img", tmp_path / "lab")
    assert t.x_train.shape == t.x_test.shape == (40, 20)


def test_load_idx_dataset_mismatch(tmp_path):
    write_idx(tmp_path / "img", np.zeros((3, 2, 2)), 0x08)
    write_idx(tmp_path / "lab", np.zeros(4), 0x08)
    with pytest.raises(ConfigError, match="do not match"):
        load_idx_dataset(tmp_path / "img", tmp_path / "lab")
    with pytest.raises(ConfigError, match="both test_images and test_labels"):
        load_idx_dataset(tmp_path / "img", tmp_path / "lab", test_images=tmp_path / "img")
