"""Shared machinery of the three affinity analyses (1 buyer, 5 agent, 6 expert ↔ company).

The three detectors differ only in the context relation (who organises, runs
or evaluates a tender), the bids they compare against, and which signals
their score combines. Everything else — the pair statistics of
:func:`collusion.features.pair_affinity`, the direct ties of
:func:`collusion.features.context_links`, the score, the Benjamini–Hochberg
threshold and the evidence records — lives here once.

Score
-----
Each signal enters as a surprise (``-log10 p``):

* signals whose nominal null is too optimistic on real markets (excess wins,
  value share, irregular wins: honest firms win more at home, buyers differ in
  practice) are calibrated against the market itself — the share of pairs
  with a value at least as large (:func:`empirical_surprise`);
* self-normalised tests keep their nominal p-value (the expert's score bias is
  a t-test within the expert; bids prepared by the context are rare by the
  market's own rate);
* a direct tie (shared phone, address, e-mail, a bid carrying the context's
  contact, a declared relation) is surprising by the share of scored pairs that
  have such a tie, so it is strong evidence where ties are rare and weak where
  they are common.

The surprises are combined by Fisher's method (:func:`fisher_surprise`), so
the score is again ``-log10`` of a p-value and the default threshold is the
Benjamini–Hochberg cut at false discovery rate ``fdr``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .._arrays import unique_ints, varies_within
from .._param_validation import Interval, Options
from .._ragged import Ragged, entity_strings
from ..exceptions import MissingTableError
from ..features._affinity import (
    _bids_of_tenders,
    _one_context_uses,
    context_links,
    firm_strength,
    fisher_surprise,
    pair_affinity,
)
from ..features._segments import offsets_from_sorted
from ..features._surprisal import bh_threshold
from ..results import evidence
from ._base import BaseDetector, Units

__all__ = ["AffinityDetector", "tender_flags"]

#: Relation from the context node to its tenders in the graph.
_RELATION = {"buyer": "organizes", "agent": "handles", "expert": "evaluates"}
_PHRASE = {"buyer": "of", "agent": "run by", "expert": "evaluated by"}


def tender_flags(market: Any) -> dict[str, np.ndarray]:
    """Irregularities of every tender: ``non_open``, ``short_period``, ``single_bid``.

    ``non_open``: the procedure is known and not one of
    ``settings.open_procedures``; ``short_period``: deadline minus publication
    is shorter than ``settings.short_period_days``; ``single_bid``: the tender
    drew exactly one bid. Unknown procedures or dates never raise a flag.

    Examples
    --------
    >>> import pandas as pd
    >>> from collusion import Market
    >>> tenders = pd.DataFrame({"tender_id": ["T1", "T2"], "procedure": ["open", "direct"],
    ...                         "published_at": pd.to_datetime(["2024-01-01", "2024-01-01"]),
    ...                         "deadline_at": pd.to_datetime(["2024-02-01", "2024-01-08"])})
    >>> bids = pd.DataFrame({"tender_id": ["T1", "T1", "T2"], "bidder_id": ["a", "b", "a"],
    ...                      "price": [1.0, 2.0, 3.0], "is_winner": [True, False, True]})
    >>> {k: v.tolist() for k, v in tender_flags(Market.from_frames(tenders=tenders, bids=bids)).items()}
    {'non_open': [False, True], 'short_period': [False, True], 'single_bid': [False, True]}
    """
    t = market.tenders
    s = market.settings
    proc = t["procedure"]
    open_set = {str(p).strip().casefold() for p in s.open_procedures}
    # Decide per category, then broadcast by code: no loop over tenders.
    cats = pd.Series(np.asarray(proc.cat.categories, dtype=object), dtype=object).astype(str)
    open_cat = np.append(cats.str.strip().str.casefold().isin(open_set).to_numpy(dtype=bool), False)
    codes = np.asarray(proc.cat.codes, dtype=np.int64)
    non_open = (codes >= 0) & ~open_cat[codes]
    days = (t["deadline_at"] - t["published_at"]).dt.total_seconds().to_numpy() / 86400.0
    short = np.nan_to_num(days, nan=np.inf) < s.short_period_days
    n_bids = np.bincount(market.codes("bids", "tender_id"), minlength=len(t))
    return {"non_open": non_open, "short_period": short, "single_bid": n_bids == 1}


def _winning_value(market: Any) -> np.ndarray:
    """Awarded value per tender: the contract amount when known, else the winning price."""
    n_t = len(market.tenders)
    b = market.bids
    win = b["is_winner"].to_numpy()
    value = np.bincount(market.codes("bids", "tender_id")[win], weights=b["price"].to_numpy()[win], minlength=n_t)
    if market.has("contracts"):
        c = market.contracts
        amount = np.bincount(market.codes("contracts", "tender_id"), weights=c["amount"].to_numpy(), minlength=n_t)
        value = np.where(amount > 0, amount, value)
    return value


def _bid_trace_uses(graph: Any) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Trace uses recorded on bids, of the values several firms used: (trace type names, global
    trace code, company, tender, base of each type's codes, type index).

    Only a value that several firms put on their bids can show that a third party
    prepared them (:func:`~collusion.features.exclusive_trace_uses`); a firm's own
    phone or document fingerprint cannot. Those are dropped per trace type, before
    anything is concatenated: at 1M tenders 37M uses become a few million. Built
    once per graph (the buyer and agent analyses both need it). A use's code within
    its type is ``trace - base[type]``.
    """
    cached = graph.__dict__.get("_bid_trace_uses")
    if cached is not None:
        return cached
    from ..graph._schema import TRACE_NODE_TYPES

    names: list[str] = []
    bases: list[int] = []
    parts: list[tuple[np.ndarray, ...]] = []
    offset = 0
    for ttype in TRACE_NODE_TYPES:
        e = graph.edges(("company", "uses", ttype))
        base, offset = offset, offset + graph.n(ttype)
        if not len(e):
            continue
        # Uses recorded on bids (source "bids.<column>"), decided per category, not per row.
        src = e["source"]
        if isinstance(src.dtype, pd.CategoricalDtype):
            on_bid = np.append(src.cat.categories.astype(str).str.startswith("bids."), False)[src.cat.codes]
        else:
            on_bid = src.astype(str).str.startswith("bids.").to_numpy()
        value, firm, tender = e["dst"].to_numpy(), e["src"].to_numpy(), e["tender"].to_numpy()
        keep = on_bid & (tender >= 0)
        if not keep.any():
            continue
        if not keep.all():  # IP, MAC and fingerprints are only ever on bids: no copies of their uses
            keep = np.flatnonzero(keep)
            value, firm, tender = value[keep], firm[keep], tender[keep]
        shared = np.flatnonzero(varies_within(value, firm, graph.n(ttype))[value])  # values of several firms
        if not shared.size:
            continue
        names.append(ttype)
        bases.append(base)
        parts.append((value[shared].astype(np.int32) + np.int32(base), firm[shared].astype(np.int32),
                      tender[shared].astype(np.int32),
                      np.full(shared.size, len(names) - 1, dtype=np.int8)))
    if parts:
        arrays = tuple(np.concatenate([p[i] for p in parts]) for i in range(4))
    else:
        arrays = (np.zeros(0, np.int32),) * 3 + (np.zeros(0, np.int8),)
    trace, company, tender, ttypes = arrays
    graph.__dict__["_bid_trace_uses"] = (names, trace, company, tender, np.asarray(bases, dtype=np.int64), ttypes)
    return graph.__dict__["_bid_trace_uses"]


