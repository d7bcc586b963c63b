"""The counter-based normal generator used inside kernels."""

import numpy as np
import pytest
from scipy import stats

from xbarlab.emulator.rng import fill_normals, fill_ziggurat, new_key


def draw(key: int, n: int, fill=fill_normals) -> np.ndarray:
    z = np.empty(n, dtype=np.float32)
    fill(np.uint64(key), z)
    return z


@pytest.mark.parametrize("fill", [fill_normals, fill_ziggurat], ids=["box-muller", "ziggurat"])
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


@pytest.mark.parametrize("fill", [fill_normals, fill_ziggurat], ids=["box-muller", "ziggurat"])
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


def test_ziggurat_tails_follow_the_normal_law():
    """The rejection and tail paths (a few % of draws) must keep the tails right."""
    z = np.abs(draw(13, 4_000_000, fill_ziggurat).astype(np.float64))
    for t in (2.0, 3.0, 3.442, 4.0):
        p = 2 * stats.norm.sf(t)
        assert abs(np.mean(z > t) - p) < 5 * np.sqrt(p / z.size)
