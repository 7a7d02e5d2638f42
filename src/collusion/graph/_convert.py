"""Views of the procurement graph: networkx, igraph, projections, ego nets, GraphML/GEXF.

networkx nodes are ``"type:id"`` strings (``"company:C0001"``) with ``type``
and ``id`` attributes, so one graph can mix node types and still be written
to GraphML/GEXF; one-mode projections use plain ids since their nodes share a
type. Attribute values are converted to what Gephi accepts (str, int, float,
bool; datetimes as ISO text; missing values are left out).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import pandas as pd

from ._graph import EdgeKey, ProcurementGraph, parse_node
from ._metapath import _upper_counts
from ._schema import NODE_TYPES

if TYPE_CHECKING:  # pragma: no cover
    import igraph as ig
    import networkx as nx

__all__ = [
    "ego_subgraph",
    "projection",
    "to_igraph",
    "to_networkx",
    "write_gexf",
    "write_graphml",
]


def _column_values(s: pd.Series) -> list[Any]:
    """Python values of a column in Gephi-safe types, ``None`` for missing."""
    if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s):
        text = s.dt.strftime("%Y-%m-%dT%H:%M:%S")
        return [v if isinstance(v, str) else None for v in text.astype(object).tolist()]
    if pd.api.types.is_bool_dtype(s):
        return [bool(v) for v in s.tolist()]
    if pd.api.types.is_integer_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype):
        return [int(v) for v in s.tolist()]
    if pd.api.types.is_float_dtype(s):
        return [None if v != v else float(v) for v in s.tolist()]
    return [_safe_value(v) for v in s.astype(object).tolist()]


def _safe_value(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, str):
        return v
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return None if pd.isna(v) else pd.Timestamp(v).isoformat()
    if isinstance(v, (list, tuple, dict, set, np.ndarray)):
        return json.dumps(list(v) if isinstance(v, (set, np.ndarray, tuple)) else v, default=str, ensure_ascii=False)
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return str(v)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    cols = {c: _column_values(frame[c]) for c in frame.columns}
    names = list(cols)
    return [{k: v for k, v in zip(names, row) if v is not None} for row in zip(*cols.values())] if names else [
        {} for _ in range(len(frame))]


def _select(G: ProcurementGraph, node_types: Iterable[str] | None,
            edge_types: Iterable[Any] | None) -> tuple[list[str], list[EdgeKey]]:
    keys: list[EdgeKey] = []
    if edge_types is not None:
        for e in edge_types:
            keys.extend(G._keys(e, None, None))
        keys = [k for k in dict.fromkeys(keys) if k in G.edge_types]
    if node_types is None:
        types = list(G.node_types) if edge_types is None else list(dict.fromkeys(t for k in keys for t in (k[0], k[2])))
    else:
        types = [node_types] if isinstance(node_types, str) else list(node_types)
        bad = [t for t in types if t not in NODE_TYPES]
        if bad:
            raise ValueError(f"unknown node types {bad}; node types: {', '.join(NODE_TYPES)}")
    if edge_types is None:
        keys = list(G.edge_types)
    keys = [k for k in keys if k[0] in types and k[2] in types]
    return types, keys


def _edge_attribute_frame(G: ProcurementGraph, key: EdgeKey, frame: pd.DataFrame) -> pd.DataFrame:
    attrs = frame.drop(columns=["src", "dst"])
    if "tender" in attrs:  # a code: show the tender id instead
        codes = attrs["tender"].to_numpy(dtype=np.int64)
        ids = np.full(len(codes), None, dtype=object)
        ok = codes >= 0
        ids[ok] = G.ids("tender", codes[ok])
        attrs["tender"] = ids
    return attrs


def to_networkx(
    G: ProcurementGraph,
    node_types: Iterable[str] | None = None,
    edge_types: Iterable[Any] | None = None,
    *,
    attributes: bool = True,
) -> nx.MultiDiGraph:
    """The graph, or a subset of its node and edge types, as a networkx MultiDiGraph.

    Parameters
    ----------
    G : ProcurementGraph
        The graph.
    node_types : list of str, optional
        Node types to include (default: all, or the endpoints of
        ``edge_types`` when those are given). All nodes of each type are
        included, isolated or not.
    edge_types : list of str or (src, relation, dst), optional
        Relations to include (default: every relation between included types).
    attributes : bool, default True
        Copy node and edge attributes (Gephi-safe types).

    Returns
    -------
    networkx.MultiDiGraph
        Nodes ``"type:id"`` with ``type`` and ``id`` attributes; every edge
        has a ``relation`` attribute (parallel edges get keys 0, 1, ...).

    Examples
    --------
    >>> import pandas as pd
    >>> from collusion import Market
    >>> from collusion.graph import build_graph, to_networkx
    >>> m = Market.from_frames(
    ...     tenders=pd.DataFrame({"tender_id": ["T1"], "buyer_id": ["B1"]}),
    ...     bids=pd.DataFrame({"tender_id": ["T1", "T1"], "bidder_id": ["A", "B"], "price": [1.0, 2.0]}))
    >>> g = to_networkx(build_graph(m), edge_types=["bids"])
    >>> sorted(g.nodes), g.number_of_edges()
    (['company:A', 'company:B', 'tender:T1'], 2)
    >>> g.edges["company:B", "tender:T1", 0]
    {'relation': 'bids', 'price': 2.0, 'rank': 2, 'is_winner': False, 'disqualified': False}
    """
    import networkx as nx

    types, keys = _select(G, node_types, edge_types)
    g = nx.MultiDiGraph()
    for t in types:
        frame = G._nodes[t]
        labels = G.labels(t, np.arange(len(frame)))
        if attributes:
            recs = _records(frame.drop(columns=["id"]))
            ids = frame["id"].astype(object).tolist()
            g.add_nodes_from((lab, {"type": t, "id": str(i), **r}) for lab, i, r in zip(labels, ids, recs))
        else:
            g.add_nodes_from((lab, {"type": t, "id": str(i)}) for lab, i in zip(labels, frame["id"].astype(object)))
    for key in keys:
        s, r, d = key
        frame = G._edges[key]
        su = G.labels(s, frame["src"].to_numpy())
        dv = G.labels(d, frame["dst"].to_numpy())
        recs = _records(_edge_attribute_frame(G, key, frame)) if attributes else [{} for _ in range(len(frame))]
        # networkx numbers parallel edges (0, 1, ...): several payments or
        # scores can join the same pair under one relation.
        g.add_edges_from((u, v, {"relation": r, **rec}) for u, v, rec in zip(su, dv, recs))
    return g


def to_igraph(
    G: ProcurementGraph,
    node_types: Iterable[str] | None = None,
    edge_types: Iterable[Any] | None = None,
) -> ig.Graph:
    """The graph, or a subset of it, as a directed igraph Graph.

    Vertices are ordered by node type then code; attributes ``name``
    (``"type:id"``), ``type``, ``id`` and ``code``; edges carry ``relation``
    and their numeric and boolean attributes. Built from arrays, so it is
    fast enough for community detection on millions of edges.

    Examples
    --------
    >>> import pandas as pd
    >>> from collusion import Market
    >>> from collusion.graph import build_graph, to_igraph
    >>> m = Market.from_frames(
    ...     tenders=pd.DataFrame({"tender_id": ["T1"]}),
    ...     bids=pd.DataFrame({"tender_id": ["T1", "T1"], "bidder_id": ["A", "B"], "price": [1.0, 2.0]}))
    >>> h = to_igraph(build_graph(m), edge_types=["bids"])
    >>> h.vcount(), h.ecount(), h.es["relation"]
    (3, 2, ['bids', 'bids'])
    """
    import igraph as ig

    types, keys = _select(G, node_types, edge_types)
    offsets, start = {}, 0
    for t in types:
        offsets[t] = start
        start += G.n(t)
    h = ig.Graph(n=start, directed=True)
    h.vs["type"] = [t for t in types for _ in range(G.n(t))]
    h.vs["id"] = [str(i) for t in types for i in G.index(t)]
    h.vs["code"] = [int(c) for t in types for c in range(G.n(t))]
    h.vs["name"] = [f"{t}:{i}" for t, i in zip(h.vs["type"], h.vs["id"])]
    srcs, dsts, rels, frames = [], [], [], []
    for key in keys:
        s, r, d = key
        frame = G._edges[key]
        srcs.append(frame["src"].to_numpy(dtype=np.int64) + offsets[s])
        dsts.append(frame["dst"].to_numpy(dtype=np.int64) + offsets[d])
        rels.extend([r] * len(frame))
        frames.append(frame.drop(columns=["src", "dst"]))
    if srcs:
        h.add_edges(np.column_stack([np.concatenate(srcs), np.concatenate(dsts)]))  # array, not a list
        h.es["relation"] = rels
        attrs = pd.concat(frames, ignore_index=True)
        for c in attrs.columns:
            col = attrs[c]
            if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
                h.es[c] = _column_values(col)
    return h


def projection(
    G: ProcurementGraph,
    node_type: str,
    via: str = "tender",
    *,
    relation: str | None = None,
    min_weight: int = 1,
    include_isolates: bool = False,
    backend: str = "networkx",
) -> Any:
    """One-mode projection weighted by shared neighbours (e.g. the co-bidding graph).

    Parameters
    ----------
    G : ProcurementGraph
        The graph.
    node_type : str
        Type of the projected nodes (``"company"``).
    via : str, default "tender"
        Intermediate node type: ``"tender"`` (co-bidding), a trace type
        (``"ip"``), ``"trace"`` (any shared trace value), ``"contract"``...
    relation : str, optional
        Relation of both hops (e.g. ``"wins"``); default per
        :func:`~collusion.graph.metapath`.
    min_weight : int, default 1
        Keep pairs sharing at least this many intermediate nodes.
    include_isolates : bool, default False
        Also add nodes without any kept pair.
    backend : {"networkx", "igraph"}
        Type of the returned graph.

    Returns
    -------
    networkx.Graph or igraph.Graph
        Nodes are ids, with ``type`` and ``n`` (number of intermediate nodes
        the node touches); edge ``weight`` = number of shared intermediate
        nodes (int). igraph vertices carry ``name`` = id.

    Examples
    --------
    >>> import pandas as pd
    >>> from collusion import Market
    >>> from collusion.graph import build_graph, projection
    >>> m = Market.from_frames(
    ...     tenders=pd.DataFrame({"tender_id": ["T1", "T2"]}),
    ...     bids=pd.DataFrame({"tender_id": ["T1", "T1", "T2", "T2", "T2"],
    ...                        "bidder_id": ["A", "B", "A", "B", "C"], "price": [1.0, 2.0, 1.0, 2.0, 3.0]}))
    >>> p = projection(build_graph(m), "company", via="tender")
    >>> sorted(p.edges(data="weight"))
    [('A', 'B', 2), ('A', 'C', 1), ('B', 'C', 1)]
    """
    if backend not in ("networkx", "igraph"):
        raise ValueError(f"backend must be 'networkx' or 'igraph', got {backend!r}")
    path = [node_type, relation, via, relation, node_type] if relation else [node_type, via, node_type]
    rows, cols, w, diag = _upper_counts(G, *path)
    if min_weight > 1:
        keep = w >= min_weight
        rows, cols, w = rows[keep], cols[keep], w[keep]
    n_all = G.n(node_type)
    if include_isolates:
        nodes = np.arange(n_all)
    else:
        # Codes are below n: a mask gives the sorted distinct endpoints without sorting 2 × 22M codes.
        seen = np.zeros(n_all, dtype=bool)
        seen[rows] = True
        seen[cols] = True
        nodes = np.flatnonzero(seen)
    ids = G.ids(node_type, nodes)
    if backend == "igraph":
        import igraph as ig

        pos = np.full(n_all, -1, dtype=np.int64)
        pos[nodes] = np.arange(len(nodes))
        h = ig.Graph(n=len(nodes), directed=False)
        # An (m, 2) integer array, not a list of pairs: 0.3 s instead of 1.1 s for 777k edges
        # (igraph's own memoryview path is slower still: it goes through Python lists).
        edges = np.empty((len(rows), 2), dtype=np.int64)
        # Plain assignment of the gather into the strided column: about twice as fast as
        # np.take(..., out=edges[:, 0]), whose out= path is slow on a non-contiguous view.
        edges[:, 0] = pos[rows]
        edges[:, 1] = pos[cols]
        h.add_edges(edges)
        del edges
        h.vs["name"] = [str(i) for i in ids]
        h.vs["type"] = [node_type] * len(nodes)
        h.vs["n"] = diag[nodes].astype(int).tolist()
        h.es["weight"] = w.tolist()  # int64 already: Python ints without a 22M-element copy first (1M tenders)
        return h
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from((str(i), {"type": node_type, "n": int(n)}) for i, n in zip(ids, diag[nodes]))
    all_ids = G.index(node_type).to_numpy()
    g.add_weighted_edges_from(
        (str(a), str(b), int(x)) for a, b, x in zip(all_ids[rows], all_ids[cols], w)
    )
    return g


def ego_subgraph(
    G: ProcurementGraph,
    node: Any,
    hops: int = 1,
    *,
    edge_types: Iterable[Any] | None = None,
    max_degree: int | None = None,
    as_networkx: bool = False,
) -> ProcurementGraph | nx.MultiDiGraph:
    """Everything within ``hops`` edges of one node (edges taken in both directions).

    Parameters
    ----------
    G : ProcurementGraph
        The graph.
    node : (type, id) or "type:id"
        The centre, e.g. ``("company", "C0001")`` or ``"company:C0001"``.
    hops : int, default 1
        Radius.
    edge_types : list of relation names or keys, optional
        Relations walked (default all). ``same_as`` and ``uses`` included.
    max_degree : int, optional
        Nodes with more edges than this (a buyer with 10,000 tenders, a
        router IP) are included but not walked through, which keeps ego nets
        readable. The centre is always walked.
    as_networkx : bool, default False
        Return :func:`to_networkx` of the result instead.

    Returns
    -------
    ProcurementGraph or networkx.MultiDiGraph
        A subgraph with local codes (``parent_codes`` maps them back).

    Examples
    --------
    >>> import pandas as pd
    >>> from collusion import Market
    >>> from collusion.graph import build_graph, ego_subgraph
    >>> m = Market.from_frames(
    ...     tenders=pd.DataFrame({"tender_id": ["T1", "T2"]}),
    ...     bids=pd.DataFrame({"tender_id": ["T1", "T1", "T2"], "bidder_id": ["A", "B", "C"],
    ...                        "price": [1.0, 2.0, 1.0]}))
    >>> sub = ego_subgraph(build_graph(m), "company:A", hops=2)
    >>> sub.ids("company", range(sub.n("company"))).tolist(), sub.n("tender")
    (['A', 'B'], 1)
    """
    if hops < 0:
        raise ValueError(f"hops must be >= 0, got {hops}")
    node_type, node_id = parse_node(node)
    code = G.codes(node_type, [node_id])[0]
    if code < 0:
        raise KeyError(f"no {node_type} node with id {node_id!r}")
    _, keys = _select(G, None, edge_types)
    reached = {t: np.zeros(G.n(t), dtype=bool) for t in NODE_TYPES}
    reached[node_type][code] = True
    frontier = {t: r.copy() for t, r in reached.items()}
    walkable = None
    if max_degree is not None:
        degree = {t: np.zeros(G.n(t), dtype=np.int64) for t in NODE_TYPES}
        for key in keys:
            a = G.adjacency(key, binary=True)
            degree[key[0]] += np.diff(a.indptr)
            degree[key[2]] += np.bincount(a.indices, minlength=a.shape[1])
        walkable = {t: degree[t] <= max_degree for t in NODE_TYPES}
        walkable[node_type][code] = True
    for _ in range(hops):
        new = {t: np.zeros(G.n(t), dtype=bool) for t in NODE_TYPES}
        for key in keys:
            s, _, d = key
            a = G.adjacency(key, binary=True)
            fs, fd = frontier[s], frontier[d]
            if walkable is not None:
                fs, fd = fs & walkable[s], fd & walkable[d]
            if fs.any():
                new[d] |= (a.T @ fs.astype(np.int64)) > 0
            if fd.any():
                new[s] |= (a @ fd.astype(np.int64)) > 0
        frontier = {t: new[t] & ~reached[t] for t in NODE_TYPES}
        for t in NODE_TYPES:
            reached[t] |= new[t]
        if not any(f.any() for f in frontier.values()):
            break
    sub = G.subgraph(reached)
    if edge_types is not None:
        allowed = set(keys)
        sub = ProcurementGraph(sub._nodes, {k: v for k, v in sub._edges.items() if k in allowed},
                               settings=sub.settings, report=sub.report, parent_codes=sub.parent_codes)
    return to_networkx(sub) if as_networkx else sub


def _gephi_safe(g: Any) -> Any:
    """Copy of a networkx graph whose attribute values GraphML/GEXF writers accept."""
    h = g.copy()
    h.graph = {k: _safe_value(v) for k, v in g.graph.items() if _safe_value(v) is not None}
    for _, data in h.nodes(data=True):
        _clean(data)
    for *_, data in h.edges(data=True):
        _clean(data)
    return h


def _clean(data: dict[str, Any]) -> None:
    for k in list(data):
        v = _safe_value(data[k])
        if v is None:
            del data[k]
        else:
            data[k] = v


def _as_nx(graph: Any, node_types: Iterable[str] | None, edge_types: Iterable[Any] | None) -> Any:
    if isinstance(graph, ProcurementGraph):
        return to_networkx(graph, node_types=node_types, edge_types=edge_types)
    return _gephi_safe(graph)


def write_graphml(graph: Any, path: str | Path, *, node_types: Iterable[str] | None = None,
                  edge_types: Iterable[Any] | None = None) -> None:
    """Write a ProcurementGraph (or any networkx graph) as GraphML for Gephi, yEd, Cytoscape.

    A ProcurementGraph goes through :func:`to_networkx` (optionally a subset
    of node / edge types); attribute values become str, int, float or bool.
    """
    import networkx as nx

    nx.write_graphml(_as_nx(graph, node_types, edge_types), str(path))


def write_gexf(graph: Any, path: str | Path, *, node_types: Iterable[str] | None = None,
               edge_types: Iterable[Any] | None = None) -> None:
    """Write a ProcurementGraph (or any networkx graph) as GEXF for Gephi.

    Same conversion as :func:`write_graphml`.
    """
    import networkx as nx

    nx.write_gexf(_as_nx(graph, node_types, edge_types), str(path))
