"""WinnerBuilderDetector (analysis 3): licence lending on planted, honest and hand-built markets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collusion import Market
from collusion._schema import TABLES
from collusion.datasets import MarketConfig, make_market
from collusion.datasets._evaluate import evaluate
from collusion.detectors import WinnerBuilderDetector
from collusion.exceptions import MissingTableError


@pytest.fixture(scope="module", params=[0, 1])
def planted(request):
    market, truth = make_market(2_000, seed=request.param)
    return market, truth, WinnerBuilderDetector().fit(market)


def test_finds_lending_contracts(planted) -> None:
    _, truth, det = planted
    ev = evaluate(det.results_, truth).set_index("unit")
    # Measured at 2k-20k tenders: contract AP 1.0, P@k 1.0, recall of flags >= 0.99.
    assert ev.loc["contract", "average_precision"] >= 0.97
    assert ev.loc["contract", "precision_at_k"] >= 0.95
    assert ev.loc["contract", "recall_flagged"] >= 0.9
    assert ev.loc["contract", "false_flag_rate"] <= 0.002
    assert ev.loc["pair", "precision_at_k"] >= 0.95


def test_lawful_subcontracting_is_not_lending() -> None:
    """Builders that never bid, with the winner's manager and payments, rank below lending."""
    market, truth = make_market(2_000, seed=2)
    rng = np.random.default_rng(2)
    frames = {k: v.copy() for k, v in market.items()}
    c = frames["contracts"]
    lending = c["contract_id"].astype(str).isin(set(truth.licence_lending["contract_id"])).to_numpy()
    pick = rng.choice(np.flatnonzero(~lending), size=len(c) // 10, replace=False)
    builders = c["builder_id"].astype(object).to_numpy().copy()
    firms = market.entities["company"].to_numpy()
    builders[pick] = firms[rng.integers(0, len(firms), pick.size)]
    c["builder_id"] = builders
    det = WinnerBuilderDetector().fit(Market.from_frames(**frames, settings=market.settings))
    ev = evaluate(det.results_, truth).set_index("unit")
    # Measured (20k tenders, 10% lawful subcontracting): contract AP 0.995, pair AP 0.996.
    assert ev.loc["contract", "average_precision"] >= 0.95
    assert ev.loc["pair", "average_precision"] >= 0.95
    res = det.results_
    lawful = res["entity_id"].isin(set(c["contract_id"].astype(str).iloc[pick]))
    assert res.loc[lawful, "flagged"].mean() <= 0.02


def test_honest_market_flags_nothing() -> None:
    market, _ = make_market(2_000, seed=3, config=MarketConfig().without_schemes())
    det = WinnerBuilderDetector().fit(market)
    assert det.results_["flagged"].sum() == 0
    assert set(det.results_["unit"]) == {"contract"}  # no builder differs: no pairs


def _hand_market() -> Market:
    tenders = pd.DataFrame({"tender_id": [f"T{i}" for i in range(6)], "buyer_id": "B"})
    bids = pd.DataFrame({
        "tender_id": ["T0", "T0", "T1", "T1", "T2", "T3", "T4", "T5"],
        "bidder_id": ["W", "L", "W", "L", "W", "C", "D", "E"],
        "price": [90.0, 95.0, 80.0, 85.0, 70.0, 70.0, 70.0, 70.0],
        "is_winner": [True, False, True, False, True, True, True, True],
    })
    contracts = pd.DataFrame({
        "contract_id": [f"K{i}" for i in range(6)], "tender_id": [f"T{i}" for i in range(6)],
        "winner_id": ["W", "W", "W", "C", "D", "E"], "amount": [90.0, 80.0, 70.0, 70.0, 70.0, 70.0],
        "builder_id": ["L", "L", "W", "C", "D", "E"],
        "project_manager_id": ["P1", "P1", "P2", "P3", "P4", "P5"],
    })
    payments = pd.DataFrame({"contract_id": ["K0", "K0", "K1", "K2"], "amount": [50.0, 40.0, 80.0, 70.0],
                             "payee_id": ["L", "W", "L", "W"]})
    relations = pd.DataFrame({"src_id": ["P1", "P2", "P3"], "dst_id": ["L", "W", "C"],
                              "kind": ["employee", "employee", "employee"]})
    return Market.from_frames(tenders=tenders, bids=bids, contracts=contracts, payments=payments,
                              relations=relations)


def test_hand_built_lending_signals_and_evidence() -> None:
    det = WinnerBuilderDetector().fit(_hand_market())
    u = det.units_
    k0 = u.loc["K0"]
    assert bool(k0["builder_differs"]) and bool(k0["builder_lost"]) and bool(k0["pm_tied_builder"])
    assert k0["share_builder"] == pytest.approx(50 / 90)
    assert u.loc["K1", "share_builder"] == 1.0
    assert u.loc["K2", "score"] == 0.0 and not bool(u.loc["K2", "builder_differs"])
    contracts = det.results_.query("unit == 'contract'")
    assert set(contracts.iloc[:2]["entity_id"]) == {"K0", "K1"}
    pair = det.results_.query("unit == 'pair'")
    assert pair[["entity_id", "other_id"]].values.tolist() == [["W", "L"]]
    # The pair adds up the evidence of its two contracts.
    assert pair["score"].iloc[0] > contracts.iloc[0]["score"]
    ev = det.explain("K0")
    signals = set(ev["signal"])
    assert {"builder_differs", "builder_lost", "share_paid_to_builder", "project_manager_elsewhere"} <= signals
    for path in ev["path"]:
        assert len(path) % 2 == 1 and all(":" in node for node in path[::2])
    assert det.explain("W|L")["signal"].iloc[0] == "contracts_built_for_winner"
    assert {"company:W", "company:L", "contract:K0"} <= set(contracts.set_index("entity_id").loc["K0", "members"])


def _transform(market: Market, seed: int) -> Market:
    """Relabel every id (reversing sort order), scale amounts and shuffle rows."""
    rng = np.random.default_rng(seed)

    def f(x: str) -> str:
        return "z" + x[::-1]

    frames = {}
    for name, table in market.items():
        t = table.copy()
        for spec in TABLES[name]:
            if spec.kind == "id":
                t[spec.name] = t[spec.name].astype(object).map(lambda v: f(v) if isinstance(v, str) else v)
            if spec.kind == "float" and name != "evaluations":
                t[spec.name] = t[spec.name] * 7.5
        frames[name] = t.iloc[rng.permutation(len(t))].reset_index(drop=True)
    return Market.from_frames(**frames, settings=market.settings)


def test_invariant_to_relabelling_scaling_and_row_order() -> None:
    market, _ = make_market(1_200, seed=5)
    det = WinnerBuilderDetector().fit(market)
    assert det.units_["builder_differs"].astype(bool).sum() > 10
    other = WinnerBuilderDetector().fit(_transform(market, 0))
    a = det.units_.query("unit == 'contract'").set_index("entity_id")["score"]
    b = other.units_.query("unit == 'contract'").set_index("entity_id")["score"]
    b.index = [i[1:][::-1] for i in b.index]
    pd.testing.assert_series_equal(a.sort_index(), b.sort_index(), check_names=False, check_index_type=False)


def test_missing_contracts_raise() -> None:
    market, _ = make_market(300, seed=0)
    bare = Market({"tenders": market.tenders, "bids": market.bids}, market.entities)
    with pytest.raises(MissingTableError, match="contracts"):
        WinnerBuilderDetector().fit(bare)


def test_invalid_alpha_is_rejected() -> None:
    with pytest.raises(ValueError, match="alpha"):
        WinnerBuilderDetector(alpha=0.0).fit(_hand_market())
