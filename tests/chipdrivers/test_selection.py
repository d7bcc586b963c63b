"""Selection resolution against numpy's own indexing of np.arange(rows*cols)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from xbarlab.chipdrivers.selection import Selection, resolve
from xbarlab.errors import SelectionError

SHAPE = (16, 12)


def _expected(shape, sel):
    """Flat indices numpy itself selects with ``sel``."""
    return np.arange(shape[0] * shape[1]).reshape(shape)[sel]


def _flat(s: Selection, shape) -> np.ndarray:
    return np.arange(shape[0] * shape[1]) if s.flat is None else s.flat


# -- the accepted forms ---------------------------------------------------------------
def test_none_selects_all_devices_in_array_shape():
    s = resolve(None, SHAPE)
    assert s.flat is None
    assert s.shape == SHAPE
    assert s.size == 16 * 12


def test_mask_gives_row_major_flat_indices():
    mask = np.zeros(SHAPE, dtype=bool)
    mask[0, 5] = mask[3, 0] = mask[3, 11] = mask[15, 2] = True
    s = resolve(mask, SHAPE)
    np.testing.assert_array_equal(s.flat, [5, 36, 47, 182])
    assert s.shape == (4,)
    assert s.flat.dtype == np.intp
    assert s.flat.flags.c_contiguous


def test_mask_as_nested_lists_is_accepted():
    mask = [[True, False], [False, True]]
    s = resolve(mask, (2, 2))
    np.testing.assert_array_equal(s.flat, [0, 3])


def test_empty_mask_selects_nothing():
    s = resolve(np.zeros(SHAPE, dtype=bool), SHAPE)
    assert s.shape == (0,)
    assert s.size == 0


def test_index_arrays_broadcast_like_numpy():
    rows = np.array([[1], [4], [7]])
    cols = np.array([0, 2, 11])
    s = resolve((rows, cols), SHAPE)
    assert s.shape == (3, 3)
    np.testing.assert_array_equal(s.flat, _expected(SHAPE, (rows, cols)).ravel())


def test_scalar_indices_give_a_0d_selection():
    s = resolve((3, 4), SHAPE)
    assert s.shape == ()
    assert s.size == 1
    np.testing.assert_array_equal(s.flat, [3 * 12 + 4])


def test_lists_are_accepted_as_index_arrays():
    s = resolve(([0, 15], [11, 0]), SHAPE)
    np.testing.assert_array_equal(s.flat, [11, 180])


def test_empty_index_arrays_of_any_dtype_select_nothing():
    for empty in ([], np.array([], dtype=float), np.array([], dtype=bool)):
        s = resolve((empty, empty), SHAPE)
        assert s.shape == (0,)


def test_duplicates_allowed_for_reads_but_refused_when_unique():
    sel = (np.array([1, 2, 1]), np.array([3, 3, 3]))
    s = resolve(sel, SHAPE)
    np.testing.assert_array_equal(s.flat, [15, 27, 15])
    with pytest.raises(SelectionError, match="more than once"):
        resolve(sel, SHAPE, unique=True)


# -- index dtypes: the flat index must not overflow in the index dtype ---------------
@pytest.mark.parametrize(
    "dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]
)
def test_small_integer_index_dtypes_give_the_right_device(dtype):
    # Every index fits the dtype, but the flat index r * cols + c does not (for the
    # small dtypes): computing it in the index dtype would wrap around silently.
    side = min(int(np.iinfo(dtype).max), 300)
    shape = (side, side)
    r, c = shape[0] - 1, shape[1] - 1
    rows, cols = np.array([r, 1], dtype=dtype), np.array([c, 2], dtype=dtype)
    s = resolve((rows, cols), shape)
    np.testing.assert_array_equal(s.flat, [r * shape[1] + c, shape[1] + 2])
    assert s.flat.dtype == np.intp


# -- malformed selections -------------------------------------------------------------
@pytest.mark.parametrize(
    ("sel", "words"),
    [
        (np.zeros((12, 16), dtype=bool), "mask has shape"),
        (np.zeros(16 * 12, dtype=bool), "mask has shape"),
        (np.ones((16, 12, 1), dtype=bool), "mask has shape"),
        ((np.array([16]), np.array([0])), "row index 16 out of range 0..15"),
        ((np.array([0]), np.array([12])), "column index 12 out of range 0..11"),
        ((np.array([-1]), np.array([0])), "row index -1 out of range"),
        ((np.array([0]), np.array([-3])), "column index -3 out of range"),
        ((np.array([0.0, 1.0]), np.array([0, 1])), "row indices must be integers"),
        ((np.array([0, 1]), np.array([True, False])), "column indices must be integers"),
        ((np.array([0, 1, 2]), np.array([0, 1])), "do not broadcast"),
        ((np.array([1]),), "tuple of length 1"),
        ((1, 2, 3), "tuple of length 3"),
        (np.array([3, 4]), "dtype int"),
        ([3, 4], "got list"),
        ("all", "got str"),
        (5, "got int"),
        (np.arange(192).reshape(SHAPE), "dtype int"),
    ],
)
def test_malformed_selection_raises_selection_error(sel, words):
    with pytest.raises(SelectionError, match=words):
        resolve(sel, SHAPE)


# -- properties against numpy ---------------------------------------------------------
shapes = st.tuples(st.integers(1, 40), st.integers(1, 40))


@settings(max_examples=200, deadline=None)
@given(data=st.data(), shape=shapes)
def test_mask_matches_numpy_boolean_indexing(data, shape):
    mask = data.draw(hnp.arrays(bool, shape))
    s = resolve(mask, shape)
    expected = _expected(shape, mask)
    assert s.shape == expected.shape
    np.testing.assert_array_equal(_flat(s, shape), expected)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), shape=shapes, dtype=st.sampled_from([np.intp, np.int64, np.int32]))
def test_index_arrays_match_numpy_fancy_indexing(data, shape, dtype):
    rshape, cshape = data.draw(
        hnp.mutually_broadcastable_shapes(
            num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=5
        )
    ).input_shapes
    rows = data.draw(hnp.arrays(dtype, rshape, elements=st.integers(0, shape[0] - 1)))
    cols = data.draw(hnp.arrays(dtype, cshape, elements=st.integers(0, shape[1] - 1)))
    s = resolve((rows, cols), shape)
    expected = _expected(shape, (rows, cols))
    assert s.shape == expected.shape
    assert s.size == expected.size
    np.testing.assert_array_equal(_flat(s, shape), expected.ravel())
    uniq = np.unique(expected).size == expected.size
    if uniq:
        np.testing.assert_array_equal(
            resolve((rows, cols), shape, unique=True).flat, expected.ravel()
        )
    else:
        with pytest.raises(SelectionError):
            resolve((rows, cols), shape, unique=True)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), shape=shapes)
def test_out_of_range_indices_always_raise(data, shape):
    axis = data.draw(st.integers(0, 1))
    n = shape[axis]
    bad = data.draw(st.one_of(st.integers(n, n + 1000), st.integers(-1000, -1)))
    idx = [np.array([0, 0]), np.array([0, 0])]
    idx[axis] = np.array([0, bad])
    with pytest.raises(SelectionError, match="out of range"):
        resolve(tuple(idx), shape)
