"""Surprisal: putting binary and continuous signals on one additive evidence scale.

A signal that a unit shows is worth ``-log P`` nats, where ``P`` is how often
an ordinary unit of the same market shows it (or something at least as
extreme). Rare signals weigh more, common ones (legal subcontracting in a
market where half the contracts are subcontracted) weigh little, and the
weights come from the market itself rather than from hand-tuned constants.
Summing the surprisals of several signals is the naive-Bayes log-likelihood
ratio of "this unit is a scheme" when the scheme shows each signal almost
surely; it rewards units where independent pieces of evidence agree.

The same scale gives interpretable thresholds: a score above ``-log(alpha)``
means the unit's combined evidence is rarer than a 1-in-``1/alpha`` event.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special, stats

__all__ = [
    "bh_qvalues",
    "bh_threshold",
    "binom_surprisal",
    "brown_surprise",
    "flag_surprisal",
    "tail_surprisal",
    "violation_surprisal",
    "z_surprisal",
]

_LOG2 = float(np.log(2.0))
_LN10 = float(np.log(10.0))


def chi2_logsf(x: Any, df: float) -> np.ndarray:
    """``log P(X > x)`` for ``X ~ chi2(df)`` with one ``df`` for every value: ``scipy.stats.chi2.logsf``.

    The same values as scipy's (the same branch at the median, the same special
    functions), but the median is computed once: scipy broadcasts ``df`` to the
    shape of ``x`` and inverts the incomplete gamma function for every element,
    which was most of the cost of combining millions of p-values.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([0.0, 0.5, 4.0, 80.0, np.inf])
    >>> bool(np.array_equal(chi2_logsf(x, 4.0), stats.chi2.logsf(x, 4.0)))
    True
    """
    x = np.asarray(x, dtype=np.float64)
    if not df > 0:  # outside the family: scipy's NaN
        return np.full(x.shape, np.nan)
    median = 2.0 * special.gammaincinv(df / 2.0, 0.5)  # chi2.ppf(0.5, df), as scipy computes it
    with np.errstate(divide="ignore"):
        out = np.where(x > median, np.log(special.chdtrc(df, x)), np.log1p(-special.chdtr(df, x)))
    out[x <= 0] = 0.0  # the lower end of the support: P(X > x) = 1
    out[np.isnan(x)] = np.nan
    return out


def flag_surprisal(flags: np.ndarray, *, within: np.ndarray | None = None) -> np.ndarray:
    """``-log`` of the market prevalence of a binary signal, for the units that show it.

    The prevalence is smoothed, ``(k + 0.5) / (n + 1)``, so a signal nobody
    else shows is worth about ``log(2n)`` rather than infinity.

    Parameters
    ----------
    flags : array of bool
        Whether each unit shows the signal.
    within : array of bool, optional
        Units that form the reference population (default: all).

    Returns
    -------
    numpy.ndarray
        Surprisal (nats) where ``flags`` is True, 0 elsewhere.

    Examples
    --------
    >>> import numpy as np
    >>> flag_surprisal(np.array([True] + [False] * 99)).round(2)[:2].tolist()
    [4.21, 0.0]
    """
    f = np.asarray(flags, dtype=bool)
    ref = f if within is None else f[np.asarray(within, dtype=bool)]
    p = (ref.sum() + 0.5) / (ref.size + 1.0)
    return np.where(f, -np.log(p), 0.0)


def tail_surprisal(values: np.ndarray, *, reference: np.ndarray | None = None, positive: bool = True) -> np.ndarray:
    """``-log`` of the empirical upper tail ``P(X >= x)`` of each value.

    Parameters
    ----------
    values : array of float
        Values to score (NaN → 0).
    reference : array of float, optional
        Population defining the tail (default: ``values``); NaN ignored.
    positive : bool
        Only strictly positive values earn surprisal (a zero excess payment,
        share or delay is no evidence, however common).

    Examples
    --------
    >>> import numpy as np
    >>> tail_surprisal(np.array([0.0, 0.0, 0.0, 1.0, 5.0])).round(3).tolist()
    [0.0, 0.0, 0.0, 0.916, 1.609]
    """
    x = np.asarray(values, dtype=np.float64)
    ref = x if reference is None else np.asarray(reference, dtype=np.float64)
    ref = np.sort(ref[np.isfinite(ref)])
    out = np.zeros(x.size)
    ok = np.isfinite(x) & ((x > 0) if positive else True)
    if ref.size == 0 or not ok.any():
        return out
    n_ge = ref.size - np.searchsorted(ref, x[ok], side="left")
    out[ok] = -np.log(np.maximum(n_ge, 0.5) / ref.size)
    return out


def z_surprisal(z: np.ndarray) -> np.ndarray:
    """One-sided normal surprisal of a (robust) z-score beyond the median: ``-log(2 · sf(z))``, 0 for z ≤ 0.

    Examples
    --------
    >>> import numpy as np
    >>> z_surprisal(np.array([-1.0, 0.0, 1.645, np.nan])).round(2).tolist()
    [0.0, 0.0, 2.3, 0.0]
    """
    zz = np.nan_to_num(np.asarray(z, dtype=np.float64), nan=0.0)
    return np.maximum(-stats.norm.logsf(np.maximum(zz, 0.0)) - _LOG2, 0.0)


def binom_surprisal(k: np.ndarray, n: np.ndarray, p: np.ndarray | float) -> np.ndarray:
    """Exact binomial upper-tail surprisal ``-log P(X >= k)``, ``X ~ Binomial(n, p)``; 0 where ``k <= 0``.

    Examples
    --------
    >>> import numpy as np
    >>> binom_surprisal(np.array([0, 2, 3]), np.array([3, 3, 3]), 0.1).round(3).tolist()
    [0.0, 3.576, 6.908]
    """
    kk = np.asarray(k, dtype=np.float64)
    nn = np.asarray(n, dtype=np.float64)
    # p = 1 is a certain event: P(X >= k) = 1 for k <= n, surprisal exactly 0.
    pp = np.clip(np.broadcast_to(np.asarray(p, dtype=np.float64), np.broadcast(kk, nn).shape), 1e-12, 1.0)
    out = -stats.binom.logsf(kk - 1, nn, pp)
    return np.where(kk > 0, np.maximum(np.nan_to_num(out, nan=0.0), 0.0), 0.0)


def violation_surprisal(x: np.ndarray, *, z_max: float = 10.0) -> np.ndarray:
    """Surprisal of a signal that is zero for ordinary units (an excess payment, a lead, a share).

    The robust z against the market (capped at ``z_max``) measures how far a
    value lies from the ordinary bulk; the value's prevalence
    (:func:`flag_surprisal` of ``x > 0``) is the floor for any non-zero value,
    so a small violation still counts as the rare event it is.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.r_[np.zeros(98), 1.0, 40.0]
    >>> violation_surprisal(x)[[0, 98, 99]].round(2).tolist()
    [0.0, 3.7, 52.54]
    """
    from ._thresholds import robust_z

    v = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0)
    pos = v > 0
    z = np.minimum(robust_z(v), z_max)
    return np.where(pos, np.maximum(z_surprisal(z), flag_surprisal(pos)), 0.0)


def brown_surprise(*surprises: Any, corr: Any = None) -> np.ndarray:
    """Combine dependent one-sided tests (given as ``-log10 p``) by Brown's method.

    Fisher's statistic ``X = -2 sum(ln p_i)`` is chi-square with ``2k``
    degrees of freedom only when the ``k`` tests are independent; tests that
    read the same data (wins counted, and the value of those wins) are not,
    and Fisher's method then counts one piece of evidence several times.
    Brown (1975) keeps ``X`` and matches its first two null moments with a
    scaled chi-square ``c * chi2(f)``: ``E = 2k``,
    ``Var = 4k + 2 sum_{i<j} cov_ij``, ``c = Var / (2E)``,
    ``f = 2E^2 / Var`` (Kost & McDermott 2002). The covariances of the
    ``-2 ln p_i`` are ``4 rho_ij``, with ``rho`` the correlation of the terms
    estimated from the rows themselves when not given: in a market almost
    every unit is ordinary, so that is the null dependence. Taking the
    correlation rather than the raw covariance keeps the result between
    Fisher (``rho = 0``) and a single test (``rho = 1``: ``k`` copies of one
    test give back its ``p``) even when the terms' spread departs from the
    continuous-``p`` value 4 (empirical p-values have ties). Negative
    correlations are treated as 0 (conservative).

    Parameters
    ----------
    *surprises : arrays of float
        ``-log10 p`` of each test, broadcast together (NaN and negative
        values are no evidence, ``p = 1``).
    corr : array (k, k), optional
        Correlation of the ``-2 ln p`` terms under the null. Default:
        estimated from the rows (0 for a term that is constant, or when
        there are fewer than two rows: Fisher's method).

    Returns
    -------
    numpy.ndarray
        ``-log10`` of the combined p-value, in ``[0, 300]``, on the scale of
        :func:`~collusion.features.fisher_surprise`.

    Examples
    --------
    >>> import numpy as np
    >>> # Independent tests: Fisher (two p = 0.01 give 10^-2.991).
    >>> brown_surprise(np.array([2.0, 0.0]), np.array([2.0, 0.0]), corr=np.eye(2)).round(3).tolist()
    [2.991, 0.0]
    >>> # The same test twice is one test.
    >>> brown_surprise(np.array([2.0, 0.5]), np.array([2.0, 0.5]), corr=np.ones((2, 2))).round(3).tolist()
    [2.0, 0.5]
    """
    if not surprises:
        raise ValueError("brown_surprise needs at least one surprise array")
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in surprises))
    shape, k = arrays[0].shape, len(arrays)
    # -2 ln p of every test, one row per test.
    terms = 2.0 * _LN10 * np.stack([np.clip(np.nan_to_num(a, nan=0.0), 0.0, None).ravel() for a in arrays])
    if corr is None:
        rho = np.zeros((k, k))
        sd = terms.std(axis=1) if terms.shape[1] else np.zeros(k)  # no rows: no dependence to see
        live = np.flatnonzero(sd > 0)
        if terms.shape[1] >= 2 and live.size >= 2:
            rho[np.ix_(live, live)] = np.corrcoef(terms[live])
    else:
        rho = np.asarray(corr, dtype=np.float64)
        if rho.shape != (k, k):
            raise ValueError(f"corr must be {k} x {k}, got {rho.shape}")
    rho = np.clip(np.nan_to_num(rho, nan=0.0), 0.0, 1.0)
    off = float(rho.sum() - np.trace(rho))  # sum over i != j
    mean = 2.0 * k
    var = 4.0 * k + 4.0 * off  # 2 sum_{i<j} 4 rho_ij
    scale, df = var / (2.0 * mean), 2.0 * mean**2 / var
    out = -chi2_logsf(terms.sum(axis=0) / scale, df) / _LN10
    return (np.clip(np.nan_to_num(out, posinf=300.0), 0.0, 300.0) + 0.0).reshape(shape)


def bh_qvalues(logp: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values from ``-log10`` p-values (as ``-log10 q``).

    Working on the log scale keeps p-values far below 1e-300 ordered.

    Examples
    --------
    >>> import numpy as np
    >>> bh_qvalues(np.array([3.0, 1.0, 0.0])).round(3).tolist()
    [2.523, 0.824, 0.0]
    """
    lp = np.asarray(logp, dtype=np.float64)
    m = lp.size
    if m == 0:
        return lp.copy()
    order = np.argsort(-lp, kind="stable")  # smallest p first
    rank = np.arange(1, m + 1)
    lq = lp[order] - np.log10(m / rank)
    # q_i = min_{j >= i} p_j m / j  →  on -log10: running max from the end.
    lq = np.maximum.accumulate(lq[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.maximum(lq, 0.0)
    return out


def bh_threshold(surprises: Any, fdr: float) -> float:
    """Surprise threshold of the Benjamini–Hochberg procedure at false discovery rate ``fdr``.

    Surprises are ``-log10 p``; units at or above the returned value are the
    BH discoveries. When there are none, the Bonferroni level
    ``-log10(fdr / m)`` is returned (which no unit reaches).

    Examples
    --------
    >>> import numpy as np
    >>> round(bh_threshold(np.array([6.0, 3.0, 0.5, 0.1]), 0.05), 3)
    3.0
    >>> round(bh_threshold(np.array([0.5, 0.1]), 0.05), 3)
    1.602
    """
    s = np.asarray(surprises, dtype=np.float64)
    s = np.sort(s[np.isfinite(s)])[::-1]
    m = s.size
    if m == 0:
        return float("inf")
    # p_(i) <= fdr * i / m  <=>  s_(i) >= -log10(fdr * i / m)
    need = -np.log10(fdr * np.arange(1, m + 1) / m)
    ok = np.flatnonzero(s >= need)
    if ok.size == 0:
        return float(-np.log10(fdr / m))
    return float(s[ok[-1]])
