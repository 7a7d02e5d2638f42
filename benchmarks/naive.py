"""Naive references: the analyses written the way a data scientist first writes them.

These are the yardsticks of ``benchmarks/run.py``: a pandas ``groupby().apply``
per tender for the price screens, a Python loop over tenders with a ``dict``
for co-bidding pair counts, networkx graphs built ``add_edge`` by ``add_edge``,
and networkx Louvain for co-bidding communities. They compute the *same
numbers* as the library (the checks below assert it) so that the speed-up the
benchmark reports compares equal work.

Nothing here is used by the library; it is deliberately slow, readable code.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any, Iterable, Mapping

import networkx as nx
import numpy as np
import pandas as pd

__all__ = [
    "NAIVE_SCREENS",
    "compare_pairs",
    "compare_screens",
    "membership_modularity",
    "naive_cobid_counts",
    "naive_cobid_network",
    "naive_communities",
    "naive_price_screens",
    "naive_typed_graph",
    "partition_modularity",
]

#: Screens computed by :func:`naive_price_screens` (the columns of
#: ``collusion.features.price_screens`` without ``discount``).
NAIVE_SCREENS: tuple[str, ...] = (
    "n_bids", "cv", "spd", "diffp", "rd", "rdnor", "rdalt", "kurt", "skew", "kstest",
)


# ----------------------------------------------------------------- price screens
def _one_tender(prices: pd.Series) -> pd.Series:
    """Textbook screens of one tender's bids (Imhof 2018; Huber & Imhof 2019)."""
    b = np.sort(prices.to_numpy(dtype=float))
    n = len(b)
    nan = float("nan")
    out = dict.fromkeys(NAIVE_SCREENS, nan)
    out["n_bids"] = n
    if n >= 2:
        const = b[-1] == b[0]
        mean = b.mean()
        out["cv"] = 0.0 if const else b.std(ddof=1) / mean
        out["spd"] = (b[-1] - b[0]) / b[0]
        out["diffp"] = (b[1] - b[0]) / b[0]
        gaps = np.diff(b)
        if not const:
            out["rdnor"] = (b[1] - b[0]) / gaps.mean()
            # KS distance to the uniform distribution on [b1, bn], the statistic of
            # scipy.stats.kstest(b, "uniform", args=(b1, bn - b1)) written out:
            # scipy's call also computes a p-value and costs more than all the
            # other screens together, which would flatter the library's speed-up.
            f = (b - b[0]) / (b[-1] - b[0])
            i = np.arange(1, n + 1)
            out["kstest"] = max((i / n - f).max(), (f - (i - 1) / n).max())
        if n >= 3:
            losing = b[1:]
            if losing[-1] > losing[0]:
                out["rd"] = (b[1] - b[0]) / losing.std(ddof=1)
                out["rdalt"] = (b[1] - b[0]) / gaps[1:].mean()
            if not const:
                out["skew"] = prices.skew()
        if n >= 4 and not const:
            out["kurt"] = prices.kurt()
    return pd.Series(out)


def naive_price_screens(tender: Any, price: Any) -> pd.DataFrame:
    """Price screens with ``groupby("tender").apply`` (one Python call per tender).

    Parameters
    ----------
    tender : array-like of int
        Tender code of each bid.
    price : array-like of float
        Bid prices.

    Returns
    -------
    pandas.DataFrame
        Indexed by tender code (tenders that have bids), columns :data:`NAIVE_SCREENS`.

    Examples
    --------
    >>> s = naive_price_screens([0, 0, 0, 0], [100.0, 110.0, 120.0, 130.0])
    >>> s[["spd", "diffp", "rdnor", "kstest"]].round(4).values.tolist()
    [[0.3, 0.1, 1.0, 0.25]]
    """
    bids = pd.DataFrame({"tender": np.asarray(tender), "price": np.asarray(price, dtype=float)})
    out = bids.groupby("tender")["price"].apply(_one_tender).unstack()
    out = out[list(NAIVE_SCREENS)].astype(float)
    out["n_bids"] = out["n_bids"].astype(np.int64)
    out.index.name = "tender"
    return out


def compare_screens(naive: pd.DataFrame, fast: pd.DataFrame, *, rtol: float = 1e-9, atol: float = 1e-9) -> dict:
    """Compare naive and library screens tender by tender.

    Tenders missing from ``naive`` (no bids) must have ``n_bids == 0`` in
    ``fast``. Values agree when both are NaN or ``|a - b| <= atol + rtol·|b|``.

    Returns
    -------
    dict
        ``ok``, ``tenders`` compared, ``values`` compared, ``mismatches``,
        ``nan_mismatches``, ``max_abs_diff`` and ``max_rel_diff`` over all screens,
        and ``worst`` (screen, tender, naive, fast) of the largest relative diff.
    """
    cols = [c for c in NAIVE_SCREENS if c in fast.columns]
    f = fast.loc[naive.index, cols].to_numpy(dtype=float)
    n = naive[cols].to_numpy(dtype=float)
    both_nan = np.isnan(f) & np.isnan(n)
    nan_mismatch = np.isnan(f) ^ np.isnan(n)
    with np.errstate(invalid="ignore"):
        diff = np.where(both_nan | nan_mismatch, 0.0, np.abs(f - n))
        rel = diff / np.maximum(np.abs(f), 1e-300)
    close = both_nan | (~nan_mismatch & (diff <= atol + rtol * np.abs(np.nan_to_num(f))))
    absent = fast.index.difference(naive.index)
    empty_ok = bool((fast.loc[absent, "n_bids"] == 0).all()) if len(absent) else True
    worst: dict[str, Any] = {}
    if rel.size:
        i, j = np.unravel_index(int(np.argmax(np.where(np.isfinite(rel), rel, 0.0))), rel.shape)
        worst = {"screen": cols[j], "tender": int(naive.index[i]), "naive": float(n[i, j]), "fast": float(f[i, j])}
    return {
        "ok": bool(close.all() and empty_ok),
        "tenders": int(len(naive)),
        "values": int(close.size),
        "mismatches": int((~close).sum()),
        "nan_mismatches": int(nan_mismatch.sum()),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "max_rel_diff": float(np.nanmax(rel)) if rel.size else 0.0,
        "worst": worst,
    }


