"""Analysis 4: abnormal fund disbursement (资金拨付异常) — contracts and projects."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .._arrays import unique_ints
from .._ragged import Ragged, entity_strings, repeat_str
from ..features._contracts import (
    ACCOUNTS_SCRATCH,
    PAYEE_ROLES,
    change_totals,
    cost_overrun_chain,
    disbursement,
    early_payments,
    graph_ties,
    group_robust_z,
    payee_roles,
    payment_shares,
    shared_graph_accounts,
)
from ..features._surprisal import violation_surprisal, z_surprisal
from ..results import evidence
from ._base import SurprisalDetector, Units
from ._frames import stack_rows, unit_rows

__all__ = ["FundsDetector"]

#: Robust z-scores are capped here before turning into surprisal: beyond ten robust
#: standard deviations the normal tail (1e-23) says nothing more, and the cap keeps one
#: runaway signal from hiding whether a contract shows one anomaly or several.
_Z_MAX = 10.0
#: Statistical signals get an evidence record once they are rarer than 1 in 20 (nats).
_NOTABLE = float(np.log(20.0))


#: Cost-chain steps of a project (``log_``, ``z_`` and ``s_`` columns of the project units).
_STEPS = ("prelim_invest", "budget_prelim", "final_budget")
#: Unit columns the evidence records read.
_EVIDENCE_FIELDS = (
    "unit", "entity_id", "tender_ids", "amount", "approved_delta", "award_ratio", "ceiling", "change_rate",
    "crossing_row", "days_early", "early_amount", "estimate", "excess", "n_early", "paid", "paid_unrelated",
    "s_change_rate", "s_win_low_change_high", "share_unrelated", "stranger_payees", "z_change", "z_discount",
    "n_exceed", "n_steps", *(f"{kind}_{step}" for kind in ("log", "z", "s") for step in _STEPS),
)


class FundsDetector(SurprisalDetector):
    """Money that leaves a contract in the wrong amount, to the wrong party or at the wrong time.

    Contract signals (each a surprisal in nats, summed into the score):

    * ``over_disbursement`` — cumulative payments above the contract amount
      plus approved changes; the payment that crossed the ceiling is the evidence;
    * ``misdirected_payment`` — share of the paid amount whose payee is neither
      the winner nor the builder, nor tied to them through declared relations,
      shared people, entity resolution or a shared account;
    * ``early_payment`` — money paid before the contract was signed (days of lead);
    * ``win_low_change_high`` — a deep award discount against the estimate
      (robust z within the category) *and* an approved change rate that restores
      the price (robust z within the buyer's category); the AND of two
      independent surprisals ``2 · min(s1, s2)`` has the tail of one;
    * ``change_rate`` — approved change rate far above the buyer's and
      category's other contracts (robust z within the group).

    Violations of a rule (excess, stranger payee, early money) are zero for
    ordinary contracts; their surprisal is the larger of their market
    prevalence and the robust z of their size, so a violation outranks the
    statistical tail of ordinary contracts.

    Project signals: the cost chain 估算 → 概算 → 预算 → 决算. Each step's log
    ratio is standardised against all projects; the score sums the one-sided
    surprisals of the steps ("三超": each figure overrunning the previous one).

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
    >>> from collusion.detectors import FundsDetector
    >>> tenders = pd.DataFrame({"tender_id": ["T1", "T2"], "buyer_id": "B", "estimate": [100.0, 100.0]})
    >>> bids = pd.DataFrame({"tender_id": ["T1", "T2"], "bidder_id": ["A", "C"], "price": [90.0, 90.0],
    ...                      "is_winner": True})
    >>> contracts = pd.DataFrame({"contract_id": ["K1", "K2"], "tender_id": ["T1", "T2"], "winner_id": ["A", "C"],
    ...                           "amount": [90.0, 90.0], "signed_at": pd.to_datetime(["2024-01-01", "2024-01-01"])})
    >>> payments = pd.DataFrame({"contract_id": ["K1", "K1", "K2"], "amount": [60.0, 60.0, 90.0],
    ...                          "paid_at": pd.to_datetime(["2024-02-01", "2024-03-01", "2024-02-01"]),
    ...                          "payee_id": ["A", "A", "C"]})
    >>> det = FundsDetector().fit(Market.from_frames(tenders=tenders, bids=bids, contracts=contracts,
    ...                                              payments=payments))
    >>> ev = det.explain("K1").iloc[0]
    >>> str(ev["signal"]), float(ev["value"]), float(ev["baseline"])
    ('over_disbursement', 30.0, 90.0)
    """

    name: ClassVar[str] = "funds"
    analysis: ClassVar[int] = 4
    unit: ClassVar[str] = "contract"
    entity_type: ClassVar[str] = "contract"
    other_type: ClassVar[str | None] = None
    required_tables: ClassVar[tuple[str, ...]] = ("tenders", "bids", "contracts")
    _graph_scratch: ClassVar[tuple[str, ...]] = (ACCOUNTS_SCRATCH,)  # payee accounts, shared by analyses 3 and 4

    # ------------------------------------------------------------ features
    def _contract_features(self, graph: Any) -> tuple[pd.DataFrame, np.ndarray]:
        """Per-contract signals, and the payee role of every payment (:data:`PAYEE_ROLES` codes)."""
        m = graph.market
        c = m.contracts
        n = len(c)
        tender = m.codes("contracts", "tender_id")
        winner = m.codes("contracts", "winner_id")
        builder = m.codes("contracts", "builder_id")
        amount = c["amount"].to_numpy(dtype=np.float64)
        if m.has("changes"):
            ch = m.changes
            ct = change_totals(m.codes("changes", "contract_id"), ch["amount_delta"].to_numpy(dtype=np.float64),
                               ch["approved"].to_numpy(dtype=bool), n)
        else:
            ct = change_totals(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool), n)
        ceiling = amount + ct["approved_delta"].to_numpy()
        f = pd.DataFrame({"contract": np.arange(n), "tender": tender, "winner": winner, "builder": builder,
                          "amount": amount})
        f = pd.concat([f, ct], axis=1)
        if m.has("payments"):
            p = m.payments
            pc = m.codes("payments", "contract_id")
            pay_amount = p["amount"].to_numpy(dtype=np.float64)
            disb = disbursement(pc, pay_amount, ceiling, paid_at=p["paid_at"].to_numpy())
            early = early_payments(pc, pay_amount, p["paid_at"].to_numpy(), c["signed_at"].to_numpy())
            links, _ = graph_ties(graph)
            owners, accounts = shared_graph_accounts(graph)
            role = payee_roles(m.codes("payments", "payee_id"), accounts, winner[pc], builder[pc], links, owners)
            shares = payment_shares(pc, pay_amount, role, n)
        else:
            z = np.zeros(0)
            disb = disbursement(np.zeros(0, np.int64), z, ceiling)
            early = early_payments(np.zeros(0, np.int64), z, np.zeros(0, "datetime64[ns]"), c["signed_at"].to_numpy())
            shares = payment_shares(np.zeros(0, np.int64), z, np.zeros(0, np.int64), n)
            role = np.zeros(0, dtype=np.int8)
        f = pd.concat([f, disb.drop(columns=["ceiling"]), early, shares[["share_unrelated", "share_unknown",
                                                                          "paid_unrelated"]]], axis=1)
        f["ceiling"] = ceiling
        est = m.tenders["estimate"].to_numpy(dtype=np.float64)[tender]
        f["estimate"] = est
        with np.errstate(divide="ignore", invalid="ignore"):
            f["award_ratio"] = amount / est
            f["change_rate"] = ct["approved_delta"].to_numpy() / amount
            f["early_share"] = np.where(disb["paid"] > 0, early["early_amount"] / disb["paid"].where(disb["paid"] > 0), 0.0)
        # Discount depth against the estimate, standardised within the work category
        # (categories differ in how far bids fall below the ceiling price).
        t = m.tenders
        cat = np.asarray(t["category"].cat.codes, dtype=np.int64)[tender]
        buyer = np.asarray(t["buyer_id"].cat.codes, dtype=np.int64)[tender]
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = np.log(est / amount)
        f["z_discount"] = group_robust_z(depth, cat)
        # Change rates only vary among contracts that were changed at all; standardise
        # those within the buyer's category, so a buyer's own habits are the baseline.
        changed = ct["n_changes"].to_numpy() > 0
        n_cat = int(cat.max()) + 2 if cat.size else 1
        grp = np.where((buyer >= 0) & (cat >= 0), buyer * n_cat + cat, -1)
        zc = np.full(n, np.nan)
        if changed.any():
            zc[changed] = group_robust_z(f["change_rate"].to_numpy()[changed], grp[changed])
        f["z_change"] = zc
        f["buyer"] = buyer
        return f, role

    def _contract_scores(self, f: pd.DataFrame) -> pd.DataFrame:
        s = pd.DataFrame(index=f.index)
        s["s_over_disbursement"] = violation_surprisal(f["excess_ratio"].to_numpy(), z_max=_Z_MAX)
        s["s_misdirected_payment"] = violation_surprisal(f["share_unrelated"].to_numpy(), z_max=_Z_MAX)
        s["s_early_payment"] = violation_surprisal(f["days_early"].to_numpy(), z_max=_Z_MAX)
        s_disc = z_surprisal(np.minimum(f["z_discount"].to_numpy(), _Z_MAX))
        s_change = z_surprisal(np.minimum(f["z_change"].to_numpy(), _Z_MAX))
        s["s_win_low_change_high"] = 2.0 * np.minimum(s_disc, s_change)
        s["s_change_rate"] = s_change
        s["score"] = s.sum(axis=1)
        return s

    def _project_features(self, graph: Any) -> pd.DataFrame | None:
        m = graph.market
        if not m.has("projects"):
            return None
        pj = m.projects
        chain = cost_overrun_chain(*(pj[c].to_numpy(dtype=np.float64) for c in
                                     ("investment_estimate", "preliminary_estimate", "budget", "final_account")))
        for st in _STEPS:
            chain[f"s_{st}"] = z_surprisal(np.minimum(chain[f"z_{st}"].to_numpy(), _Z_MAX))
        chain["score"] = chain[[f"s_{st}" for st in _STEPS]].sum(axis=1)
        # A project with no two consecutive figures cannot be scored at all.
        chain.loc[chain["n_steps"] == 0, "score"] = np.nan
        chain["project"] = np.arange(len(pj))
        chain["buyer"] = np.asarray(pj["buyer_id"].cat.codes, dtype=np.int64)
        return chain

    def _score(self, graph: Any) -> pd.DataFrame:
        m = graph.market
        f, role = self._contract_features(graph)
        s = self._contract_scores(f)
        f = pd.concat([f, s], axis=1)
        contract, winner = f["contract"].to_numpy(np.int64), f["winner"].to_numpy(np.int64)
        builder, tender = f["builder"].to_numpy(np.int64), f["tender"].to_numpy(np.int64)
        rows, payees = _stranger_payees(m, role)
        strangers = np.empty(len(f), dtype=object)
        strangers[:] = [()]  # shared and never mutated: most contracts pay no stranger
        if rows.size:
            ids = m.entities["company"].to_numpy(dtype=object)
            bounds = np.flatnonzero(np.diff(rows)) + 1
            for r, part in zip(rows[np.r_[0, bounds]], np.split(payees, bounds)):  # contracts with strangers only
                strangers[r] = [str(x) for x in ids[part]]
        members = Ragged.from_columns(
            [contract, winner, np.where(builder == winner, -1, builder), f["buyer"].to_numpy(np.int64)],
            kinds=["contract", "company", "company", "buyer"],
        ).hstack(Ragged.from_pairs(rows, payees, len(f), kind="company"))
        # No second node: missing strings as the result frame stores them (a column of Python
        # None would be factorized there first, 0.1 s per million rows).
        contracts = f.assign(unit="contract", entity_type="contract", entity_id=entity_strings(m, "contract", contract),
                             other_type=repeat_str(None, len(f)), other_id=repeat_str(None, len(f)),
                             stranger_payees=strangers)
        tenders = Ragged.from_columns([tender], kinds=["tender"])
        pj = self._project_features(graph)
        if pj is None or not len(pj):
            return Units(contracts, members, tenders)
        project = pj["project"].to_numpy(np.int64)
        t_proj = m.codes("tenders", "project_id")
        has = np.flatnonzero(t_proj >= 0)
        projects = pj.assign(unit="project", entity_type="project", entity_id=entity_strings(m, "project", project),
                             other_type=repeat_str(None, len(pj)), other_id=repeat_str(None, len(pj)))
        p_members = Ragged.from_columns([project, pj["buyer"].to_numpy(np.int64)], kinds=["project", "buyer"])
        # pj rows are projects in code order (pj["project"] == arange), so tenders group by project code.
        p_tenders = Ragged.from_pairs(t_proj[has], has, len(pj), kind="tender")
        return Units(stack_rows([contracts, projects]),
                     Ragged.concat([members, p_members]), Ragged.concat([tenders, p_tenders]))

    # ------------------------------------------------------------ evidence
    def _evidence(self, graph: Any, units: pd.DataFrame) -> list[list[dict[str, Any]]]:
        m = graph.market
        out: list[list[dict[str, Any]]] = []
        crossing: dict[int, tuple[float, Any, Any]] = {}
        if m.has("payments") and "crossing_row" in units.columns:
            # The payments that crossed a ceiling, gathered in one take (not one .iloc per unit).
            rows = units["crossing_row"].to_numpy()
            rows = np.unique(rows[np.isfinite(rows) & (rows >= 0)].astype(np.int64))
            p = m.payments.iloc[rows]
            crossing = dict(zip(rows.tolist(), zip(p["amount"].tolist(), p["paid_at"].tolist(),
                                                   p["payee_id"].astype(object).tolist())))
        winners = _ids(m, "company", np.nan_to_num(units["winner"].to_numpy(dtype=np.float64), nan=-1)
                       ) if "winner" in units.columns else np.full(len(units), None)
        # Only the fields the records read: a row tuple of every signal column cost more than the records.
        for i, row in enumerate(unit_rows(units, _EVIDENCE_FIELDS)):
            if row.unit == "project":
                out.append(_project_evidence(row))
            else:
                out.append(_contract_evidence(row, winners[i], crossing))
        return out


def _stranger_payees(m: Any, role: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(contract code, payee code) of every distinct unrelated payee (role ``unrelated``), sorted."""
    empty = np.zeros(0, np.int64)
    if not m.has("payments"):
        return empty, empty
    payee = m.codes("payments", "payee_id")
    sel = (role == PAYEE_ROLES.index("unrelated")) & (payee >= 0)
    if not sel.any():
        return empty, empty
    key = unique_ints(m.codes("payments", "contract_id")[sel].astype(np.int64) * m.n("company") + payee[sel])
    return key // m.n("company"), key % m.n("company")


def _contract_evidence(row: Any, winner: Any, crossing: dict[int, tuple[float, Any, Any]]
                       ) -> list[dict[str, Any]]:
    k = f"contract:{row.entity_id}"
    w = f"company:{winner}"
    recs: list[dict[str, Any]] = []
    if row.excess > 0:
        detail = f"paid {row.paid:,.0f} against a ceiling of {row.ceiling:,.0f} (amount + approved changes)"
        path = [k, "paid"]
        cross = crossing.get(int(row.crossing_row)) if row.crossing_row >= 0 else None
        if cross is not None:
            amount, paid_at, payee = cross
            when = "" if pd.isna(paid_at) else f" on {pd.Timestamp(paid_at).date()}"
            detail += f"; the ceiling was crossed by a payment of {amount:,.0f}{when}"
            path.append(f"company:{payee}" if pd.notna(payee) else "company:?")
        recs.append(evidence("over_disbursement", row.excess, row.ceiling, detail=detail, path=path))
    if row.share_unrelated > 0:
        strangers = [f"company:{x}" for x in row.stranger_payees]
        recs.append(evidence("misdirected_payment", row.share_unrelated, 0.0,
                             detail=f"{row.share_unrelated:.0%} of the paid amount ({row.paid_unrelated:,.0f}) went to "
                                    f"payees that are neither the winner nor the builder nor tied to them",
                             path=[k, "paid", strangers[0]] if strangers else [k, "paid"]))
    if row.n_early > 0:
        recs.append(evidence("early_payment", row.days_early, 0.0,
                             detail=f"{int(row.n_early)} payment(s) totalling {row.early_amount:,.0f} made up to "
                                    f"{row.days_early:.0f} days before the contract was signed",
                             path=[k, "paid", w]))
    if row.s_win_low_change_high > _NOTABLE:
        recs.append(evidence("win_low_change_high", row.award_ratio, float("nan"),
                             detail=f"awarded at {row.award_ratio:.0%} of the estimate, then approved changes of "
                                    f"{row.change_rate:+.0%} brought it to {(row.amount + row.approved_delta) / row.estimate:.0%}"
                                    f" (discount z={row.z_discount:.1f}, change z={row.z_change:.1f})",
                             path=[f"tender:{row.tender_ids[0]}" if row.tender_ids else k, "awarded", k]))
    if row.s_change_rate > _NOTABLE and np.isfinite(row.z_change):
        recs.append(evidence("change_rate", row.change_rate, float("nan"),
                             detail=f"approved change rate {row.change_rate:+.1%} lies {row.z_change:.1f} robust SDs "
                                    "above the buyer's contracts in this category",
                             path=[k, "awarded"]))
    if not recs:
        recs.append(evidence("paid_vs_ceiling", row.paid, row.ceiling,
                             detail="payments within amount + approved changes, to the contract's parties, after signing",
                             path=[k, "paid", w]))
    return recs


def _project_evidence(row: Any) -> list[dict[str, Any]]:
    p = f"project:{row.entity_id}"
    labels = {
        "prelim_invest": ("preliminary_estimate_over_investment_estimate", "概算超估算"),
        "budget_prelim": ("budget_over_preliminary_estimate", "预算超概算"),
        "final_budget": ("final_account_over_budget", "决算超预算"),
    }
    recs = []
    for step, (signal, zh) in labels.items():
        lr = getattr(row, f"log_{step}")
        z = getattr(row, f"z_{step}")
        if np.isfinite(lr) and (lr > 0 or getattr(row, f"s_{step}") > 0):
            recs.append(evidence(signal, float(np.exp(lr)), 1.0,
                                 detail=f"{zh}: ratio {np.exp(lr):.2f} ({z:+.1f} robust SDs from the market's projects)",
                                 path=[p]))
    if not recs:
        recs.append(evidence("cost_chain_steps_over", float(row.n_exceed), 0.0,
                             detail=f"{int(row.n_exceed)} of {int(row.n_steps)} cost-chain steps above the previous figure",
                             path=[p]))
    return recs


def _ids(m: Any, kind: str, codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.int64)
    ids = m.entities[kind].to_numpy(dtype=object)
    out = np.empty(codes.size, dtype=object)
    ok = codes >= 0
    out[ok] = ids[codes[ok]]
    return out

