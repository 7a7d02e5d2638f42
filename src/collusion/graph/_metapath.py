"""Meta-path products: counts of typed paths as sparse matrix products.

A meta-path such as company–tender–company is the product of the relation
matrices along it, ``B @ B.T`` for the bids matrix ``B`` (company × tender):
entry ``(i, j)`` counts the tenders both firms bid in, the diagonal counts
each firm's tenders. With 0/1 relation matrices (the default) the entry
counts distinct paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import scipy.sparse as sp

from .._arrays import first_of_runs
from .._incidences import cobid_incidences
from ._schema import DEFAULT_RELATIONS, EDGE_TYPES, NODE_TYPES, TRACE_NODE_TYPES

if TYPE_CHECKING:  # pragma: no cover
    from ._graph import ProcurementGraph

__all__ = ["TRACE", "metapath", "parse_metapath"]

#: Pseudo node type standing for all trace node types at once.
TRACE = "trace"


def parse_metapath(path: Sequence[str]) -> list[tuple[str, str | None, str]]:
    """Split a meta-path into hops ``(node type, relation or None, node type)``.

    Tokens are node types (or ``"trace"`` for every trace type), optionally
    separated by relation names.

    Examples
    --------
    >>> from collusion.graph._metapath import parse_metapath
    >>> parse_metapath(["buyer", "tender", "wins", "company"])
    [('buyer', None, 'tender'), ('tender', 'wins', 'company')]
    """
    tokens = list(path)
    if not tokens:
        raise ValueError("a meta-path needs at least two node types")
    hops: list[tuple[str, str | None, str]] = []
    current: str | None = None
    pending: str | None = None
    for tok in tokens:
        if tok in NODE_TYPES or tok == TRACE:
            if current is not None:
                hops.append((current, pending, tok))
            elif pending is not None:
                raise ValueError(f"meta-path {tokens} starts with relation {pending!r}; start with a node type")
            current, pending = tok, None
        elif tok in EDGE_TYPES:
            if pending is not None or current is None:
                raise ValueError(f"meta-path {tokens}: relation {tok!r} must sit between two node types")
            pending = tok
        else:
            raise ValueError(
                f"unknown meta-path token {tok!r}; node types: {', '.join(NODE_TYPES)}, {TRACE!r}; "
                f"relations: {', '.join(EDGE_TYPES)}"
            )
    if pending is not None:
        raise ValueError(f"meta-path {tokens} ends with relation {pending!r}; end with a node type")
    if not hops:
        raise ValueError(f"meta-path {tokens} needs at least two node types")
    return hops


def _relation_for(a: str, rel: str | None, b: str) -> tuple[str, bool]:
    """Relation name joining types ``a`` and ``b`` and whether it runs ``b -> a``."""
    names = [rel] if rel is not None else list(EDGE_TYPES)
    forward = [n for n in names if a in EDGE_TYPES[n].src and b in EDGE_TYPES[n].dst]
    backward = [n for n in names if b in EDGE_TYPES[n].src and a in EDGE_TYPES[n].dst]
    found = list(dict.fromkeys(forward + backward))
    if not found:
        what = f"relation {rel!r}" if rel else "any relation"
        raise ValueError(f"no {what} joins node types {a!r} and {b!r}")
    if len(found) > 1:
        default = DEFAULT_RELATIONS.get(frozenset({a, b}))
        if default is None:
            raise ValueError(f"node types {a!r} and {b!r} are joined by {found}; name one in the meta-path")
        found = [default]
    name = found[0]
    return name, name not in forward


def _hop_matrix(G: ProcurementGraph, a: str, rel: str | None, b: str, binary: bool) -> sp.csr_matrix:
    if a == TRACE and b == TRACE:
        raise ValueError("a meta-path cannot go from trace to trace")
    if TRACE in (a, b):
        other = b if a == TRACE else a
        if rel not in (None, "uses"):
            raise ValueError(f"{other!r} reaches traces through 'uses', not {rel!r}")
        blocks = [G.adjacency("uses", src_type=other, dst_type=t, binary=binary) for t in TRACE_NODE_TYPES]
        stacked = sp.hstack(blocks, format="csr")
        return stacked.T.tocsr() if a == TRACE else stacked
    name, reverse = _relation_for(a, rel, b)
    if reverse:
        return G.adjacency(name, src_type=b, dst_type=a, binary=binary).T.tocsr()
    return G.adjacency(name, src_type=a, dst_type=b, binary=binary)


def metapath(G: ProcurementGraph, *path: str, binary: bool = True) -> sp.csr_matrix:
    """Count the paths of a meta-path between every pair of end nodes.

    Parameters
    ----------
    G : ProcurementGraph
        The graph.
    *path : str
        Node types, optionally with relation names between them, e.g.
        ``("company", "tender", "company")``,
        ``("buyer", "tender", "wins", "company")``,
        ``("company", "ip", "company")`` or ``("company", "trace", "company")``
        (every trace type). Without a relation name the hop uses the only
        relation joining the two types, or the default (``bids`` between
        company and tender, ``signs`` between company and contract).
    binary : bool, default True
        Use 0/1 relation matrices, so a first hop counts distinct
        intermediate nodes (co-bid tenders, shared trace values) rather than
        repeated edges.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``n(first type) × n(last type)`` int64 counts, canonical format.
    """
    if len(path) == 1 and not isinstance(path[0], str):
        path = tuple(path[0])
    hops = parse_metapath(path)
    H = _gram_factor(G, hops, binary)
    if H is not None:
        result = _symmetric(*_gram_upper(H))
    else:
        result = None
        for a, rel, b in hops:
            m = _hop_matrix(G, a, rel, b, binary)
            result = m if result is None else (result @ m).tocsr()
    assert result is not None
    result = result.astype(np.int64, copy=False)
    result.sum_duplicates()
    result.sort_indices()
    return result


def _gram_factor(G: ProcurementGraph, hops: list[tuple[str, str | None, str]], binary: bool) -> sp.csr_matrix | None:
    """``H`` when the meta-path's product is ``H @ H.T`` with a 0/1 ``H``, else ``None``.

    That is a two-hop path out and back through one relation (company–tender–company,
    company–trace–company): its second hop matrix is the transpose of the first.
    """
    if not binary or len(hops) != 2:
        return None
    (a, rel, via), (_, rel2, end) = hops
    if a != end or rel != rel2 or a == via:
        return None
    if TRACE not in (a, via):
        # A relation that may run both ways between the two types (``relations``
        # between persons and companies) has two edge tables, not one and its transpose.
        name, reverse = _relation_for(a, rel, via)
        if (name, not reverse) != _relation_for(via, rel, a):
            return None
    return _hop_matrix(G, a, rel, via, binary)


def _gram_upper(H: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Strict upper triangle of ``H @ H.T`` (0/1 ``H``) in CSR layout, and its diagonal.

    Returns ``indptr``, ``indices`` (ascending in each row), ``counts`` (int64) and
    ``diag`` (int64, the non-zeros of each row of ``H``). The pairs of each column of
    ``H`` are enumerated already grouped by pair (no comparison sort, no general
    sparse product): 1.5-2 s instead of 6 s for the company–tender–company counts of
    a 1M-tender market, whose scipy product spends most of its time on two passes of
    a linked-list accumulator and on sorting the 45M output indices.
    """
    if not H.has_canonical_format:
        H = H.copy()
        H.sum_duplicates()  # the structure is all that matters: H is 0/1
    n = H.shape[0]
    diag = np.diff(H.indptr).astype(np.int64)
    if H.nnz == 0:
        return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), diag
    a_ptr, b, _ = cobid_incidences(H, None)
    # A pair's count is the length of its run of incidences inside row a.
    new = first_of_runs(b)
    new[a_ptr[:-1][np.diff(a_ptr) > 0]] = True
    starts = np.flatnonzero(new)
    counts = np.diff(starts, append=b.size).astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(new, dtype=np.int64)])[a_ptr]
    return indptr, b[starts], counts, diag


