"""Surprisal combiners: Brown's method for dependent tests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from collusion.features import brown_surprise, fisher_surprise


def test_brown_is_fisher_for_independent_tests() -> None:
    a, b = np.array([0.0, 0.5, 2.0, 7.0]), np.array([1.0, 0.0, 2.0, 3.0])
    np.testing.assert_allclose(brown_surprise(a, b, corr=np.eye(2)), fisher_surprise(a, b), atol=1e-12)
    # Negative dependence is treated as none (conservative).
    np.testing.assert_allclose(brown_surprise(a, b, corr=np.array([[1.0, -0.5], [-0.5, 1.0]])),
                               fisher_surprise(a, b), atol=1e-12)
    # Estimated from independent uniform p-values: close to Fisher.
    rng = np.random.default_rng(0)
    s = -np.log10(rng.uniform(size=(3, 20_000)))
    np.testing.assert_allclose(brown_surprise(*s)[:50], fisher_surprise(*s)[:50], rtol=0.03)


def test_brown_counts_one_test_once() -> None:
    s = np.array([0.0, 0.3, 2.0, 5.0])
    # k copies of one test: Var = 4k^2, c = k, f = 2, and chi2(2) tail of X/k = -2 ln p is p.
    np.testing.assert_allclose(brown_surprise(s, s, s), s, atol=1e-9)
    np.testing.assert_allclose(brown_surprise(s, s, corr=np.ones((2, 2))), s, atol=1e-9)


def test_brown_hand_value() -> None:
    # Two tests with p = 0.01 and correlation 0.5: E = 4, Var = 8 + 2 * 4 * 0.5 = 12,
    # c = 12 / 8 = 1.5, f = 2 * 16 / 12 = 8 / 3, X = 4 ln 100.
    out = brown_surprise(2.0, 2.0, corr=np.array([[1.0, 0.5], [0.5, 1.0]]))
    assert float(out) == pytest.approx(-np.log10(stats.chi2.sf(4 * np.log(100) / 1.5, 8 / 3)))
    assert fisher_surprise(2.0) < out < fisher_surprise(2.0, 2.0)


def test_brown_edge_cases() -> None:
    a = np.array([1.0, np.nan, 3.0, -1.0])
    dead = np.zeros(4)
    # A constant term is independent of the others: it counts as a p = 1 Fisher term.
    np.testing.assert_allclose(brown_surprise(a, dead), fisher_surprise(a, dead), atol=1e-12)
    assert brown_surprise(np.ones((2, 3)), np.ones((2, 3))).shape == (2, 3)
    assert np.all(brown_surprise(a) >= 0.0)
    with pytest.raises(ValueError):
        brown_surprise()
    with pytest.raises(ValueError, match="corr"):
        brown_surprise(a, a, corr=np.eye(3))


@settings(max_examples=50, deadline=None)
@given(
    df=st.sampled_from([1.0, 2.0, 3.0, 4.0, 6.0, 10.0, 17.0, 40.0, 0.5]),
    seed=st.integers(0, 2**31 - 1),
)
def test_chi2_logsf_equals_scipy(df, seed):
    # chi2_logsf reimplements scipy's logsf to compute the median once: it must stay
    # value for value what scipy gives, around the median branch and at the ends.
    from collusion.features._surprisal import chi2_logsf

    rng = np.random.default_rng(seed)
    median = stats.chi2.median(df)
    x = np.concatenate([
        rng.chisquare(df, 500) * rng.choice([0.1, 1.0, 10.0], 500),
        [0.0, -1.0, np.inf, np.nan, median, np.nextafter(median, 0), np.nextafter(median, np.inf)],
    ])
    np.testing.assert_array_equal(chi2_logsf(x, df), stats.chi2.logsf(x, df))
