"""Contract-execution features: payments, change orders, builders and project costs.

These are the building blocks of analyses 3 (winner ↔ actual builder) and 4
(abnormal fund disbursement). Every function works on integer codes and plain
arrays (one row per payment, change or contract) and returns one row per
contract, payment, winner or project; nothing loops over contracts in Python.

Most per-contract aggregates are sums and counts (``np.bincount``), so results
computed on disjoint sets of contracts add up.

Ties between parties (declared relations, shared people, entity resolution)
and the accounts each company uses are read from the procurement graph
(:func:`graph_ties`, :func:`graph_accounts`), whose entity codes are the
market's codes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from .._arrays import unique_ints
from ._segments import group_order, segment_broadcast, segment_ids
from ._thresholds import robust_z

__all__ = [
    "ACCOUNTS_SCRATCH",
    "PAYEE_ROLES",
    "builder_signals",
    "change_totals",
    "company_links",
    "cost_overrun_chain",
    "disbursement",
    "early_payments",
    "graph_accounts",
    "graph_ties",
    "group_robust_z",
    "lending_hubs",
    "lookup_pairs",
    "manager_ties",
    "payee_roles",
    "payment_shares",
    "person_company_ties",
    "segment_cumsum",
    "shared_graph_accounts",
    "to_days",
]

#: Role of a payee relative to the contract, as returned by :func:`payee_roles`.
PAYEE_ROLES: tuple[str, ...] = ("winner", "builder", "linked", "unrelated", "unknown")

_NS_PER_DAY = 86_400e9


def to_days(values: Any) -> np.ndarray:
    """Datetimes as float days since the epoch; NaT becomes NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> to_days(pd.Series(pd.to_datetime(["1970-01-02", None]))).tolist()
    [1.0, nan]
    """
    arr = np.asarray(values, dtype="datetime64[ns]")
    out = arr.astype(np.int64).astype(np.float64) / _NS_PER_DAY
    out[np.isnat(arr)] = np.nan
    return out


def segment_cumsum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Cumulative sum that restarts at every segment (rows in segment order).

    One global ``cumsum`` minus each segment's starting offset: no loop over
    segments. ``offsets`` are the CSR offsets of
    :func:`collusion.features._segments.group_order`.

    Parameters
    ----------
    values : array of float
        Values in segment order.
    offsets : array of int
        Rows of segment ``g`` are ``offsets[g]:offsets[g + 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> segment_cumsum(np.array([1.0, 2.0, 3.0, 10.0, 5.0]), np.array([0, 3, 3, 5])).tolist()
    [1.0, 3.0, 6.0, 10.0, 15.0]
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return v.copy()
    cs = np.cumsum(v)
    before = np.r_[0.0, cs][np.asarray(offsets[:-1], dtype=np.int64)]
    return cs - segment_broadcast(before, offsets)


def change_totals(
    contract: np.ndarray, amount_delta: np.ndarray, approved: np.ndarray, n_contracts: int
) -> pd.DataFrame:
    """Per-contract totals of change orders.

    Parameters
    ----------
    contract : array of int
        Contract code of each change (-1 = unknown, ignored).
    amount_delta : array of float
        Price change of each order (negative for reductions).
    approved : array of bool
        Whether the change was approved (only approved changes raise the ceiling).
    n_contracts : int
        Number of contracts (length of the result).

    Returns
    -------
    pandas.DataFrame
        ``n_changes``, ``approved_delta`` (net approved change),
        ``approved_increase`` (sum of approved positive deltas) and
        ``unapproved_delta``, one row per contract code.

    Examples
    --------
    >>> import numpy as np
    >>> change_totals(np.array([0, 0, 2]), np.array([5.0, -2.0, 7.0]), np.array([True, True, False]), 3)
       n_changes  approved_delta  approved_increase  unapproved_delta
    0          2             3.0                5.0               0.0
    1          0             0.0                0.0               0.0
    2          1             0.0                0.0               7.0
    """
    c = np.asarray(contract, dtype=np.int64)
    d = np.asarray(amount_delta, dtype=np.float64)
    ok = np.asarray(approved, dtype=bool)
    keep = c >= 0
    c, d, ok = c[keep], d[keep], ok[keep]
    return pd.DataFrame(
        {
            "n_changes": np.bincount(c, minlength=n_contracts)[:n_contracts],
            "approved_delta": np.bincount(c, weights=np.where(ok, d, 0.0), minlength=n_contracts)[:n_contracts],
            "approved_increase": np.bincount(c, weights=np.where(ok & (d > 0), d, 0.0), minlength=n_contracts)[
                :n_contracts
            ],
            "unapproved_delta": np.bincount(c, weights=np.where(ok, 0.0, d), minlength=n_contracts)[:n_contracts],
        },
        copy=False,
    )


def disbursement(
    contract: np.ndarray,
    amount: np.ndarray,
    ceiling: np.ndarray,
    *,
    paid_at: np.ndarray | None = None,
    rtol: float = 1e-9,
) -> pd.DataFrame:
    """Cumulative payments against each contract's ceiling (amount + approved changes).

    Payments are ordered by (contract, payment date) and accumulated per
    contract with :func:`segment_cumsum`; the first payment whose cumulative
    total exceeds the ceiling is the evidence of over-disbursement.

    Parameters
    ----------
    contract : array of int
        Contract code of each payment (-1 = unknown, ignored).
    amount : array of float
        Payment amounts.
    ceiling : array of float
        Ceiling per contract code (``len(ceiling)`` = number of contracts).
    paid_at : array of datetime64, optional
        Payment dates; payments are ordered by date within a contract (missing
        dates last). When omitted, the given row order is used.
    rtol : float
        Relative tolerance on the ceiling, so float rounding of an exact full
        payment never counts as excess.

    Returns
    -------
    pandas.DataFrame
        One row per contract: ``n_payments``, ``paid``, ``ceiling``,
        ``excess`` (paid − ceiling, ≥ 0), ``excess_ratio`` (excess / ceiling)
        and ``crossing_row`` (input row of the first payment that crossed the
        ceiling, -1 if none).

    Examples
    --------
    >>> import numpy as np
    >>> d = disbursement(np.array([0, 0, 0, 1]), np.array([50.0, 40.0, 30.0, 10.0]), np.array([100.0, 10.0]))
    >>> d[["paid", "excess", "crossing_row"]]
        paid  excess  crossing_row
    0  120.0    20.0             2
    1   10.0     0.0            -1
    """
    c = np.asarray(contract, dtype=np.int64)
    a = np.asarray(amount, dtype=np.float64)
    cap = np.asarray(ceiling, dtype=np.float64)
    n = cap.size
    rows = np.flatnonzero((c >= 0) & (c < n))
    # Order by (contract, date); undated payments go last within their contract.
    days = np.nan_to_num(to_days(paid_at)[rows], nan=np.inf) if paid_at is not None else None
    # Payments usually arrive in that order already (one contract's instalments by date): then
    # a linear check replaces the counting sort and the per-segment date sorts.
    order, offsets = group_order(c[rows], n, values=days, assume_sorted=_sorted_by(c[rows], days))
    if order is not None:
        rows = rows[order]
    cs, aa = segment_ids(offsets), a[rows]
    paid = np.bincount(cs, weights=aa, minlength=n)[:n]
    cum = segment_cumsum(aa, offsets)
    limit = cap[cs] * (1.0 + rtol)
    over = np.flatnonzero(cum > limit)
    crossing = np.full(n, -1, dtype=np.int64)
    if over.size:
        # rows are in contract order, so the first over-limit row of each contract
        # is the first occurrence of its code among the over-limit rows.
        first_contract, first_pos = np.unique(cs[over], return_index=True)
        crossing[first_contract] = rows[over[first_pos]]
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = np.where(paid > cap * (1.0 + rtol), paid - cap, 0.0)
        ratio = np.where(cap > 0, excess / cap, np.nan)
    return pd.DataFrame(
        {
            "n_payments": np.bincount(cs, minlength=n)[:n],
            "paid": paid,
            "ceiling": cap.copy(),  # the frame does not copy its columns: not the caller's array
            "excess": excess,
            "excess_ratio": ratio,
            "crossing_row": crossing,
        },
        copy=False,
    )


def _sorted_by(codes: np.ndarray, values: np.ndarray | None) -> bool:
    """Are rows in non-decreasing (code, value) order? (NaN values must already be replaced.)"""
    if codes.size < 2:
        return True
    same = codes[1:] == codes[:-1]
    if not (same | (codes[1:] > codes[:-1])).all():
        return False
    return values is None or bool((~same | (values[1:] >= values[:-1])).all())


def early_payments(
    contract: np.ndarray, amount: np.ndarray, paid_at: np.ndarray, signed_at: np.ndarray
) -> pd.DataFrame:
    """Payments made before the contract was signed.

    Parameters
    ----------
    contract : array of int
        Contract code of each payment (-1 ignored).
    amount : array of float
        Payment amounts.
    paid_at : array of datetime64
        Payment dates (NaT = unknown, never early).
    signed_at : array of datetime64
        Signing date per contract code (NaT = unknown: no payment is early).

    Returns
    -------
    pandas.DataFrame
        One row per contract: ``n_early``, ``early_amount`` and
        ``days_early`` (the largest lead of a payment over the signature, 0
        when none).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> paid = pd.to_datetime(["2024-01-01", "2024-03-01", "2024-02-01"]).to_numpy()
    >>> signed = pd.to_datetime(["2024-01-11", "2024-01-01"]).to_numpy()
    >>> early_payments(np.array([0, 0, 1]), np.array([5.0, 7.0, 3.0]), paid, signed)
       n_early  early_amount  days_early
    0        1           5.0        10.0
    1        0           0.0         0.0
    """
    c = np.asarray(contract, dtype=np.int64)
    a = np.asarray(amount, dtype=np.float64)
    signed = to_days(signed_at)
    n = signed.size
    keep = c >= 0
    c, a, paid = c[keep], a[keep], to_days(paid_at)[keep]
    with np.errstate(invalid="ignore"):
        lead = signed[c] - paid
    early = np.nan_to_num(lead, nan=0.0) > 0
    days = np.zeros(n)
    if early.any():
        np.maximum.at(days, c[early], lead[early])
    return pd.DataFrame(
        {
            "n_early": np.bincount(c[early], minlength=n)[:n],
            "early_amount": np.bincount(c[early], weights=a[early], minlength=n)[:n],
            "days_early": days,
        },
        copy=False,
    )


def _symmetric_bool(m: sp.spmatrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.int64)
    return ((m + m.T) > 0).astype(np.int64).tocsr()


def company_links(
    company_company: sp.spmatrix,
    person_company: sp.spmatrix,
    *,
    same_as: sp.spmatrix | None = None,
    hops: int = 2,
) -> sp.csr_matrix:
    """Company × company ties from declared relations, shared people and entity resolution.

    Two firms are tied directly when a relation joins them (subsidiary,
    shareholder, either direction), when entity resolution says they are the
    same firm (``same_as``), or when one person is tied to both (legal
    representative, shareholder, employee). With ``hops=2`` firms are also
    linked through one intermediate firm (two subsidiaries of one parent; a
    duplicate registration of a firm that shares a director).

    Parameters
    ----------
    company_company : sparse matrix
        Company → company relations (graph codes).
    person_company : sparse matrix
        Person → company ties (graph codes).
    same_as : sparse matrix, optional
        Company ↔ company entity-resolution links.
    hops : {1, 2}
        2 adds ties through one intermediate firm.

    Returns
    -------
    scipy.sparse.csr_matrix of bool
        Symmetric, no diagonal.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> cc = sp.csr_matrix((3, 3), dtype=int)
    >>> pc = sp.csr_matrix(np.array([[1, 1, 0]]))         # one person tied to firms 0 and 1
    >>> company_links(cc, pc).toarray().astype(int).tolist()
    [[0, 1, 0], [1, 0, 0], [0, 0, 0]]
    """
    a = _symmetric_bool(company_company)
    if same_as is not None:
        a = ((a + _symmetric_bool(same_as)) > 0).astype(np.int64)
    pc = sp.csr_matrix(person_company, dtype=np.int64)
    direct = ((a + pc.T @ pc) > 0).astype(np.int64)
    out = direct + direct @ direct if hops >= 2 else direct
    # Drop the diagonal (a firm is not its own tie) on the coordinates: setdiag on a LIL
    # matrix is a Python call per row (1.2 s for 75k firms).
    out = sp.csr_matrix(out > 0).tocoo()
    off = out.row != out.col
    return sp.csr_matrix((np.ones(int(off.sum()), dtype=bool), (out.row[off], out.col[off])), shape=out.shape)


def graph_ties(graph: Any) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Company links and person → company ties of a ``ProcurementGraph``, on market codes.

    Reads the ``relations`` (both directions) and ``same_as`` edges of the
    graph and keeps the rows/columns of entities that are in the market
    (graph codes of market entities are the market's codes).

    Returns
    -------
    links : scipy.sparse.csr_matrix of bool
        Company × company (:func:`company_links`).
    person_company : scipy.sparse.csr_matrix of bool
        Person × company direct ties (:func:`person_company_ties`).
    """
    pc = _graph_person_company(graph)
    cc = _graph_adjacency(graph, "relations", "company", "company")
    same = _graph_adjacency(graph, "same_as", "company", "company")
    links = company_links(cc, pc, same_as=same)
    n_c = graph.market.n("company")
    return links[:n_c][:, :n_c].tocsr(), _market_person_company(graph, pc)


