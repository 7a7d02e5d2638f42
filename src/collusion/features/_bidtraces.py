"""Traces shared by bidders of one tender (Art. 40 of the Bidding Law's implementing regulation).

Article 40 deems bids collusive when, among other things, the bid documents of
different bidders were made by the same unit or person, bidders entrust the
same person with their bidding affairs, bid documents list the same project
manager, the documents are abnormally identical, or the bid bonds are paid
from the same account. In electronic tendering these cases leave traces in
the submitted bids: the same IP or MAC address of the submitting machine, the
same document fingerprint (file metadata / author hash), the same bond
account, the same contact phone or e-mail.

Two kinds of trace are handled:

* **bid traces** — values carried by each bid (``bids.ip``, ``mac``,
  ``doc_fingerprint``, ``bond_account``, ``contact``). Two bidders of one
  tender share one when their *normalised* values are equal (the
  :mod:`collusion.graph` normalisers make ``"+86 138-0013-8000"`` equal
  ``"13800138000"``). :func:`shared_trace_pairs` lists every (tender, trace,
  pair) once, vectorised.
* **company links** — ties between firms that do not depend on one bid: the
  same project manager on their contracts, a person or firm related to both
  (shareholder, legal representative, employee), the same registered phone,
  e-mail or address. :func:`hub_links` turns any company × hub incidence
  into linked pairs; :func:`tender_link_counts` counts linked bidder pairs
  per tender with two sparse products.

Counts are per tender, so results over disjoint sets of tenders concatenate;
per-pair counts (:func:`pair_trace_counts`) add up.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._arrays import pairs_within_runs, unique_ints

__all__ = [
    "BID_TRACE_TYPES",
    "bid_trace_table",
    "hub_links",
    "pair_trace_counts",
    "shared_trace_pairs",
    "tender_link_counts",
    "tender_trace_counts",
]

#: Trace node types that bids carry (``bond_account`` → ``account``; ``contact``
#: splits into ``phone`` and ``email``), in the graph's naming.
BID_TRACE_TYPES: tuple[str, ...] = ("ip", "mac", "doc_fingerprint", "account", "phone", "email")

#: bids column → trace type(s) it feeds.
_BID_COLUMNS: dict[str, str] = {
    "ip": "ip",
    "mac": "mac",
    "doc_fingerprint": "doc_fingerprint",
    "bond_account": "account",
    "contact": "phone|email",
}


def _normaliser(trace_type: str) -> Any:
    from ..graph import (
        normalize_account,
        normalize_email,
        normalize_ip,
        normalize_mac,
        normalize_phone,
    )

    if trace_type == "doc_fingerprint":
        # Fingerprints are opaque tokens: only width, case and blanks are noise.
        from ..graph._resolution import _apply, _token_kernel

        return lambda v: _apply(v, _token_kernel)
    return {
        "ip": normalize_ip,
        "mac": normalize_mac,
        "account": normalize_account,
        "phone": normalize_phone,
        "email": normalize_email,
    }[trace_type]


def bid_trace_table(
    bids: pd.DataFrame,
    tender: np.ndarray,
    company: np.ndarray,
    *,
    columns: Sequence[str] = tuple(_BID_COLUMNS),
) -> pd.DataFrame:
    """Long table of the normalised traces of every bid.

    Use it on a bids table when no :class:`~collusion.graph.ProcurementGraph`
    is at hand; the graph's ``uses`` edges hold the same information.

    Parameters
    ----------
    bids : pandas.DataFrame
        Bids with (some of) the trace columns ``ip, mac, doc_fingerprint,
        bond_account, contact``.
    tender, company : array of int
        Tender and bidder code of each row of ``bids``.
    columns : sequence of str
        Trace columns to read (absent columns are skipped).

    Returns
    -------
    pandas.DataFrame
        One row per bid and present trace: ``tender``, ``company`` (codes),
        ``trace_type`` (Categorical over :data:`BID_TRACE_TYPES`), ``trace``
        (code of the normalised value within its type; codes follow the sorted
        values) and ``value`` (the normalised value).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> bids = pd.DataFrame({"contact": ["+86 138-0013-8000", "13800138000", "a@b.cn"]})
    >>> t = bid_trace_table(bids, np.array([0, 0, 0]), np.array([0, 1, 2]))
    >>> t[["company", "trace_type", "trace", "value"]].values.tolist()
    [[0, 'phone', 0, '13800138000'], [1, 'phone', 0, '13800138000'], [2, 'email', 0, 'a@b.cn']]
    """
    tender = np.asarray(tender, dtype=np.int64)
    company = np.asarray(company, dtype=np.int64)
    if tender.shape != (len(bids),) or company.shape != (len(bids),):
        raise ValueError(f"tender and company must have one code per bid ({len(bids)}), "
                         f"got {tender.shape} and {company.shape}")
    parts: list[pd.DataFrame] = []
    for column in columns:
        if column not in bids.columns:
            continue
        if column not in _BID_COLUMNS:
            raise ValueError(f"bids.{column} is not a trace column; trace columns: {', '.join(_BID_COLUMNS)}")
        raw = bids[column]
        raw = raw if isinstance(raw.dtype, pd.CategoricalDtype) else raw.astype(object).astype("category")
        cats = pd.Series(np.asarray(raw.cat.categories, dtype=object), dtype=object)
        codes = raw.cat.codes.to_numpy()
        targets = _BID_COLUMNS[column].split("|")
        if len(targets) == 2:
            is_mail = cats.astype(str).str.contains("@", regex=False).to_numpy(dtype=bool)
            masks = {"phone": ~is_mail, "email": is_mail}
        else:
            masks = {targets[0]: np.ones(len(cats), dtype=bool)}
        for ttype, mask in masks.items():
            canon = np.full(len(cats), None, dtype=object)
            if mask.any():
                canon[mask] = np.asarray(_normaliser(ttype)(cats[mask].tolist()), dtype=object)
            has = pd.notna(canon)
            ok_cat = np.zeros(len(cats) + 1, dtype=bool)
            ok_cat[:-1] = has
            row_ok = ok_cat[codes] & (codes >= 0) & (tender >= 0) & (company >= 0)
            if not row_ok.any():
                continue
            vcodes, uniques = pd.factorize(pd.Series(canon[has], dtype=object), sort=True)
            cat_code = np.full(len(cats), -1, dtype=np.int64)
            cat_code[np.flatnonzero(has)] = vcodes
            rows = np.flatnonzero(row_ok)
            tc = cat_code[codes[rows]]
            parts.append(pd.DataFrame({
                "tender": tender[rows],
                "company": company[rows],
                "trace_type": ttype,
                "trace": tc,
                "value": np.asarray(uniques, dtype=object)[tc],
            }))
    if not parts:
        out = pd.DataFrame({"tender": pd.Series([], dtype=np.int64), "company": pd.Series([], dtype=np.int64),
                            "trace_type": pd.Series([], dtype=object), "trace": pd.Series([], dtype=np.int64),
                            "value": pd.Series([], dtype=object)})
    else:
        out = pd.concat(parts, ignore_index=True)
    out["trace_type"] = pd.Categorical(out["trace_type"].astype(object), categories=list(BID_TRACE_TYPES))
    return out


def shared_trace_pairs(
    tender: np.ndarray,
    company: np.ndarray,
    trace_type: np.ndarray,
    trace: np.ndarray,
) -> pd.DataFrame:
    """Every pair of bidders of one tender that share one trace value.

    Parameters
    ----------
    tender, company : array of int
        Tender and bidder code of each (bid, trace) row.
    trace_type : array of int
        Trace type code of each row (e.g. the codes of a Categorical over
        :data:`BID_TRACE_TYPES`).
    trace : array of int
        Code of the normalised trace value within its type.

    Returns
    -------
    pandas.DataFrame
        One row per (tender, trace type, trace value, pair) with columns
        ``tender, trace_type, trace, company_a, company_b`` (``a < b``),
        sorted in that order. A firm that uses one value in several bids of a
        tender is counted once; values that appear once in a tender are
        dropped before any sort, so the cost is driven by shared values.

    Examples
    --------
    >>> import numpy as np
    >>> tender = np.array([0, 0, 0, 1, 1])
    >>> company = np.array([5, 6, 7, 5, 6])
    >>> ttype = np.array([0, 0, 0, 0, 0])
    >>> value = np.array([9, 9, 9, 9, 1])
    >>> shared_trace_pairs(tender, company, ttype, value).values.tolist()
    [[0, 0, 9, 5, 6], [0, 0, 9, 5, 7], [0, 0, 9, 6, 7]]
    """
    tender = np.asarray(tender, dtype=np.int64)
    company = np.asarray(company, dtype=np.int64)
    trace_type = np.asarray(trace_type, dtype=np.int64)
    trace = np.asarray(trace, dtype=np.int64)
    cols = ("tender", "trace_type", "trace", "company_a", "company_b")
    ok = (tender >= 0) & (company >= 0) & (trace_type >= 0) & (trace >= 0)
    tender, company, trace_type, trace = tender[ok], company[ok], trace_type[ok], trace[ok]
    if tender.size == 0:
        return pd.DataFrame({c: np.empty(0, dtype=np.int64) for c in cols})
    # Global key of a trace value: (type, value) flattened; then of a value in
    # one tender. Only (tender, value) keys seen on two or more rows can be
    # shared: a stable sort by that key puts them next to each other. The
    # rows come per trace type in tender order (the graph's ``uses`` edges
    # follow the bids), so timsort merges a few long runs: 0.1-0.2 s for the
    # 4.6M rows of a 1M-tender market, where hashing them (pd.factorize)
    # took 1-1.5 s.
    width = np.int64(trace.max()) + 1
    n_keys = int(trace_type.max() + 1) * int(width)
    key = trace_type * width + trace
    if (int(tender.max()) + 1) * n_keys >= np.iinfo(np.int64).max:
        # Too many tenders × values for one int64: number the values used.
        key_codes = pd.factorize(key, sort=False)[0].astype(np.int64)
        tkey = tender * np.int64(key_codes.max() + 1) + key_codes
    else:
        tkey = tender * np.int64(n_keys) + key
    order = np.argsort(tkey, kind="stable")
    tkey = tkey[order]
    same = tkey[1:] == tkey[:-1]
    del tkey
    shared = np.zeros(order.size, dtype=bool)
    shared[1:] = same
    shared[:-1] |= same
    rows = order[shared]
    del order, shared, same
    tender, company, trace_type, trace, key = tender[rows], company[rows], trace_type[rows], trace[rows], key[rows]
    if tender.size == 0:
        return pd.DataFrame({c: np.empty(0, dtype=np.int64) for c in cols})
    order = np.lexsort((company, key, tender))
    tender, company, trace_type, trace, key = (a[order] for a in (tender, company, trace_type, trace, key))
    # One row per (tender, value, firm).
    dup = np.r_[False, (tender[1:] == tender[:-1]) & (key[1:] == key[:-1]) & (company[1:] == company[:-1])]
    keep = ~dup
    tender, company, trace_type, trace, key = tender[keep], company[keep], trace_type[keep], trace[keep], key[keep]
    new_run = np.r_[True, (tender[1:] != tender[:-1]) | (key[1:] != key[:-1])]
    starts = np.flatnonzero(new_run)
    sizes = np.diff(np.r_[starts, tender.size])
    left, right = pairs_within_runs(starts, sizes)
    return pd.DataFrame({
        "tender": tender[left],
        "trace_type": trace_type[left],
        "trace": trace[left],
        "company_a": company[left],
        "company_b": company[right],
    })


def tender_trace_counts(
    pairs: pd.DataFrame,
    n_tenders: int,
    trace_types: Sequence[str] = BID_TRACE_TYPES,
) -> pd.DataFrame:
    """Per tender and trace type, how many bidder pairs and bidders share a trace.

    Parameters
    ----------
    pairs : pandas.DataFrame
        Output of :func:`shared_trace_pairs` (``trace_type`` codes index
        ``trace_types``).
    n_tenders : int
        Number of tender codes.
    trace_types : sequence of str
        Names of the trace type codes.

    Returns
    -------
    pandas.DataFrame
        Indexed by tender code: ``pairs_<type>`` (distinct bidder pairs sharing
        a value of that type), ``firms_<type>`` (distinct bidders involved),
        and the same over all types: ``pairs_any``, ``firms_any``,
        ``n_trace_types`` (types with at least one shared value).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> pairs = pd.DataFrame({"tender": [0, 0, 0], "trace_type": [0, 0, 1], "trace": [3, 3, 1],
    ...                       "company_a": [1, 1, 1], "company_b": [2, 4, 2]})
    >>> tender_trace_counts(pairs, 2, ["ip", "mac"]).values.tolist()
    [[2, 3, 1, 2, 2, 3, 2], [0, 0, 0, 0, 0, 0, 0]]
    """
    t = pairs["tender"].to_numpy(np.int64)
    k = pairs["trace_type"].to_numpy(np.int64)
    a = pairs["company_a"].to_numpy(np.int64)
    b = pairs["company_b"].to_numpy(np.int64)
    out: dict[str, np.ndarray] = {}
    n_types = np.zeros(n_tenders, dtype=np.int64)
    for i, name in enumerate(trace_types):
        sel = k == i
        pc = _count_distinct_pairs(t[sel], a[sel], b[sel], n_tenders)
        out[f"pairs_{name}"] = pc
        out[f"firms_{name}"] = _count_distinct_firms(t[sel], a[sel], b[sel], n_tenders)
        n_types += pc > 0
    out["pairs_any"] = _count_distinct_pairs(t, a, b, n_tenders)
    out["firms_any"] = _count_distinct_firms(t, a, b, n_tenders)
    out["n_trace_types"] = n_types
    frame = pd.DataFrame(out)
    frame.index.name = "tender"
    return frame


def _count_distinct_pairs(t: np.ndarray, a: np.ndarray, b: np.ndarray, n_tenders: int) -> np.ndarray:
    if t.size == 0:
        return np.zeros(n_tenders, dtype=np.int64)
    width = np.int64(max(int(a.max()), int(b.max())) + 1)
    key = unique_ints((t * width + a) * width + b)  # one int64 key per (tender, pair)
    return np.bincount(key // (width * width), minlength=n_tenders)


def _count_distinct_firms(t: np.ndarray, a: np.ndarray, b: np.ndarray, n_tenders: int) -> np.ndarray:
    if t.size == 0:
        return np.zeros(n_tenders, dtype=np.int64)
    width = np.int64(max(int(a.max()), int(b.max())) + 1)
    key = unique_ints(np.r_[t * width + a, t * width + b])
    return np.bincount(key // width, minlength=n_tenders)


def pair_trace_counts(pairs: pd.DataFrame, trace_types: Sequence[str] = BID_TRACE_TYPES) -> pd.DataFrame:
    """Per company pair, in how many tenders it shared a trace of each type.

    Returns
    -------
    pandas.DataFrame
        One row per pair (``company_a < company_b``): ``tenders_<type>`` and
        ``tenders_any`` (tenders with any shared trace), sorted by pair.

    Examples
    --------
    >>> import pandas as pd
    >>> pairs = pd.DataFrame({"tender": [0, 0, 1], "trace_type": [0, 1, 0], "trace": [3, 1, 3],
    ...                       "company_a": [1, 1, 1], "company_b": [2, 2, 2]})
    >>> pair_trace_counts(pairs, ["ip", "mac"]).values.tolist()
    [[1, 2, 2, 1, 2]]
    """
    cols = ["company_a", "company_b"]
    if len(pairs) == 0:
        return pd.DataFrame({c: pd.Series([], dtype=np.int64) for c in
                             cols + [f"tenders_{n}" for n in trace_types] + ["tenders_any"]})
    per = (
        pairs.groupby(cols + ["trace_type"], sort=True)["tender"].nunique().unstack("trace_type", fill_value=0)
    )
    per = per.reindex(columns=range(len(trace_types)), fill_value=0)
    per.columns = [f"tenders_{n}" for n in trace_types]
    per["tenders_any"] = pairs.groupby(cols, sort=True)["tender"].nunique()
    return per.reset_index().astype(np.int64)


def hub_links(hubs: sp.spmatrix, *, max_hub_degree: int | None = 50) -> pd.DataFrame:
    """Pairs of companies tied through a shared hub (person, project manager, phone...).

    Parameters
    ----------
    hubs : sparse matrix
        Company × hub incidence (non-zero = the company is tied to the hub),
        e.g. companies × persons from contracts' project managers, or
        companies × shareholders from the relations table.
    max_hub_degree : int or None
        Hubs tied to more firms than this are ignored (a switchboard number
        or a bank's branch address says nothing about collusion, and they
        would create a quadratic number of pairs).

    Returns
    -------
    pandas.DataFrame
        ``company_a, company_b`` (``a < b``) and ``n_hubs`` (shared hubs),
        sorted by pair.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> H = sp.csr_matrix(np.array([[1, 0], [1, 1], [0, 1], [0, 0]]))
    >>> hub_links(H).values.tolist()
    [[0, 1, 1], [1, 2, 1]]
    """
    H = sp.csc_matrix(hubs, dtype=np.float64, copy=True)
    H.data[:] = 1.0
    H.sum_duplicates()
    if max_hub_degree is not None:
        deg = np.diff(H.indptr)
        keep = deg <= max_hub_degree
        H = H[:, np.flatnonzero(keep)]
    H = H.tocsr()
    C = sp.triu(H @ H.T, k=1).tocoo()
    order = np.lexsort((C.col, C.row))
    return pd.DataFrame({
        "company_a": C.row[order].astype(np.int64),
        "company_b": C.col[order].astype(np.int64),
        "n_hubs": C.data[order].astype(np.int64),
    })


def tender_link_counts(B: sp.spmatrix, company_a: np.ndarray, company_b: np.ndarray) -> pd.DataFrame:
    """Per tender, bidder pairs that are linked (see :func:`hub_links`).

    The tenders where a linked pair ``(a, b)`` both bid are the non-zeros
    of the elementwise product of rows ``B[a]`` and ``B[b]``; counting them
    per tender counts linked bidder pairs.

    Parameters
    ----------
    B : sparse matrix
        Company × tender bid incidence.
    company_a, company_b : array of int
        Linked pairs.

    Returns
    -------
    pandas.DataFrame
        Indexed by tender code: ``pairs`` (linked bidder pairs) and ``firms``
        (bidders linked to another bidder of the tender).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> B = sp.csr_matrix(np.array([[1, 1], [1, 0], [1, 1]]))
    >>> tender_link_counts(B, np.array([0]), np.array([1])).values.tolist()
    [[1, 2], [0, 0]]
    """
    Bf = sp.csr_matrix(B, dtype=np.float64, copy=True)
    Bf.sum_duplicates()
    Bf.data[:] = 1.0
    n_t = Bf.shape[1]
    a = np.asarray(company_a, dtype=np.int64)
    b = np.asarray(company_b, dtype=np.int64)
    if a.size:
        # Deduplicate links, then the tenders of each linked pair are the
        # elementwise product of the two firms' rows: cost ~ links × tenders
        # per firm, independent of the market's size.
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        key = unique_ints(lo * np.int64(Bf.shape[0]) + hi)
        lo, hi = key // Bf.shape[0], key % Bf.shape[0]
        M = sp.csr_matrix(Bf[lo].multiply(Bf[hi]))
        M.eliminate_zeros()
        rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
        t = M.indices.astype(np.int64)
        pairs = np.bincount(t, minlength=n_t).astype(np.float64)
        firms = _count_distinct_firms(t, lo[rows], hi[rows], n_t)
    else:
        pairs = np.zeros(n_t)
        firms = np.zeros(n_t, dtype=np.int64)
    frame = pd.DataFrame({"pairs": pairs.astype(np.int64), "firms": np.asarray(firms, dtype=np.int64)})
    frame.index.name = "tender"
    return frame