def _symmetric(indptr: np.ndarray, indices: np.ndarray, counts: np.ndarray, diag: np.ndarray) -> sp.csr_matrix:
    """The canonical CSR of a symmetric matrix from its strict upper triangle and diagonal.

    Row ``i`` is its lower part (the transpose of the upper triangle: a stable
    counting sort, ascending), then the diagonal entry when non-zero, then its
    upper part: written in place, without a sparse addition re-merging every row.
    """
    n = len(diag)
    upper = sp.csr_matrix((counts, indices, indptr), shape=(n, n))
    lower = upper.T.tocsr()
    n_lower, n_upper = np.diff(lower.indptr), np.diff(upper.indptr)
    has_diag = diag != 0
    out_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(n_lower + has_diag + n_upper, out=out_ptr[1:])
    nnz = int(out_ptr[-1])
    it = np.int32 if max(nnz, n) < np.iinfo(np.int32).max else np.int64
    out_ind = np.empty(nnz, dtype=it)
    out_val = np.empty(nnz, dtype=np.int64)
    # Destination of each stored entry: the start of its output row part plus its
    # offset inside its row of the source.
    at = np.repeat(out_ptr[:-1] - lower.indptr[:-1], n_lower) + np.arange(lower.nnz)
    out_ind[at], out_val[at] = lower.indices, lower.data
    rows = np.flatnonzero(has_diag)
    at = out_ptr[rows] + n_lower[rows]
    out_ind[at], out_val[at] = rows, diag[rows]
    at = np.repeat(out_ptr[:-1] + n_lower + has_diag - upper.indptr[:-1], n_upper) + np.arange(upper.nnz)
    out_ind[at], out_val[at] = upper.indices, upper.data
    return sp.csr_matrix((out_val, out_ind, out_ptr.astype(it)), shape=(n, n))


def _upper_counts(G: ProcurementGraph, *path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``rows, cols, counts`` of the strict upper triangle of a square meta-path (0/1 hops),
    row-major, and its diagonal (int64): what a one-mode projection keeps.

    A symmetric path goes without the full product: half of its entries, and the
    mirror image the product would build and sort, are never made.
    """
    H = _gram_factor(G, parse_metapath(path), True)
    if H is not None:
        indptr, cols, counts, diag = _gram_upper(H)
    else:
        full = metapath(G, *path)
        diag = full.diagonal()
        indptr, cols, counts = full.indptr, full.indices, full.data
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    if H is None:
        upper = cols > rows
        rows, cols, counts = rows[upper], cols[upper], counts[upper]
    return rows, cols, counts, diag