# ------------------------------------------------------------------ co-bidding
def naive_cobid_counts(tender: Any, bidder: Any) -> dict[tuple[int, int], int]:
    """Tenders each pair of firms bid in together: a loop over tenders into a dict.

    Returns
    -------
    dict
        ``(a, b) -> count`` for unordered pairs ``a < b`` of bidder codes.

    Examples
    --------
    >>> naive_cobid_counts([0, 0, 0, 1, 1], [3, 1, 2, 1, 3])
    {(1, 2): 1, (1, 3): 2, (2, 3): 1}
    """
    bids = pd.DataFrame({"tender": np.asarray(tender), "bidder": np.asarray(bidder)})
    pairs: dict[tuple[int, int], int] = defaultdict(int)
    for _, firms in bids.groupby("tender")["bidder"]:
        for a, b in combinations(sorted(set(firms.tolist())), 2):
            pairs[(a, b)] += 1
    return dict(sorted(pairs.items()))


def compare_pairs(naive: Mapping[tuple[int, int], int], company_a: Any, company_b: Any, n_cobids: Any) -> dict:
    """Exact comparison of naive pair counts with the library's pair table."""
    fast = dict(zip(zip(np.asarray(company_a).tolist(), np.asarray(company_b).tolist()), np.asarray(n_cobids).tolist()))
    missing = len(set(naive) - set(fast))
    extra = len(set(fast) - set(naive))
    differ = sum(1 for k, v in naive.items() if k in fast and fast[k] != v)
    return {
        "ok": missing == 0 and extra == 0 and differ == 0,
        "pairs": len(naive),
        "cobids": int(sum(naive.values())),
        "missing_in_fast": missing,
        "extra_in_fast": extra,
        "count_mismatches": differ,
    }


# ---------------------------------------------------------------------- graphs
def naive_typed_graph(edges: Mapping[tuple[str, str, str], tuple[Any, Any]]) -> nx.MultiDiGraph:
    """The typed procurement graph as a networkx MultiDiGraph, one ``add_edge`` per edge.

    Parameters
    ----------
    edges : mapping
        ``(src type, relation, dst type) -> (src codes, dst codes)``, e.g. the
        edge tables of ``collusion.graph.build_graph``; nodes become
        ``(type, code)`` tuples and every edge keeps its ``relation`` (parallel
        edges stay parallel, as in the library's edge tables).

    Examples
    --------
    >>> g = naive_typed_graph({("company", "bids", "tender"): ([0, 1], [5, 5])})
    >>> sorted(g.edges(data="relation"))
    [(('company', 0), ('tender', 5), 'bids'), (('company', 1), ('tender', 5), 'bids')]
    """
    G = nx.MultiDiGraph()
    for (src_type, rel, dst_type), (src, dst) in edges.items():
        for s, d in zip(np.asarray(src).tolist(), np.asarray(dst).tolist()):
            G.add_edge((src_type, s), (dst_type, d), relation=rel)
    return G


def naive_cobid_network(counts: Mapping[tuple[int, int], int], tender: Any, bidder: Any) -> nx.Graph:
    """Co-bidding network weighted by Jaccard overlap, one ``add_edge`` per pair.

    ``jaccard = n_ab / (n_a + n_b - n_ab)`` with ``n_a`` the tenders firm ``a``
    bid in (the weight ``collusion.features.cobid_pairs`` reports).
    """
    bids = pd.DataFrame({"tender": np.asarray(tender), "bidder": np.asarray(bidder)}).drop_duplicates()
    degree = bids["bidder"].value_counts().to_dict()
    H = nx.Graph()
    for (a, b), n_ab in counts.items():
        H.add_edge(a, b, weight=n_ab / (degree[a] + degree[b] - n_ab), cobids=n_ab)
    return H


def naive_communities(H: nx.Graph, *, seed: int = 0) -> list[set]:
    """Louvain communities of the co-bidding network (networkx)."""
    return nx.community.louvain_communities(H, weight="weight", seed=seed)


def membership_modularity(H: nx.Graph, membership: Any) -> float:
    """Weighted modularity on ``H`` of a membership array (``-1`` = singleton).

    Lets the library's Leiden groups and networkx Louvain be compared on the
    same graph with the same formula.
    """
    membership = np.asarray(membership)
    groups: dict[int, set] = defaultdict(set)
    for node in H.nodes:
        g = int(membership[node])
        groups[g if g >= 0 else -1 - int(node)].add(node)
    return float(nx.community.modularity(H, list(groups.values()), weight="weight"))


def partition_modularity(H: nx.Graph, communities: Iterable[set]) -> float:
    """Weighted modularity on ``H`` of a list of node sets."""
    return float(nx.community.modularity(H, list(communities), weight="weight"))
