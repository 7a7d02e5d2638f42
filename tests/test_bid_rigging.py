"""BidRiggingDetector (analysis 2): planted cartels, honest markets, invariances, evidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collusion import Market
from collusion.datasets import MarketConfig, make_market
from collusion.datasets._evaluate import evaluate
from collusion.detectors import BidRiggingDetector
from collusion.exceptions import MissingTableError


@pytest.fixture(scope="module")
def planted():
    market, truth = make_market(3_000, seed=0)
    det = BidRiggingDetector().fit(market)
    return market, truth, det


def test_finds_planted_cartel_tenders_and_groups(planted):
    _, truth, det = planted
    ev = evaluate(det.results_, truth).set_index("unit")
    # Measured on this market: tender AP 0.978, P@k 0.92; all 4 cartels found.
    assert ev.loc["tender", "average_precision"] >= 0.9
    assert ev.loc["tender", "precision_at_k"] >= 0.85
    assert ev.loc["group", "precision_at_k"] >= 0.75
    assert ev.loc["tender", "false_flag_rate"] <= 0.07


def test_honest_market_flags_few():
    # Nothing planted but one tiny cartel (the generator needs one); leave its tenders out.
    cfg = MarketConfig().without_schemes().replace(cartel_tender_rate=1e-3, split_tender_rate=1e-3)
    market, truth = make_market(3_000, seed=1, config=cfg)
    det = BidRiggingDetector().fit(market)
    res = det.results_
    tenders = res[(res["unit"] == "tender") & ~res["entity_id"].isin(truth.cartel_tenders["tender_id"])]
    assert tenders["flagged"].mean() <= 0.01
    groups = res[res["unit"] == "group"]
    assert groups["flagged"].sum() <= 1


def _toy_frames():
    rng = np.random.default_rng(0)
    rows = []
    for t in range(60):
        firms = rng.choice(12, size=5, replace=False)
        prices = 100 * (1 + rng.normal(0, 0.05, 5))
        for f, p in zip(firms, prices):
            rows.append((f"T{t:03d}", f"C{f:02d}", float(p)))
    # A cartel of C90-C92: covers 1% above the winner, same IP, rotating wins.
    for t in range(60, 72):
        w = t % 3
        for k in range(3):
            rows.append((f"T{t:03d}", f"C9{k}", 100.0 * (1.0 + 0.01 * ((k - w) % 3))))
    bids = pd.DataFrame(rows, columns=["tender_id", "bidder_id", "price"])
    bids["is_winner"] = bids.groupby("tender_id")["price"].transform("min").eq(bids["price"])
    bids["ip"] = np.where(bids["bidder_id"].str.startswith("C9"), "10.0.0.9",
                          "10.1." + bids.index.astype(str).str.zfill(3).str[:2] + "." + bids.index.astype(str))
    tenders = pd.DataFrame({"tender_id": sorted(bids["tender_id"].unique())})
    return tenders, bids


def _tender_scores(det):
    u = det.units_
    u = u[u["unit"] == "tender"]
    return pd.Series(u["score"].to_numpy(), index=u["entity_id"].to_numpy()).sort_index()


def test_shared_trace_evidence_has_graph_path():
    tenders, bids = _toy_frames()
    det = BidRiggingDetector().fit(Market.from_frames(tenders=tenders, bids=bids))
    res = det.results_.query("unit == 'tender'")
    top = res.iloc[0]
    assert top["entity_id"] >= "T060"
    ip = [r for r in top["evidence"] if r["signal"] == "shared_ip"]
    assert ip and ip[0]["path"][1::2] == ["uses", "uses"]
    assert ip[0]["path"][2] == "ip:10.0.0.9"
    assert {ip[0]["path"][0], ip[0]["path"][4]} <= {"company:C90", "company:C91", "company:C92"}
    # The cartel's tenders outrank every honest one.
    s = _tender_scores(det)
    assert s[s.index >= "T060"].min() > s[s.index < "T060"].max()
    # Screen evidence names the market baseline.
    cv = [r for r in top["evidence"] if r["signal"] == "cv"]
    assert cv and cv[0]["value"] < cv[0]["baseline"]


def test_price_scaling_and_relabelling_leave_scores_unchanged():
    tenders, bids = _toy_frames()
    base = _tender_scores(BidRiggingDetector().fit(Market.from_frames(tenders=tenders, bids=bids)))
    scaled = bids.assign(price=bids["price"] * 7.3)
    s2 = _tender_scores(BidRiggingDetector().fit(Market.from_frames(tenders=tenders, bids=scaled)))
    np.testing.assert_allclose(base.to_numpy(), s2.to_numpy(), rtol=1e-9, atol=1e-9)
    relabel = bids.assign(bidder_id="Z" + bids["bidder_id"].str[::-1])
    shuffled = relabel.sample(frac=1.0, random_state=3)
    s3 = _tender_scores(BidRiggingDetector().fit(Market.from_frames(tenders=tenders, bids=shuffled)))
    np.testing.assert_allclose(base.to_numpy(), s3.to_numpy(), rtol=1e-9, atol=1e-9)


def test_group_ids_are_stable_and_screens_accessible(planted):
    market, _, det = planted
    groups = det.results_.query("unit == 'group'")
    again = BidRiggingDetector().fit(market).results_.query("unit == 'group'")
    assert set(groups["finding_id"]) == set(again["finding_id"])
    assert all(g.startswith("G") for g in groups["entity_id"])
    assert all(len(m) >= 2 for m in groups["members"])
    screens = det.units_.loc[det.units_["unit"] == "tender", ["cv", "spd", "rd", "kurt", "kstest", "cv4_min"]]
    assert len(screens) == int((market.bids.groupby("tender_id", observed=True).size() > 0).sum())
    rotation = [r for r in groups.iloc[0]["evidence"] if r["signal"] == "rotation"]
    assert rotation and "wins in the" in rotation[0]["detail"]


def test_missing_bids_raise_missing_table_error():
    tenders = pd.DataFrame({"tender_id": ["T1"]})
    bids = pd.DataFrame({"tender_id": pd.Series([], dtype=object), "bidder_id": pd.Series([], dtype=object),
                         "price": pd.Series([], dtype=float)})
    with pytest.raises(MissingTableError, match="bids"):
        BidRiggingDetector().fit(Market.from_frames(tenders=tenders, bids=bids))


def test_real_cartel_markets_rank_collusive_tenders(shared_data):
    from sklearn.metrics import roc_auc_score

    from collusion.io import load_cartel_market, tender_labels

    market, labels = load_cartel_market("brazil", shared_data / "cartels")
    det = BidRiggingDetector().fit(market)
    y = tender_labels(labels)["collusive"]
    s = _tender_scores(det).reindex(y.index.astype(str)).fillna(0.0)
    # Measured ROC AUC (no tuning to this market): Brazil 0.68, Japan 0.65, Switzerland 0.54.
    assert roc_auc_score(y.to_numpy(dtype=bool), s.to_numpy()) >= 0.6
