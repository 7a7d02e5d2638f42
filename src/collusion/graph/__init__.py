"""The heterogeneous procurement graph and entity resolution.

:func:`build_graph` turns a :class:`~collusion.Market` into a
:class:`ProcurementGraph`: typed node tables (buyer, agent, company, expert,
person, tender, contract, project and the trace nodes phone, email, address,
ip, mac, doc_fingerprint, account), typed edge tables (see
:data:`EDGE_TYPES`), one scipy CSR matrix per relation and meta-path
products such as company–tender–company co-bidding counts. Views:
:func:`to_networkx`, :func:`to_igraph`, :func:`projection`,
:func:`ego_subgraph`, :func:`write_graphml`, :func:`write_gexf`.

Entity resolution: ``normalize_*`` functions give canonical keys for traces
and names (exact sharing = equal keys); :func:`match_names` and
:func:`match_addresses` find fuzzy duplicates with blocking.
"""

from __future__ import annotations

from ._build import build_graph
from ._convert import ego_subgraph, projection, to_igraph, to_networkx, write_gexf, write_graphml
from ._graph import ProcurementGraph, parse_node
from ._metapath import metapath
from ._resolution import (
    DOT_INSENSITIVE_DOMAINS,
    GENERIC_ADDRESS_WORDS,
    GENERIC_NAME_WORDS,
    PLUS_TAG_DOMAINS,
    match_addresses,
    match_names,
    normalize_account,
    normalize_address,
    normalize_email,
    normalize_ip,
    normalize_mac,
    normalize_name,
    normalize_phone,
)
from ._schema import EDGE_TYPES, ENTITY_NODE_TYPES, NODE_TYPES, TRACE_NODE_TYPES, EdgeType

__all__ = [
    "DOT_INSENSITIVE_DOMAINS",
    "EDGE_TYPES",
    "ENTITY_NODE_TYPES",
    "EdgeType",
    "GENERIC_ADDRESS_WORDS",
    "GENERIC_NAME_WORDS",
    "NODE_TYPES",
    "PLUS_TAG_DOMAINS",
    "ProcurementGraph",
    "TRACE_NODE_TYPES",
    "build_graph",
    "ego_subgraph",
    "match_addresses",
    "match_names",
    "metapath",
    "normalize_account",
    "normalize_address",
    "normalize_email",
    "normalize_ip",
    "normalize_mac",
    "normalize_name",
    "normalize_phone",
    "parse_node",
    "projection",
    "to_igraph",
    "to_networkx",
    "write_gexf",
    "write_graphml",
]
