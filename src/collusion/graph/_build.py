"""``build_graph``: the typed procurement graph from a validated :class:`~collusion.Market`.

Everything is vectorised over columns: node codes are the Market's integer
codes, edges are arrays of codes sliced out of the tables, trace values are
normalised per distinct value (Categorical categories) and recoded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._arrays import first_of_runs
from . import _resolution as res
from ._graph import ProcurementGraph
from ._schema import (
    ENTITY_NODE_TYPES,
    PARTY_KIND_ALIASES,
    PARTY_NODE_TYPES,
    TRACE_NODE_TYPES,
    TRACE_SOURCES,
)

if TYPE_CHECKING:  # pragma: no cover
    from .._market import Market

__all__ = ["build_graph"]

_KERNELS = {
    "ip": res._ip_kernel,
    "mac": res._mac_kernel,
    "doc_fingerprint": res._token_kernel,
    "account": res._account_kernel,
    "phone": res._phone_kernel,
    "email": res._email_kernel,
    "address": res._address_kernel,
}
_SAME_AS_METHODS = ("name_exact", "name_fuzzy", "address_fuzzy")
_REPORT_COLUMNS = ("table", "column", "issue", "rows")
_SOURCES = tuple(f"{t}.{c}" for t, c, _ in TRACE_SOURCES)


def _frame(columns: dict[str, Any]) -> pd.DataFrame:
    """An edge table from freshly built arrays, without pandas stacking them into 2-D blocks.

    The default constructor copies every column into one block per dtype: 1.5 s of the 1M
    graph build. Callers pass arrays nothing else holds (copies, not views of the market).
    """
    return pd.DataFrame(columns, copy=False)


def _codes(col: pd.Series) -> np.ndarray:
    """The category codes of ``col``, at least int32: the market's own read-only array, not a copy.

    Widening every column to int64 cost 65 copies of up to 12M rows (1.4 s of the 1M build);
    codes fit int32, and the few products of codes that need int64 cast explicitly.
    """
    # Categorical.codes is a read-only view; Series.cat.codes copies it into a new Series (pandas 3).
    codes = col.array.codes
    return codes.astype(np.int32) if codes.dtype.itemsize < 4 else codes


def _take(values: np.ndarray, codes: np.ndarray, fill: Any = -1) -> np.ndarray:
    """``values[codes]`` with ``fill`` where ``codes == -1`` (no Python loop)."""
    out = np.append(values, np.asarray([fill], dtype=values.dtype))
    return out[codes]


def _run_starts(new_run: np.ndarray) -> np.ndarray:
    """Position (int32) of the first element of each element's run; ``new_run`` flags run starts.

    >>> _run_starts(np.array([True, False, True, False, False])).tolist()
    [0, 0, 2, 2, 2]
    """
    starts = np.flatnonzero(new_run).astype(np.int32)
    return np.repeat(starts, np.diff(starts, append=np.int32(len(new_run))))


def _contains_at(cats: pd.Index) -> np.ndarray:
    """Whether each category contains ``@`` (an e-mail in a phone-or-e-mail column).

    Arrow's substring kernel when the categories are all text; pandas' ``str.contains``
    (a Python loop over object values, missing for non-text) otherwise.
    """
    values = np.asarray(cats, dtype=object)
    try:
        text = pa.array(values, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowException, UnicodeError):
        found = pd.Series(values, dtype=object).str.contains("@", regex=False)
        return found.fillna(False).to_numpy(dtype=bool)
    return np.array(pc.match_substring(text, "@").fill_null(False), dtype=bool)


def _normalise_categories(cats: pd.Index, kernel_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Canonical value (object, None = missing) and invalid flag per category."""
    if len(cats) == 0:
        return np.empty(0, dtype=object), np.zeros(0, dtype=bool)
    s = res._as_object_series(cats)
    out = _KERNELS[kernel_name](s)
    if isinstance(out, tuple):
        return out
    return out, np.zeros(len(out), dtype=bool)


