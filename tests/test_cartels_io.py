"""Labelled cartel loader: mapping to canonical tables, reported fixes, labels aligned with bids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collusion import Market
from collusion.io import load_cartel_market, read_cartel_csv, tender_labels

CARTELS = Path(__file__).parents[1] / ".." / "shared" / "data" / "cartels"


def _write(tmp_path: Path, name: str, frame: pd.DataFrame) -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_small_file_with_bidders_estimate_and_dates(tmp_path: Path) -> None:
    raw = pd.DataFrame(
        {
            "Tender": [1, 1, 1, 2, 2],
            "Competitors": [7, 8, 7, 7, 9],  # firm 7 bids twice in tender 1
            "Bid_value": [100.0, 110.0, 120.0, 50.0, 55.0],
            "Winner": [1, 0, 0, 0, 1],
            "Pre-Tender Estimate (PTE)": [130.0, 130.0, 130.0, 60.0, 60.0],
            "Date": [1_262_304_000, 1_262_304_000, 1_262_304_000, -(2**63), -(2**63)],
            "Site": [3, 3, 3, 4, 4],
            "Collusive_competitor": [1, 1, 1, 0, 0],
            "Collusive_competitor_original": [1, 0, 1, 0, 0],
            "CV": [0.09, 0.09, 0.09, 0.07, 0.07],
        }
    )
    market, labels = read_cartel_csv(_write(tmp_path, "DB_Collusion_Brazil_processed.csv", raw))
    assert isinstance(market, Market) and market.name == "brazil"
    t = market.tenders.set_index("tender_id")
    assert t.loc["1", "estimate"] == 130.0 and t.loc["1", "region"] == "3"
    assert t.loc["1", "published_at"] == pd.Timestamp("2010-01-01")
    assert pd.isna(t.loc["2", "published_at"])  # int64-minimum sentinel -> NaT
    # duplicate (tender, bidder) kept, renamed, reported
    assert sorted(market.bids["bidder_id"].astype(str)) == ["7", "7", "7#2", "8", "9"]
    report = labels.attrs["report"]
    assert report["rows"].sum() == 1 + 1 and "same bidder twice" in report["issue"].iloc[0]
    assert report["source_rows"].iloc[0] == [2]
    # labels aligned row for row with market.bids
    assert len(labels) == len(market.bids)
    assert (labels["tender_id"].astype(str).to_numpy() == market.bids["tender_id"].astype(str).to_numpy()).all()
    np.testing.assert_array_equal(labels["price"].to_numpy(), market.bids["price"].to_numpy())
    assert labels.set_index("bidder_id").loc["7#2", "collusive_bid"]
    tl = tender_labels(labels)
    assert tl["collusive"].tolist() == [True, False] and tl["n_collusive_bids"].tolist() == [2, 0]
    assert tl.index.tolist() == market.tenders["tender_id"].astype(str).tolist()


def test_swiss_style_file_synthesises_bidders_and_one_winner(tmp_path: Path) -> None:
    raw = pd.DataFrame(
        {
            "Bid_value": [44000.0, 46500.0, 44000.0, 900.0, 800.0],
            "Collusive_competitor": [1, 1, 1, 0, 0],
            "Contract_type": [1.0, 1.0, 1.0, 2.0, 2.0],
            "Tender": [588, 588, 588, 3, 3],
            "Date": [1098, 1098, 1098, 366, 366],
            "Collusive_competitor_original": [1.0, 1.0, 0.0, 0.0, 0.0],
            "Winner": [1.0, 0.0, 1.0, 0.0, 1.0],
        }
    )
    market, labels = load_cartel_market(
        "swiss", _write(tmp_path, "DB_Collusion_Switzerland_GR_and_See-Gaster_processed.csv", raw).parent
    )
    assert market.name == "switzerland"
    assert sorted(market.entities["company"]) == ["3-1", "3-2", "588-1", "588-2", "588-3"]
    # two tied winners: the first in file order stays the winner, the other is reported
    win = market.bids.loc[market.bids["is_winner"], "bidder_id"].astype(str).tolist()
    assert sorted(win) == ["3-2", "588-1"]
    assert int(labels["winner_published"].sum()) == 3
    issues = labels.attrs["report"].set_index("issue")
    assert issues.filter(like="several winners", axis=0)["rows"].item() == 1
    assert issues.filter(like="no bidder ids", axis=0)["rows"].item() == 5
    # day index -> days after 1970-01-01; category from Contract_type
    t = market.tenders.set_index("tender_id")
    assert t.loc["3", "published_at"] == pd.Timestamp("1971-01-02") and t.loc["588", "category"] == "1"


def test_missing_columns_and_unknown_market(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Bid_value"):
        read_cartel_csv(_write(tmp_path, "x.csv", pd.DataFrame({"Tender": [1]})))
    with pytest.raises(ValueError, match="unknown cartel market"):
        load_cartel_market("atlantis")
    with pytest.raises(FileNotFoundError, match="DB_Collusion_Japan_processed.csv"):
        load_cartel_market("japan", tmp_path)


EXPECTED = {
    # market: tenders, bids, collusive tenders, report issues (rows)
    "brazil": (101, 683, 33, {"unknown or out-of-range Date": 2}),
    "japan": (1080, 13515, 123, {"same bidder twice": 5}),
    "switzerland": (4344, 21231, 3199, {"no bidder ids": 21231, "several winners": 78}),
}


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_cartel_markets(name: str) -> None:
    if not CARTELS.is_dir():
        pytest.skip(f"{CARTELS} is absent")
    market, labels = load_cartel_market(name, CARTELS)
    n_tenders, n_bids, n_collusive, issues = EXPECTED[name]
    assert len(market.tenders) == n_tenders and len(market.bids) == n_bids  # nothing dropped
    tl = tender_labels(labels)
    assert int(tl["collusive"].sum()) == n_collusive
    report = labels.attrs["report"]
    for issue, rows in issues.items():
        assert report.loc[report["issue"].str.contains(issue), "rows"].sum() == rows, (name, issue)
    assert len(report) == len(issues)
    # labels follow market.bids and the file's own prices
    np.testing.assert_array_equal(labels["price"].to_numpy(), market.bids["price"].to_numpy())
    assert labels["source_row"].is_unique
