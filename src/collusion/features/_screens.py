"""Per-tender price screens for bid rigging, vectorised over all tenders at once.

Screens are statistics of the bids of one tender that collusion distorts:
cover bids placed just above a designated winner shrink the dispersion of the
bids and open a gap between the lowest and the second-lowest bid. The
definitions follow Imhof (2018), Huber & Imhof (2019) and Imhof, Karagök &
Rutz (2018). With ``b1 <= b2 <= ... <= bn`` the sorted bids of a tender:

========  ==================================================================  ==========
column    definition                                                          needs
========  ==================================================================  ==========
n_bids    number of bids                                                      —
cv        ``s / mean`` with ``s`` the sample standard deviation (ddof = 1)    n ≥ 2
spd       spread ``(bn - b1) / b1``                                           n ≥ 2
diffp     percentage difference of the two lowest ``(b2 - b1) / b1``          n ≥ 2
rd        relative distance ``(b2 - b1) / s_losing``, ``s_losing`` the        n ≥ 3
          sample standard deviation of the losing bids ``b2..bn``
rdnor     normalised distance ``(b2 - b1) / mean(b[i+1] - b[i], i=1..n-1)``   n ≥ 2
rdalt     alternative distance ``(b2 - b1) / mean(b[i+1] - b[i], i=2..n-1)``  n ≥ 3
skew      adjusted Fisher–Pearson skewness G1 (as ``pandas.Series.skew``)     n ≥ 3
kurt      adjusted excess kurtosis G2 (as ``pandas.Series.kurt``)             n ≥ 4
kstest    Kolmogorov–Smirnov statistic ``D`` of the bids against the          n ≥ 2
          uniform distribution on ``[b1, bn]`` (as ``scipy.stats.kstest``)
discount  ``1 - b1 / estimate``: how far the lowest bid is below the          n ≥ 1
          estimate (only when an estimate is given)
========  ==================================================================  ==========

Degenerate tenders give NaN by one rule, never a warning: a screen is NaN when
the tender has fewer bids than the ``needs`` column says, and every screen
that divides by a dispersion (rd, rdnor, rdalt, skew, kurt, kstest) is NaN
when that dispersion is exactly zero (all bids equal, or all losing bids equal
for rd/rdalt). cv, spd and diffp are 0 for equal bids. Tenders without bids
have ``n_bids = 0`` and NaN screens.

Matching the published screens
------------------------------
The labelled cartel files of García Rodríguez et al. (2022) carry the
authors' screens ``CV, SPD, DIFFP, RD, KURT, SKEW, KSTEST`` rounded to 4
decimals. ``convention="garcia2022"`` reproduces them from ``Tender`` and
``Bid_value`` alone where they are a function of the tender's bids at all:

* cv (ddof = 1), spd, kurt and skew (bias-corrected, pandas), kstest
  (uniform on ``[b1, bn]``): exact on all three markets;
* the published RD divides by the standard deviation of the bids *strictly
  below the maximum* (all bids when fewer than two remain), not of the
  losing bids; this reproduces RD on every Brazilian tender;
* every screen that is undefined was published as 0 (``fillna(0)``).

Measured share of tenders matching to 4 decimals (``tests/test_screens.py``
asserts these floors):

=======  =====  =====  =====  =====  =====  =====  ======
market   CV     SPD    DIFFP  RD     KURT   SKEW   KSTEST
=======  =====  =====  =====  =====  =====  =====  ======
Brazil   1.000  1.000  1.000  1.000  1.000  1.000  1.000
Japan    1.000  1.000  0.323  0.087  1.000  1.000  1.000
Swiss    1.000  1.000  0.967  0.030  1.000  1.000  1.000
=======  =====  =====  =====  =====  =====  =====  ======

With the textbook ``convention="imhof"`` instead, RD matches on at most 1%
of tenders and the screens of tenders with too few bids differ only by NaN
vs the published 0 (Brazil KURT 0.772, Swiss KURT 0.678, SKEW 0.878,
CV/SPD/KSTEST 0.961).

The published DIFFP and RD of Japan and Switzerland are not a function of the
tender's own bids: DIFFP is 0 on tenders whose lowest bid is unique (53
Japanese, 73 Swiss tenders), the bid implied as "second lowest" sits at a
varying rank (sometimes the minimum itself), RD is negative on 39% (Japan)
and 40% (Swiss) of tenders (impossible for ``b2 >= b1``), the RD numerator
sometimes equals a bid of the *next* tender, and the share of matches falls
with the tender number (first tenth of the tenders vs the rest: Japan DIFFP
73% vs 15–39%, RD 73% vs 0–6%; Swiss RD 22% vs 0–7%). This is the signature
of a misaligned join in the authors' code around the second-lowest bid,
which only these two screens use; every screen that does not use it
matches exactly. The default ``convention="imhof"`` uses the textbook
definitions above.

Additivity
----------
:func:`screen_moments` returns per-tender power sums (count, sums of ``y``,
``y²``, ``y³``, ``y⁴`` with ``y = price - shift``) plus min and max: they add
(and min/max combine) over any split of a tender's bids, so they can be
computed partitioned on a distributed engine and combined with
:func:`combine_moments`; :func:`moments_to_screens` derives ``cv``, ``skew``,
``kurt`` and ``spd`` (from min and max) from them. ``diffp``, ``rd``,
``rdnor``, ``rdalt`` and ``kstest`` need the sorted bids of the tender (the
two lowest bids and the ranks), so they are computed where a tender's bids
are together (:func:`price_screens`).
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np
import pandas as pd

from ._segments import (
    group_order,
    segment_count,
    segment_ids,
    segment_max,
    segment_min,
    segment_nth,
    segment_rank,
    segment_sum,
    sort_by_group,
)

if TYPE_CHECKING:  # pragma: no cover
    from .._market import Market

__all__ = [
    "PUBLISHED_SCREENS",
    "SCREEN_COLUMNS",
    "combine_moments",
    "market_price_screens",
    "moments_to_screens",
    "price_regularity",
    "price_screens",
    "screen_moments",
    "subset_screens",
]

#: Columns of :func:`price_screens` (``discount`` only when an estimate is given).
SCREEN_COLUMNS: tuple[str, ...] = (
    "n_bids",
    "cv",
    "spd",
    "diffp",
    "rd",
    "rdnor",
    "rdalt",
    "kurt",
    "skew",
    "kstest",
    "discount",
)

#: Published screen column of the cartel files -> column of :func:`price_screens`.
PUBLISHED_SCREENS: dict[str, str] = {
    "CV": "cv",
    "SPD": "spd",
    "DIFFP": "diffp",
    "RD": "rd",
    "KURT": "kurt",
    "SKEW": "skew",
    "KSTEST": "kstest",
}

_CONVENTIONS = ("imhof", "garcia2022")
_SUBSET_SCREENS = ("cv", "spd", "diffp", "rd", "skew", "kurt")
_SUBSET_STATS = ("mean", "median", "min", "max", "std")


# --------------------------------------------------------------------------- input
def _prepare(
    tender_codes: np.ndarray,
    prices: np.ndarray,
    n_tenders: int | None,
    assume_sorted: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate, sort by (tender, price) and return (sorted prices, offsets)."""
    codes = np.asarray(tender_codes)
    x = np.asarray(prices, dtype=np.float64)
    if codes.shape != x.shape or codes.ndim != 1:
        raise ValueError(
            f"tender_codes and prices must be 1-d arrays of equal length, got shapes {codes.shape} and {x.shape}"
        )
    bad = ~(np.isfinite(x) & (x > 0))
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"bids.price: prices must be finite and > 0; {rows.size} row(s) break this "
            f"(rows {rows[:8].tolist()}, values {x[rows[:3]].tolist()})"
        )
    if not assume_sorted:
        # Screens need only each tender's sorted prices, not the permutation.
        return sort_by_group(codes, x, n_tenders)
    _, offsets = group_order(codes, n_tenders, assume_sorted=True)
    if x.size > 1:
        # Prices may only go down where a new tender starts.
        down = np.flatnonzero(x[1:] < x[:-1]) + 1
        starts = np.zeros(x.size + 1, dtype=bool)
        starts[offsets] = True
        inside = down[~starts[down]]
        if inside.size:
            row = int(inside[0])
            tender = int(np.searchsorted(offsets, row, side="right") - 1)
            raise ValueError(
                f"assume_sorted=True but prices are not sorted inside tender {tender} (row {row}); "
                "pass assume_sorted=False"
            )
    return x, offsets