class _Builder:
    def __init__(self, market: Market) -> None:
        self.m = market
        self.index: dict[str, pd.Index] = {}
        self.n_market: dict[str, int] = {}
        self.edges: dict[tuple[str, str, str], pd.DataFrame] = {}
        self.report: list[tuple[str, str, str, int]] = []
        # Node type and node code of every party (party namespace code -> ...).
        self.party_type = np.zeros(0, dtype=np.int64)
        self.party_node = np.zeros(0, dtype=np.int64)

    # ----------------------------------------------------------------- nodes
    def link_parties(self) -> None:
        """Type every party, and append parties unknown to the market as extra nodes."""
        m = self.m
        extras: dict[str, list[np.ndarray]] = {t: [] for t in ENTITY_NODE_TYPES}
        party_ids = np.asarray(m.entities["party"], dtype=object)
        n_party = len(party_ids)
        self.party_type = np.full(n_party, -1, dtype=np.int64)
        parties = m.parties
        if parties is not None and len(parties):
            kinds = parties["kind"].cat.categories
            canon = pd.Series(np.asarray(kinds, dtype=object), dtype=object).str.strip().str.casefold()
            canon = canon.str.replace(r"[\s\-]+", "_", regex=True)
            alias_code = {k: PARTY_NODE_TYPES.index(t) for k, t in PARTY_KIND_ALIASES.items()}
            type_of_kind = canon.map(alias_code).fillna(-1).to_numpy(dtype=np.int64)
            row_type = _take(type_of_kind, _codes(parties["kind"]))
            unknown = row_type < 0
            if unknown.any():
                bad = sorted(set(parties["kind"].astype(object)[unknown].tolist()))
                self.report.append(
                    ("parties", "kind", f"unknown kind {bad} (known: {sorted(PARTY_KIND_ALIASES)}): not linked", int(unknown.sum()))
                )
            self.party_type[_codes(parties["party_id"])] = row_type
        # Relation endpoints absent from the parties table: person -> company by default.
        rel = m.relations
        if rel is not None and len(rel):
            for col, default in (("src_id", "person"), ("dst_id", "company")):
                c = _codes(rel[col])
                untyped = self.party_type[c] < 0
                if untyped.any():
                    self.report.append(
                        ("relations", col, f"endpoint not typed by the parties table: taken as {default}", int(untyped.sum()))
                    )
                    self.party_type[c[untyped]] = PARTY_NODE_TYPES.index(default)
        self.party_node = np.full(n_party, -1, dtype=np.int64)
        missing: dict[str, np.ndarray] = {}
        for ti, t in enumerate(PARTY_NODE_TYPES):
            sel = np.flatnonzero(self.party_type == ti)
            ids = party_ids[sel]
            code = m.entities[t].get_indexer(ids) if len(ids) else np.zeros(0, np.int64)
            self.party_node[sel] = code
            missing[t] = sel[code < 0]
            extras[t].append(ids[code < 0])
        for t in ENTITY_NODE_TYPES:
            base = np.asarray(m.entities[t], dtype=object)
            extra = np.unique(np.concatenate(extras[t]).astype(str)) if extras[t] else np.empty(0, dtype=object)
            self.n_market[t] = len(base)
            self.index[t] = pd.Index(np.concatenate([base, extra.astype(object)]), dtype=object, name=t)
            if len(extra):
                self.report.append(
                    ("parties", "party_id", f"{t} parties absent from the other tables: added as nodes", len(extra))
                )
                # Parties found in the market keep the code looked up above; the others are
                # appended in sorted order (no second hash lookup over all parties).
                sel = missing[t]
                self.party_node[sel] = len(base) + np.searchsorted(extra, party_ids[sel].astype(str))

    def node_tables(self) -> dict[str, pd.DataFrame]:
        m = self.m
        out: dict[str, pd.DataFrame] = {}
        for t in ENTITY_NODE_TYPES:
            idx = self.index[t]
            frame = pd.DataFrame({"id": pd.Series(np.asarray(idx, dtype=object), dtype=object)})
            frame["in_market"] = np.arange(len(idx)) < self.n_market[t]
            out[t] = frame
        # Table attributes for entities that have their own table (row i = code i).
        for t, table, key in (("tender", "tenders", "tender_id"), ("contract", "contracts", "contract_id"),
                              ("project", "projects", "project_id")):
            tab = m.table(table)
            if tab is None or not len(tab):
                continue
            attrs = tab.drop(columns=[key])
            attrs.index = _codes(tab[key]).astype(np.int64)
            out[t] = out[t].join(attrs)
        # Party attributes.
        parties = m.parties
        if parties is not None and len(parties):
            ptype = self.party_type[_codes(parties["party_id"])]
            pnode = self.party_node[_codes(parties["party_id"])]
            cols = [c for c in parties.columns if c not in ("party_id",)]
            for ti, t in enumerate(PARTY_NODE_TYPES):
                sel = ptype == ti
                if not sel.any():
                    continue
                attrs = parties.loc[sel, cols].rename(columns={"kind": "party_kind"})
                attrs.index = pnode[sel]
                out[t] = out[t].join(attrs)
        # Activity counts that detectors and plots use all the time.
        bids = m.bids
        company = _codes(bids["bidder_id"])
        n_comp = len(self.index["company"])
        out["company"]["n_bids"] = np.bincount(company, minlength=n_comp)
        out["company"]["n_wins"] = np.bincount(company[bids["is_winner"].to_numpy()], minlength=n_comp)
        out["tender"]["n_bids"] = np.bincount(_codes(bids["tender_id"]), minlength=len(self.index["tender"]))
        return out

    # ----------------------------------------------------------------- edges
    def add(self, src: str, rel: str, dst: str, frame: pd.DataFrame) -> None:
        key = (src, rel, dst)
        if key in self.edges:
            frame = pd.concat([self.edges[key], frame], ignore_index=True)
        self.edges[key] = frame

    def simple(self, table: str, src_col: str, src: str, rel: str, dst_col: str, dst: str, **attrs: str) -> None:
        tab = self.m.table(table)
        if tab is None or not len(tab):
            return
        s, d = _codes(tab[src_col]), _codes(tab[dst_col])
        ok = (s >= 0) & (d >= 0)
        # s[ok] and d[ok] are fresh int32 arrays: no second copy.
        frame = _frame({"src": s[ok].astype(np.int32, copy=False), "dst": d[ok].astype(np.int32, copy=False)})
        for name, col in attrs.items():
            frame[name] = tab[col].to_numpy()[ok]
        self.add(src, rel, dst, frame)

    def entity_edges(self) -> None:
        m = self.m
        self.simple("tenders", "buyer_id", "buyer", "organizes", "tender_id", "tender")
        self.simple("tenders", "agent_id", "agent", "handles", "tender_id", "tender")
        self.simple("tenders", "tender_id", "tender", "part_of", "project_id", "project")
        self.simple("projects", "buyer_id", "buyer", "owns", "project_id", "project")
        # Bids: rank within tender by price; bids are in (tender, price, bidder) order.
        b = m.bids
        t, c = _codes(b["tender_id"]), _codes(b["bidder_id"])
        price = b["price"].to_numpy(dtype=np.float64)
        if len(t) and not (t[1:] >= t[:-1]).all():  # pragma: no cover - Market guarantees the order
            raise ValueError("bids are not in canonical (tender, price) order")
        new_tender = np.ones(len(t), dtype=bool)
        new_tender[1:] = t[1:] != t[:-1]
        new_price = new_tender.copy()
        new_price[1:] |= price[1:] != price[:-1]
        # rank = position of the bid's first equal price - position of its tender's first bid + 1,
        # each start repeated over its run (int32: cheaper than two int64 maximum.accumulate scans).
        rank = _run_starts(new_price)
        rank -= _run_starts(new_tender)
        rank += 1
        winner = b["is_winner"].to_numpy(dtype=bool)
        self.add(
            "company",
            "bids",
            "tender",
            _frame(
                {
                    "src": c.astype(np.int32),  # copies of the market's columns, not views
                    "dst": t.astype(np.int32),
                    "price": price.copy(),
                    "rank": rank,
                    "is_winner": winner.copy(),
                    "disqualified": b["disqualified"].to_numpy(dtype=bool, copy=True),
                }
            ),
        )
        self.add("company", "wins", "tender", _frame({"src": c[winner].astype(np.int32, copy=False),
                                                            "dst": t[winner].astype(np.int32, copy=False),
                                                            "price": price[winner]}))
        ev = m.evaluations
        if ev is not None and len(ev):
            e, et, eb = _codes(ev["expert_id"]), _codes(ev["tender_id"]), _codes(ev["bidder_id"])
            # In place: each fresh 12M int64 array at 1M tenders is 96 MB of new pages.
            pair = et.astype(np.int64)
            pair *= len(self.index["expert"]) + 1
            pair += e
            # Sort-based: numpy 2.4's np.unique on integers is ~20x slower than sorting. Stable
            # (timsort) because evaluations come in tender order, so the keys are long sorted
            # runs: 0.2-0.6 s instead of 1.3-1.5 s for the 12M keys at 1M tenders.
            pair.sort(kind="stable")
            new = first_of_runs(pair)
            start = np.flatnonzero(new)
            del new
            uniq, counts = pair[start], np.diff(np.append(start, pair.size))
            self.add("expert", "evaluates", "tender", _frame({
                "src": (uniq % (len(self.index["expert"]) + 1)).astype(np.int32),
                "dst": (uniq // (len(self.index["expert"]) + 1)).astype(np.int32),
                "n_scores": counts.astype(np.int32),
            }))
            self.add("expert", "scores", "company", _frame({
                "src": e.astype(np.int32), "dst": eb.astype(np.int32),
                "score": ev["score"].to_numpy(dtype=np.float64, copy=True), "tender": et.astype(np.int32),
            }))
        self.simple("contracts", "tender_id", "tender", "awarded", "contract_id", "contract",
                    amount="amount", signed_at="signed_at")
        self.simple("contracts", "winner_id", "company", "signs", "contract_id", "contract", amount="amount")
        self.simple("contracts", "builder_id", "company", "builds", "contract_id", "contract")
        self.simple("contracts", "project_manager_id", "person", "manages", "contract_id", "contract")
        pay = m.payments
        if pay is not None and len(pay):
            missing = int((_codes(pay["payee_id"]) < 0).sum())
            if missing:
                self.report.append(("payments", "payee_id", "no payee: no paid edge", missing))
        self.simple("payments", "contract_id", "contract", "paid", "payee_id", "company",
                    amount="amount", paid_at="paid_at")
        self.relation_edges()

    def relation_edges(self) -> None:
        m = self.m
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, pd.Categorical, str]] = []
        rel = m.relations
        if rel is not None and len(rel):
            s, d = _codes(rel["src_id"]), _codes(rel["dst_id"])
            parts.append((self.party_type[s], self.party_node[s], self.party_type[d], self.party_node[d],
                          rel["kind"].to_numpy(), "relations"))
        parties = m.parties
        if parties is not None and len(parties):
            rep = _codes(parties["legal_rep"])
            p = _codes(parties["party_id"])
            ok = rep >= 0
            person = PARTY_NODE_TYPES.index("person")
            parts.append((np.full(int(ok.sum()), person), rep[ok], self.party_type[p[ok]], self.party_node[p[ok]],
                          np.full(int(ok.sum()), "legal_rep", dtype=object), "parties.legal_rep"))
        for st, sc, dt, dc, kind, source in parts:
            ok = (st >= 0) & (dt >= 0) & (sc >= 0) & (dc >= 0)
            for si, s_name in enumerate(PARTY_NODE_TYPES):
                for di, d_name in enumerate(PARTY_NODE_TYPES):
                    sel = ok & (st == si) & (dt == di)
                    if sel.any():
                        self.add(s_name, "relations", d_name, pd.DataFrame({
                            "src": sc[sel].astype(np.int32), "dst": dc[sel].astype(np.int32),
                            "kind": pd.Series(np.asarray(kind, dtype=object)[sel], dtype=object),
                            "source": source,
                        }))
        for key in [k for k in self.edges if k[1] == "relations"]:
            frame = self.edges[key]
            frame["kind"] = frame["kind"].astype("category")
            frame["source"] = frame["source"].astype("category")

    # ---------------------------------------------------------------- traces
    def trace_nodes_and_uses(self) -> dict[str, pd.DataFrame]:
        m = self.m
        # (table, column, trace type, canonical value per category, invalid per category,
        #  category belongs to this trace type)
        normed: list[tuple[str, str, str, np.ndarray, np.ndarray, np.ndarray]] = []
        for table, column, ttype in TRACE_SOURCES:
            tab = m.table(table)
            if tab is None or not len(tab) or column not in tab:
                continue
            cats = tab[column].cat.categories
            if ttype == "phone|email":
                is_mail = _contains_at(cats)
                for sub, mask in (("phone", ~is_mail), ("email", is_mail)):
                    canon = np.full(len(cats), None, dtype=object)
                    invalid = np.zeros(len(cats), dtype=bool)
                    canon[mask], invalid[mask] = _normalise_categories(cats[mask], sub)
                    normed.append((table, column, sub, canon, invalid, mask))
            else:
                canon, invalid = _normalise_categories(cats, ttype)
                normed.append((table, column, ttype, canon, invalid, np.ones(len(cats), dtype=bool)))
        # One sorted code space per trace type over all its sources: factorise the
        # concatenated canonical categories once, then split the codes back.
        tables: dict[str, pd.DataFrame] = {}
        cat_nodes: list[tuple[int, np.ndarray]] = []
        for ttype in TRACE_NODE_TYPES:
            parts = [i for i, entry in enumerate(normed) if entry[2] == ttype]
            allv = np.concatenate([normed[i][3] for i in parts]) if parts else np.empty(0, dtype=object)
            codes, uniques = res._factorize_sorted(allv)
            self.index[ttype] = pd.Index(uniques, dtype=object, name=ttype)
            tables[ttype] = pd.DataFrame({"id": pd.Series(uniques, dtype=object)})
            bounds = np.cumsum([0] + [len(normed[i][3]) for i in parts])
            for k, i in enumerate(parts):
                cat_nodes.append((i, codes[bounds[k] : bounds[k + 1]].astype(np.int32)))
        node_of = dict(cat_nodes)
        rows_per_category: dict[tuple[str, str], np.ndarray] = {}
        for i, (table, column, ttype, _, invalid, of_type) in enumerate(normed):
            tab = m.table(table)
            raw = _codes(tab[column])
            # Report counts from rows per category (one pass per column, shared by phone and
            # e-mail of ``contact``) rather than gathering row-level flags over 7.5M bids; and
            # only for a column with an invalid or placeholder category at all.
            placeholder = of_type & (node_of[i] < 0)
            if invalid.any() or placeholder.any():
                if (table, column) not in rows_per_category:
                    rows_per_category[(table, column)] = np.bincount(raw + 1, minlength=len(invalid) + 1)[1:]
                rows = rows_per_category[(table, column)]
                n_invalid = int(rows[invalid].sum())
                if n_invalid:
                    self.report.append((table, column, f"invalid {ttype} value kept as cleaned text", n_invalid))
                n_placeholder = int(rows[placeholder].sum())
                if n_placeholder:
                    self.report.append((table, column, f"{ttype} placeholder or empty after normalisation: ignored",
                                        n_placeholder))
            self._uses_from(table, column, ttype, node_of[i], raw)
        return tables

    def _uses_from(self, table: str, column: str, ttype: str, cat_node: np.ndarray, raw: np.ndarray) -> None:
        """``uses`` edges of one trace column: ``cat_node`` is the trace node of each category
        (-1: none), ``raw`` the column's category codes."""
        m = self.m
        tab = m.table(table)
        source = f"{table}.{column}"
        if table == "bids":
            groups = [("company", _codes(tab["bidder_id"]), _codes(tab["tender_id"]))]
        elif table == "payments":
            groups = [("company", _codes(tab["payee_id"]), np.full(len(tab), -1, dtype=np.int32))]
        else:  # parties
            p = _codes(tab["party_id"])
            ptype, pnode = self.party_type[p], self.party_node[p]
            groups = [(t, np.where(ptype == ti, pnode, -1), np.full(len(tab), -1, dtype=np.int32))
                      for ti, t in enumerate(PARTY_NODE_TYPES)]
        # Rows with a trace node, from a per-category flag: a 1-byte gather over the rows, and
        # node codes gathered for the kept rows only (no full-length int32 node column).
        has_node = _take(cat_node >= 0, raw, False)
        for src_type, src, tender in groups:
            ok = src >= 0
            ok &= has_node
            if not ok.any():
                continue
            n_ok = int(ok.sum())
            # Boolean indexing gives fresh arrays: astype only where the dtype differs.
            self.add(src_type, "uses", ttype, _frame({
                "src": src[ok].astype(np.int32, copy=False),
                "dst": cat_node[raw[ok]].astype(np.int32, copy=False),
                # Built from codes: a repeated string column costs seconds at 7M rows.
                "source": pd.Categorical.from_codes(np.full(n_ok, _SOURCES.index(source), dtype=np.int8),
                                                    categories=list(_SOURCES)),
                "tender": tender[ok].astype(np.int32, copy=False),
            }))

    # ------------------------------------------------------------ resolution
    def same_as(self, nodes: dict[str, pd.DataFrame], *, name_threshold: float, address_threshold: float,
                blocking: Any, name_types: tuple[str, ...]) -> None:
        for t in name_types:
            frame = nodes[t]
            if "name" not in frame or frame["name"].isna().all():
                continue
            names = frame["name"].astype(object)
            names = names[names.notna()]
            pairs = res.match_names(names, threshold=name_threshold, blocking=blocking, pairs="star")
            if len(pairs):
                method = np.where(pairs["method"].to_numpy() == "exact", 0, 1)
                self._add_same_as(t, pairs, method)
        addr = nodes["address"]["id"]
        if len(addr) > 1:
            pairs = res.match_addresses(addr, threshold=address_threshold, blocking=blocking, pairs="star")
            pairs = pairs[pairs["method"] == "fuzzy"]
            if len(pairs):
                self._add_same_as("address", pairs, np.full(len(pairs), 2))

    def _add_same_as(self, t: str, pairs: pd.DataFrame, method: np.ndarray) -> None:
        self.add(t, "same_as", t, _frame({
            "src": pairs["left"].to_numpy(dtype=np.int32),
            "dst": pairs["right"].to_numpy(dtype=np.int32),
            "weight": pairs["similarity"].to_numpy(dtype=np.float64) / 100.0,
            "method": pd.Categorical.from_codes(method, categories=list(_SAME_AS_METHODS)),
        }))



