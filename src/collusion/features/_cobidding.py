"""Co-bidding statistics: pairs of firms, co-bidding groups, bid rotation.

Everything starts from the company × tender incidence matrix ``B`` (``B[c, t]
= 1`` when firm ``c`` bid in tender ``t``) and the winner matrix ``W`` (the
same shape, winners only). Pair statistics are sparse products, never a loop
over pairs: ``B·Bᵀ`` counts the tenders two firms bid in together and
``W·Bᵀ`` counts, for each pair, the shared tenders that the first one won.

Cartels leave three marks in these counts (Wachs & Kertész 2019, "A network
approach to cartel detection in public auction markets", *Scientific Reports*
9:10818):

* **cohesion** — members bid together over and over (a dense, heavy clique of
  the co-bidding network);
* **exclusivity** — members co-bid mostly with each other rather than with the
  rest of the market;
* **rotation** — inside the group the wins are shared out evenly, in turns,
  while outsiders rarely win where the group bids; and the reverse side of
  rotation, cover bidders that lose every time a partner bids although they
  win elsewhere.

Plain co-bidding counts mostly trace regional markets: firms of one region and
trade meet over and over without colluding, and modularity communities of the
raw co-bidding network are those markets. What sets a cartel apart is *where*
its members meet: in tenders whose bids look rigged. :func:`suspicious_cobids`
tests, for every pair, whether more of its shared tenders are suspicious (in
the market's top share by price screens and traces) than chance predicts
(binomial tail), and :func:`~collusion.features._surprisal.bh_qvalues` controls the false discovery rate over
all pairs; the significant pairs form the backbone on which Leiden community
detection (modularity objective, seeded) finds the candidate cartels.

Counts here are sums over tenders, so pair counts computed on disjoint sets of
tenders add up; ratios are derived from the counts at the end.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from .._arrays import first_of_runs, unique_ints
from .._incidences import A_WON, B_WON, FLAGGED, chunks, cobid_incidences

__all__ = [
    "bid_incidence",
    "cobid_pairs",
    "cobidding_communities",
    "group_ids",
    "group_pair_sum",
    "group_statistics",
    "group_tenders",
    "pair_wins",
    "suspicious_cobids",
    "tender_group_share",
    "tender_winner",
]


def bid_incidence(
    tender: np.ndarray,
    company: np.ndarray,
    *,
    n_tenders: int,
    n_companies: int,
    mask: np.ndarray | None = None,
) -> sp.csr_matrix:
    """Company × tender 0/1 incidence matrix (CSR, ``int32``).

    Parameters
    ----------
    tender, company : array of int
        Integer codes of each bid's tender and bidder (``-1`` = missing, dropped).
    n_tenders, n_companies : int
        Matrix shape (number of tender and company codes).
    mask : array of bool, optional
        Keep only these bids (e.g. ``is_winner`` for the winner matrix).

    Returns
    -------
    scipy.sparse.csr_matrix
        ``B[c, t] = 1`` when company ``c`` has a (kept) bid in tender ``t``;
        duplicate bids count once.

    Examples
    --------
    >>> import numpy as np
    >>> B = bid_incidence(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), n_tenders=2, n_companies=2)
    >>> B.toarray().tolist()
    [[1, 0], [1, 1]]
    """
    # Signed codes index as they are (the market's are int32): scipy would
    # cast int64 copies back to int32 indices.
    tender, company = (x if x.dtype.kind == "i" else x.astype(np.int64)
                       for x in (np.asarray(tender), np.asarray(company)))
    keep = (tender >= 0) & (company >= 0)
    if mask is not None:
        keep &= np.asarray(mask, dtype=bool)
    if not keep.all():  # usually every bid has both codes: no copies then
        tender, company = tender[keep], company[keep]
    B = sp.csr_matrix(
        (np.ones(tender.size, dtype=np.int32), (company, tender)),
        shape=(n_companies, n_tenders),
    )
    B.sum_duplicates()
    B.data[:] = 1
    return B


def tender_winner(W: sp.spmatrix, price: np.ndarray | None = None) -> np.ndarray:
    """Winning company code per tender (``-1`` when the tender has no winner).

    With several winners (lots awarded to several firms) the one with the lowest
    code is taken, so the result does not depend on row order.

    Parameters
    ----------
    W : sparse matrix
        Company × tender winner incidence (see :func:`bid_incidence`).

    Examples
    --------
    >>> import numpy as np
    >>> W = bid_incidence(np.array([1, 1]), np.array([2, 0]), n_tenders=3, n_companies=3)
    >>> tender_winner(W).tolist()
    [-1, 0, -1]
    """
    Wt = sp.csc_matrix(W)
    Wt.sort_indices()
    n_t = Wt.shape[1]
    out = np.full(n_t, -1, dtype=np.int64)
    counts = np.diff(Wt.indptr)
    has = counts > 0
    out[has] = Wt.indices[Wt.indptr[:-1][has]]
    return out


def _binary_float(B: sp.spmatrix) -> sp.csr_matrix:
    """``B`` as a float64 CSR matrix with every stored value 1.

    No copy when it already is one (the detectors' incidence matrices are):
    a copy of the 7.5M bids of a 1M-tender market per call adds up.
    """
    if sp.isspmatrix_csr(B) and B.dtype == np.float64 and (B.data == 1.0).all():
        return B
    Bf = sp.csr_matrix(B, dtype=np.float64, copy=True)
    Bf.data[:] = 1.0
    return Bf


def _pair_lookup(M: sp.spmatrix, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Values ``M[a[i], b[i]]`` for many index pairs at once (0 where absent).

    Row-major keys of a CSR matrix with sorted indices are already sorted, so
    one ``searchsorted`` does the lookup without sorting the matrix.
    """
    M = sp.csr_matrix(M)
    if not M.has_sorted_indices:
        M = M.copy()
        M.sort_indices()
    n = np.int64(M.shape[1])
    rows = np.repeat(np.arange(M.shape[0], dtype=np.int64), np.diff(M.indptr))
    keys = rows * n + M.indices.astype(np.int64)
    vals = M.data
    want = np.asarray(a, dtype=np.int64) * n + np.asarray(b, dtype=np.int64)
    out = np.zeros(want.size, dtype=np.float64)
    if keys.size == 0:
        return out
    pos = np.searchsorted(keys, want)
    pos_c = np.minimum(pos, keys.size - 1)
    hit = (pos < keys.size) & (keys[pos_c] == want)
    out[hit] = vals[pos_c[hit]]
    return out


def cobid_pairs(
    B: sp.spmatrix,
    W: sp.spmatrix | None = None,
    *,
    min_cobids: int = 1,
    flags: np.ndarray | None = None,
) -> pd.DataFrame:
    """Statistics of every pair of firms that bid in the same tender.

    Parameters
    ----------
    B : sparse matrix
        Company × tender bid incidence (non-zero = bid; values are ignored).
    W : sparse matrix, optional
        Company × tender winner incidence, same shape. Without it the win
        columns are left out (see :func:`pair_wins` to add them for some pairs).
    min_cobids : int
        Keep pairs that bid together in at least this many tenders.
    flags : array of bool, optional
        A flag per tender (e.g. "suspicious"); adds ``n_flagged``, the number
        of flagged tenders among each pair's shared tenders, counted in the
        same pass.

    Returns
    -------
    pandas.DataFrame
        One row per unordered pair ``company_a < company_b`` (integer codes),
        sorted by ``(company_a, company_b)``:

        ``n_cobids``
            tenders in which both bid;
        ``n_a``, ``n_b``
            tenders each firm bid in;
        ``jaccard``
            ``n_cobids / (n_a + n_b - n_cobids)``;
        ``exclusivity_a``, ``exclusivity_b``
            share of each firm's tenders shared with the partner;

        and with ``W`` the columns of :func:`pair_wins`.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([0, 0, 1, 1, 2, 2, 3])
    >>> c = np.array([0, 1, 0, 1, 0, 2, 1])
    >>> w = np.array([True, False, True, False, False, True, True])
    >>> B = bid_incidence(t, c, n_tenders=4, n_companies=3)
    >>> W = bid_incidence(t, c, n_tenders=4, n_companies=3, mask=w)
    >>> p = cobid_pairs(B, W)
    >>> p[["company_a", "company_b", "n_cobids", "n_a", "n_b", "wins_a", "wins_b"]].values.tolist()
    [[0, 1, 2, 3, 3, 2, 0], [0, 2, 1, 3, 1, 0, 1]]
    >>> round(float(p["jaccard"].iloc[0]), 3)
    0.5
    """
    if min_cobids < 1:
        raise ValueError(f"min_cobids must be >= 1, got {min_cobids}")
    B = sp.csr_matrix(B)
    if not B.has_canonical_format or not B.data.all():
        B = B.copy()
        B.sum_duplicates()
        B.eliminate_zeros()
    f = None
    if flags is not None:
        f = np.asarray(flags, dtype=bool)
        if f.shape != (B.shape[1],):
            raise ValueError(f"flags must have one value per tender ({B.shape[1]}), got shape {f.shape}")
    won = None if W is None else _won_bids(B, W)
    if won is False:  # W holds duplicates: pair_wins' general products below
        won = None
        general = True
    else:
        general = False
    # Incidences arrive sorted by pair, so a pair's count is the length of its
    # run and no hash table or sort is needed.
    a_ptr, b_all, flag_all = cobid_incidences(B, f, won)
    n = b_all.size
    new = first_of_runs(b_all)  # incidence starts a new pair
    new[a_ptr[:-1][np.diff(a_ptr) > 0]] = True  # a new row a, even when b repeats
    # A market of a million tenders has tens of millions of pairs: every
    # array of pairs is 90-180 MB of fresh memory, which the kernel maps page
    # by page (~1.5 s per GB here), so the arrays kept are the output columns
    # and the temporaries go chunk by chunk (see collusion._incidences.chunks).
    if min_cobids > 1:
        # Most pairs meet once; the runs of length >= 2 are found without
        # listing all distinct pairs.
        last = np.empty(n, dtype=bool)  # incidence ends its pair's run
        last[-1:] = True
        last[:-1] = new[1:]
        starts, stop = np.flatnonzero(new & ~last), np.flatnonzero(last & ~new) + 1
        del last
    else:
        starts = np.flatnonzero(new)
        stop = np.empty(starts.size, dtype=np.int64)
        stop[:-1] = starts[1:]
        stop[-1:] = n
    del new
    masks = {}
    if f is not None:
        masks["n_flagged"] = None if won is None else FLAGGED
    if won is not None:
        masks["wins_a"], masks["wins_b"] = A_WON, B_WON
    sums = dict(zip(masks, _run_sums(flag_all, starts, stop, list(masks.values()))))
    n_ab = np.subtract(stop, starts, out=stop)  # the run ends are done with: their pages hold the counts
    del stop
    # The row a of each run: the runs are in row order.
    a = np.repeat(np.arange(B.shape[0], dtype=np.int32), np.diff(np.searchsorted(starts, a_ptr)))
    b = b_all[starts].astype(np.int32, copy=False)
    del b_all, flag_all
    deg_i = np.diff(B.indptr).astype(np.int64)
    if min_cobids > 2:
        keep = n_ab >= min_cobids
        a, b, n_ab = a[keep], b[keep], n_ab[keep]
        sums = {k: v[keep] for k, v in sums.items()}
        n_a = deg_i[a]
    else:
        n_a = np.take(deg_i, a, out=starts)  # the run starts are done with: their pages hold n_a
    del starts
    n_b = deg_i[b]
    jaccard, excl_a, excl_b = (np.empty(n_ab.size) for _ in range(3))
    for sl in chunks(n_ab.size):
        n_ab_f = n_ab[sl].astype(np.float64)
        n_a_f, n_b_f = n_a[sl].astype(np.float64), n_b[sl].astype(np.float64)
        np.divide(n_ab_f, n_a_f + n_b_f - n_ab_f, out=jaccard[sl])
        np.divide(n_ab_f, n_a_f, out=excl_a[sl])
        np.divide(n_ab_f, n_b_f, out=excl_b[sl])
    columns = {
        "company_a": a,
        "company_b": b,
        "n_cobids": n_ab,
        "n_a": n_a,
        "n_b": n_b,
        "jaccard": jaccard,
        "exclusivity_a": excl_a,
        "exclusivity_b": excl_b,
    }
    if flags is not None:
        columns["n_flagged"] = sums["n_flagged"]
    if W is not None:
        if general:
            wins = pair_wins(B, W, a, b, n_ab)
            columns.update({col: wins[col].to_numpy() for col in wins.columns})
        else:
            columns.update(_wins_columns(sums["wins_a"], sums["wins_b"], n_ab, a, b, B, won))
    # One frame from every column, without copies: a column added to a frame
    # afterwards is copied, and one block per column avoids stacking millions
    # of rows into 2-D blocks (~1 s at 1M tenders).
    return pd.DataFrame(columns, copy=False)


def _run_sums(code: np.ndarray, starts: np.ndarray, stop: np.ndarray, masks: list[int | None]) -> list[np.ndarray]:
    """For each mask, the number of incidences ``code[starts[i]:stop[i]]`` with that bit set (int64).

    ``None`` counts the True values of a bool ``code``. Runs are ascending and
    do not overlap; they go chunk by chunk, each from a cumulative sum of its
    own incidences (a ``reduceat`` with a cast, or a cumulative sum of every
    incidence, cost 5-10 times more).
    """
    out = [np.empty(starts.size, dtype=np.int64) for _ in masks]
    for sl in chunks(starts.size):
        i0, i1 = starts[sl.start], stop[sl.stop - 1]
        seg = code[i0:i1]
        lo, hi = starts[sl] - i0, stop[sl] - i0
        # int32 sums when they fit: half the memory traffic of the cumulative
        # sum and of its two gathers (a third less time).
        seen = np.zeros(seg.size + 1, dtype=np.int32 if seg.size < np.iinfo(np.int32).max else np.int64)
        for mask, res in zip(masks, out):
            np.cumsum(seg if mask is None else (seg & mask) != 0, out=seen[1:])
            np.subtract(seen[hi], seen[lo], out=res[sl])
    return out


def _won_bids(B: sp.csr_matrix, W: sp.spmatrix) -> np.ndarray | bool:
    """Per stored entry of canonical ``B``: the bid won (``W`` has the entry).

    ``False`` when ``W`` does not count each winning bid once (duplicates),
    which the general path of :func:`pair_wins` handles.
    """
    Bf, Wm = _win_matrix(B, W)
    if Wm.nnz and not (Wm.data == 1.0).all():
        return False
    # Wm lies inside B's pattern, so B + 2·Wm has exactly B's canonical
    # pattern and its values tell the winning bids apart.
    S = Bf + 2.0 * Wm
    if S.nnz != B.nnz:
        return False
    return S.data > 2.0


def _win_matrix(B: sp.spmatrix, W: sp.spmatrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``B`` and its winning bids as float32 0/1 CSR matrices (a win counts only where the firm bid)."""
    Bf = sp.csr_matrix(B, dtype=np.float32, copy=True)
    Bf.data[:] = 1.0
    Wf = sp.csr_matrix(W, dtype=np.float32, copy=True)
    Wf.data[:] = 1.0
    return Bf, sp.csr_matrix(Wf.multiply(Bf))


def pair_wins(
    B: sp.spmatrix,
    W: sp.spmatrix,
    company_a: np.ndarray,
    company_b: np.ndarray,
    n_cobids: np.ndarray | None = None,
) -> pd.DataFrame:
    """Who wins when two firms meet: win counts and "never wins against a partner".

    Parameters
    ----------
    B, W : sparse matrices
        Company × tender bid and winner incidence.
    company_a, company_b : array of int
        The pairs to describe.
    n_cobids : array, optional
        Their co-bid counts (computed when not given).

    Returns
    -------
    pandas.DataFrame
        Aligned with the pairs:

        ``wins_a``, ``wins_b``
            shared tenders each firm won;
        ``win_asymmetry``
            ``|wins_a - wins_b| / (wins_a + wins_b)`` (NaN when neither won);
        ``underwin_a``, ``underwin_b``
            ``-log10 P(X <= wins)`` with ``X ~ Binomial(n_cobids, p)`` and ``p``
            the firm's win rate in the tenders it bid *without* the partner:
            large when a firm that wins elsewhere (almost) never wins against
            this partner — the cover bidder's footprint. 0 when the firm has no
            tenders without the partner (nothing to compare with).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([0, 0, 1, 1, 2, 3])
    >>> c = np.array([0, 1, 0, 1, 0, 0])
    >>> B = bid_incidence(t, c, n_tenders=4, n_companies=2)
    >>> W = bid_incidence(t, c, n_tenders=4, n_companies=2, mask=np.array([0, 1, 0, 1, 1, 1], bool))
    >>> pair_wins(B, W, np.array([0]), np.array([1]))[["wins_a", "wins_b"]].values.tolist()
    [[0, 2]]
    """
    a = np.asarray(company_a, dtype=np.int64)
    b = np.asarray(company_b, dtype=np.int64)
    # Only the rows of the firms involved, before any copy: the detector asks
    # for the pairs inside its groups, a few thousand firms of the market.
    firms = unique_ints(np.r_[a, b])
    pos = np.full(B.shape[0], -1, dtype=np.int64)
    pos[firms] = np.arange(firms.size)
    Bf, Wf = _win_matrix(sp.csr_matrix(B)[firms], sp.csr_matrix(W)[firms])
    pa, pb = pos[a], pos[b]
    WB = (Wf @ Bf.T).tocsr()
    wins_a = _pair_lookup(WB, pa, pb)
    wins_b = _pair_lookup(WB, pb, pa)
    if n_cobids is None:
        BB = (Bf @ Bf.T).tocsr()
        n_cobids = _pair_lookup(BB, pa, pb)
    return pd.DataFrame(_wins_columns(wins_a, wins_b, np.asarray(n_cobids, dtype=np.float64), pa, pb, Bf, Wf),
                        copy=False)


def _wins_columns(wins_a: np.ndarray, wins_b: np.ndarray, n_ab: np.ndarray, a: np.ndarray, b: np.ndarray,
                  B: sp.csr_matrix, won: sp.csr_matrix | np.ndarray) -> dict[str, np.ndarray]:
    """The columns of :func:`pair_wins` from the pairs' win counts.

    ``won`` is the winning-bid matrix, or a bool per stored entry of
    canonical ``B``; then the counts are exact co-bid and win counts and
    ``underwin`` may come from a table.
    """
    if isinstance(won, np.ndarray):
        deg = np.diff(B.indptr).astype(np.float64)
        seen = np.concatenate((np.zeros(1, np.int64), np.cumsum(won, dtype=np.int64)))
        total_wins = (seen[B.indptr[1:]] - seen[B.indptr[:-1]]).astype(np.float64)
    else:
        deg = np.asarray(B.sum(axis=1), dtype=np.float64).ravel()
        total_wins = np.asarray(won.sum(axis=1), dtype=np.float64).ravel()
    under = _Underwin(total_wins, deg, n_ab if isinstance(won, np.ndarray) else None)
    asym, under_a, under_b = (np.empty(n_ab.size) for _ in range(3))
    for sl in chunks(n_ab.size):
        w_a, w_b = (np.asarray(x[sl], dtype=np.float64) for x in (wins_a, wins_b))
        won_ab = w_a + w_b
        with np.errstate(invalid="ignore", divide="ignore"):
            asym[sl] = np.where(won_ab > 0, np.abs(w_a - w_b) / won_ab, np.nan)
        under_a[sl] = under(n_ab[sl], wins_a[sl], a[sl])
        under_b[sl] = under(n_ab[sl], wins_b[sl], b[sl])
    return {
        "wins_a": wins_a.astype(np.int64, copy=False),
        "wins_b": wins_b.astype(np.int64, copy=False),
        "win_asymmetry": asym,
        "underwin_a": under_a,
        "underwin_b": under_b,
    }


#: Co-bid counts up to which :class:`_Underwin` looks values up in a table.
_UNDERWIN_TABLE_N = 8


class _Underwin:
    """:func:`_underwin` of pairs' sides, given each firm's wins and tenders.

    With ``n_shared``, the pairs' integer co-bid counts (and integer win
    counts, ``0 <= wins <= n_shared``, ``n_shared >= 1``, in the calls), the
    value of a side depends on the pair only through the firm's
    ``(wins_total, n_total)`` and ``(n_shared, wins)``. Firms share a few
    thousand distinct totals and most pairs of a large market meet in one to
    eight tenders: those values come from a table over the distinct totals
    and those few counts, computed by the same function, so they are the same
    numbers (the binomial CDF of tens of millions of pairs took seconds).
    """

    def __init__(self, wins_total: np.ndarray, n_total: np.ndarray, n_shared: np.ndarray | None = None) -> None:
        self.wins_total, self.n_total = wins_total, n_total
        self.table = None
        if n_shared is None:
            return
        tn, tk = _triangle(1, _UNDERWIN_TABLE_N)
        # Integer totals: the key is exact in float64.
        _, rep, self.totals = np.unique(wins_total * (n_total.max(initial=0.0) + 1.0) + n_total,
                                        return_index=True, return_inverse=True)
        # The table pays off when pairs meeting in few tenders outnumber its cells.
        if rep.size * tn.size > 2 * np.count_nonzero(n_shared <= _UNDERWIN_TABLE_N):
            return
        self.n_cols = tn.size
        t_rep = np.repeat(rep, self.n_cols)
        self.table = _underwin(np.tile(tn, rep.size), np.tile(tk, rep.size), wins_total[t_rep], n_total[t_rep])

    def __call__(self, n_shared: np.ndarray, wins: np.ndarray, firm: np.ndarray) -> np.ndarray:
        """Underwin of each side; with a table ``n_shared`` and ``wins`` must be integer arrays.

        Integers all the way to the table cell: a float to int64 cast of
        the counts costs 30 ns a pair here, more than the lookup itself.
        """
        if self.table is None:
            return _underwin(np.asarray(n_shared, dtype=np.float64), np.asarray(wins, dtype=np.float64),
                             self.wins_total[firm], self.n_total[firm])
        cell = self.totals[firm] * self.n_cols
        cell += _triangle_cell(1, n_shared, wins)
        # Cells of counts above the table are wrong (or past its end, hence
        # the clip) and are overwritten below.
        out = self.table.take(cell, mode="clip")
        big = np.flatnonzero(n_shared > _UNDERWIN_TABLE_N)
        fb = firm[big]
        out[big] = _underwin(n_shared[big].astype(np.float64), wins[big].astype(np.float64),
                             self.wins_total[fb], self.n_total[fb])
        return out


def suspicious_cobids(
    B: sp.spmatrix,
    suspicious: np.ndarray,
    company_a: np.ndarray,
    company_b: np.ndarray,
    n_cobids: np.ndarray,
    n_suspicious: np.ndarray | None = None,
) -> pd.DataFrame:
    """Excess of suspicious tenders among the tenders each pair bid in together.

    Under the null hypothesis a pair's shared tenders are suspicious at the
    market rate ``q`` (the share of suspicious tenders among tenders with at
    least two bids), so the number ``k`` of suspicious shared tenders is
    ``Binomial(n_cobids, q)``. Cartel members meet mostly in rigged tenders,
    so ``k`` is far in the upper tail; firms of one regional market meet
    often but in ordinary tenders.

    Parameters
    ----------
    B : sparse matrix
        Company × tender bid incidence.
    suspicious : array of bool
        Per tender: the tender is suspicious (e.g. in the market's top decile
        of price-screen and trace evidence).
    company_a, company_b, n_cobids : arrays
        Pairs and their co-bid counts (columns of :func:`cobid_pairs`).
    n_suspicious : array, optional
        Suspicious shared tenders per pair when already counted
        (``cobid_pairs(..., flags=suspicious)["n_flagged"]``).

    Returns
    -------
    pandas.DataFrame
        Aligned with the pairs: ``n_suspicious`` (shared suspicious tenders),
        ``expected`` (``n_cobids * q``) and ``logp`` (``-log10`` of the
        binomial upper tail ``P(X >= n_suspicious)``).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.repeat(np.arange(10), 2)
    >>> c = np.tile([0, 1], 10)
    >>> t = np.r_[t, np.arange(10)]; c = np.r_[c, np.full(10, 2)]
    >>> B = bid_incidence(t, c, n_tenders=10, n_companies=3)
    >>> sus = np.arange(10) < 5
    >>> out = suspicious_cobids(B, sus, np.array([0, 0]), np.array([1, 2]), np.array([10, 10]))
    >>> out["n_suspicious"].tolist(), out["expected"].tolist()
    ([5, 5], [5.0, 5.0])
    """
    Bc = sp.csr_matrix(B)
    sus = np.asarray(suspicious, dtype=bool)
    # Stored entries per column: the bidders of each tender (values are ignored).
    n_bidders = np.bincount(Bc.indices, minlength=Bc.shape[1])
    contested = n_bidders >= 2
    q = float(sus[contested].mean()) if contested.any() else 0.0
    n = np.asarray(n_cobids)
    if n_suspicious is None:
        Bf = sp.csr_matrix(B, dtype=np.float64, copy=True)
        Bf.data[:] = 1.0
        S = (Bf @ sp.diags(sus.astype(np.float64))) @ Bf.T
        k = _pair_lookup(S, np.asarray(company_a, dtype=np.int64), np.asarray(company_b, dtype=np.int64))
    else:
        k = np.asarray(n_suspicious)
    # Chunk by chunk: millions of pairs at 1M tenders, and only the three
    # output columns get fresh full-size pages (see collusion._incidences.chunks).
    expected, logp = np.empty(k.size), np.empty(k.size)
    for sl in chunks(k.size):
        k_f, n_f = k[sl].astype(np.float64), n[sl].astype(np.float64)
        lp = -_binom_logsf_at_least(k_f, n_f, q) / np.log(10.0) if 0 < q < 1 else np.zeros(k_f.size)
        np.maximum(np.nan_to_num(lp, nan=0.0, posinf=300.0), 0.0, out=logp[sl])
        np.multiply(n_f, q, out=expected[sl])
    return pd.DataFrame({
        "n_suspicious": k.astype(np.int64),  # a copy, also of int64 input
        "expected": expected,
        "logp": logp,
    }, copy=False)


#: Trial counts up to which :func:`_binom_logsf_at_least` looks values up in a table.
_LOGSF_TABLE_N = 64


def _binom_logsf_at_least(k: np.ndarray, n: np.ndarray, q: float) -> np.ndarray:
    """``stats.binom.logsf(k - 1, n, q)``: log P(X >= k) for ``X ~ Binomial(n, q)``, elementwise.

    With one ``q`` for all pairs the value depends only on ``(k, n)``, and
    millions of pairs share a few thousand small counts: those come from a
    table computed by the same call, so they are the same numbers.
    """
    N = _LOGSF_TABLE_N
    small = (n <= N) & (k >= 0) & (k <= n) & (k == np.floor(k)) & (n == np.floor(n))
    if 2 * _triangle_cell(0, N + 1, 0) > np.count_nonzero(small):  # the table would cost more than it saves
        return stats.binom.logsf(k - 1, n, q)
    tn, tk = _triangle(0, N)
    table = stats.binom.logsf(tk - 1, tn, q)
    out = np.empty(k.size)
    out[small] = table[_triangle_cell(0, n[small].astype(np.int64), k[small].astype(np.int64))]
    big = ~small
    out[big] = stats.binom.logsf(k[big] - 1, n[big], q)
    return out


def _triangle(n_min: int, n_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Every count pair ``(n, k)`` with ``n_min <= n <= n_max`` and ``0 <= k <= n``, as floats.

    Row by row (``n`` ascending, then ``k``): the cells of the lookup tables of
    functions of a trial count and a success count, where ``(n, k)`` sits at
    :func:`_triangle_cell`.
    """
    n = np.arange(n_min, n_max + 1)
    tn = np.repeat(n.astype(np.float64), n + 1)
    tk = np.arange(tn.size) - np.repeat(_triangle_cell(n_min, n, 0), n + 1)
    return tn, tk.astype(np.float64)


def _triangle_cell(n_min: int, n: Any, k: Any) -> Any:
    """Position of ``(n, k)`` in :func:`_triangle` ``(n_min, ...)``."""
    return n * (n + 1) // 2 - n_min * (n_min + 1) // 2 + k


def _underwin(n_shared: np.ndarray, wins_shared: np.ndarray, wins_total: np.ndarray, n_total: np.ndarray) -> np.ndarray:
    """``-log10 P(Binomial(n_shared, p_outside) <= wins_shared)``, 0 when no outside tenders."""
    n_out = n_total - n_shared
    with np.errstate(invalid="ignore", divide="ignore"):
        p_out = np.where(n_out > 0, (wins_total - wins_shared) / np.maximum(n_out, 1), 0.0)
    p_out = np.clip(p_out, 0.0, 1.0)
    logcdf = stats.binom.logcdf(wins_shared, n_shared, p_out)
    res = -logcdf / np.log(10.0)
    res = np.where(np.isfinite(res), res, 0.0)
    return np.maximum(res, 0.0)


#: Leiden passes of NetworKit's ``ParallelLeiden`` (its default). On the 100k co-bid network five passes
#: raise modularity from 0.704290 to 0.704307 for 60% more time (igraph run to convergence: 0.70430).
_LEIDEN_ITERATIONS = 3

#: NetworKit's seed and thread count are process-wide: one Leiden run at a time.
_LEIDEN_LOCK = threading.Lock()


def cobidding_communities(
    a: np.ndarray,
    b: np.ndarray,
    weight: np.ndarray,
    n_companies: int,
    *,
    resolution: float = 1.0,
    seed: int = 0,
    graph: Any = None,
) -> np.ndarray:
    """Co-bidding groups: Leiden communities (modularity objective) of firms.

    Runs NetworKit's Leiden (``ParallelLeiden``, three passes) on one thread,
    graph construction included, so the result depends only on the input and
    ``seed``, not on the machine's or the caller's thread count: 4x faster
    than igraph's Leiden run to convergence on the 777k-edge co-bid network
    of a 100k-tender market (0.23 vs 1.2 s with the network built), 7x at
    22M edges, with the same modularity to 1e-5 there (on random graphs
    0.3-0.6% lower than igraph's). NetworKit's seed is process-wide: this
    call sets it (no getter exists to restore it), and calls are serialised
    by a lock; its thread count is restored afterwards.

    Parameters
    ----------
    a, b : array of int
        Company codes of the edges (one row per unordered pair; repeated pairs
        add their weights; ``(a, b)`` and ``(b, a)`` are the same pair).
    weight : array of float
        Edge weights (e.g. Jaccard overlap of the two firms' tenders). Edges of
        weight 0 or less, NaN or infinite weight, and self-loops are ignored.
    n_companies : int
        Number of company codes (vertices ``0 .. n_companies - 1``).
    resolution : float
        Modularity resolution; higher finds smaller, tighter groups.
    seed : int
        Seed of Leiden's random node order (results are reproducible); any
        integer (taken modulo 2**64).
    graph : igraph.Graph, optional
        A ready undirected igraph projection with ``n_companies`` vertices and
        a ``weight`` edge attribute (e.g. from the procurement graph); when
        given, its edges and weights are used (through Python lists: seconds
        for tens of millions of edges) and ``a``, ``b`` and ``weight`` are
        ignored.

    Returns
    -------
    numpy.ndarray of int64
        Group code per company, ``-1`` for firms alone in their community.
        Groups are numbered in the order of their smallest member code, so the
        numbering does not depend on Leiden's internal labels.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([0, 0, 1, 3, 3, 4, 2])
    >>> b = np.array([1, 2, 2, 4, 5, 5, 3])
    >>> w = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.1])
    >>> cobidding_communities(a, b, w, 7).tolist()
    [0, 0, 0, 1, 1, 1, -1]
    """
    n = int(n_companies)
    if graph is not None:
        if graph.is_directed():
            raise ValueError("graph must be an undirected igraph projection (co-bidding is symmetric)")
        if graph.vcount() != n:
            raise ValueError(f"igraph projection has {graph.vcount()} vertices, expected {n} companies")
        ends = np.asarray(graph.get_edgelist(), dtype=np.int64).reshape(-1, 2)
        a, b = ends[:, 0], ends[:, 1]
        weight = graph.es["weight"] if "weight" in graph.es.attributes() else np.ones(len(a))
    adjacency = _upper_adjacency(a, b, weight, n)
    if adjacency.nnz == 0:
        return np.full(n, -1, dtype=np.int64)
    return _canonical_groups(_leiden(adjacency, resolution=resolution, seed=seed))


def _upper_adjacency(a: Any, b: Any, weight: Any, n: int) -> sp.csr_matrix:
    """Weighted upper-triangle adjacency (row < column) of the kept edges; repeats summed.

    Examples
    --------
    >>> _upper_adjacency([0, 2, 1], [1, 1, 1], [1.0, 2.0, 5.0], 3).toarray().tolist()
    [[0.0, 1.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]]
    """
    weight = np.asarray(weight, dtype=np.float64)
    a, b = np.asarray(a), np.asarray(b)
    for name, codes in (("a", a), ("b", b)):
        if codes.size and (codes.min() < 0 or codes.max() >= n):
            raise ValueError(f"company codes in {name!r} must lie in [0, n_companies={n}); "
                             f"found {codes.min()}..{codes.max()}")
    if not (a < b).all():  # pair tables come as a < b: no ordered copies of tens of millions of codes then
        a, b = np.minimum(a, b), np.maximum(a, b)
    keep = np.isfinite(weight) & (weight > 0) & (a != b)
    if not keep.all():  # usually every pair is kept: no copies then either
        a, b, weight = a[keep], b[keep], weight[keep]
    m = sp.csr_matrix((weight, (a, b)), shape=(n, n))
    m.sum_duplicates()
    return m


def _leiden(adjacency: sp.csr_matrix, *, resolution: float, seed: int) -> np.ndarray:
    """Raw Leiden labels of the undirected graph stored as an upper-triangle adjacency.

    Everything runs on one thread, the graph build too: NetworKit builds
    neighbour lists in parallel, their order then depends on thread timing,
    and Leiden's result on that order.
    """
    import networkit as nk

    with _LEIDEN_LOCK:
        threads = nk.getMaxNumberOfThreads()
        nk.setNumberOfThreads(1)
        try:
            g = nk.graph.GraphFromCsr(adjacency, directed=False, weighted=True)
            nk.engineering.setSeed(int(seed) % 2**64, False)
            leiden = nk.community.ParallelLeiden(g, iterations=_LEIDEN_ITERATIONS, gamma=float(resolution))
            leiden.run()
            return np.asarray(leiden.getPartition().getVector(), dtype=np.int64)
        finally:
            nk.setNumberOfThreads(threads)


def _canonical_groups(raw: np.ndarray) -> np.ndarray:
    """Renumber labels by smallest member; singletons become -1."""
    n = raw.size
    if n == 0:
        return raw
    sizes = np.bincount(raw)
    first = np.full(sizes.size, n, dtype=np.int64)
    np.minimum.at(first, raw, np.arange(n))
    multi = sizes >= 2
    order = np.argsort(np.where(multi, first, n + 1), kind="stable")
    new = np.full(sizes.size, -1, dtype=np.int64)
    new[order[: int(multi.sum())]] = np.arange(int(multi.sum()))
    return new[raw]


def group_tenders(membership: np.ndarray, B: sp.spmatrix, *, min_members: int = 2) -> pd.DataFrame:
    """Tenders where at least ``min_members`` members of one group bid.

    Parameters
    ----------
    membership : array of int
        Group code per company (``-1`` = no group).
    B : sparse matrix
        Company × tender bid incidence.
    min_members : int
        Minimum number of members bidding.

    Returns
    -------
    pandas.DataFrame
        Columns ``group``, ``tender``, ``n_members_bidding``, sorted by
        ``(group, tender)``.

    Examples
    --------
    >>> import numpy as np
    >>> B = bid_incidence(np.array([0, 0, 0, 1, 1]), np.array([0, 1, 2, 0, 2]), n_tenders=2, n_companies=3)
    >>> group_tenders(np.array([0, 0, -1]), B).values.tolist()
    [[0, 0, 2]]
    """
    GB = _group_matrix(membership) @ sp.csr_matrix(B, dtype=np.float64)
    GB = sp.coo_matrix(GB)
    keep = GB.data >= min_members
    g, t, k = GB.row[keep].astype(np.int64), GB.col[keep].astype(np.int64), GB.data[keep].astype(np.int64)
    order = np.lexsort((t, g))
    return pd.DataFrame({"group": g[order], "tender": t[order], "n_members_bidding": k[order]})


def _group_matrix(membership: np.ndarray) -> sp.csr_matrix:
    membership = np.asarray(membership, dtype=np.int64)
    n_groups = int(membership.max()) + 1 if membership.size and membership.max() >= 0 else 0
    idx = np.flatnonzero(membership >= 0)
    return sp.csr_matrix(
        (np.ones(idx.size), (membership[idx], idx)), shape=(n_groups, membership.size)
    )


def group_pair_sum(
    membership: np.ndarray, a: np.ndarray, b: np.ndarray, values: np.ndarray, *, n_groups: int | None = None
) -> np.ndarray:
    """Sum a pair signal over the pairs whose two firms are in the same group.

    Examples
    --------
    >>> import numpy as np
    >>> group_pair_sum(np.array([0, 0, 1, 1]), np.array([0, 1, 2]), np.array([1, 2, 3]), np.array([2.0, 5.0, 1.0])).tolist()
    [2.0, 1.0]
    """
    membership = np.asarray(membership, dtype=np.int64)
    if n_groups is None:
        n_groups = int(membership.max()) + 1 if membership.size and membership.max() >= 0 else 0
    # Codes index as they are (int32 pairs): casting millions of them to int64 first only copies.
    a, b = np.asarray(a), np.asarray(b)
    ga = membership[a if a.dtype.kind in "iu" else a.astype(np.int64)]
    gb = membership[b if b.dtype.kind in "iu" else b.astype(np.int64)]
    inside = np.flatnonzero((ga == gb) & (ga >= 0))
    # Gathered before the float cast: only the pairs inside a group are converted.
    return np.bincount(ga[inside], weights=np.asarray(np.asarray(values)[inside], dtype=np.float64),
                       minlength=n_groups)


def group_statistics(
    membership: np.ndarray,
    B: sp.spmatrix,
    winner: np.ndarray,
    pairs: pd.DataFrame,
    *,
    time: np.ndarray | None = None,
    inside: np.ndarray | None = None,
) -> pd.DataFrame:
    """Cohesion, exclusivity and rotation of each co-bidding group.

    Parameters
    ----------
    membership : array of int
        Group code per company (``-1`` = none), e.g. from :func:`cobidding_communities`.
    B : sparse matrix
        Company × tender bid incidence.
    winner : array of int
        Winning company code per tender (``-1`` = none), see :func:`tender_winner`.
    pairs : pandas.DataFrame
        Output of :func:`cobid_pairs` (``min_cobids=1`` for exact cohesion).
    time : array, optional
        A sortable time per tender (award or publication date; NaT/NaN last).
        Default: tender code order.
    inside : array of int, optional
        Rows of ``pairs`` whose two firms are in one group, ascending, when the
        caller has them already (found here otherwise).

    Returns
    -------
    pandas.DataFrame
        One row per group (index = group code):

        ``n_members``, ``n_tenders``
            size, and tenders where at least two members bid ("group tenders");
        ``cohesion``
            mean Jaccard overlap over all member pairs (absent pairs count 0);
        ``exclusivity``
            share of the members' co-bidding ties (bidder-pairs over all their
            tenders) that are ties with other members;
        ``presence``
            mean share of the members that bid in a group tender;
        ``member_bid_share``
            mean share of the bidders of a group tender that are members;
        ``member_win_share``
            share of the group tenders (with a winner) won by a member;
        ``rotation_evenness``
            ``(1/Σ s_i² - 1) / (k - 1)`` for members' win shares ``s_i`` in the
            group tenders: 1 when wins are spread equally over all ``k`` members,
            0 when one member takes all;
        ``n_winners``
            members that won at least one group tender;
        ``rotation_alternation``
            share of consecutive member-won group tenders whose winner differs
            from the previous one; ``rotation_expected`` is that share under
            independent draws with the same win shares (``1 - Σ s_i²``).
        ``underwin_max``
            largest ``underwin`` among member pairs (a member that never wins
            against a partner).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([0, 0, 1, 1, 2, 2, 2])
    >>> c = np.array([0, 1, 0, 1, 0, 1, 2])
    >>> B = bid_incidence(t, c, n_tenders=3, n_companies=3)
    >>> pairs = cobid_pairs(B)
    >>> st = group_statistics(np.array([0, 0, -1]), B, np.array([0, 1, 0]), pairs)
    >>> st[["n_members", "n_tenders", "cohesion", "member_win_share"]].values.round(3).tolist()
    [[2.0, 3.0, 1.0, 1.0]]
    >>> round(float(st["exclusivity"].iloc[0]), 3)
    0.75
    """
    membership = np.asarray(membership, dtype=np.int64)
    winner = np.asarray(winner, dtype=np.int64)
    n_groups = int(membership.max()) + 1 if membership.size and membership.max() >= 0 else 0
    idx = pd.RangeIndex(n_groups, name="group")
    if n_groups == 0:
        return pd.DataFrame(index=idx, columns=_GROUP_COLUMNS, dtype=np.float64)
    Bf = _binary_float(B)
    size = np.bincount(membership[membership >= 0], minlength=n_groups).astype(np.float64)
    n_pairs = size * (size - 1) / 2

    # Which pairs lie inside one group, found once for every pair sum below
    # (group_pair_sum would gather both ends of millions of pairs each time).
    if inside is None:
        ga, gb = membership[pairs["company_a"].to_numpy()], membership[pairs["company_b"].to_numpy()]
        rows = np.flatnonzero((ga == gb) & (ga >= 0))
        del ga, gb
    else:
        rows = np.asarray(inside)
    g_in = membership[pairs["company_a"].to_numpy()[rows]]

    def pair_sum(values: np.ndarray) -> np.ndarray:
        # Gathered before the float cast: an int column is not converted for all the pairs.
        return np.bincount(g_in, weights=np.asarray(np.asarray(values)[rows], dtype=np.float64), minlength=n_groups)

    cohesion = pair_sum(pairs["jaccard"].to_numpy()) / n_pairs
    internal = pair_sum(pairs["n_cobids"].to_numpy())
    # Co-bidding strength of a firm: bidder-pairs it is part of, Σ_t (n_t - 1).
    n_bidders = np.asarray(Bf.sum(axis=0)).ravel()
    strength = Bf @ (n_bidders - 1)
    member = membership >= 0
    total = np.bincount(membership[member], weights=strength[member], minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Each internal tie appears in the strength of both its ends.
        exclusivity = np.where(total > 0, 2.0 * internal / total, np.nan)
    if "underwin_a" in pairs:
        under = np.fmax(pairs["underwin_a"].to_numpy()[rows], pairs["underwin_b"].to_numpy()[rows])
    else:
        under = np.full(rows.size, np.nan)
    fin = np.isfinite(under)
    underwin_max = np.zeros(n_groups)
    np.maximum.at(underwin_max, g_in[fin], under[fin])

    gt = group_tenders(membership, Bf)
    g = gt["group"].to_numpy()
    t = gt["tender"].to_numpy()
    k = gt["n_members_bidding"].to_numpy().astype(np.float64)
    n_gt = np.bincount(g, minlength=n_groups).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        presence = np.bincount(g, weights=k / size[g], minlength=n_groups) / n_gt
        member_bid_share = np.bincount(g, weights=k / n_bidders[t], minlength=n_groups) / n_gt
    w = winner[t]
    has_w = w >= 0
    member_won = has_w & (membership[np.where(has_w, w, 0)] == g)
    n_with_winner = np.bincount(g[has_w], minlength=n_groups).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        member_win_share = np.bincount(g[member_won], minlength=n_groups) / n_with_winner

    # Win shares of each member in its group's tenders.
    wg, wc = g[member_won], w[member_won]
    key = wg * np.int64(membership.size) + wc
    ukey, wins = np.unique(key, return_counts=True)
    ug = ukey // membership.size
    total_w = np.bincount(ug, weights=wins, minlength=n_groups)
    share2 = np.bincount(ug, weights=(wins / total_w[ug]) ** 2, minlength=n_groups)
    n_winners = np.bincount(ug, minlength=n_groups).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = np.where(share2 > 0, 1.0 / share2, np.nan)
        evenness = np.where(size > 1, (eff - 1.0) / (size - 1.0), np.nan)
    evenness = np.where(total_w > 0, evenness, 0.0)
    expected = np.where(total_w > 0, 1.0 - share2, np.nan)

    # Turn-taking: consecutive member wins (in time) by different members.
    tt = np.arange(winner.size) if time is None else np.asarray(time)
    tt_sel = tt[t[member_won]]
    order = np.lexsort((t[member_won], tt_sel, wg)) if wg.size else np.empty(0, np.int64)
    og, oc = wg[order], wc[order]
    same_group = np.r_[False, og[1:] == og[:-1]] if og.size else np.empty(0, bool)
    switch = same_group & np.r_[False, oc[1:] != oc[:-1]] if og.size else np.empty(0, bool)
    n_trans = np.bincount(og[same_group], minlength=n_groups).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        alternation = np.bincount(og[switch], minlength=n_groups) / n_trans

    return pd.DataFrame(
        {
            "n_members": size,
            "n_tenders": n_gt,
            "cohesion": cohesion,
            "exclusivity": exclusivity,
            "presence": presence,
            "member_bid_share": member_bid_share,
            "member_win_share": member_win_share,
            "rotation_evenness": evenness,
            "n_winners": n_winners,
            "rotation_alternation": alternation,
            "rotation_expected": expected,
            "underwin_max": underwin_max,
        },
        index=idx,
    )


_GROUP_COLUMNS = [
    "n_members",
    "n_tenders",
    "cohesion",
    "exclusivity",
    "presence",
    "member_bid_share",
    "member_win_share",
    "rotation_evenness",
    "n_winners",
    "rotation_alternation",
    "rotation_expected",
    "underwin_max",
]


def tender_group_share(membership: np.ndarray, B: sp.spmatrix) -> pd.DataFrame:
    """Per tender, the group with most bidders and the share of bidders it holds.

    Returns
    -------
    pandas.DataFrame
        One row per tender code: ``group`` (``-1`` when no group has two
        bidders there), ``n_members_bidding`` and ``group_share`` (members of
        that group / all bidders).

    Examples
    --------
    >>> import numpy as np
    >>> B = bid_incidence(np.array([0, 0, 0, 1, 1]), np.array([0, 1, 2, 0, 2]), n_tenders=2, n_companies=3)
    >>> tender_group_share(np.array([0, 0, -1]), B).round(3).values.tolist()
    [[0.0, 2.0, 0.667], [-1.0, 0.0, 0.0]]
    """
    Bf = _binary_float(B)
    n_t = Bf.shape[1]
    n_bidders = np.asarray(Bf.sum(axis=0)).ravel()
    gt = group_tenders(membership, Bf)
    group = np.full(n_t, -1, dtype=np.int64)
    k = np.zeros(n_t, dtype=np.int64)
    if len(gt):
        # Largest group per tender; ties to the lower group code (deterministic).
        srt = gt.sort_values(["tender", "n_members_bidding", "group"], ascending=[True, False, True])
        first = srt.drop_duplicates("tender")
        group[first["tender"].to_numpy()] = first["group"].to_numpy()
        k[first["tender"].to_numpy()] = first["n_members_bidding"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n_bidders > 0, k / np.maximum(n_bidders, 1), 0.0)
    return pd.DataFrame(
        {"group": group, "n_members_bidding": k, "group_share": share}, index=pd.RangeIndex(n_t, name="tender")
    )


def group_ids(members: Sequence[Sequence[str]], *, prefix: str = "G") -> list[str]:
    """Stable group ids derived from the sorted member ids.

    The same set of firms gets the same id on every run, whatever the order of
    members or the group's number in this run.

    Examples
    --------
    >>> group_ids([["company:b", "company:a"], ["company:a", "company:b"]])[0] == group_ids([["company:a", "company:b"]])[0]
    True
    >>> group_ids([["company:a", "company:b"]])[0].startswith("G")
    True
    """
    return [prefix + hashlib.sha1("|".join(sorted(m)).encode()).hexdigest()[:12] for m in members]
