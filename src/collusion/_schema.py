"""The canonical input tables: columns, kinds, id namespaces and keys.

This module is the single source of truth for what a procurement market looks
like inside ``collusion``. Readers (CSV/Parquet folders, OCDS, the labelled
cartel files) map onto these tables; the validator checks them; the graph
builder and the detectors read them.

Column kinds
------------
``id``
    An identifier. Stored as a pandas ``Categorical`` whose categories are the
    sorted unique ids of its *namespace* (``ENTITY`` below), shared by every
    column of that namespace, so ``column.cat.codes`` are integer codes that
    mean the same entity in every table. Codes are assigned in sorted id order,
    which makes them independent of row order.
``trace``
    A submission or contact trace (ip, mac, document fingerprint, account,
    phone, e-mail, address). Stored as ``Categorical`` with its own categories;
    normalisation and entity resolution happen in :mod:`collusion.graph`.
``str``
    Free text or a label (category, region, names), stored as ``Categorical``.
``float``, ``bool``, ``datetime``
    ``float64``, ``bool`` (missing means ``False``) and ``datetime64[ns]``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ColumnSpec",
    "ENTITY_KINDS",
    "FOREIGN_KEYS",
    "PROCEDURES",
    "TABLES",
    "TABLE_KEYS",
    "TRACE_COLUMNS",
]


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a canonical table.

    Parameters
    ----------
    name : str
        Column name.
    kind : {"id", "trace", "str", "float", "bool", "datetime"}
        Storage kind, see the module docstring.
    required : bool
        The column must be present in the input frame.
    entity : str or None
        Namespace of an ``id`` column (``"company"``, ``"tender"``...).
    nullable : bool
        Missing values are allowed (a required id column is never nullable).
    positive : bool
        Values must be finite and strictly positive (prices, amounts).
    """

    name: str
    kind: str
    required: bool = False
    entity: str | None = None
    nullable: bool = True
    positive: bool = False


def _id(name: str, entity: str, *, required: bool = False, nullable: bool = True) -> ColumnSpec:
    return ColumnSpec(name, "id", required=required, entity=entity, nullable=nullable)


#: Entity namespaces. A company id means the same firm in bids, contracts,
#: evaluations and payments; buyers, agents, experts, persons, projects,
#: tenders and contracts each have their own namespace. ``party`` is the
#: namespace of the parties/relations tables, which mix all kinds.
ENTITY_KINDS: tuple[str, ...] = (
    "tender",
    "buyer",
    "agent",
    "company",
    "expert",
    "person",
    "project",
    "contract",
    "party",
)

#: Normalised procurement procedures. Readers map local names onto these.
PROCEDURES: tuple[str, ...] = ("open", "selective", "invited", "negotiated", "direct", "other")

TABLES: dict[str, tuple[ColumnSpec, ...]] = {
    "tenders": (
        _id("tender_id", "tender", required=True, nullable=False),
        _id("buyer_id", "buyer"),
        _id("agent_id", "agent"),
        _id("project_id", "project"),
        ColumnSpec("category", "str"),
        ColumnSpec("region", "str"),
        ColumnSpec("procedure", "str"),
        ColumnSpec("estimate", "float", positive=True),
        ColumnSpec("published_at", "datetime"),
        ColumnSpec("deadline_at", "datetime"),
        ColumnSpec("awarded_at", "datetime"),
    ),
    "bids": (
        _id("tender_id", "tender", required=True, nullable=False),
        _id("bidder_id", "company", required=True, nullable=False),
        ColumnSpec("price", "float", required=True, nullable=False, positive=True),
        ColumnSpec("is_winner", "bool"),
        ColumnSpec("disqualified", "bool"),
        ColumnSpec("submitted_at", "datetime"),
        ColumnSpec("ip", "trace"),
        ColumnSpec("mac", "trace"),
        ColumnSpec("doc_fingerprint", "trace"),
        ColumnSpec("bond_account", "trace"),
        ColumnSpec("contact", "trace"),
    ),
    "evaluations": (
        _id("tender_id", "tender", required=True, nullable=False),
        _id("expert_id", "expert", required=True, nullable=False),
        _id("bidder_id", "company", required=True, nullable=False),
        ColumnSpec("score", "float", required=True, nullable=False),
    ),
    "contracts": (
        _id("contract_id", "contract", required=True, nullable=False),
        _id("tender_id", "tender", required=True, nullable=False),
        _id("winner_id", "company", required=True, nullable=False),
        ColumnSpec("amount", "float", required=True, nullable=False, positive=True),
        ColumnSpec("signed_at", "datetime"),
        _id("builder_id", "company"),
        _id("project_manager_id", "person"),
        ColumnSpec("final_amount", "float", positive=True),
        ColumnSpec("completed_at", "datetime"),
    ),
    "changes": (
        _id("contract_id", "contract", required=True, nullable=False),
        ColumnSpec("changed_at", "datetime"),
        ColumnSpec("amount_delta", "float", required=True, nullable=False),
        ColumnSpec("kind", "str"),
        ColumnSpec("approved", "bool"),
    ),
    "payments": (
        _id("contract_id", "contract", required=True, nullable=False),
        ColumnSpec("paid_at", "datetime"),
        ColumnSpec("amount", "float", required=True, nullable=False, positive=True),
        _id("payee_id", "company"),
        ColumnSpec("payee_account", "trace"),
    ),
    "projects": (
        _id("project_id", "project", required=True, nullable=False),
        _id("buyer_id", "buyer"),
        ColumnSpec("investment_estimate", "float", positive=True),
        ColumnSpec("preliminary_estimate", "float", positive=True),
        ColumnSpec("budget", "float", positive=True),
        ColumnSpec("final_account", "float", positive=True),
    ),
    "parties": (
        _id("party_id", "party", required=True, nullable=False),
        ColumnSpec("kind", "str", required=True, nullable=False),
        ColumnSpec("name", "str"),
        _id("legal_rep", "person"),
        ColumnSpec("address", "trace"),
        ColumnSpec("phone", "trace"),
        ColumnSpec("email", "trace"),
        ColumnSpec("registered_at", "datetime"),
    ),
    "relations": (
        _id("src_id", "party", required=True, nullable=False),
        _id("dst_id", "party", required=True, nullable=False),
        ColumnSpec("kind", "str", required=True, nullable=False),
    ),
}

#: Columns whose combination must be unique in each table.
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "tenders": ("tender_id",),
    "bids": ("tender_id", "bidder_id"),
    "evaluations": ("tender_id", "expert_id", "bidder_id"),
    "contracts": ("contract_id",),
    "projects": ("project_id",),
    "parties": ("party_id",),
}

#: (table, column) -> (table, column) that must contain the value.
#: Checked only when both tables are present.
FOREIGN_KEYS: dict[tuple[str, str], tuple[str, str]] = {
    ("bids", "tender_id"): ("tenders", "tender_id"),
    ("evaluations", "tender_id"): ("tenders", "tender_id"),
    ("contracts", "tender_id"): ("tenders", "tender_id"),
    ("changes", "contract_id"): ("contracts", "contract_id"),
    ("payments", "contract_id"): ("contracts", "contract_id"),
    ("tenders", "project_id"): ("projects", "project_id"),
}

#: Submission traces of a bid that Art. 40 of the Bidding Law's implementing
#: regulation treats as evidence of collusion when bidders share them.
TRACE_COLUMNS: tuple[str, ...] = ("ip", "mac", "doc_fingerprint", "bond_account", "contact")
