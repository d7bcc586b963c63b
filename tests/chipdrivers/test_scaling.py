"""Per-vector input scaling of tiles against numpy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from xbarlab.chipdrivers.scaling import normalise
from xbarlab.errors import ConfigError

finite = st.floats(
    np.float32(-1e30).item(),
    np.float32(1e30).item(),
    allow_nan=False,
    allow_subnormal=False,
    width=32,
)


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 9)), elements=finite),
    st.integers(0, 3),
)
def test_normalise_matches_numpy(x, pad):
    u, norm = normalise(x, 0.2, x.shape[1] + pad, "forward")
    want = np.abs(x).max(axis=1)
    np.testing.assert_array_equal(norm, want)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = 0.2 / want.astype(np.float64)
        scaled = np.where(want[:, None] > 0, x * f[:, None], 0).astype(np.float32)
    np.testing.assert_allclose(u[:, : x.shape[1]], scaled, rtol=1e-6, atol=1e-30)
    assert np.all(u[:, x.shape[1] :] == 0)
    assert np.all(np.abs(u) <= np.float32(0.2) * (1 + 1e-6))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(bad):
    x = np.ones((3, 4), np.float32)
    x[1, 2] = bad
    with pytest.raises(ConfigError, match="NaN or infinity"):
        normalise(x, 0.2, 4, "forward")


def test_zero_vectors_scale_to_zero():
    x = np.zeros((2, 5), np.float32)
    x[1, 3] = -2.0
    u, norm = normalise(x, 0.2, 5, "forward")
    assert list(norm) == [0.0, 2.0]
    assert np.all(u[0] == 0) and u[1, 3] == pytest.approx(-0.2)


def test_scale_rows_matches_numpy_on_views_and_arrays():
    from xbarlab.chipdrivers.scaling import scale_rows

    rng = np.random.default_rng(4)
    full = rng.standard_normal((7, 12)).astype(np.float32)
    f = rng.uniform(0.5, 2, 7).astype(np.float32)
    expected = full[:, :9] * f[:, None]
    view = full.copy()[:, :9]  # the chip's output with spare columns: a strided view
    scale_rows(view, f, 1.0)
    np.testing.assert_array_equal(view, expected)
    whole = full.copy()
    scale_rows(whole, f, 0.5)
    np.testing.assert_array_equal(whole, full * (f * np.float32(0.5))[:, None])


def test_large_batches_take_the_parallel_path_with_the_same_results():
    from xbarlab.chipdrivers import scaling

    x = np.random.default_rng(9).standard_normal((8200, 256)).astype(np.float32)  # > 2^21
    assert x.size >= scaling._PARALLEL_MIN
    u, norm = normalise(x, 0.2, 256, "forward")
    u_ref, norm_ref = normalise(x[:100], 0.2, 256, "forward")  # serial path
    np.testing.assert_array_equal(u[:100], u_ref)
    np.testing.assert_array_equal(norm[:100], norm_ref)
    np.testing.assert_array_equal(norm, np.abs(x).max(axis=1))
    x[8150, 7] = np.nan
    with pytest.raises(ConfigError, match="NaN or infinity"):
        normalise(x, 0.2, 256, "forward")
