"""The counter-based normal generator used inside kernels."""

import numpy as np
import pytest
from scipy import stats

from xbarlab.emulator.rng import fill_fast_normals, fill_normals, new_key


def draw(key: int, n: int, fill=fill_normals) -> np.ndarray:
    z = np.empty(n, dtype=np.float32)
    fill(np.uint64(key), z)
    return z


@pytest.mark.parametrize("fill", [fill_normals, fill_fast_normals], ids=["box-muller", "fast"])
def test_moments_and_quantiles_match_standard_normal(fill):
    z = draw(7, 1_000_000, fill).astype(np.float64)
    se = 1 / np.sqrt(z.size)
    assert abs(z.mean()) < 5 * se
    assert abs(z.std() - 1) < 5 * se
    assert abs(stats.skew(z)) < 5 * np.sqrt(6) * se
    assert abs(stats.kurtosis(z)) < 5 * np.sqrt(24) * se
    for q in (0.001, 0.023, 0.16, 0.5, 0.84, 0.977, 0.999):
        assert abs(np.mean(z < stats.norm.ppf(q)) - q) < 5 * np.sqrt(q * (1 - q)) * se
    assert stats.kstest(z[:100_000], "norm").pvalue > 1e-3


@pytest.mark.parametrize("fill", [fill_normals, fill_fast_normals], ids=["box-muller", "fast"])
def test_pairs_and_neighbours_are_uncorrelated(fill):
    z = draw(11, 400_000, fill)
    for a, b in ((z[0::2], z[1::2]), (z[:-1], z[1:]), (z[:-2], z[2:])):
        assert abs(np.corrcoef(a, b)[0, 1]) < 0.01


def test_keys_give_reproducible_independent_streams():
    np.testing.assert_array_equal(draw(3, 1001), draw(3, 1001))
    assert abs(np.corrcoef(draw(3, 100_000), draw(4, 100_000))[0, 1]) < 0.015
    # odd lengths fill the last element from the first of its pair
    np.testing.assert_array_equal(draw(3, 1001)[:1000], draw(3, 1000))


def test_new_key_comes_from_the_generator():
    a = new_key(np.random.default_rng(5))
    b = new_key(np.random.default_rng(5))
    assert a == b and a.dtype == np.uint64
    assert new_key(np.random.default_rng(6)) != a


def test_fast_generator_tails_follow_the_normal_law():
    """The float32 log and sin/cos polynomials and the 31-bit radius keep the tails right,
    out to where 4M draws still see a few."""
    z = np.abs(draw(13, 4_000_000, fill_fast_normals).astype(np.float64))
    for t in (2.0, 3.0, 4.0, 4.5):
        p = 2 * stats.norm.sf(t)
        assert abs(np.mean(z > t) - p) < 5 * np.sqrt(p / z.size)
    assert z.max() < 6.7  # the truncation of a 31-bit uniform radius


def test_fast_generator_angles_cover_every_octant_evenly():
    """Box-Muller angle = atan2(z1, z0) must be uniform; an octant rotation bug shows here."""
    z = draw(17, 800_000, fill_fast_normals).reshape(-1, 2).astype(np.float64)
    octant = np.floor((np.arctan2(z[:, 1], z[:, 0]) + np.pi) / (np.pi / 4)).astype(int) % 8
    counts = np.bincount(octant, minlength=8)
    assert stats.chisquare(counts).pvalue > 1e-4


def test_fast_generator_rows_do_not_depend_on_the_thread_count():
    import numba

    z1 = np.empty((64, 33), np.float32)
    z2 = np.empty((64, 33), np.float32)
    fill_fast_normals(np.uint64(5), z1)
    n = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        fill_fast_normals(np.uint64(5), z2)
    finally:
        numba.set_num_threads(n)
    np.testing.assert_array_equal(z1, z2)
