"""Analysis 3: winner ↔ actual builder (中标与实际建设方) — licence lending (挂靠)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .._ragged import Ragged, entity_strings, repeat_str
from ..features._contracts import (
    ACCOUNTS_SCRATCH,
    builder_signals,
    lending_hubs,
    manager_ties,
    payee_roles,
    payment_shares,
    person_company_ties,
    shared_graph_accounts,
)
from ..features._surprisal import flag_surprisal
from ._base import SurprisalDetector, Units
from ._frames import stack_rows, unit_rows

__all__ = ["WinnerBuilderDetector"]

#: Cap on the hub term (nats): one extreme hub must not drown every other signal.
_HUB_CAP = 30.0


#: Unit columns the evidence records read.
_EVIDENCE_FIELDS = (
    "unit", "entity_id", "other_id", "tender_ids", "builder_differs", "builder_known", "builder_lost",
    "share_builder", "paid", "pm_tied_builder", "pm_elsewhere", "winner_builders", "winner_expected",
    "winner_contracts", "n_contracts", "n_lost", "n_pm_builder", "hub_surprisal",
)
_NAN = float("nan")


def _record(signal: str, value: float, baseline: float | None, detail: str, path: list[str]) -> dict[str, Any]:
    """:func:`collusion.results.evidence` for a record whose strings are built already (tens of thousands
    of records at a million tenders: no keyword parsing, no ``str`` per path element)."""
    return {"signal": signal, "value": float(value), "baseline": _NAN if baseline is None else float(baseline),
            "detail": detail, "path": path}


class WinnerBuilderDetector(SurprisalDetector):
    """Contracts built by someone other than the winner, and the (winner, builder) pairs behind them.

    Licence lending (挂靠): a qualified firm wins the tender and lends its
    name; another firm — often one that lost the same tender — builds and
    collects the money. Signals per contract:

    * ``builder_differs`` — the firm building on site is not the winner;
    * ``builder_lost`` — that firm bid in the same tender and lost;
    * ``share_builder`` — share of the paid amount that went to the builder
      (or to parties tied to it) instead of the winner;
    * ``pm_tied_builder`` / ``pm_elsewhere`` — the project manager is tied
      (employee, legal representative, shareholder) to the builder, or to some
      firm other than the winner;
    * ``hub_surprisal`` — the winner lends to more distinct builders than its
      number of contracts predicts at the market's lending rate (Poisson tail).

    Each binary signal is worth its market surprisal ``-log(prevalence)``
    (:func:`~collusion.features._surprisal.flag_surprisal`), the payment share
    scales its flag, and the contract score is their sum — the naive-Bayes
    log-likelihood ratio of lending. A (winner, builder) pair sums the scores
    of its contracts (repeated lending accumulates) with the hub term counted
    once.

    Parameters
    ----------
    alpha : float
        Expected false flags per unit kind in an honest market: the default
        threshold is ``log(n_units / alpha)`` (see
        :class:`~collusion.detectors.SurprisalDetector`).
    contamination, fence_k, max_evidence
        See :class:`~collusion.detectors.BaseDetector`.

    Examples
    --------
    >>> import pandas as pd
    >>> from collusion import Market
    >>> from collusion.detectors import WinnerBuilderDetector
    >>> tenders = pd.DataFrame({"tender_id": ["T1", "T2", "T3"], "buyer_id": "B"})
    >>> bids = pd.DataFrame({"tender_id": ["T1", "T1", "T2", "T3"], "bidder_id": ["A", "X", "A", "C"],
    ...                      "price": [90.0, 95.0, 80.0, 70.0], "is_winner": [True, False, True, True]})
    >>> contracts = pd.DataFrame({"contract_id": ["K1", "K2", "K3"], "tender_id": ["T1", "T2", "T3"],
    ...                           "winner_id": ["A", "A", "C"], "amount": [90.0, 80.0, 70.0],
    ...                           "builder_id": ["X", "A", "C"]})
    >>> m = Market.from_frames(tenders=tenders, bids=bids, contracts=contracts)
    >>> det = WinnerBuilderDetector().fit(m)
    >>> top = det.results_.query("unit == 'contract'").iloc[0]
    >>> str(top["entity_id"]), int(top["rank"])
    ('K1', 1)
    >>> det.results_.query("unit == 'pair'")[["entity_id", "other_id"]].values.tolist()
    [['A', 'X']]
    """

    _released_attributes: ClassVar[tuple[str, ...]] = ("_pair_contracts",)
    name: ClassVar[str] = "winner_builder"
    analysis: ClassVar[int] = 3
    unit: ClassVar[str] = "contract"
    entity_type: ClassVar[str] = "contract"
    other_type: ClassVar[str | None] = None
    required_tables: ClassVar[tuple[str, ...]] = ("tenders", "bids", "contracts")
    _graph_scratch: ClassVar[tuple[str, ...]] = (ACCOUNTS_SCRATCH,)  # payee accounts, shared by analyses 3 and 4

    # ------------------------------------------------------------ features
    def _features(self, graph: Any) -> pd.DataFrame:
        m = graph.market
        c = m.contracts
        n_c, n_co = len(c), m.n("company")
        tender = m.codes("contracts", "tender_id")
        winner = m.codes("contracts", "winner_id")
        builder = m.codes("contracts", "builder_id")
        f = builder_signals(
            tender, winner, builder,
            m.codes("bids", "tender_id"), m.codes("bids", "bidder_id"), m.bids["is_winner"].to_numpy(dtype=bool),
            n_co,
        )
        f.insert(0, "contract", np.arange(n_c))
        f["tender"], f["winner"], f["builder"] = tender, winner, builder
        person_company = person_company_ties(graph)

        # Money: share of the paid amount that reached the builder (or its ties) rather than the winner.
        share_b = np.zeros(n_c)
        paid = np.zeros(n_c)
        if m.has("payments"):
            p = m.payments
            pc = m.codes("payments", "contract_id")
            owners, accounts = shared_graph_accounts(graph)
            role = payee_roles(m.codes("payments", "payee_id"), accounts, winner[pc], builder[pc],
                               links=None, owners=owners)
            # Only builders other than the winner count: a payee equal to the winner is role 0 already.
            shares = payment_shares(pc, p["amount"].to_numpy(dtype=np.float64), role, n_c)
            share_b = np.where(f["builder_differs"], shares["share_builder"].to_numpy(), 0.0)
            paid = shares[[col for col in shares if col.startswith("paid_")]].sum(axis=1).to_numpy()
        f["share_builder"], f["paid"] = share_b, paid

        pm = manager_ties(m.codes("contracts", "project_manager_id"), winner, builder, person_company)
        f = pd.concat([f, pm], axis=1)
        f["pm"] = m.codes("contracts", "project_manager_id")

        hubs = lending_hubs(winner, builder, n_co)
        wk = np.maximum(winner, 0)
        f["winner_contracts"] = hubs["n_contracts"].to_numpy()[wk]
        f["winner_builders"] = hubs["n_builders"].to_numpy()[wk]
        f["winner_expected"] = hubs["expected"].to_numpy()[wk]
        hub_p = hubs["p_value"].to_numpy()[wk]
        differs = f["builder_differs"].to_numpy()
        f["hub_surprisal"] = np.where(differs, np.minimum(-np.log(np.maximum(hub_p, 1e-300)), _HUB_CAP), 0.0)
        return f

    def _score(self, graph: Any) -> pd.DataFrame:
        m = graph.market
        f = self._features(graph)
        differs = f["builder_differs"].to_numpy()
        s_diff = flag_surprisal(differs)
        s_lost = flag_surprisal(f["builder_lost"].to_numpy())
        paid_b = f["share_builder"].to_numpy() > 0
        s_pay = flag_surprisal(paid_b) * f["share_builder"].to_numpy()
        s_pm_b = flag_surprisal(f["pm_tied_builder"].to_numpy())
        s_pm_e = flag_surprisal(f["pm_elsewhere"].to_numpy())
        # The PM tied to the builder implies "elsewhere": count the stronger of the two, once.
        s_pm = np.maximum(s_pm_b, s_pm_e)
        base = s_diff + s_lost + s_pay + s_pm
        f["score"] = base + f["hub_surprisal"].to_numpy()

        contract, tender = f["contract"].to_numpy(np.int64), f["tender"].to_numpy(np.int64)
        winner, builder = f["winner"].to_numpy(np.int64), f["builder"].to_numpy(np.int64)
        # No second node: missing strings as the result frame stores them (a column of Python
        # None would be factorized there first, 0.1 s per million rows).
        contracts = f.assign(unit="contract", entity_type="contract", entity_id=entity_strings(m, "contract", contract),
                             other_type=repeat_str(None, len(f)), other_id=repeat_str(None, len(f)))
        members = [Ragged.from_columns([contract, winner, np.where(differs, builder, -1)],
                                       kinds=["contract", "company", "company"])]
        tenders = [Ragged.from_columns([tender], kinds=["tender"])]

        # Pairs: every (winner, builder) with builder != winner; contract evidence adds up.
        sel = np.flatnonzero(differs)
        frames = [contracts]
        if sel.size:
            n_c = m.n("company")
            key, pair = np.unique(winner[sel] * n_c + builder[sel], return_inverse=True)
            n_pairs = key.size

            def per_pair(values: np.ndarray, how: str) -> np.ndarray:
                if how == "sum":
                    return np.bincount(pair, weights=values, minlength=n_pairs)
                out = np.zeros(n_pairs)
                np.maximum.at(out, pair, values)
                return out

            pairs = pd.DataFrame({
                "winner": key // n_c,
                "builder": key % n_c,
                "n_contracts": np.bincount(pair, minlength=n_pairs),
                "hub_surprisal": per_pair(f["hub_surprisal"].to_numpy(np.float64)[sel], "max"),
                "n_lost": per_pair(f["builder_lost"].to_numpy(np.float64)[sel], "sum"),
                "n_pm_builder": per_pair(f["pm_tied_builder"].to_numpy(np.float64)[sel], "sum"),
            })
            pairs["share_builder"] = per_pair(f["share_builder"].to_numpy(np.float64)[sel], "sum") / pairs["n_contracts"]
            pairs["score"] = per_pair(base[sel], "sum") + pairs["hub_surprisal"].to_numpy()
            pairs["pair"] = np.arange(n_pairs)
            frames.append(pairs.assign(
                unit="pair", entity_type="company", other_type="company",
                entity_id=entity_strings(m, "company", pairs["winner"].to_numpy()),
                other_id=entity_strings(m, "company", pairs["builder"].to_numpy()),
            ))
            members.append(Ragged.from_columns([key // n_c, key % n_c], kinds=["company", "company"]))
            tenders.append(Ragged.from_pairs(pair, tender[sel], n_pairs, kind="tender"))
            # Kept for the evidence of pairs: each pair's contracts.
            self._pair_contracts = Ragged.from_pairs(pair, contract[sel], n_pairs, kind="contract")
        return Units(stack_rows(frames), Ragged.concat(members), Ragged.concat(tenders))

    # ------------------------------------------------------------ evidence
    def _evidence(self, graph: Any, units: pd.DataFrame) -> list[list[dict[str, Any]]]:
        m = graph.market
        market_lending = float(np.mean(self._lending_share(m)))
        # Ids of every row's winner, builder and project manager, and each pair's contract ids, gathered
        # once for all rows: tens of thousands of evidence rows at a million tenders.
        def codes(col: str) -> np.ndarray:
            if col not in units.columns:
                return np.full(len(units), -1, dtype=np.int64)
            return np.nan_to_num(units[col].to_numpy(dtype=np.float64), nan=-1).astype(np.int64)

        winners, builders = _ids(m, "company", codes("winner")), _ids(m, "company", codes("builder"))
        managers = _ids(m, "person", codes("pm"))
        pair_rows = codes("pair")
        is_pair = pair_rows >= 0
        contract_ids: list[list[str]] = [[] for _ in range(len(units))]
        if is_pair.any():
            taken = self._pair_contracts.take(pair_rows[is_pair])
            ids = [str(x) for x in m.entities["contract"].to_numpy(dtype=object)[taken.codes]]
            bounds = taken.offsets.tolist()
            for i, a, b in zip(np.flatnonzero(is_pair).tolist(), bounds[:-1], bounds[1:]):
                contract_ids[i] = ids[a:b]
        out: list[list[dict[str, Any]]] = []
        # Only the fields the records read: a row tuple of every signal column cost more than the records.
        for i, row in enumerate(unit_rows(units, _EVIDENCE_FIELDS)):
            if row.unit == "pair":
                out.append(self._pair_evidence(row, contract_ids[i], market_lending))
            else:
                out.append(self._contract_evidence(row, winners[i], builders[i], managers[i], market_lending))
        return out

    @staticmethod
    def _lending_share(m: Any) -> np.ndarray:
        w, b = m.codes("contracts", "winner_id"), m.codes("contracts", "builder_id")
        return (b >= 0) & (b != w)

    @staticmethod
    def _contract_evidence(row: Any, winner: Any, builder: Any, manager: Any, market_lending: float
                           ) -> list[dict[str, Any]]:
        k = f"contract:{row.entity_id}"
        t = f"tender:{row.tender_ids[0]}"
        w = f"company:{winner}"
        recs: list[dict[str, Any]] = []
        if not row.builder_differs:
            detail = "the winner builds the contract itself" if row.builder_known else "no builder recorded"
            recs.append(_record("builder_differs", 0.0, market_lending, detail, [w, "signs", k]))
            return recs
        b = f"company:{builder}"
        recs.append(_record("builder_differs", 1.0, market_lending,
                            f"{b} builds a contract that {w} won",
                            [w, "signs", k, "builds", b]))
        if row.builder_lost:
            recs.append(_record("builder_lost", 1.0, None, f"{b} bid in {t} and lost to {w}",
                                [b, "bids", t, "awarded", k]))
        if row.share_builder > 0:
            recs.append(_record("share_paid_to_builder", row.share_builder, 0.0,
                                f"{row.share_builder:.0%} of the {row.paid:,.0f} paid went to {b}",
                                [k, "paid", b]))
        if row.pm_tied_builder or row.pm_elsewhere:
            p = f"person:{manager}"
            where = b if row.pm_tied_builder else "another firm"
            recs.append(_record("project_manager_elsewhere", 1.0, 0.0,
                                f"the project manager {p} is tied to {where}, not to {w}",
                                [p, "relations", b, "builds", k] if row.pm_tied_builder else [p, "manages", k]))
        if row.winner_builders > 1:
            recs.append(_record("winner_lends_to_builders", float(row.winner_builders), float(row.winner_expected),
                                f"{w} has {int(row.winner_builders)} different builders on "
                                f"{int(row.winner_contracts)} contracts",
                                [w, "signs", k, "builds", b]))
        return recs

    @staticmethod
    def _pair_evidence(row: Any, contract_ids: list[str], market_lending: float) -> list[dict[str, Any]]:
        w, b = f"company:{row.entity_id}", f"company:{row.other_id}"
        recs = [
            _record("contracts_built_for_winner", float(row.n_contracts), None,
                    f"{b} builds {int(row.n_contracts)} contract(s) won by {w}: {', '.join(contract_ids[:10])}",
                    [w, "signs", f"contract:{contract_ids[0]}", "builds", b]),
        ]
        if row.n_lost:
            recs.append(_record("builder_lost_same_tender", float(row.n_lost), None,
                                f"{b} bid and lost in {int(row.n_lost)} of those tenders",
                                [b, "bids", f"tender:{row.tender_ids[0]}"]))
        if row.share_builder > 0:
            recs.append(_record("share_paid_to_builder", float(row.share_builder), 0.0,
                                f"on average {row.share_builder:.0%} of the payments went to {b}",
                                [f"contract:{contract_ids[0]}", "paid", b]))
        if row.n_pm_builder:
            recs.append(_record("project_manager_of_builder", float(row.n_pm_builder), 0.0,
                                f"on {int(row.n_pm_builder)} contract(s) the project manager is tied to {b}",
                                [b, "builds", f"contract:{contract_ids[0]}"]))
        if row.hub_surprisal > 0:
            recs.append(_record("winner_lending_hub", float(row.hub_surprisal), float(-np.log(0.5)),
                                f"{w} lends to more builders than its contracts predict "
                                f"(market lending share {market_lending:.1%})",
                                [w, "signs", f"contract:{contract_ids[0]}"]))
        return recs


def _ids(m: Any, kind: str, codes: np.ndarray) -> np.ndarray:
    """Id strings of codes, ``None`` for -1."""
    codes = np.asarray(codes, dtype=np.int64)
    ids = m.entities[kind].to_numpy(dtype=object)
    out = np.empty(codes.size, dtype=object)
    ok = codes >= 0
    out[ok] = ids[codes[ok]]
    return out

