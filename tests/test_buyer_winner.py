"""BuyerWinnerDetector (analysis 1): favoured suppliers found, honest home advantage left alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import collusion as co
from collusion import Market, MissingTableError
from collusion.datasets import MarketConfig, make_market
from collusion.datasets._evaluate import evaluate
from collusion.detectors import BuyerWinnerDetector


@pytest.fixture(scope="module")
def planted():
    # 60 buyers, 12 of them favouring a supplier (the default rate is 0.05).
    return make_market(3_000, seed=0, favoured_buyer_rate=0.2)


@pytest.fixture(scope="module")
def fitted(planted):
    market, _ = planted
    return BuyerWinnerDetector().fit(market)


def test_favoured_pairs_rank_first(planted, fitted) -> None:
    _, truth = planted
    row = evaluate(fitted.results_, truth).set_index("scheme").loc["favoured_pairs"]
    # Measured 0.94 / 0.83 (seed 0); 0.93 average over six 20k-tender markets at default rates.
    assert row["average_precision"] >= 0.85
    assert row["precision_at_k"] >= 0.75
    assert row["false_flag_rate"] <= 0.002


def test_honest_market_is_quiet() -> None:
    market, _ = make_market(3_000, seed=1, config=MarketConfig().without_schemes())
    det = BuyerWinnerDetector().fit(market)
    assert len(det.results_) > 500
    assert det.flagged_.mean() <= 0.002


def test_score_combines_dominance_and_irregularity(planted, fitted) -> None:
    from collusion.features import fisher_surprise

    units = fitted.units_
    assert {"score_dominance", "score_irregular", "score_prepared", "score_link"} <= set(units.columns)
    # No trace or tie data in the generated market: those tests are left out, not counted as p = 1.
    assert not (units["score_prepared"] > 0).any() and not (units["score_link"] > 0).any()
    np.testing.assert_allclose(units["score"], fisher_surprise(units["score_dominance"], units["score_irregular"]))
    # Brown's merge of three dependent tests stays between one test and Fisher of three.
    assert units["score_dominance"].max() <= 3 * np.log10(len(units))


def test_result_frame_and_evidence(planted, fitted) -> None:
    market, truth = planted
    res = fitted.results_
    assert set(res["unit"]) == {"pair"}
    assert set(res["entity_type"]) == {"buyer"} and set(res["other_type"]) == {"company"}
    top = res.iloc[0]
    assert top["members"] == [f"buyer:{top['entity_id']}", f"company:{top['other_id']}"]
    # tender_ids are the company's wins at the buyer.
    wins = market.bids.loc[market.bids["is_winner"] & (market.bids["bidder_id"] == top["other_id"]), "tender_id"]
    of_buyer = market.tenders.set_index("tender_id").loc[wins.astype(str), "buyer_id"].astype(str)
    assert sorted(top["tender_ids"]) == sorted(of_buyer.index[of_buyer == top["entity_id"]])
    ev = fitted.explain(1)
    signals = set(ev["signal"])
    assert {"excess_wins", "value_share"} <= signals
    assert signals & {"non_open_wins", "short_period_wins", "single_bid_wins"}
    excess = ev.set_index("signal").loc["excess_wins"]
    assert excess["value"] > excess["baseline"]
    path = excess["path"]
    assert path[0] == f"buyer:{top['entity_id']}" and path[1] == "organizes" and path[3] == "wins"
    assert path[2].removeprefix("tender:") in top["tender_ids"] and path[4] == f"company:{top['other_id']}"


def test_support_filter_and_params(planted) -> None:
    market, _ = planted
    det = BuyerWinnerDetector(min_tenders=6).fit(market)
    assert (det.units_["tenders"] >= 6).all()
    assert det.get_params()["min_tenders"] == 6
    uniform = BuyerWinnerDetector(baseline="uniform").fit(market)
    assert not np.allclose(uniform.units_["expected"], BuyerWinnerDetector().fit(market).units_["expected"])
    flagged = BuyerWinnerDetector(contamination=0.01).fit(market).flagged_.mean()
    assert 0.005 <= flagged <= 0.02
    with pytest.raises(ValueError, match="fdr"):
        BuyerWinnerDetector(fdr=0.0).fit(market)
    with pytest.raises(ValueError, match="baseline"):
        BuyerWinnerDetector(baseline="median").fit(market)


def test_needs_buyers() -> None:
    tenders = pd.DataFrame({"tender_id": ["T1", "T2"]})
    bids = pd.DataFrame({"tender_id": ["T1", "T2"], "bidder_id": ["a", "a"], "price": [1.0, 2.0],
                         "is_winner": [True, True]})
    with pytest.raises(MissingTableError, match="buyer_id"):
        BuyerWinnerDetector().fit(Market.from_frames(tenders=tenders, bids=bids))


def test_too_little_support_gives_an_empty_result() -> None:
    tenders = pd.DataFrame({"tender_id": ["T1", "T2"], "buyer_id": ["B1", "B1"]})
    bids = pd.DataFrame({"tender_id": ["T1", "T1", "T2"], "bidder_id": ["a", "b", "a"], "price": [1.0, 2.0, 3.0],
                         "is_winner": [True, False, False]})  # T2 was never awarded
    market = Market.from_frames(tenders=tenders, bids=bids)
    det = BuyerWinnerDetector().fit(market)
    assert len(det.results_) == 0 and list(det.results_.columns) == list(co.RESULT_COLUMNS)
    one = BuyerWinnerDetector(min_tenders=1).fit(market)
    assert one.results_["other_id"].tolist() == ["a", "b"] and one.results_["tender_ids"].tolist() == [["T1"], []]


def test_flags_implied_by_the_procedure_are_not_held_against_the_winner() -> None:
    # Buyer B1: 30 open tenders with 3 bids and 30-day periods won by x/y/z, 5 direct awards
    # (one bid, 7 days, by design) won by "d", and 5 open tenders that drew one bid on a
    # 7-day deadline, won by "o". Both winners have all-irregular wins; only o's flags are
    # beyond what its procedures explain.
    n_open, n_d, n_o = 30, 5, 5
    ids = [f"T{i}" for i in range(n_open + n_d + n_o)]
    proc = ["open"] * n_open + ["direct"] * n_d + ["open"] * n_o
    days = [30] * n_open + [7] * (n_d + n_o)
    pub = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(len(ids)) * 3, unit="D")
    tenders = pd.DataFrame({"tender_id": ids, "buyer_id": "B1", "procedure": proc, "published_at": pub,
                            "deadline_at": pub + pd.to_timedelta(days, unit="D")})
    rows = []
    for i in range(n_open):
        for j, firm in enumerate(["x", "y", "z"]):
            rows.append((ids[i], firm, 100.0 + j, j == i % 3))
    rows += [(ids[n_open + i], "d", 100.0, True) for i in range(n_d)]
    rows += [(ids[n_open + n_d + i], "o", 100.0, True) for i in range(n_o)]
    bids = pd.DataFrame(rows, columns=["tender_id", "bidder_id", "price", "is_winner"])
    det = BuyerWinnerDetector().fit(Market.from_frames(tenders=tenders, bids=bids))
    u = det.units_.set_index("other_id")
    assert u.loc["d", "irregular_wins"] == u.loc["o", "irregular_wins"] == 5
    assert u.loc["d", "beyond_procedure_surprise"] < 0.5 < 2.0 < u.loc["o", "beyond_procedure_surprise"]
    assert u.loc["o", "score_irregular"] > u.loc["d", "score_irregular"]
    assert u.loc["o", "score"] > u.loc["d", "score"]
