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
    result: sp.csr_matrix | None = None
    for a, rel, b in hops:
        m = _hop_matrix(G, a, rel, b, binary)
        result = m if result is None else (result @ m).tocsr()
    assert result is not None
    result = result.astype(np.int64, copy=False)
    result.sum_duplicates()
    result.sort_indices()
    return result