def _check_convention(convention: str) -> None:
    if convention not in _CONVENTIONS:
        raise ValueError(f"convention must be one of {_CONVENTIONS}, got {convention!r}")


# --------------------------------------------------------------------------- core
def _sorted_screens(
    x: np.ndarray,
    offsets: np.ndarray,
    *,
    convention: str = "imhof",
) -> dict[str, np.ndarray]:
    """Screens of bids sorted by (tender, price) with CSR ``offsets``."""
    n = segment_count(offsets)
    nf = n.astype(np.float64)
    ids = segment_ids(offsets)
    rank = segment_rank(offsets, ids=ids)
    first_rows = offsets[:-1][n > 0]

    b1 = segment_nth(x, offsets, 0)
    b2 = segment_nth(x, offsets, 1)
    bn = segment_nth(x, offsets, 0, from_end=True)
    const = bn == b1  # all bids equal (False for empty tenders: NaN compares False)

    with np.errstate(invalid="ignore", divide="ignore"):
        # Two-pass central sums (see segment_var for why not one-pass). Row-level
        # work reuses three buffers: allocating fresh 8-byte-per-bid temporaries
        # costs as much as the arithmetic at millions of bids.
        total = segment_sum(x, offsets, ids=ids)
        mean = total / nf
        d = np.take(mean, ids)
        np.subtract(x, d, out=d)
        t = d * d
        m2 = segment_sum(t, offsets, ids=ids)
        u = t * d
        m3 = segment_sum(u, offsets, ids=ids)
        np.multiply(t, t, out=u)
        m4 = segment_sum(u, offsets, ids=ids)

        cv = np.where(n >= 2, np.sqrt(m2 / (nf - 1.0)) / mean, np.nan)
        cv[const & (n >= 2)] = 0.0
        spd = np.where(n >= 2, (bn - b1) / b1, np.nan)
        diffp = np.where(n >= 2, (b2 - b1) / b1, np.nan)
        gap = b2 - b1

        # Standard deviation of the set of bids rd divides by (two-pass too:
        # cover bids packed far above b1 are exactly where precision matters).
        if convention == "imhof":
            # losing bids b2..bn: drop the first row of every tender
            mu_l = (total - b1) / (nf - 1.0)
            np.take(mu_l, ids, out=d)
            np.subtract(x, d, out=d)
            d[first_rows] = 0.0
            np.multiply(d, d, out=t)
            s_set = np.sqrt(segment_sum(t, offsets, ids=ids) / (nf - 2.0))
            rd = np.where((n >= 3) & (bn > b2), gap / s_set, np.nan)
        else:
            # García Rodríguez et al. (2022): bids strictly below the maximum,
            # all bids when fewer than two remain (reproduces n = 2 -> sqrt(2)).
            member = x < bn[ids]
            few = segment_sum(member.astype(np.float64), offsets, ids=ids) < 2
            member |= few[ids]
            w = member.astype(np.float64)
            k = segment_sum(w, offsets, ids=ids)
            mu_s = segment_sum(x * w, offsets, ids=ids) / k
            ds = (x - mu_s[ids]) * w
            s_set = np.sqrt(segment_sum(ds * ds, offsets, ids=ids) / (k - 1.0))
            # Exactly constant set -> NaN (rounding would otherwise give a tiny s).
            set_hi = segment_max(np.where(member, x, -np.inf), offsets)
            rd = np.where((k >= 2) & (set_hi > b1) & (n >= 2), gap / s_set, np.nan)

        rng = bn - b1
        rdnor = np.where((n >= 2) & (rng > 0), gap * (nf - 1.0) / rng, np.nan)
        rng_l = bn - b2
        rdalt = np.where((n >= 3) & (rng_l > 0), gap * (nf - 2.0) / rng_l, np.nan)

        varying = ~const
        skew = np.where(
            (n >= 3) & varying,
            nf * np.sqrt(nf - 1.0) / (nf - 2.0) * m3 / m2**1.5,
            np.nan,
        )
        kurt = np.where(
            (n >= 4) & varying,
            nf * (nf + 1.0) * (nf - 1.0) * m4 / ((nf - 2.0) * (nf - 3.0) * m2 * m2)
            - 3.0 * (nf - 1.0) ** 2 / ((nf - 2.0) * (nf - 3.0)),
            np.nan,
        )

        # KS distance to U[b1, bn]: D = max_i max(i/n - F(b_i), F(b_i) - (i-1)/n).
        # With g_i = F(b_i) - (i-1)/n both terms are g_i and 1/n - g_i, so
        # D = max(max_i g_i, 1/n - min_i g_i): two segment reductions.
        g = np.take(b1, ids, out=d)
        np.subtract(x, g, out=g)
        np.multiply(g, np.take(1.0 / rng, ids, out=t), out=g)  # F(b_i)
        inv_n = 1.0 / nf
        np.multiply(rank, np.take(inv_n, ids, out=t), out=u)  # (i - 1) / n
        np.subtract(g, u, out=g)
        dmax = np.maximum(segment_max(g, offsets), inv_n - segment_min(g, offsets))
        kstest = np.where((n >= 2) & varying, dmax, np.nan)

    out = {
        "n_bids": n,
        "cv": cv,
        "spd": spd,
        "diffp": diffp,
        "rd": rd,
        "rdnor": rdnor,
        "rdalt": rdalt,
        "kurt": kurt,
        "skew": skew,
        "kstest": kstest,
    }
    if convention == "garcia2022":
        for col in PUBLISHED_SCREENS.values():
            out[col] = np.where(np.isnan(out[col]), 0.0, out[col])
    out["_b1"] = b1
    return out


