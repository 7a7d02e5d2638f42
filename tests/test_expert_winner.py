"""ExpertWinnerDetector (analysis 6): experts who score one company above the rest of the panel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collusion import Market, MissingTableError
from collusion.datasets import MarketConfig, generate_frames, make_market
from collusion.datasets._evaluate import evaluate
from collusion.detectors import ExpertWinnerDetector


@pytest.fixture(scope="module")
def planted():
    # 120 experts, 12 captured (the default rate is 0.02).
    return make_market(3_000, seed=0, captured_expert_rate=0.1)


@pytest.fixture(scope="module")
def fitted(planted):
    return ExpertWinnerDetector().fit(planted[0])


def test_captured_experts_rank_first(planted, fitted) -> None:
    row = evaluate(fitted.results_, planted[1]).set_index("scheme").loc["captured_experts"]
    # Measured 1.0 here; 0.96-0.99 on 20k-50k-tender markets at default rates.
    assert row["average_precision"] >= 0.9
    assert row["precision_at_k"] >= 0.9
    assert row["false_flag_rate"] <= 0.001


def test_score_bias_alone_finds_captured_experts() -> None:
    tables, truth = generate_frames(3_000, seed=2, config=MarketConfig(captured_expert_rate=0.1))
    tables = {k: v for k, v in tables.items() if k not in ("parties", "relations")}
    market = Market.from_frames(**tables)
    det = ExpertWinnerDetector(min_tenders=1).fit(market)
    row = evaluate(det.results_, truth).set_index("scheme").loc["captured_experts"]
    assert row["average_precision"] >= 0.85
    # The default skips pairs that met on one panel only: 2 of the 12 captured pairs here.
    default = ExpertWinnerDetector().fit(market)
    row = evaluate(default.results_, truth).set_index("scheme").loc["captured_experts"]
    assert row["found"] == 10 and row["precision_at_k"] >= 0.8


def test_honest_market_is_quiet() -> None:
    market, _ = make_market(3_000, seed=1, config=MarketConfig().without_schemes())
    det = ExpertWinnerDetector().fit(market)
    assert len(det.results_) > 1_000
    assert det.flagged_.mean() <= 0.001


def test_evidence_and_tenders(planted, fitted) -> None:
    market, _ = planted
    top = fitted.results_.iloc[0]
    ev = fitted.explain(1).set_index("signal")
    assert {"score_bias", "presence_effect", "excess_wins"} <= set(ev.index)
    assert ev.loc["score_bias", "value"] > ev.loc["score_bias", "baseline"]
    assert ev.loc["score_bias", "path"][:2] == [f"expert:{top['entity_id']}", "evaluates"]
    # tender_ids: every evaluated tender where the expert sat and the company was scored.
    e = market.evaluations
    sel = (e["expert_id"] == top["entity_id"]) & (e["bidder_id"] == top["other_id"])
    assert sorted(top["tender_ids"]) == sorted(np.unique(e.loc[sel, "tender_id"].astype(str)))
    assert fitted.units_.loc[fitted.results_.index[0], "bias_t"] > 3


def test_needs_evaluations() -> None:
    tenders = pd.DataFrame({"tender_id": ["T1"]})
    bids = pd.DataFrame({"tender_id": ["T1"], "bidder_id": ["a"], "price": [1.0], "is_winner": [True]})
    with pytest.raises(MissingTableError, match="evaluations"):
        ExpertWinnerDetector().fit(Market.from_frames(tenders=tenders, bids=bids))
