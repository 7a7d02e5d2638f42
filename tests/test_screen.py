"""screen(): all analyses in one call, stable ids, missing tables reported, exports."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import collusion as co
from collusion import Market
from collusion.datasets import evaluate, make_market


@pytest.fixture(scope="module")
def market_truth():
    return make_market(2_000, seed=7)


@pytest.fixture(scope="module")
def screening(market_truth):
    return co.screen(market_truth[0])


def test_all_seven_analyses_in_one_schema(screening) -> None:
    assert list(screening.results.columns) == list(co.RESULT_COLUMNS)
    assert sorted(screening.results["analysis"].unique()) == [1, 2, 3, 4, 5, 6, 7]
    assert screening.skipped.empty
    assert set(screening.risk["entity_type"]) <= {"company", "buyer", "agent", "expert", "project"}
    assert screening.risk["score"].between(0, 100).all()
    assert set(screening.risk["level"]) <= {"low", "medium", "high", "critical"}


def test_finding_ids_stable_across_reruns_and_row_shuffles(market_truth, screening) -> None:
    market, _ = market_truth
    rng = np.random.default_rng(0)
    shuffled = Market.from_frames(
        **{name: t.iloc[rng.permutation(len(t))] for name, t in market.items()}, settings=market.settings
    )
    again = co.screen(shuffled)
    a = screening.results.set_index("finding_id")["score"].sort_index()
    b = again.results.set_index("finding_id")["score"].sort_index()
    assert a.index.equals(b.index)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-9, atol=1e-12)
    ra = screening.risk.set_index("finding_id")["score"].sort_index()
    rb = again.risk.set_index("finding_id")["score"].sort_index()
    np.testing.assert_allclose(ra.to_numpy(), rb.to_numpy(), rtol=1e-9, atol=1e-12)


def test_planted_truth_recovered(market_truth, screening) -> None:
    ev = evaluate(screening, market_truth[1])
    scored = ev.dropna(subset=["average_precision"])
    assert len(scored) >= 10
    # every analysis finds its scheme far above chance on a small market
    assert (scored["average_precision"] > 0.6).all(), scored


def test_missing_tables_are_reported_not_fatal(market_truth) -> None:
    market, _ = market_truth
    bare = Market.from_frames(tenders=market.tenders, bids=market.bids)
    s = co.screen(bare)
    skipped = dict(zip(s.skipped["detector"], s.skipped["reason"]))
    assert "contracts" in skipped["winner_builder"] and "evaluations" in skipped["expert_winner"]
    assert "bid_rigging" in set(s.results["detector"])


def test_summary_and_exports(screening, tmp_path) -> None:
    by = screening.summary(["region", "quarter"])
    assert {"region", "quarter", "findings", "flagged"} <= set(by.columns)
    assert by["flagged"].sum() > 0
    screening.to_parquet(tmp_path / "r.parquet")
    back = pd.read_parquet(tmp_path / "r.parquet")
    assert len(back) == len(screening.results)
    assert back["finding_id"].tolist() == screening.results["finding_id"].tolist()
    screening.to_jsonl(tmp_path / "r.jsonl")
    first = json.loads((tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(co.RESULT_COLUMNS) <= set(first)
    assert isinstance(first["evidence"], list) and first["evidence"][0]["signal"]


def test_evidence_on_demand(screening) -> None:
    quiet = screening.results[~screening.results["flagged"]].iloc[-1]
    ev = screening.evidence(quiet["finding_id"])
    assert len(ev) > 0


def test_keep_results_releases_detectors_but_not_findings(market_truth, screening) -> None:
    lean = co.screen(market_truth[0], keep="results")
    pd.testing.assert_frame_equal(lean.results.drop(columns="evidence"), screening.results.drop(columns="evidence"))
    det = lean.detectors["bid_rigging"]
    full = screening.detectors["bid_rigging"]
    assert not hasattr(det, "units_") and hasattr(full, "units_")
    # results_ reads this detector's rows from the screen's frame, ranked as a fitted detector's are
    pd.testing.assert_frame_equal(det.results_.drop(columns="evidence"), full.results_.drop(columns="evidence"))
    flagged = det.results_.loc[det.results_["flagged"]].iloc[0]
    assert len(det.explain(flagged["finding_id"])) > 0  # evidence computed during fit is kept
    quiet = det.results_.loc[det.results_["rank"] > det.max_evidence + int(det.flagged_.sum())]
    quiet = quiet.loc[~quiet["flagged"]].iloc[0]
    with pytest.raises(RuntimeError, match="keep='all'"):
        det.explain(quiet["finding_id"])
    assert len(full.explain(quiet["finding_id"])) > 0
    with pytest.raises(ValueError, match="keep must be"):
        co.screen(market_truth[0], keep="some")


def test_analyses_in_threads_give_the_same_results(market_truth, screening) -> None:
    threaded = co.screen(market_truth[0], n_jobs=2)
    pd.testing.assert_frame_equal(threaded.results.drop(columns="evidence"),
                                  screening.results.drop(columns="evidence"))
    pd.testing.assert_frame_equal(threaded.risk.drop(columns=["evidence", "contributions"]),
                                  screening.risk.drop(columns=["evidence", "contributions"]))
    with pytest.raises(ValueError, match="n_jobs"):
        co.screen(market_truth[0], n_jobs=0)


def test_risk_index_counts_tenders_for_their_project_once() -> None:
    from collusion._risk import risk_index

    findings = pd.DataFrame({
        "finding_id": ["a", "b", "c"], "detector": ["lot_splitting", "bid_rigging", "funds"],
        "members": [["project:P1", "company:X"], ["company:X"], ["buyer:B"]],
        "tender_ids": [["T1", "T2"], ["T3"], ["T9"]],
        "score_pct": [1.0, 1.0, 1.0], "flagged": [True, True, True]})
    as_dict = {"T1": "P1", "T2": "P1", "T3": "P2"}
    for tp in (as_dict, pd.Series(as_dict)):
        r = risk_index(findings, tender_project=tp).set_index("entity_id")
        # P1 is a member of "a" and the project of its two tenders: one touch (0.5), not three.
        assert r.loc["P1", "score"] == pytest.approx(50.0)
        assert r.loc["P2", "score"] == pytest.approx(70.0)  # through tender T3 of "b"
        # X: two detectors by noisy-or, 1 - (1 - 0.5)(1 - 0.7)
        assert r.loc["X", "score"] == pytest.approx(85.0)
        assert r.loc["X", "contributions"] == {"b": 0.7, "a": 0.5}
        assert r.loc["B", "entity_type"] == "buyer" and "T9" not in r.index
        assert r.loc["P1", "entity_type"] == "project"


def test_screen_drops_shared_scratch_after_its_last_user(market_truth) -> None:
    from collusion.graph import build_graph

    G = build_graph(market_truth[0])
    seen: list[tuple[str, bool]] = []
    co.screen(G, progress=lambda name: seen.append((name, "_bid_trace_uses" in G.__dict__)))
    present = dict(seen)
    assert present["agent_bidder"]  # cached by buyer_winner, still needed
    assert not present["expert_winner"] and not present["risk index"]  # agent_bidder was the last user
    assert "_bid_trace_uses" not in G.__dict__ and "_firm_strength" not in G.__dict__