def price_screens(
    tender_codes: np.ndarray,
    prices: np.ndarray,
    *,
    n_tenders: int | None = None,
    estimate: np.ndarray | None = None,
    assume_sorted: bool = False,
    convention: Literal["imhof", "garcia2022"] = "imhof",
) -> pd.DataFrame:
    """Price screens of every tender (see the module docstring for definitions).

    Parameters
    ----------
    tender_codes : array of int
        Tender code (``0..n_tenders-1``) of every bid.
    prices : array of float
        Bid prices, finite and positive.
    n_tenders : int, optional
        Number of tenders (default ``max code + 1``); tenders without bids get
        ``n_bids = 0`` and NaN screens.
    estimate : array of float, optional
        Estimate (ceiling / pre-tender estimate) per tender code, NaN where
        unknown; adds the ``discount`` column.
    assume_sorted : bool
        Rows are already sorted by (tender code, price), as in
        ``Market.bids``: no sort is done (the order is checked).
    convention : {"imhof", "garcia2022"}
        ``"imhof"``: textbook definitions, NaN when undefined.
        ``"garcia2022"``: the conventions of the published cartel files
        (rd over bids below the maximum, undefined screens reported as 0).

    Returns
    -------
    pandas.DataFrame
        Indexed by tender code, columns :data:`SCREEN_COLUMNS` (``discount``
        only with ``estimate``).

    Examples
    --------
    >>> import numpy as np
    >>> from collusion.features import price_screens
    >>> codes = np.array([0, 0, 0, 0, 1, 1, 1])
    >>> prices = np.array([100.0, 110.0, 120.0, 130.0, 50.0, 50.0, 50.0])
    >>> s = price_screens(codes, prices, estimate=np.array([125.0, 60.0]))
    >>> s[["n_bids", "spd", "diffp", "rdnor", "kstest", "discount"]].round(4)
            n_bids  spd  diffp  rdnor  kstest  discount
    tender
    0            4  0.3    0.1    1.0    0.25    0.2000
    1            3  0.0    0.0    NaN     NaN    0.1667
    """
    _check_convention(convention)
    x, offsets = _prepare(tender_codes, prices, n_tenders, assume_sorted)
    out = _sorted_screens(x, offsets, convention=convention)
    b1 = out.pop("_b1")
    if estimate is not None:
        est = np.asarray(estimate, dtype=np.float64)
        if est.shape != b1.shape:
            raise ValueError(f"estimate must have one value per tender ({b1.size}), got shape {est.shape}")
        with np.errstate(invalid="ignore", divide="ignore"):
            out["discount"] = np.where(est > 0, 1.0 - b1 / est, np.nan)
    frame = pd.DataFrame(out)
    frame.index.name = "tender"
    return frame


