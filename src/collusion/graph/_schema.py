"""Node and edge types of the procurement graph (the registry, in one place)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_RELATIONS",
    "EDGE_TYPES",
    "ENTITY_NODE_TYPES",
    "EdgeType",
    "NODE_TYPES",
    "PARTY_KIND_ALIASES",
    "PARTY_NODE_TYPES",
    "TRACE_NODE_TYPES",
    "TRACE_SOURCES",
]

#: Node types whose codes are the Market's integer codes of the same namespace
#: (parties of the parties table that never appear elsewhere are appended).
ENTITY_NODE_TYPES: tuple[str, ...] = (
    "buyer",
    "agent",
    "company",
    "expert",
    "person",
    "tender",
    "contract",
    "project",
)
#: Node types a row of the parties table can be.
PARTY_NODE_TYPES: tuple[str, ...] = ("company", "person", "buyer", "agent", "expert")
#: Trace nodes: one node per distinct normalised value; codes follow the sorted values.
TRACE_NODE_TYPES: tuple[str, ...] = ("phone", "email", "address", "ip", "mac", "doc_fingerprint", "account")
NODE_TYPES: tuple[str, ...] = ENTITY_NODE_TYPES + TRACE_NODE_TYPES

#: Lower-cased ``parties.kind`` values and the node type they mean.
PARTY_KIND_ALIASES: dict[str, str] = {
    **{k: k for k in PARTY_NODE_TYPES},
    "bidder": "company",
    "supplier": "company",
    "contractor": "company",
    "firm": "company",
    "enterprise": "company",
    "tenderer": "buyer",
    "purchaser": "buyer",
    "procuring_entity": "buyer",
    "procuringentity": "buyer",
    "agency": "agent",
    "procurement_agent": "agent",
    "evaluator": "expert",
    "individual": "person",
    "natural_person": "person",
}

#: (table, column, trace type): where trace nodes come from. ``contact`` holds
#: phones and e-mails alike; a value with "@" is an e-mail.
TRACE_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("bids", "ip", "ip"),
    ("bids", "mac", "mac"),
    ("bids", "doc_fingerprint", "doc_fingerprint"),
    ("bids", "bond_account", "account"),
    ("bids", "contact", "phone|email"),
    ("parties", "address", "address"),
    ("parties", "phone", "phone"),
    ("parties", "email", "email"),
    ("payments", "payee_account", "account"),
)


@dataclass(frozen=True)
class EdgeType:
    """One relation of the graph.

    Parameters
    ----------
    name : str
        Relation name, e.g. ``"bids"``.
    src, dst : tuple of str
        Possible source and target node types.
    attributes : tuple of str
        Edge attribute columns besides ``src`` and ``dst``.
    description : str
        What one edge means and what its adjacency counts.
    """

    name: str
    src: tuple[str, ...]
    dst: tuple[str, ...]
    attributes: tuple[str, ...]
    description: str

    @property
    def polymorphic(self) -> bool:
        """True when the relation joins several node-type pairs (its table has type columns)."""
        return len(self.src) > 1 or len(self.dst) > 1


_E = EdgeType
EDGE_TYPES: dict[str, EdgeType] = {
    e.name: e
    for e in (
        _E("organizes", ("buyer",), ("tender",), (), "the buyer publishes the tender"),
        _E("handles", ("agent",), ("tender",), (), "the procurement agent runs the tender"),
        _E("part_of", ("tender",), ("project",), (), "the tender is a lot of the project"),
        _E("owns", ("buyer",), ("project",), (), "the buyer owns the project"),
        _E(
            "bids",
            ("company",),
            ("tender",),
            ("price", "rank", "is_winner", "disqualified"),
            "one bid; rank 1 = lowest price in the tender (ties share the lower rank)",
        ),
        _E("wins", ("company",), ("tender",), ("price",), "the winning bids (a subset of bids)"),
        _E("evaluates", ("expert",), ("tender",), ("n_scores",), "the expert sits on the tender's panel"),
        _E("scores", ("expert",), ("company",), ("score", "tender"), "one score an expert gave a bidder in a tender"),
        _E("awarded", ("tender",), ("contract",), ("amount", "signed_at"), "the contract awarded by the tender"),
        _E("signs", ("company",), ("contract",), ("amount",), "the winner who signed the contract"),
        _E("builds", ("company",), ("contract",), (), "the firm actually building on site"),
        _E("manages", ("person",), ("contract",), (), "the contract's project manager"),
        _E("paid", ("contract",), ("company",), ("amount", "paid_at"), "one payment under the contract to the payee"),
        _E(
            "uses",
            PARTY_NODE_TYPES,
            TRACE_NODE_TYPES,
            ("source", "tender"),
            "a party used a trace; source = table.column, tender = code of the bid's tender or -1",
        ),
        _E(
            "relations",
            PARTY_NODE_TYPES,
            PARTY_NODE_TYPES,
            ("kind", "source"),
            "declared relation (legal_rep, shareholder, employee...) from the relations or parties table",
        ),
        _E(
            "same_as",
            PARTY_NODE_TYPES + ("address",),
            PARTY_NODE_TYPES + ("address",),
            ("weight", "method"),
            "entity-resolution link between two nodes of one type; weight = similarity in [0, 1]",
        ),
    )
}

#: Relation used for a hop between two node types when a meta-path names none.
DEFAULT_RELATIONS: dict[frozenset[str], str] = {
    frozenset({"company", "tender"}): "bids",
    frozenset({"company", "contract"}): "signs",
}
