"""Lot-splitting features: candidate groups of tenders and their threshold arithmetic.

A buyer that must tender openly above a threshold can split one purchase into
several smaller tenders, each below the threshold, and award them without open
competition. The functions here

* key tenders by buyer and purchase (the category and region of the work,
  else the project) — :func:`lot_keys`;
* cut each key's tenders into groups published close together in time with one
  sort and a gap split — :func:`window_groups`;
* sum each group against the open-tender threshold — :func:`group_summary`;
* test whether a buyer's estimates bunch just below the threshold —
  :func:`threshold_bunching`.

All of them work on arrays (one row per tender) without a Python loop per
tender or per group.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._arrays import first_of_runs, group_keys
from ._segments import group_order, segment_broadcast, segment_min

__all__ = [
    "group_summary",
    "lot_keys",
    "rate_outside",
    "tender_thresholds",
    "threshold_bunching",
    "win_counts",
    "window_groups",
]


def tender_thresholds(category: Any, settings: Any) -> np.ndarray:
    """Open-tender threshold of each tender, from ``settings.threshold_for(category)``.

    Evaluated once per distinct category, then broadcast to tenders.

    Parameters
    ----------
    category : array-like or Categorical
        Category of each tender (missing → the default threshold).
    settings : collusion.Settings
        Jurisdiction settings.

    Examples
    --------
    >>> import pandas as pd
    >>> from collusion import Settings
    >>> s = Settings(open_tender_threshold=4e6, thresholds_by_category={"goods": 2e6})
    >>> tender_thresholds(pd.Series(["works", "goods", None]), s).tolist()
    [4000000.0, 2000000.0, 4000000.0]
    """
    cat = pd.Categorical(category) if not isinstance(getattr(category, "dtype", None), pd.CategoricalDtype) else (
        pd.Series(category).array
    )
    cats = list(cat.categories)
    per_cat = np.array([settings.threshold_for(str(c)) for c in cats] + [settings.threshold_for(None)], dtype=float)
    codes = np.asarray(cat.codes, dtype=np.int64)
    return per_cat[np.where(codes >= 0, codes, len(cats))]


def lot_keys(
    buyer: np.ndarray,
    category: np.ndarray,
    region: np.ndarray,
    project: np.ndarray | None = None,
    extra: np.ndarray | None = None,
) -> np.ndarray:
    """Purchase key of each tender: (buyer, category, region), else (buyer, project).

    The work itself — same buyer, same kind of work, same place — identifies a
    purchase better than a project id, because a split purchase is usually
    registered as several projects. The project is the fallback for tenders
    whose category or region is unknown. ``extra`` (e.g. open vs non-open
    procedure) splits keys further.

    Parameters
    ----------
    buyer, category, region : array of int
        Integer codes (-1 = missing). Tenders without a buyer get key -1.
    project : array of int, optional
        Project codes, used when category or region is missing.
    extra : array of int, optional
        Further key component (-1 = missing counts as its own value).

    Returns
    -------
    numpy.ndarray
        ``int64`` dense key codes (equal key = same buyer and purchase), -1
        where no key can be formed.

    Examples
    --------
    >>> import numpy as np
    >>> lot_keys(np.array([0, 0, 0, 1, -1, 0]), np.array([1, 1, -1, 1, 1, 2]), np.array([0, 0, 0, 0, 0, 0]),
    ...          project=np.array([5, 6, 7, -1, 5, -1])).tolist()
    [0, 0, 2, 3, -1, 1]
    """
    b = np.asarray(buyer, dtype=np.int64)
    c = np.asarray(category, dtype=np.int64)
    r = np.asarray(region, dtype=np.int64)
    p = np.full(b.size, -1, dtype=np.int64) if project is None else np.asarray(project, dtype=np.int64)
    e = np.zeros(b.size, dtype=np.int64) if extra is None else np.asarray(extra, dtype=np.int64)
    cell = (c >= 0) & (r >= 0)
    ok = (b >= 0) & (cell | (p >= 0))
    out = np.full(b.size, -1, dtype=np.int64)
    if not ok.any():
        return out
    # The flag column keeps a (category, region) key from colliding with a project key.
    cols = [b, e, (~cell).astype(np.int64), np.where(cell, c, p), np.where(cell, r, -1)]
    out[ok] = _lex_codes([col[ok] for col in cols])
    return out


def _lex_codes(columns: list[np.ndarray]) -> np.ndarray:
    """Dense codes of the rows of integer ``columns``, numbered in lexicographic order of the rows.

    Same result as ``np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)[1]``,
    but the columns are packed into one int64 (mixed radix, which keeps lexicographic
    order) and sorted once: ``np.unique(axis=0)`` argsorts a structured view, about 20×
    slower (2.3 s of the 1M-tender lot-splitting fit). When the radix would overflow, the
    key packed so far is first renumbered densely (order kept).

    Examples
    --------
    >>> _lex_codes([np.array([1, 0, 1, 0]), np.array([5, 7, -1, 7])]).tolist()
    [2, 0, 1, 0]
    """
    key = np.zeros(columns[0].size, dtype=np.int64)
    span = 1  # number of distinct values ``key`` can take (Python int: never overflows)
    for col in columns:
        if col.size == 0:
            return key
        lo = int(col.min())
        width = int(col.max()) - lo + 1
        if span * width >= 2**62:
            distinct, key = group_keys(key)  # dense ranks, order kept
            span = distinct.size
        key = key * width + (col - lo)
        span *= width
    return group_keys(key)[1]


def window_groups(keys: np.ndarray, days: np.ndarray, window_days: float) -> np.ndarray:
    """Group tenders of one key published within ``window_days`` of each other.

    Tenders are sorted by (key, publication day); a new group starts where the
    key changes or the gap to the previous tender exceeds ``window_days`` (a
    sliding window). A chain of tenders can drift: a group whose span would
    exceed the window is cut again into consecutive windows anchored at its
    first tender, so no group spans more than ``window_days``.

    Parameters
    ----------
    keys : array of int
        Purchase key per tender (:func:`lot_keys`); -1 = not groupable.
    days : array of float
        Publication day per tender (NaN = unknown: not groupable).
    window_days : float
        Window length in days.

    Returns
    -------
    numpy.ndarray
        Group label per tender (``int64``, 0..G-1 in (key, day) order), -1
        for tenders that cannot be grouped.

    Examples
    --------
    >>> import numpy as np
    >>> window_groups(np.array([0, 0, 0, 0, 1, -1]), np.array([0.0, 10.0, 200.0, 205.0, 3.0, 1.0]), 90).tolist()
    [0, 0, 1, 1, 2, -1]
    >>> window_groups(np.zeros(5, int), np.array([0.0, 60.0, 120.0, 180.0, 240.0]), 90).tolist()
    [0, 0, 1, 2, 2]
    """
    k = np.asarray(keys, dtype=np.int64)
    d = np.asarray(days, dtype=np.float64)
    ok = np.flatnonzero((k >= 0) & np.isfinite(d))
    out = np.full(k.size, -1, dtype=np.int64)
    if ok.size == 0:
        return out
    order, _ = group_order(k[ok], values=d[ok])
    rows = ok if order is None else ok[order]
    ks, ds = k[rows], d[rows]
    new = np.r_[True, (ks[1:] != ks[:-1]) | (np.diff(ds) > window_days)]
    chain = np.cumsum(new) - 1
    # Anchor fixed windows at each chain's first tender so long chains do not drift.
    chain_offsets = np.r_[np.flatnonzero(new), ds.size]
    start = segment_broadcast(segment_min(ds, chain_offsets), chain_offsets)
    bucket = np.floor((ds - start) / window_days).astype(np.int64)
    new_group = np.r_[True, (chain[1:] != chain[:-1]) | (bucket[1:] != bucket[:-1])]
    out[rows] = np.cumsum(new_group) - 1
    return out


def group_summary(
    groups: np.ndarray,
    estimate: np.ndarray,
    threshold: np.ndarray,
    non_open: np.ndarray,
    winner: np.ndarray,
    days: np.ndarray,
    *,
    near_low: float = 0.8,
) -> pd.DataFrame:
    """Threshold arithmetic and homogeneity of each candidate group.

    Parameters
    ----------
    groups : array of int
        Group label per tender (-1 = none), e.g. from :func:`window_groups`.
    estimate, threshold : array of float
        Estimate and open-tender threshold of each tender (NaN estimate: the
        group cannot be summed; counted in ``n_missing``).
    non_open : array of bool
        The tender used a non-open procedure.
    winner : array of int
        Winning company code per tender (-1 = no winner).
    days : array of float
        Publication day per tender.
    near_low : float
        Lower edge of the "just below the threshold" band, as a share of it.

    Returns
    -------
    pandas.DataFrame
        One row per group label: ``n`` members, ``n_missing`` estimates,
        ``sum_ratio`` (sum of estimates / group threshold), ``max_ratio``
        (largest member / its threshold), ``all_below``, ``sum_above``,
        ``split`` (both), ``n_near`` (members in ``[near_low, 1)`` × threshold),
        ``n_non_open``, ``n_awarded``, ``top_winner`` (code of the most frequent
        winner, -1 if none), ``top_wins`` (its wins) and ``span_days``.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.array([0, 0, 0, 1, 1])
    >>> est = np.array([3.5, 3.6, 3.9, 1.0, 5.0])
    >>> out = group_summary(g, est, np.full(5, 4.0), np.array([1, 1, 1, 0, 0], bool),
    ...                     np.array([7, 7, 8, 1, 2]), np.array([0.0, 5.0, 9.0, 0.0, 40.0]))
    >>> out[["n", "sum_ratio", "split", "n_near", "n_non_open", "top_wins", "span_days"]]
       n  sum_ratio  split  n_near  n_non_open  top_wins  span_days
    0  3        2.75   True       3           3         2        9.0
    1  2        1.50  False       0           0         1       40.0
    """
    g = np.asarray(groups, dtype=np.int64)
    rows = np.flatnonzero(g >= 0)
    n_groups = int(g[rows].max()) + 1 if rows.size else 0
    gg = g[rows]
    est = np.asarray(estimate, dtype=np.float64)[rows]
    thr = np.asarray(threshold, dtype=np.float64)[rows]
    d = np.asarray(days, dtype=np.float64)[rows]
    w = np.asarray(winner, dtype=np.int64)[rows]
    ratio = est / thr
    has = np.isfinite(ratio)
    n = np.bincount(gg, minlength=n_groups)
    n_missing = np.bincount(gg[~has], minlength=n_groups)
    # Mixed categories cannot occur within a key, but thresholds can still differ by
    # procedure-specific settings; the group threshold is the smallest member threshold.
    g_thr = np.full(n_groups, np.inf)
    np.minimum.at(g_thr, gg, thr)
    sum_est = np.bincount(gg[has], weights=est[has], minlength=n_groups)
    max_ratio = np.full(n_groups, np.nan)
    if has.any():
        tmp = np.full(n_groups, -np.inf)
        np.maximum.at(tmp, gg[has], ratio[has])
        max_ratio = np.where(np.isfinite(tmp), tmp, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        sum_ratio = np.where(n_missing < n, sum_est / g_thr, np.nan)
    all_below = (n_missing == 0) & (np.nan_to_num(max_ratio, nan=np.inf) < 1.0)
    sum_above = np.nan_to_num(sum_ratio, nan=0.0) >= 1.0
    near = has & (ratio >= near_low) & (ratio < 1.0)
    # Most frequent winner per group: count (group, winner) pairs, keep each group's max.
    won = w >= 0
    top_winner = np.full(n_groups, -1, dtype=np.int64)
    top_wins = np.zeros(n_groups, dtype=np.int64)
    if won.any():
        # (group, winner) packed into one int64 and sorted: np.unique(axis=0) sorts a
        # structured view, several times slower.
        width = np.int64(w.max() + 1)
        key = np.sort(gg[won] * width + w[won])
        starts = np.flatnonzero(first_of_runs(key))
        counts = np.diff(np.r_[starts, key.size])
        pg, pw = key[starts] // width, key[starts] % width
        order = np.lexsort((pw, -counts, pg))
        first = order[first_of_runs(pg[order])]
        top_winner[pg[first]] = pw[first]
        top_wins[pg[first]] = counts[first]
    lo = np.full(n_groups, np.inf)
    hi = np.full(n_groups, -np.inf)
    np.minimum.at(lo, gg, d)
    np.maximum.at(hi, gg, d)
    return pd.DataFrame(
        {
            "n": n,
            "n_missing": n_missing,
            "sum_ratio": sum_ratio,
            "max_ratio": max_ratio,
            "all_below": all_below,
            "sum_above": sum_above,
            "split": all_below & sum_above & (n >= 2),
            "n_near": np.bincount(gg[near], minlength=n_groups),
            "n_non_open": np.bincount(gg[np.asarray(non_open, dtype=bool)[rows]], minlength=n_groups),
            "n_awarded": np.bincount(gg[won], minlength=n_groups),
            "top_winner": top_winner,
            "top_wins": top_wins,
            "span_days": np.where(n > 0, hi - lo, np.nan),
        }
    )


def threshold_bunching(
    buyer: np.ndarray, ratio: np.ndarray, *, low: float = 0.8, high: float = 1.0
) -> pd.DataFrame:
    """Do a buyer's estimates bunch just below the open-tender threshold?

    Counts each buyer's tenders whose estimate / threshold lies in
    ``[low, high)`` and compares that share with the market's through the
    exact binomial upper tail ``P(X >= n_near | n, p_market)``.

    Parameters
    ----------
    buyer : array of int
        Buyer code per tender (-1 = unknown, left out).
    ratio : array of float
        Estimate / threshold per tender (NaN left out).

    Returns
    -------
    pandas.DataFrame
        One row per buyer code: ``n`` (tenders with a ratio), ``n_near``,
        ``share_near``, ``p_market`` and ``p_value``.

    Examples
    --------
    >>> import numpy as np
    >>> b = np.r_[np.zeros(10, int), np.ones(90, int)]
    >>> r = np.r_[np.full(8, 0.9), np.full(2, 0.3), np.linspace(0.01, 3, 90)]
    >>> out = threshold_bunching(b, r)
    >>> out["n_near"].tolist(), bool(out.loc[0, "p_value"] < 1e-4)
    ([8, 6], True)
    """
    b = np.asarray(buyer, dtype=np.int64)
    r = np.asarray(ratio, dtype=np.float64)
    ok = (b >= 0) & np.isfinite(r)
    n_b = int(b.max()) + 1 if b.size and b.max() >= 0 else 0
    near = ok & (r >= low) & (r < high)
    n = np.bincount(b[ok], minlength=n_b)
    k = np.bincount(b[near], minlength=n_b)
    p = near.sum() / ok.sum() if ok.any() else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    pval = np.where(k > 0, stats.binom.sf(k - 1, n, p), 1.0)
    return pd.DataFrame({"n": n, "n_near": k, "share_near": share, "p_market": p, "p_value": pval})




def win_counts(
    unit: np.ndarray, winner: np.ndarray, query_unit: np.ndarray, query_company: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Wins of a company among the awarded tenders of a unit (a buyer, a market cell...).

    Parameters
    ----------
    unit, winner : array of int
        Unit code and winning company code of each tender (-1 = none).
    query_unit, query_company : array of int
        Pairs to look up (-1 gives 0 wins).

    Returns
    -------
    wins : numpy.ndarray
        Tenders of ``query_unit[k]`` won by ``query_company[k]``.
    awarded : numpy.ndarray
        Awarded tenders of ``query_unit[k]``.

    Examples
    --------
    >>> import numpy as np
    >>> wins, awarded = win_counts(np.array([0, 0, 0, 1, 1]), np.array([7, 7, 3, 7, -1]),
    ...                            np.array([0, 1, 0, -1]), np.array([7, 7, 5, 7]))
    >>> wins.tolist(), awarded.tolist()
    ([2, 1, 0, 0], [3, 1, 3, 0])
    """
    u = np.asarray(unit, dtype=np.int64)
    w = np.asarray(winner, dtype=np.int64)
    qu = np.asarray(query_unit, dtype=np.int64)
    qc = np.asarray(query_company, dtype=np.int64)
    ok = (u >= 0) & (w >= 0)
    width = np.int64(max(int(w.max(initial=-1)), int(qc.max(initial=-1))) + 2)
    keys, counts = np.unique(u[ok] * width + w[ok], return_counts=True)
    awarded_per_unit = np.bincount(u[ok], minlength=int(max(u.max(initial=-1), qu.max(initial=-1))) + 1)
    valid = (qu >= 0) & (qc >= 0)
    q = np.where(valid, qu * width + qc, -1)
    wins = np.zeros(q.size, dtype=np.int64)
    if keys.size:
        pos = np.clip(np.searchsorted(keys, q), 0, keys.size - 1)
        hit = valid & (keys[pos] == q)
        wins[hit] = counts[pos[hit]]
    awarded = np.where(qu >= 0, awarded_per_unit[np.maximum(qu, 0)] if awarded_per_unit.size else 0, 0)
    return wins, awarded.astype(np.int64)


def rate_outside(
    k_all: np.ndarray, n_all: np.ndarray, k_in: np.ndarray, n_in: np.ndarray, prior_rate: Any, *,
    prior: float = 10.0,
) -> np.ndarray:
    """A rate measured outside a group, shrunk towards a prior rate.

    ``(k_all - k_in + prior · prior_rate) / (n_all - n_in + prior)``: the
    baseline an entity (a buyer) shows on everything *except* the group being
    judged, with ``prior`` pseudo-observations at ``prior_rate`` so that an
    entity with little history falls back on the market.

    Examples
    --------
    >>> import numpy as np
    >>> rate_outside(np.array([12, 3]), np.array([20, 3]), np.array([2, 3]), np.array([10, 3]), 0.2).round(3).tolist()
    [0.6, 0.2]
    """
    k = np.maximum(np.asarray(k_all, dtype=np.float64) - np.asarray(k_in, dtype=np.float64), 0.0)
    n = np.maximum(np.asarray(n_all, dtype=np.float64) - np.asarray(n_in, dtype=np.float64), 0.0)
    k = np.minimum(k, n)
    return (k + prior * np.asarray(prior_rate, dtype=np.float64)) / (n + prior)