def market_price_screens(
    market: Market,
    *,
    convention: Literal["imhof", "garcia2022"] = "imhof",
    include_disqualified: bool = True,
) -> pd.DataFrame:
    """:func:`price_screens` of every tender of a market, indexed by tender id.

    Uses ``market.bids`` in its canonical (tender, price) order, so nothing is
    sorted, and the tenders' ``estimate`` for ``discount``.

    Parameters
    ----------
    market : collusion.Market
    convention : {"imhof", "garcia2022"}
        See :func:`price_screens`.
    include_disqualified : bool
        Keep disqualified bids (default): cover bids are often disqualified
        on purpose, and the published screens use every submitted bid.

    Examples
    --------
    >>> import pandas as pd
    >>> from collusion import Market
    >>> from collusion.features import market_price_screens
    >>> tenders = pd.DataFrame({"tender_id": ["A", "B"], "estimate": [120.0, None]})
    >>> bids = pd.DataFrame({"tender_id": ["A", "A", "A", "B", "B"], "bidder_id": list("xyzxy"),
    ...                      "price": [110.0, 100.0, 130.0, 10.0, 11.0]})
    >>> market_price_screens(Market.from_frames(tenders=tenders, bids=bids))[["n_bids", "spd", "discount"]]
               n_bids  spd  discount
    tender_id
    A               3  0.3  0.166667
    B               2  0.1       NaN
    """
    bids = market.bids
    codes = market.codes("bids", "tender_id")
    prices = bids["price"].to_numpy(dtype=np.float64)
    if not include_disqualified:
        keep = ~bids["disqualified"].to_numpy(dtype=bool)
        codes, prices = codes[keep], prices[keep]
    frame = price_screens(
        codes,
        prices,
        n_tenders=market.n("tender"),
        estimate=market.tenders["estimate"].to_numpy(dtype=np.float64),
        assume_sorted=True,
        convention=convention,
    )
    frame.index = pd.Index(market.entities["tender"].to_numpy(dtype=object), name="tender_id")
    return frame


# --------------------------------------------------------------------------- subsets
def _subset_index(n: int, k: int, max_exact_bids: int) -> tuple[np.ndarray, bool]:
    """Positions (in price order) of the k-subsets used for an n-bid tender."""
    if n <= max_exact_bids:
        return np.array(list(combinations(range(n), k)), dtype=np.int64).reshape(-1, k), True
    # Contiguous windows in price order: they contain the subsets of minimum
    # range and minimum variance (both are contiguous for sorted values).
    return np.arange(n - k + 1)[:, None] + np.arange(k)[None, :], False