def person_company_ties(graph: Any) -> sp.csr_matrix:
    """Person → company direct ties of a ``ProcurementGraph`` on market codes (the second half of
    :func:`graph_ties`, without the company links, whose two-hop product costs seconds at a million tenders).
    """
    return _market_person_company(graph, _graph_person_company(graph))


def _graph_person_company(graph: Any) -> sp.csr_matrix:
    """Person × company relations of the graph in either direction, on graph codes (counts, not bool)."""
    pc = _graph_adjacency(graph, "relations", "person", "company")
    return pc + _graph_adjacency(graph, "relations", "company", "person").T


def _graph_adjacency(graph: Any, rel: str, src: str, dst: str) -> sp.csr_matrix:
    return sp.csr_matrix(graph.adjacency(rel, src_type=src, dst_type=dst, binary=True), dtype=np.int64)


def _market_person_company(graph: Any, pc: sp.csr_matrix) -> sp.csr_matrix:
    """The market's people × companies of a graph person × company matrix, as bool."""
    m = graph.market
    return sp.csr_matrix(pc[: m.n("person")][:, : m.n("company")] > 0)


def lookup_pairs(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows[k], cols[k]] != 0`` for every k; negative codes give False.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> m = sp.csr_matrix(np.array([[0, 1], [0, 0]], dtype=bool))
    >>> lookup_pairs(m, np.array([0, 1, -1]), np.array([1, 0, 0])).tolist()
    [True, False, False]
    """
    r = np.asarray(rows, dtype=np.int64)
    c = np.asarray(cols, dtype=np.int64)
    out = np.zeros(r.size, dtype=bool)
    ok = (r >= 0) & (c >= 0) & (r < matrix.shape[0]) & (c < matrix.shape[1])
    if ok.any() and matrix.nnz:
        out[ok] = np.asarray(matrix[r[ok], c[ok]]).ravel() != 0
    return out


def graph_accounts(graph: Any) -> tuple[sp.csr_matrix, np.ndarray]:
    """Accounts used by each company, and the account node of each payment.

    Companies use accounts as bid-bond payers (``bids.bond_account``) and as
    payees (``payments.payee_account``); values are the graph's normalised
    account nodes, so ``6222-0212`` and ``6222 0212`` are one account.

    Returns
    -------
    owners : scipy.sparse.csr_matrix of bool
        Company (market codes) × account node.
    payment_accounts : numpy.ndarray
        Account node code of each row of ``market.payments`` (-1 = none).
    """
    from ..graph import normalize_account

    m = graph.market
    owners = sp.csr_matrix(graph.adjacency("uses", src_type="company", dst_type="account", binary=True))
    owners = sp.csr_matrix(owners[: m.n("company")] > 0)
    pay = m.payments
    if pay is None or not len(pay):
        return owners, np.zeros(0, dtype=np.int64)
    cat = pay["payee_account"].array
    canon = np.asarray(normalize_account(pd.Series(np.asarray(cat.categories, dtype=object))), dtype=object)
    per_cat = np.append(graph.codes("account", np.where(pd.isna(canon), "", canon)), -1)
    codes = np.asarray(cat.codes, dtype=np.int64)
    return owners, per_cat[np.where(codes >= 0, codes, per_cat.size - 1)]


#: ``graph.__dict__`` key under which :func:`shared_graph_accounts` keeps its result.
ACCOUNTS_SCRATCH = "_payment_accounts"


def shared_graph_accounts(graph: Any) -> tuple[sp.csr_matrix, np.ndarray]:
    """:func:`graph_accounts`, computed once per graph for the analyses that read it (3 and 4).

    Detectors that call it list :data:`ACCOUNTS_SCRATCH` in their ``_graph_scratch``,
    so :func:`~collusion.screen` drops it once the last of them has run.
    """
    cached = graph.__dict__.get(ACCOUNTS_SCRATCH)
    if cached is None:
        cached = graph.__dict__[ACCOUNTS_SCRATCH] = graph_accounts(graph)
    return cached


def payee_roles(
    payee: np.ndarray,
    account: np.ndarray,
    winner: np.ndarray,
    builder: np.ndarray,
    links: sp.csr_matrix | None = None,
    owners: sp.csr_matrix | None = None,
) -> np.ndarray:
    """Role of each payee relative to its contract (codes into :data:`PAYEE_ROLES`).

    ``winner`` (0) and ``builder`` (1) are the contract's parties; ``linked``
    (2) is a payee tied to either through declared relations (``links``), or a
    payment into an account that the winner or builder uses (``owners``);
    ``unrelated`` (3) is everyone else; ``unknown`` (4) when neither payee nor
    account is known.

    Parameters
    ----------
    payee : array of int
        Payee company code per payment (-1 = missing).
    account : array of int
        Payee account code per payment on the index of ``owners`` (-1 = missing).
    winner, builder : array of int
        Winner and builder company code of each payment's contract (-1 = missing).
    links : csr_matrix, optional
        Company × company ties (:func:`company_links`).
    owners : csr_matrix, optional
        Company × account use (:func:`graph_accounts`).

    Examples
    --------
    >>> import numpy as np
    >>> payee_roles(np.array([0, 1, 2, -1]), np.array([-1, -1, -1, -1]),
    ...             np.array([0, 0, 0, 0]), np.array([1, 1, 1, 1])).tolist()
    [0, 1, 3, 4]
    """
    p = np.asarray(payee, dtype=np.int64)
    acc = np.asarray(account, dtype=np.int64)
    w = np.asarray(winner, dtype=np.int64)
    b = np.asarray(builder, dtype=np.int64)
    role = np.full(p.size, 3, dtype=np.int8)
    unknown = (p < 0) & (acc < 0)
    to_builder = (b >= 0) & (p == b)
    to_winner = (w >= 0) & (p == w)
    # Ties are looked up only for payments whose role they can decide: most money goes to the winner.
    open_ = np.flatnonzero(~(unknown | to_builder | to_winner))
    p, acc, w, b = p[open_], acc[open_], w[open_], b[open_]
    linked = np.zeros(open_.size, dtype=bool)
    if links is not None:
        linked |= lookup_pairs(links, p, w) | lookup_pairs(links, p, b)
    if owners is not None:
        linked |= lookup_pairs(owners, w, acc) | lookup_pairs(owners, b, acc)
    role[open_[linked]] = 2
    role[unknown] = 4
    role[to_builder] = 1
    role[to_winner] = 0
    return role


def payment_shares(contract: np.ndarray, amount: np.ndarray, role: np.ndarray, n_contracts: int) -> pd.DataFrame:
    """Amount paid per contract to each payee role, and the shares of the total.

    Examples
    --------
    >>> import numpy as np
    >>> payment_shares(np.array([0, 0, 1]), np.array([30.0, 10.0, 5.0]), np.array([0, 3, 1]), 2)[
    ...     ["paid_winner", "paid_unrelated", "share_unrelated", "share_builder"]]
       paid_winner  paid_unrelated  share_unrelated  share_builder
    0         30.0            10.0             0.25            0.0
    1          0.0             0.0             0.00            1.0
    """
    c = np.asarray(contract, dtype=np.int64)
    a = np.asarray(amount, dtype=np.float64)
    r = np.asarray(role, dtype=np.int64)
    keep = c >= 0
    c, a, r = c[keep], a[keep], r[keep]
    k = len(PAYEE_ROLES)
    table = np.bincount(c * k + r, weights=a, minlength=n_contracts * k)[: n_contracts * k].reshape(n_contracts, k)
    total = table.sum(axis=1)
    out = {f"paid_{name}": table[:, i] for i, name in enumerate(PAYEE_ROLES)}
    with np.errstate(invalid="ignore", divide="ignore"):
        for i, name in enumerate(PAYEE_ROLES):
            out[f"share_{name}"] = np.where(total > 0, table[:, i] / np.where(total > 0, total, 1.0), 0.0)
    return pd.DataFrame(out)


def builder_signals(
    contract_tender: np.ndarray,
    winner: np.ndarray,
    builder: np.ndarray,
    bid_tender: np.ndarray,
    bid_bidder: np.ndarray,
    bid_is_winner: np.ndarray,
    n_companies: int,
) -> pd.DataFrame:
    """Per contract: does someone other than the winner build, and did that firm bid and lose?

    Parameters
    ----------
    contract_tender, winner, builder : array of int
        Tender, winner and builder codes per contract (builder -1 = unknown).
    bid_tender, bid_bidder, bid_is_winner : arrays
        The bids table as codes and winner flags.
    n_companies : int
        Number of company codes (for pair keys).

    Returns
    -------
    pandas.DataFrame
        ``builder_known``, ``builder_differs``, ``builder_bid`` (the builder bid
        in the contract's tender) and ``builder_lost`` (and did not win).

    Examples
    --------
    >>> import numpy as np
    >>> builder_signals(np.array([0, 0, 1]), np.array([0, 0, 2]), np.array([1, 0, -1]),
    ...                 np.array([0, 0, 1]), np.array([0, 1, 2]), np.array([True, False, True]), 3)
       builder_known  builder_differs  builder_bid  builder_lost
    0           True             True         True          True
    1           True            False         True         False
    2          False            False        False         False
    """
    t = np.asarray(contract_tender, dtype=np.int64)
    w = np.asarray(winner, dtype=np.int64)
    b = np.asarray(builder, dtype=np.int64)
    known = b >= 0
    differs = known & (b != w)
    m = np.int64(n_companies + 1)
    bid_keys = np.asarray(bid_tender, dtype=np.int64) * m + np.asarray(bid_bidder, dtype=np.int64)
    order = np.argsort(bid_keys, kind="stable")
    sorted_keys = bid_keys[order]
    q = t * m + b
    pos = np.searchsorted(sorted_keys, q)
    pos_c = np.minimum(pos, max(sorted_keys.size - 1, 0))
    found = known & (sorted_keys.size > 0) & (sorted_keys[pos_c] == q) if sorted_keys.size else np.zeros(t.size, bool)
    won = np.zeros(t.size, dtype=bool)
    if sorted_keys.size:
        won = found & np.asarray(bid_is_winner, dtype=bool)[order][pos_c]
    return pd.DataFrame(
        {"builder_known": known, "builder_differs": differs, "builder_bid": found, "builder_lost": found & ~won},
        copy=False,
    )


def lending_hubs(winner: np.ndarray, builder: np.ndarray, n_companies: int) -> pd.DataFrame:
    """Winner → builder graph: how many distinct firms build under each winner's name.

    The expected number of distinct outside builders of a winner with ``n``
    contracts is ``n * p``, where ``p`` is the market share of contracts built
    by someone other than the winner; ``p_value`` is the Poisson upper tail
    ``P(X >= n_builders)`` — small for licence-lending hubs.

    Returns
    -------
    pandas.DataFrame
        One row per company code: ``n_contracts``, ``n_lent`` (contracts built
        by another firm), ``n_builders`` (distinct other builders),
        ``expected`` and ``p_value``.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    >>> b = np.array([3, 4, 5, 1, 1, 2, 2, 2, 2, 2])
    >>> lending_hubs(w, b, 6).loc[[0, 1], ["n_contracts", "n_builders", "expected"]]
       n_contracts  n_builders  expected
    0            3           3       0.9
    1            2           0       0.6
    """
    w = np.asarray(winner, dtype=np.int64)
    b = np.asarray(builder, dtype=np.int64)
    ok = w >= 0
    w, b = w[ok], b[ok]
    lent = (b >= 0) & (b != w)
    n = np.bincount(w, minlength=n_companies)[:n_companies]
    n_lent = np.bincount(w[lent], minlength=n_companies)[:n_companies]
    pairs = unique_ints(w[lent] * np.int64(n_companies) + b[lent])
    n_builders = np.bincount(pairs // n_companies, minlength=n_companies)[:n_companies]
    p = lent.mean() if lent.size else 0.0
    expected = n * p
    pval = np.where(n_builders > 0, stats.poisson.sf(n_builders - 1, np.maximum(expected, 1e-12)), 1.0)
    return pd.DataFrame(
        {"n_contracts": n, "n_lent": n_lent, "n_builders": n_builders, "expected": expected, "p_value": pval},
        copy=False,
    )


def manager_ties(
    manager: np.ndarray, winner: np.ndarray, builder: np.ndarray, ties: sp.csr_matrix
) -> pd.DataFrame:
    """Where the contract's project manager is registered, relative to winner and builder.

    Parameters
    ----------
    manager : array of int
        Project manager (person code) per contract, -1 = unknown.
    winner, builder : array of int
        Company codes per contract.
    ties : csr_matrix
        Person × company ties (:func:`graph_ties`).

    Returns
    -------
    pandas.DataFrame
        ``pm_known``, ``pm_n_ties`` (companies the manager is tied to),
        ``pm_tied_winner``, ``pm_tied_builder`` (builder ≠ winner) and
        ``pm_elsewhere`` (tied to some company, but not to the winner).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> ties = sp.csr_matrix(np.array([[True, False], [False, True]]))
    >>> manager_ties(np.array([0, 1, -1]), np.array([0, 0, 0]), np.array([0, 1, 1]), ties)
       pm_known  pm_n_ties  pm_tied_winner  pm_tied_builder  pm_elsewhere
    0      True          1            True            False         False
    1      True          1           False             True          True
    2     False          0           False            False         False
    """
    pm = np.asarray(manager, dtype=np.int64)
    w = np.asarray(winner, dtype=np.int64)
    b = np.asarray(builder, dtype=np.int64)
    known = pm >= 0
    deg = np.asarray(ties.getnnz(axis=1)).ravel() if ties.shape[0] else np.zeros(0, dtype=np.int64)
    n_ties = np.where(known, deg[np.where(known, pm, 0)] if deg.size else 0, 0)
    tied_w = lookup_pairs(ties, pm, w)
    tied_b = lookup_pairs(ties, pm, b) & (b != w)
    return pd.DataFrame(
        {
            "pm_known": known,
            "pm_n_ties": n_ties.astype(np.int64),
            "pm_tied_winner": tied_w,
            "pm_tied_builder": tied_b,
            "pm_elsewhere": (n_ties > 0) & ~tied_w,
        },
        copy=False,
    )


def group_robust_z(values: np.ndarray, groups: np.ndarray, *, prior: float = 10.0) -> np.ndarray:
    """Robust z-score of each value within its group, shrunk towards the market.

    A group's median and MAD are blended with the market's as if the market
    contributed ``prior`` pseudo-observations (empirical-Bayes style):
    ``center = (n·median_g + prior·median_m) / (n + prior)``, likewise for the
    spread. Large groups speak for themselves; a buyer with four changed
    contracts borrows most of its baseline from the market, so the small-sample
    noise of its own MAD does not produce spurious outliers.

    Parameters
    ----------
    values : array of float
        Values (NaN allowed; stays NaN).
    groups : array of int
        Group code per value (-1 = no group: the market reference alone).
    prior : float
        Weight of the market baseline, in observations.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.r_[np.arange(10.0), np.arange(10.0) * 10]
    >>> g = np.r_[np.zeros(10, int), np.ones(10, int)]
    >>> group_robust_z(v, g, prior=0)[[9, 19]].round(2).tolist()
    [1.21, 1.21]
    >>> group_robust_z(v, g, prior=10)[[9, 19]].round(2).tolist()
    [0.32, 2.59]
    """
    x = np.asarray(values, dtype=np.float64)
    g = np.asarray(groups, dtype=np.int64)
    out = robust_z(x)
    fin = np.isfinite(x) & (g >= 0)
    if not fin.any():
        return out
    market = x[np.isfinite(x)]
    m_med = float(np.median(market))
    m_mad = 1.4826 * float(np.median(np.abs(market - m_med)))
    if m_mad <= 0:
        m_mad = 1.2533 * float(np.mean(np.abs(market - m_med)))
    frame = pd.DataFrame({"g": g[fin], "x": x[fin]})
    grp = frame.groupby("g", sort=False)["x"]
    med = grp.transform("median").to_numpy()
    dev = np.abs(frame["x"].to_numpy() - med)
    mad = 1.4826 * pd.Series(dev).groupby(frame["g"].to_numpy(), sort=False).transform("median").to_numpy()
    size = grp.transform("size").to_numpy().astype(np.float64)
    w = size / (size + prior) if prior > 0 else np.ones_like(size)
    center = w * med + (1 - w) * m_med
    spread = w * mad + (1 - w) * m_mad
    spread = np.where(spread > 0, spread, m_mad if m_mad > 0 else 1.0)
    out[np.flatnonzero(fin)] = (frame["x"].to_numpy() - center) / spread
    return out


def cost_overrun_chain(
    investment_estimate: np.ndarray,
    preliminary_estimate: np.ndarray,
    budget: np.ndarray,
    final_account: np.ndarray,
) -> pd.DataFrame:
    """Step ratios along the project cost chain 估算 → 概算 → 预算 → 决算.

    "三超" is each later figure exceeding the earlier one (概算超估算,
    预算超概算, 决算超预算). Each step's log ratio is standardised against all
    projects of the market with :func:`~collusion.features.robust_z`, because
    some growth along the chain is normal and its size is market-specific.

    Returns
    -------
    pandas.DataFrame
        One row per project: ``log_prelim_invest``, ``log_budget_prelim``,
        ``log_final_budget`` (NaN where a figure is missing), their robust
        z-scores ``z_*``, ``n_exceed`` (steps whose ratio is above 1),
        ``n_steps`` (steps observed) and ``log_final_invest``.

    Examples
    --------
    >>> import numpy as np
    >>> out = cost_overrun_chain(np.array([100.0, 100.0]), np.array([110.0, 90.0]),
    ...                          np.array([120.0, 90.0]), np.array([150.0, np.nan]))
    >>> out[["n_exceed", "n_steps"]].to_numpy().tolist()
    [[3, 3], [0, 2]]
    """
    chain = [np.asarray(v, dtype=np.float64) for v in (investment_estimate, preliminary_estimate, budget, final_account)]
    names = ("prelim_invest", "budget_prelim", "final_budget")
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = [np.log(chain[i + 1] / chain[i]) for i in range(3)]
        for name, lr in zip(names, logs):
            out[f"log_{name}"] = lr
        for name, lr in zip(names, logs):
            out[f"z_{name}"] = robust_z(lr)
        stacked = np.vstack(logs)
        out["n_exceed"] = (np.nan_to_num(stacked, nan=0.0) > 1e-12).sum(axis=0)
        out["n_steps"] = np.isfinite(stacked).sum(axis=0)
        out["log_final_invest"] = np.log(chain[3] / chain[0])
    return pd.DataFrame(out, copy=False)