def build_graph(
    market: Market,
    *,
    resolve: bool = True,
    name_threshold: float = 90,
    address_threshold: float = 90,
    blocking: Any = "ngram",
    name_types: Any = ("company", "buyer", "agent"),
) -> ProcurementGraph:
    """Build the typed procurement graph of a market.

    Node codes of entity types (buyer, agent, company, expert, person,
    tender, contract, project) are the Market's integer codes, so
    ``G.nodes("company").id[i] == market.entities["company"][i]``; parties of
    the ``parties`` table that appear nowhere else are appended after them
    (``in_market`` is False). Trace nodes (phone, email, address, ip, mac,
    doc_fingerprint, account) are the distinct *normalised* values (see
    :mod:`collusion.graph` normalisers), sorted; exact trace sharing is two
    parties pointing at one trace node. Relations are listed in
    :data:`~collusion.graph.EDGE_TYPES`.

    Parameters
    ----------
    market : Market
        A validated market.
    resolve : bool, default True
        Add ``same_as`` links: parties of one type whose names are equal or
        similar after :func:`normalize_name` (methods ``name_exact``,
        ``name_fuzzy``) and address trace nodes that are similar after
        :func:`normalize_address` (``address_fuzzy``); ``weight`` is the
        similarity in [0, 1]. Parties with equal name keys are linked as a
        star (each to the first of them), so connected components give the
        resolved entities without a quadratic number of links.
    name_threshold, address_threshold : float, default 90
        Minimum rapidfuzz similarity (0-100) for a fuzzy link.
    blocking : str, callable, None or list, default "ngram"
        Candidate blocking for fuzzy matching (see :func:`match_names`).
    name_types : tuple of str, default ("company", "buyer", "agent")
        Party types whose names are matched. Persons and experts are left out
        by default: two people called 张伟 are usually two people.

    Returns
    -------
    ProcurementGraph
        ``G.report`` counts the rows that could not be used as given
        (invalid or placeholder traces, unknown party kinds...).

    Examples
    --------
    >>> import pandas as pd
    >>> from collusion import Market
    >>> from collusion.graph import build_graph
    >>> tenders = pd.DataFrame({"tender_id": ["T1", "T2"], "buyer_id": ["B1", "B1"]})
    >>> bids = pd.DataFrame({
    ...     "tender_id": ["T1", "T1", "T2", "T2"], "bidder_id": ["A", "B", "A", "B"],
    ...     "price": [100.0, 101.0, 90.0, 95.0], "is_winner": [True, False, False, True],
    ...     "ip": ["10.0.0.1", "010.000.000.001", None, "10.0.0.2"]})
    >>> G = build_graph(Market.from_frames(tenders=tenders, bids=bids))
    >>> G.metapath("company", "tender", "company").toarray()
    array([[2, 2],
           [2, 2]])
    >>> G.shared_traces()[["trace_type", "trace", "parties", "n_parties"]]
      trace_type      trace                          parties  n_parties
    0         ip   10.0.0.1  [company:A, company:B]          2
    """
    from .._market import Market as _Market

    if not isinstance(market, _Market):
        raise TypeError(f"build_graph needs a collusion.Market, got {type(market).__name__}; "
                        "use Market.from_frames(...) first")
    b = _Builder(market)
    b.link_parties()
    b.entity_edges()
    traces = b.trace_nodes_and_uses()
    nodes = b.node_tables()
    nodes.update(traces)
    if resolve:
        name_types = (name_types,) if isinstance(name_types, str) else tuple(name_types)
        bad = sorted(set(name_types) - set(PARTY_NODE_TYPES))
        if bad:
            raise ValueError(f"name_types {bad} are not party node types {PARTY_NODE_TYPES}")
        b.same_as(nodes, name_threshold=name_threshold, address_threshold=address_threshold, blocking=blocking,
                  name_types=name_types)
    report = pd.DataFrame(b.report, columns=list(_REPORT_COLUMNS))
    report["rows"] = report["rows"].astype(np.int64)
    G = ProcurementGraph(nodes, b.edges, market=market, report=report)
    G._add_trace_counts()
    return G