def _screens_of_rows(s: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Screens ``names`` of sorted rows of ``s`` (last axis = the k bids, ascending)."""
    k = s.shape[-1]
    b1, b2, bk = s[..., 0], s[..., 1], s[..., -1]
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        varying = bk > b1
        if "spd" in names:
            out["spd"] = (bk - b1) / b1
        if "diffp" in names:
            out["diffp"] = (b2 - b1) / b1
        if "rd" in names:
            out["rd"] = np.where(bk > b2, (b2 - b1) / s[..., 1:].std(axis=-1, ddof=1), np.nan)
        if {"cv", "skew", "kurt"} & set(names):
            mean = s.mean(axis=-1)
            d = s - mean[..., None]
            d2 = d * d
            m2 = d2.sum(axis=-1)
            if "cv" in names:
                out["cv"] = np.where(varying, np.sqrt(m2 / (k - 1)) / mean, 0.0)
            if "skew" in names:
                m3 = (d2 * d).sum(axis=-1)
                out["skew"] = np.where(varying, k * np.sqrt(k - 1.0) / (k - 2.0) * m3 / m2**1.5, np.nan)
            if "kurt" in names:
                m4 = (d2 * d2).sum(axis=-1)
                out["kurt"] = np.where(
                    varying,
                    k * (k + 1.0) * (k - 1.0) * m4 / ((k - 2.0) * (k - 3.0) * m2 * m2)
                    - 3.0 * (k - 1.0) ** 2 / ((k - 2.0) * (k - 3.0)),
                    np.nan,
                )
    return out


def _summarise(v: np.ndarray, stat: str) -> np.ndarray:
    """NaN-skipping summary along axis 1 without warnings (NaN if all NaN)."""
    valid = ~np.isnan(v)
    cnt = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if stat == "mean":
            res = np.where(valid, v, 0.0).sum(axis=1) / cnt
        elif stat == "std":
            mu = np.where(valid, v, 0.0).sum(axis=1) / cnt
            dev = np.where(valid, v - mu[:, None], 0.0)
            res = np.sqrt((dev * dev).sum(axis=1) / cnt)
        elif stat == "min":
            res = np.where(valid, v, np.inf).min(axis=1)
        elif stat == "max":
            res = np.where(valid, v, -np.inf).max(axis=1)
        else:  # median: NaN sort last, so the valid values come first
            srt = np.sort(v, axis=1)
            lo = np.take_along_axis(srt, np.maximum((cnt - 1) // 2, 0)[:, None], axis=1)[:, 0]
            hi = np.take_along_axis(srt, np.maximum(cnt // 2, 0)[:, None], axis=1)[:, 0]
            res = (lo + hi) / 2.0
    return np.where(cnt > 0, res, np.nan)


def subset_screens(
    tender_codes: np.ndarray,
    prices: np.ndarray,
    *,
    sizes: Sequence[int] = (3, 4),
    stats: Sequence[str] = ("mean", "median", "min", "max"),
    screens: Sequence[str] = _SUBSET_SCREENS,
    n_tenders: int | None = None,
    assume_sorted: bool = False,
    max_exact_bids: int = 12,
    chunk_elements: int = 4_000_000,
) -> pd.DataFrame:
    """Screens over k-bid subsets of each tender, summarised per tender.

    When only some bidders of a tender collude, their cover bids are
    regular among themselves while the honest bids blur the whole-tender
    screens; the screens of the most regular 3- or 4-bid subset
    (``cv4_min``, ``spd3_min``...) reveal such incomplete cartels
    (Imhof, Karagök & Rutz 2018).

    Parameters
    ----------
    tender_codes, prices : arrays
        As in :func:`price_screens`.
    sizes : sequence of int
        Subset sizes ``k >= 2``. ``rd`` and ``skew`` need ``k >= 3``,
        ``kurt`` ``k >= 4``; undefined combinations are not returned.
    stats : sequence of str
        Summaries over the subsets of a tender: ``mean, median, min, max, std``
        (NaN subset screens, e.g. zero dispersion, are skipped).
    screens : sequence of str
        Any of ``cv, spd, diffp, rd, skew, kurt``.
    n_tenders : int, optional
        Number of tenders (default ``max code + 1``).
    assume_sorted : bool
        Rows already sorted by (tender code, price).
    max_exact_bids : int
        Tenders with at most this many bids use *all* ``C(n, k)`` subsets
        (495 4-subsets at 12 bids). Larger tenders use the ``n - k + 1``
        contiguous windows of ``k`` bids in price order: deterministic, and
        they contain the subsets of minimum range and minimum variance, so
        ``spd*_min`` and ``diffp*_min`` stay exact; other summaries are
        approximations there (column ``exact{k}`` says which tenders).
    chunk_elements : int
        Memory bound: tenders are processed in chunks of about this many
        subset elements.

    Returns
    -------
    pandas.DataFrame
        Indexed by tender code; columns ``{screen}{k}_{stat}`` (e.g.
        ``cv4_min``), ``n_subsets{k}`` and ``exact{k}``. NaN where a tender
        has fewer than ``k`` bids.

    Examples
    --------
    >>> import numpy as np
    >>> from collusion.features import subset_screens
    >>> codes = np.zeros(5, dtype=int)
    >>> prices = np.array([100.0, 101.0, 102.0, 103.0, 150.0])
    >>> out = subset_screens(codes, prices, sizes=(4,), stats=("min", "max"), screens=("spd",))
    >>> out.round(4)
            spd4_min  spd4_max  n_subsets4  exact4
    tender
    0           0.03       0.5           5    True
    """
    sizes = tuple(int(k) for k in sizes)
    if not sizes or min(sizes) < 2:
        raise ValueError(f"subset sizes must be >= 2, got {sizes}")
    unknown = sorted(set(stats) - set(_SUBSET_STATS))
    if unknown:
        raise ValueError(f"unknown stats {unknown}; choose from {_SUBSET_STATS}")
    unknown = sorted(set(screens) - set(_SUBSET_SCREENS))
    if unknown:
        raise ValueError(f"unknown subset screens {unknown}; choose from {_SUBSET_SCREENS}")
    if max_exact_bids < max(sizes):
        raise ValueError(f"max_exact_bids ({max_exact_bids}) must be >= the largest subset size {max(sizes)}")
    x, offsets = _prepare(tender_codes, prices, n_tenders, assume_sorted)
    n = segment_count(offsets)
    n_t = n.size
    minimum = {"cv": 2, "spd": 2, "diffp": 2, "rd": 3, "skew": 3, "kurt": 4}

    data: dict[str, np.ndarray] = {}
    for k in sizes:
        names = [s for s in screens if k >= minimum[s]]
        cols = {(s, st): np.full(n_t, np.nan) for s in names for st in stats}
        n_sub = np.zeros(n_t, dtype=np.int64)
        exact = np.ones(n_t, dtype=bool)
        # One vectorised pass per distinct bid count: the same index array of
        # subsets applies to every tender with that many bids.
        for count in np.unique(n[n >= k]):
            count = int(count)
            tenders = np.flatnonzero(n == count)
            idx, is_exact = _subset_index(count, k, max_exact_bids)
            n_sub[tenders] = idx.shape[0]
            exact[tenders] = is_exact
            step = max(1, chunk_elements // max(1, idx.size))
            for lo in range(0, tenders.size, step):
                part = tenders[lo : lo + step]
                bids = x[offsets[part][:, None] + np.arange(count)[None, :]]  # (T, count), sorted rows
                values = _screens_of_rows(bids[:, idx], names)  # each (T, n_subsets)
                for s in names:
                    for st in stats:
                        cols[(s, st)][part] = _summarise(values[s], st)
        for s in names:
            for st in stats:
                data[f"{s}{k}_{st}"] = cols[(s, st)]
        data[f"n_subsets{k}"] = n_sub
        exact[n < k] = True
        data[f"exact{k}"] = exact
    frame = pd.DataFrame(data)
    frame.index.name = "tender"
    return frame


# --------------------------------------------------------------------------- regularity
def price_regularity(
    tender_codes: np.ndarray,
    prices: np.ndarray,
    *,
    n_tenders: int | None = None,
    assume_sorted: bool = False,
    tol: float = 0.01,
    identical_rtol: float = 0.0,
    min_bids: int = 3,
) -> pd.DataFrame:
    """Identical prices and regular (arithmetic / fixed-ratio) bid sequences.

    Bid-rigging cases often show cover bids written from one template:
    identical prices, or bids spaced by a constant amount (arithmetic
    sequence) or a constant percentage (fixed-ratio sequence).

    Parameters
    ----------
    tender_codes, prices : arrays
        As in :func:`price_screens`.
    n_tenders : int, optional
        Number of tenders.
    assume_sorted : bool
        Rows already sorted by (tender code, price).
    tol : float
        Tolerance of the regularity flags: a tender is arithmetic when every
        adjacent difference of its sorted bids is within ``tol`` (relative) of
        their mean, fixed-ratio likewise for the log-ratios.
    identical_rtol : float
        Two bids are identical when they differ by at most this fraction of
        the lower one (0: exactly equal).
    min_bids : int
        Minimum number of bids (``>= 3``) for the sequence flags: with two
        bids every sequence is trivially regular.

    Returns
    -------
    pandas.DataFrame
        Indexed by tender code, columns

        ``n_bids``; ``n_identical`` bids equal to another bid of the tender,
        ``share_identical`` (``n_identical / n_bids``), ``has_identical``;
        ``diff_dev`` ``max |d_i - mean(d)| / mean(d)`` over the adjacent
        differences ``d_i`` (0 for a perfect arithmetic sequence),
        ``is_arithmetic`` (``diff_dev <= tol``);
        ``ratio_dev`` the same over ``log(b[i+1] / b[i])``, ``is_fixed_ratio``.
        The deviations are NaN below ``min_bids`` bids or when all bids are
        equal; the flags are then False.

    Examples
    --------
    >>> import numpy as np
    >>> from collusion.features import price_regularity
    >>> codes = np.array([0, 0, 0, 0, 1, 1, 1])
    >>> prices = np.array([100.0, 105.0, 110.0, 115.0, 80.0, 80.0, 93.0])
    >>> price_regularity(codes, prices)[["n_identical", "diff_dev", "is_arithmetic", "is_fixed_ratio"]]
            n_identical  diff_dev  is_arithmetic  is_fixed_ratio
    tender
    0                 0       0.0           True           False
    1                 2       1.0          False           False
    """
    if min_bids < 3:
        raise ValueError(f"min_bids must be >= 3, got {min_bids}")
    if tol < 0 or identical_rtol < 0:
        raise ValueError("tol and identical_rtol must be >= 0")
    x, offsets = _prepare(tender_codes, prices, n_tenders, assume_sorted)
    n = segment_count(offsets)
    ids = segment_ids(offsets)
    m = x.size
    # Adjacent pairs inside one tender: row i and i + 1 with the same id.
    same = ids[1:] == ids[:-1] if m > 1 else np.zeros(0, dtype=bool)
    gap = np.diff(x)
    tie = same & (gap <= identical_rtol * x[:-1])
    identical = np.zeros(m, dtype=bool)
    identical[:-1] |= tie
    identical[1:] |= tie
    n_identical = np.bincount(ids[identical], minlength=n.size)

    pair_ids = ids[:-1][same]
    d = gap[same]
    with np.errstate(invalid="ignore", divide="ignore"):
        lr = np.log(x[1:][same] / x[:-1][same])
        n_pairs = np.bincount(pair_ids, minlength=n.size).astype(np.float64)

        def max_rel_dev(v: np.ndarray) -> np.ndarray:
            mean = np.bincount(pair_ids, weights=v, minlength=n.size) / n_pairs
            dev = np.abs(v - mean[pair_ids])
            worst = np.zeros(n.size)
            np.maximum.at(worst, pair_ids, dev)
            return np.where((n >= min_bids) & (mean > 0), worst / mean, np.nan)

        diff_dev = max_rel_dev(d)
        ratio_dev = max_rel_dev(lr)
        share = np.where(n > 0, n_identical / np.maximum(n, 1), np.nan)
    frame = pd.DataFrame(
        {
            "n_bids": n,
            "n_identical": n_identical,
            "share_identical": share,
            "has_identical": n_identical > 0,
            "diff_dev": diff_dev,
            "is_arithmetic": diff_dev <= tol,
            "ratio_dev": ratio_dev,
            "is_fixed_ratio": ratio_dev <= tol,
        }
    )
    frame.index.name = "tender"
    return frame


# --------------------------------------------------------------------------- moments
_MOMENT_COLUMNS = ("n", "shift", "sum1", "sum2", "sum3", "sum4", "min", "max")


def screen_moments(
    tender_codes: np.ndarray,
    prices: np.ndarray,
    *,
    n_tenders: int | None = None,
    shift: np.ndarray | float | None = None,
) -> pd.DataFrame:
    """Additive per-tender aggregates from which cv, skew, kurt and spd derive.

    Needs no sort: every column is a sum (or min/max) over bids, so the
    result for a set of bids split into parts is :func:`combine_moments` of
    the parts' results, e.g. computed partition by partition on a
    distributed engine.

    Parameters
    ----------
    tender_codes, prices : arrays
        As in :func:`price_screens` (any row order).
    n_tenders : int, optional
        Number of tenders.
    shift : float or array, optional
        Per-tender value subtracted before taking powers (default 0). Power
        sums of raw prices around 1e8 lose digits when turned into central
        moments of a tender with a tiny dispersion; a shift close to the bids
        (e.g. the tender's estimate or any known bid) keeps them exact. Parts
        that are combined must use the same shift per tender.

    Returns
    -------
    pandas.DataFrame
        Indexed by tender code: ``n, shift, sum1..sum4`` (sums of powers of
        ``price - shift``), ``min, max`` (of prices).

    Examples
    --------
    >>> import numpy as np
    >>> from collusion.features import screen_moments, combine_moments, moments_to_screens
    >>> codes, prices = np.array([0, 0, 0, 0]), np.array([100.0, 110.0, 120.0, 150.0])
    >>> a = screen_moments(codes[:2], prices[:2], n_tenders=1)
    >>> b = screen_moments(codes[2:], prices[2:], n_tenders=1)
    >>> moments_to_screens(combine_moments(a, b)).round(4)
            n_bids   mean    cv    skew  kurt  spd
    tender
    0            4  120.0  0.18  1.1903   1.5  0.5

    """
    codes = np.asarray(tender_codes)
    x = np.asarray(prices, dtype=np.float64)
    if codes.shape != x.shape or codes.ndim != 1:
        raise ValueError("tender_codes and prices must be 1-d arrays of equal length")
    if codes.size and not np.issubdtype(codes.dtype, np.integer):
        raise TypeError(f"tender_codes must be integers, got {codes.dtype}")
    if codes.size and codes.min() < 0:
        raise ValueError("tender_codes must be >= 0")
    bad = ~(np.isfinite(x) & (x > 0))
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"bids.price: prices must be finite and > 0; rows {rows[:8].tolist()}")
    n_t = int(codes.max()) + 1 if n_tenders is None and codes.size else int(n_tenders or 0)
    if codes.size and codes.max() >= n_t:
        raise ValueError(f"tender code {int(codes.max())} out of range for n_tenders={n_t}")
    sh = np.zeros(n_t) if shift is None else np.broadcast_to(np.asarray(shift, dtype=np.float64), (n_t,)).copy()
    y = x - sh[codes]
    y2 = y * y
    out = {
        "n": np.bincount(codes, minlength=n_t),
        "shift": sh,
        "sum1": np.bincount(codes, weights=y, minlength=n_t),
        "sum2": np.bincount(codes, weights=y2, minlength=n_t),
        "sum3": np.bincount(codes, weights=y2 * y, minlength=n_t),
        "sum4": np.bincount(codes, weights=y2 * y2, minlength=n_t),
    }
    lo = np.full(n_t, np.inf)
    hi = np.full(n_t, -np.inf)
    np.minimum.at(lo, codes, x)
    np.maximum.at(hi, codes, x)
    out["min"] = np.where(out["n"] > 0, lo, np.nan)
    out["max"] = np.where(out["n"] > 0, hi, np.nan)
    frame = pd.DataFrame(out)
    frame.index.name = "tender"
    return frame


def combine_moments(*parts: pd.DataFrame) -> pd.DataFrame:
    """Combine :func:`screen_moments` results of disjoint sets of bids.

    Sums add and min/max combine per tender; tenders present in one part only
    are kept as they are, so results over disjoint sets of tenders simply
    concatenate.

    Raises
    ------
    ValueError
        If one tender has different shifts in two parts.
    """
    if not parts:
        raise ValueError("combine_moments needs at least one part")
    both = pd.concat([p[list(_MOMENT_COLUMNS)] for p in parts])
    present = both[both["n"] > 0]
    g = present.groupby(level=0, sort=True)
    shifts = g["shift"].agg(["min", "max"])
    clash = shifts.index[shifts["min"] != shifts["max"]]
    if len(clash):
        raise ValueError(f"tenders {list(clash[:8])} were aggregated with different shifts in different parts")
    sums = g[["n", "sum1", "sum2", "sum3", "sum4"]].sum()
    out = pd.concat([sums, g["shift"].first(), g["min"].min(), g["max"].max()], axis=1)
    index = both.index.unique().sort_values()
    out = out.reindex(index)
    out["n"] = out["n"].fillna(0).astype(np.int64)
    for c in ("sum1", "sum2", "sum3", "sum4"):
        out[c] = out[c].fillna(0.0)
    out["shift"] = out["shift"].fillna(0.0)
    out.index.name = parts[0].index.name
    return out[list(_MOMENT_COLUMNS)]


def moments_to_screens(moments: pd.DataFrame) -> pd.DataFrame:
    """Derive ``n_bids, mean, cv, skew, kurt, spd`` from :func:`screen_moments`.

    Same definitions and degenerate-tender rules as :func:`price_screens`
    (sample standard deviation, bias-corrected G1 and G2, NaN when all bids
    are equal or too few).
    """
    n = moments["n"].to_numpy(dtype=np.float64)
    s1, s2, s3, s4 = (moments[c].to_numpy(dtype=np.float64) for c in ("sum1", "sum2", "sum3", "sum4"))
    lo = moments["min"].to_numpy(dtype=np.float64)
    hi = moments["max"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = s1 / n
        # Central sums from power sums about the shift.
        m2 = np.maximum(s2 - n * mu * mu, 0.0)
        m3 = s3 - 3.0 * mu * s2 + 2.0 * n * mu**3
        m4 = s4 - 4.0 * mu * s3 + 6.0 * mu * mu * s2 - 3.0 * n * mu**4
        mean = mu + moments["shift"].to_numpy(dtype=np.float64)
        varying = hi > lo
        cv = np.where(n >= 2, np.where(varying, np.sqrt(m2 / (n - 1.0)) / mean, 0.0), np.nan)
        skew = np.where((n >= 3) & varying, n * np.sqrt(n - 1.0) / (n - 2.0) * m3 / m2**1.5, np.nan)
        kurt = np.where(
            (n >= 4) & varying,
            n * (n + 1.0) * (n - 1.0) * m4 / ((n - 2.0) * (n - 3.0) * m2 * m2)
            - 3.0 * (n - 1.0) ** 2 / ((n - 2.0) * (n - 3.0)),
            np.nan,
        )
        spd = np.where(n >= 2, (hi - lo) / lo, np.nan)
    frame = pd.DataFrame(
        {"n_bids": moments["n"].to_numpy(dtype=np.int64), "mean": np.where(n > 0, mean, np.nan),
         "cv": cv, "skew": skew, "kurt": kurt, "spd": spd},
        index=moments.index,
    )
    return frame