def _prepared_bids(graph: Any, tender_context: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
    """Bids carrying a trace that several firms used only in one context's tenders.

    Returns the per-bid flag and, for flagged bids, the trace node label.
    """
    m = graph.market
    bt = m.codes("bids", "tender_id")
    flag = np.zeros(bt.size, dtype=bool)
    labels: dict[int, str] = {}
    names, trace, company, tender, bases, ttypes = _bid_trace_uses(graph)
    if not trace.size:
        return flag, labels
    # Every use here is of a value several firms used (the cache keeps only those):
    # only the "one context" half of exclusive_trace_uses is left to test.
    mark = np.flatnonzero(_one_context_uses(trace, tender, tender_context))
    if not mark.size:
        return flag, labels
    # Map uses to bid rows through the (tender, company) key, unique in bids: the company is
    # looked for among the few bids of the use's tender (marked uses are few: no sort of all bids).
    size, rows = _bids_of_tenders(tender[mark].astype(np.int64), bt, n_tenders=tender_context.size, missing=True)
    use = np.repeat(np.arange(mark.size), size)
    hit = m.codes("bids", "bidder_id")[rows] == company[mark][use]
    rows, use = rows[hit], use[hit]
    one = np.ones(use.size, dtype=bool)  # the first bid of a use's (tender, company), were it repeated
    one[1:] = use[1:] != use[:-1]
    rows, use = rows[one], use[one]
    flag[rows] = True
    tt = ttypes[mark[use]]
    lc = trace[mark[use]] - bases[tt]
    first = np.unique(rows, return_index=True)[1]
    for r, ti, code in zip(rows[first].tolist(), tt[first].tolist(), lc[first].tolist()):  # flagged bids only
        labels[r] = f"{names[ti]}:{graph.ids(names[ti], [code])[0]}"
    return flag, labels


class AffinityDetector(BaseDetector):
    """Base of the (context, company) pair detectors of analyses 1, 5 and 6.

    Subclasses set :attr:`context_type` and implement :meth:`_components`
    (and, for experts, :meth:`_universe`, :meth:`_context` and
    :meth:`_extra`). Scores are ``-log10`` of Fisher-combined p-values:
    higher = more suspicious. ``units_`` holds every pair statistic of
    :func:`~collusion.features.pair_affinity` plus ``links``,
    ``link_surprise`` and, as ``score_<signal>``, what each signal
    contributed to the score.
    """

    _released_attributes: ClassVar[tuple[str, ...]] = ("_cache",)
    _graph_scratch: ClassVar[tuple[str, ...]] = ("_bid_trace_uses", "_firm_strength")
    unit: ClassVar[str] = "pair"
    other_type: ClassVar[str | None] = "company"
    #: Node type of the context entity ("buyer", "agent" or "expert").
    context_type: ClassVar[str] = "buyer"
    #: Tenders listed per finding: the company's wins ("wins") or every shared tender ("all").
    _tender_list: ClassVar[str] = "wins"
    #: Signals always in the score (``None``: all); see :meth:`_combined`.
    _core_signals: ClassVar[tuple[str, ...] | None] = None

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDetector._parameter_constraints,
        "min_tenders": [Interval(1, None, integer=True)],
        "baseline": [Options(frozenset({"strength", "uniform"}))],
        "fdr": [Interval(0, 1, closed="neither")],
    }

    def __init__(
        self,
        *,
        min_tenders: int = 3,
        baseline: str = "strength",
        fdr: float = 0.05,
        contamination: float | None = None,
        fence_k: float = 1.5,
        max_evidence: int = 100,
    ) -> None:
        super().__init__(contamination=contamination, fence_k=fence_k, max_evidence=max_evidence)
        self.min_tenders = min_tenders
        self.baseline = baseline
        self.fdr = fdr

    # ------------------------------------------------------------ per analysis
    def _context(self, market: Any) -> tuple[np.ndarray, np.ndarray]:
        """(context code, tender code) pairs of the context relation."""
        col = f"{self.context_type}_id"
        x = market.codes("tenders", col).astype(np.int64)
        if not (x >= 0).any():
            raise MissingTableError(
                f"{type(self).__name__} (analysis {self.analysis}) needs tenders.{col}, which is empty"
            )
        return x, np.arange(len(market.tenders), dtype=np.int64)

    def _universe(self, market: Any) -> np.ndarray:
        """Boolean mask of the bids the pair statistics compare against (all bids)."""
        return np.ones(len(market.bids), dtype=bool)

    def _components(self, table: pd.DataFrame, graph: Any) -> dict[str, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    # ----------------------------------------------------------------- scoring
    def _score(self, graph: Any) -> pd.DataFrame:
        m = graph.market
        x, xt = self._context(m)
        uni = self._universe(m)
        bt = m.codes("bids", "tender_id").astype(np.int64)
        bc = m.codes("bids", "bidder_id").astype(np.int64)
        bw = m.bids["is_winner"].to_numpy(dtype=bool)
        n_t, n_c = len(m.tenders), m.n("company")
        single_context = self.context_type in ("buyer", "agent")
        flags = tender_flags(m)
        bid_flags, prep_labels = None, {}
        if single_context:
            tender_context = np.full(n_t, -1, dtype=np.int64)
            tender_context[xt] = x
            prepared, prep_labels = _prepared_bids(graph, tender_context)
            bid_flags = {"prepared": prepared[uni]}
        strength = None
        if self.baseline == "strength" and uni.all():
            # The same fit for every analysis over all bids (buyer and agent): scratch on the graph.
            strength = graph.__dict__.get("_firm_strength")
            if strength is None:
                strength = firm_strength(bt, bc, bw, n_tenders=n_t, n_companies=n_c)
                graph.__dict__["_firm_strength"] = strength
        table, triples = pair_affinity(
            x, xt, bt[uni], bc[uni], bw[uni], n_tenders=n_t, n_companies=n_c,
            flags=flags, bid_flags=bid_flags, value=_winning_value(m),
            baseline=self.baseline, min_tenders=self.min_tenders, strength=strength, return_triples=True,
        )
        # Triples point at rows of the universe; keep bid rows of the market. Handled as
        # plain compact arrays: tens of millions of rows at a million tenders.
        # pair_affinity kept the pairs with min_tenders support only; its triples point at
        # rows of the universe: keep bid rows of the market.
        trip = {
            "pair": triples["pair"].to_numpy().astype(np.int32),
            "tender": triples["tender"].to_numpy().astype(np.int32),
            "bid": np.flatnonzero(uni)[triples["bid"].to_numpy()].astype(np.int32),
            "is_winner": triples["is_winner"].to_numpy(dtype=bool),
        }
        del triples
        table = self._extra(table, m, flags)
        # Sorted by (pair, tender), so evidence for any unit is a slice. The triples come by
        # (pair, bid), which is that order already when bids are listed by tender.
        key = trip["pair"].astype(np.int64) * n_t + trip["tender"]  # (pair, tender) is unique
        if np.any(key[1:] < key[:-1]):
            order = np.argsort(key)
            trip = {k: v[order] for k, v in trip.items()}
            del order
        triples = pd.DataFrame(trip, copy=False)
        del trip, key

        links = context_links(graph, self.context_type)
        table = self._attach_links(table, links, n_c)
        comps = self._components(table, graph)
        comps["link"] = table["link_surprise"].to_numpy()
        score = fisher_surprise(*self._combined(comps)) if len(table) else np.zeros(0)

        ctx_codes = table["context"].to_numpy(np.int64)
        comp_codes = table["company"].to_numpy(np.int64)
        units = table.drop(columns=["context", "company"])
        for name, value in comps.items():  # what each signal contributes to the score
            units[f"score_{name}"] = value
        units.insert(0, "entity_id", entity_strings(m, self.context_type, ctx_codes))
        units.insert(1, "other_id", entity_strings(m, "company", comp_codes))
        units["score"] = score
        self._cache = {
            "flags": flags,
            "triples": triples, "links": links, "prep_labels": prep_labels,
            "key": ctx_codes * n_c + comp_codes,
            "link_key": links["context"].to_numpy(np.int64) * n_c + links["company"].to_numpy(np.int64),
        }
        members = Ragged.from_columns([ctx_codes, comp_codes], kinds=[self.context_type, "company"])
        return Units(units, members, self._tender_lists(triples, len(table)))

    def _extra(self, table: pd.DataFrame, market: Any, flags: dict[str, np.ndarray]) -> pd.DataFrame:
        """Hook: add analysis-specific columns to the pair table (after the support filter).

        ``flags`` are the market's :func:`tender_flags`, computed once per fit.
        """
        return table

    def _combined(self, comps: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The signals the score combines: every core signal, the others only where some pair shows them.

        A test no pair can pass (a market without trace or tie data) gives p = 1 to
        every pair; as a Fisher term it would only add degrees of freedom that
        dilute the signals that were measured.
        """
        if self._core_signals is None:
            return list(comps.values())
        return [v for k, v in comps.items() if k in self._core_signals or bool((v > 0).any())]

    @staticmethod
    def _attach_links(table: pd.DataFrame, links: pd.DataFrame, n_c: int) -> pd.DataFrame:
        """Count ties per pair and turn them into a surprise by their rarity among scored pairs."""
        table = table.copy(deep=False)  # copy-on-write: columns are added, none changed in place
        n = len(table)
        key = table["context"].to_numpy(np.int64) * n_c + table["company"].to_numpy(np.int64)
        table["links"] = 0
        table["link_surprise"] = 0.0
        if not len(links) or not n:
            return table
        lk = links["context"].to_numpy(np.int64) * n_c + links["company"].to_numpy(np.int64)
        pos = np.searchsorted(key, lk)
        found = (pos < n) & (key[np.minimum(pos, n - 1)] == lk)
        pos, kinds = pos[found], links["link"].to_numpy()[found]
        table["links"] = np.bincount(pos, minlength=n)
        best = np.zeros(n)
        for kind in pd.unique(kinds):
            rows = unique_ints(pos[kinds == kind])
            # Share of scored pairs with this kind of tie (half a pair added: never zero).
            rarity = -np.log10((rows.size + 0.5) / (n + 1.0))
            best[rows] = np.maximum(best[rows], rarity)
        table["link_surprise"] = best
        return table

    def _tender_lists(self, triples: pd.DataFrame, n_units: int) -> Ragged:
        """Each pair's tenders (its wins, or every shared tender), as codes.

        The triples are sorted by (pair, tender): the rows are slices of them, no sort needed.
        """
        sel = triples if self._tender_list == "all" else triples.loc[triples["is_winner"].to_numpy()]
        offsets = offsets_from_sorted(sel["pair"].to_numpy(), n_units)
        return Ragged(sel["tender"].to_numpy().astype(np.int64), offsets)  # no kinds: every code a tender

    def _default_threshold(self, scores: np.ndarray, unit: str) -> float:
        """Benjamini–Hochberg cut of the Fisher p-values at false discovery rate ``fdr``."""
        return bh_threshold(scores, self.fdr)

    # ---------------------------------------------------------------- evidence
    def _evidence(self, graph: Any, units: pd.DataFrame) -> list[list[dict[str, Any]]]:
        m = graph.market
        cache = self._cache
        # units_ rows are the pair table's rows, in the same order.
        table, triples, links = self.units_, cache["triples"], cache["links"]
        n_c = m.n("company")
        xc = m.entities[self.context_type].get_indexer(units["entity_id"].astype(str).to_numpy())
        cc = m.entities["company"].get_indexer(units["other_id"].astype(str).to_numpy())
        rows = np.searchsorted(cache["key"], xc.astype(np.int64) * n_c + cc)
        tender_ids = m.entities["tender"].to_numpy()
        flags = cache["flags"]
        tp = triples  # sorted by (pair, tender) in _score
        starts = np.searchsorted(tp["pair"].to_numpy(), rows, side="left")
        ends = np.searchsorted(tp["pair"].to_numpy(), rows, side="right")
        rel = _RELATION[self.context_type]
        # Plain arrays read once: a pandas row or slice per unit costs more than its evidence.
        numeric = {c: table[c].to_numpy() for c in table.columns if table[c].dtype.kind in "biuf"}
        trip = {c: tp[c].to_numpy() for c in tp.columns}
        x_ids, c_ids = units["entity_id"].tolist(), units["other_id"].tolist()
        out: list[list[dict[str, Any]]] = []
        for i, r in enumerate(rows):
            row = {c: v[r] for c, v in numeric.items()}
            x_node = f"{self.context_type}:{x_ids[i]}"
            c_node = f"company:{c_ids[i]}"
            part = {c: v[starts[i]:ends[i]] for c, v in trip.items()}
            won = part["tender"][part["is_winner"]]
            recs: list[dict[str, Any]] = []

            def via(tcode: int, edge: str = "wins") -> list[str]:
                return [x_node, rel, f"tender:{tender_ids[tcode]}", edge, c_node]

            first_win = via(int(won[0])) if won.size else via(int(part["tender"][0]), "bids") if part["tender"].size else []
            recs.append(evidence(
                "excess_wins", row["contested_wins"], row["expected"],
                detail=(f"{c_node} won {int(row['contested_wins'])} of the {int(row['contested'])} contested tenders "
                        f"{_PHRASE[self.context_type]} {x_node} it bid in; its record elsewhere predicts "
                        f"{row['expected']:.1f} (p = 10^-{row['excess']:.1f})"),
                path=first_win,
            ))
            recs.extend(self._specific_evidence(row, part, x_node, c_node, via, flags, tender_ids))
            if self.context_type != "expert" and np.isfinite(row["value_share"]):
                recs.append(evidence(
                    "value_share", row["value_share"], row["expected_value_share"],
                    detail=(f"{c_node} received {row['value_share']:.0%} of the value {x_node} awarded "
                            f"(expected {row['expected_value_share']:.0%}; supplier HHI {row['hhi']:.2f})"),
                    path=first_win,
                ))
            if row["links"] > 0:
                lo, hi = np.searchsorted(cache["link_key"], [cache["key"][r], cache["key"][r] + 1])
                for j in range(lo, hi):
                    lk = links.iloc[j]
                    where = (f" on {lk['n_bids']} of its bids (e.g. tender {tender_ids[lk['tender']]})"
                             if lk["n_bids"] > 0 else "")
                    recs.append(evidence(
                        f"link_{lk['link']}", float(max(lk["n_bids"], 1)), 10 ** -row["link_surprise"],
                        detail=f"{x_node} and {c_node} are tied through {lk['via']}{where}",
                        path=list(lk["path"]),
                    ))
            out.append(recs)
        return out

    def _specific_evidence(self, row: dict[str, Any], part: dict[str, np.ndarray], x_node: str, c_node: str,
                           via: Any, flags: dict[str, np.ndarray], tender_ids: np.ndarray) -> list[dict[str, Any]]:
        """Evidence records of the irregular wins and prepared bids (buyers and agents).

        ``row`` holds the pair's numeric statistics, ``part`` its triples (arrays by column).
        """
        recs: list[dict[str, Any]] = []
        won = part["tender"][part["is_winner"]]
        wins = int(row["wins"])
        for name, label in (("non_open", "non-open procedures"), ("short_period", "short bidding periods"),
                            ("single_bid", "single-bid tenders")):
            k = int(row.get(f"{name}_wins", 0))
            if k == 0:
                continue
            flagged = won[flags[name][won]]
            recs.append(evidence(
                f"{name}_wins", k, row[f"{name}_baseline"] * wins,
                detail=(f"{k} of {c_node}'s {wins} wins at {x_node} were {label}; "
                        f"{x_node}'s other suppliers and the market predict {row[f'{name}_baseline'] * wins:.1f}"),
                path=via(int(flagged[0])) if flagged.size else [],
            ))
        k = int(row.get("prepared_bids", 0))
        if k:
            bids = part["bid"]
            labels = self._cache["prep_labels"]
            hit = [b for b in bids.tolist() if b in labels]
            if hit:
                tcode = int(part["tender"][bids == hit[0]][0])
                recs.append(evidence(
                    "prepared_bids", k, row["prepared_baseline"] * row["tenders"],
                    detail=(f"{k} bids of {c_node} in tenders of {x_node} carry {labels[hit[0]]}, a trace that "
                            f"several firms used only in {x_node}'s tenders"),
                    path=[x_node, _RELATION[self.context_type], f"tender:{tender_ids[tcode]}", "bids", c_node,
                          "uses", labels[hit[0]]],
                ))
        return recs
