"""Lot-splitting features (collusion.features._lots): hand-computed values and properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from collusion import Settings
from collusion.features._lots import (
    _lex_codes,
    group_summary,
    lot_keys,
    tender_thresholds,
    threshold_bunching,
    window_groups,
)


def test_tender_thresholds_per_category() -> None:
    s = Settings(open_tender_threshold=4e6, thresholds_by_category={"goods": 2e6})
    cat = pd.Series(pd.Categorical(["goods", None, "works", "goods"]))
    assert tender_thresholds(cat, s).tolist() == [2e6, 4e6, 4e6, 2e6]


def test_lot_keys_prefer_the_work_and_fall_back_to_the_project() -> None:
    buyer = np.array([0, 0, 0, 0, 1, -1])
    category = np.array([3, 3, -1, -1, 3, 3])
    region = np.array([1, 1, 1, 1, 1, 1])
    project = np.array([7, 8, 9, 9, 7, 7])
    keys = lot_keys(buyer, category, region, project=project)
    assert keys[0] == keys[1]           # same buyer and work, different projects
    assert keys[2] == keys[3]           # no category: the shared project
    assert keys[2] != keys[0] and keys[4] != keys[0]
    assert keys[5] == -1
    extra = lot_keys(buyer, category, region, project=project, extra=np.array([0, 1, 0, 0, 0, 0]))
    assert extra[0] != extra[1]


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 60), st.randoms(use_true_random=False))
def test_lex_codes_match_unique_rows(rows, rnd) -> None:
    # Wide columns force the packed key past 2**62, so the renumbering path runs too.
    rng = np.random.default_rng(rnd.randint(0, 2**32 - 1))
    cols = [rng.integers(-1, 3, rows), rng.integers(-2**40, 2**40, rows) // 2**38, rng.integers(0, 2**40, rows),
            rng.integers(-1, 2**30, rows)]
    expected = np.unique(np.stack(cols, axis=1), axis=0, return_inverse=True)[1].reshape(-1)
    assert _lex_codes(cols).tolist() == expected.tolist()


def test_group_summary_top_winner_breaks_ties_by_code() -> None:
    g = np.array([0, 0, 0, 0, 1, 1, 2])
    out = group_summary(g, np.ones(7), np.full(7, 4.0), np.zeros(7, bool), np.array([9, 4, 9, 4, 5, -1, -1]),
                        np.zeros(7))
    assert out["top_winner"].tolist() == [4, 5, -1] and out["top_wins"].tolist() == [2, 1, 0]


def test_window_groups_gap_split_and_anchored_windows() -> None:
    keys = np.array([0, 0, 0, 0, 1, 1, -1, 0])
    days = np.array([0.0, 30.0, 200.0, 250.0, 10.0, 11.0, 5.0, np.nan])
    g = window_groups(keys, days, 90)
    assert g.tolist() == [0, 0, 1, 1, 2, 2, -1, -1]
    # A chain of tenders 40 days apart never forms a group longer than the window.
    chain = window_groups(np.zeros(8, int), np.arange(8) * 40.0, 90)
    spans = pd.Series(np.arange(8) * 40.0).groupby(chain).agg(lambda s: s.max() - s.min())
    assert (spans < 90).all() and chain.max() >= 2


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1000)), min_size=1, max_size=60),
       st.randoms(use_true_random=False))
def test_window_groups_partition_is_order_free_and_bounded(rows, rnd) -> None:
    keys = np.array([r[0] for r in rows])
    days = np.array([float(r[1]) for r in rows])
    g = window_groups(keys, days, 90)
    perm = np.arange(len(rows))
    rnd.shuffle(perm)
    g2 = window_groups(keys[perm], days[perm], 90)
    # Same partition (labels may differ only between rows with equal key and day, which are grouped together).
    pairs = {(a, b) for a, b in zip(g[perm], g2)}
    assert len(pairs) == len(set(g)) == len(set(g2))
    frame = pd.DataFrame({"g": g, "k": keys, "d": days})
    assert (frame.groupby("g")["k"].nunique() == 1).all()
    assert (frame.groupby("g")["d"].agg(lambda s: s.max() - s.min()) < 90).all()


def test_group_summary_threshold_arithmetic() -> None:
    groups = np.array([0, 0, 0, 1, 1, -1])
    est = np.array([3.5, 3.9, 3.0, 1.0, np.nan, 9.0])
    out = group_summary(groups, est, np.full(6, 4.0), np.array([1, 1, 0, 1, 1, 1], bool),
                        np.array([5, 5, 6, -1, 2, 9]), np.array([0.0, 3.0, 8.0, 1.0, 2.0, 0.0]))
    g0, g1 = out.iloc[0], out.iloc[1]
    assert g0["n"] == 3 and g0["sum_ratio"] == 2.6 and bool(g0["split"]) and g0["n_near"] == 2
    assert g0["n_non_open"] == 2 and g0["top_winner"] == 5 and g0["top_wins"] == 2 and g0["span_days"] == 8.0
    assert g1["n_missing"] == 1 and not bool(g1["all_below"]) and not bool(g1["split"])
    assert g1["n_awarded"] == 1 and g1["top_winner"] == 2


def test_group_summary_sums_add_over_disjoint_groups() -> None:
    rng = np.random.default_rng(1)
    g = rng.integers(0, 5, 50)
    est = rng.uniform(1, 4, 50)
    full = group_summary(g, est, np.full(50, 4.0), np.zeros(50, bool), np.full(50, -1), np.arange(50.0))
    first = group_summary(np.where(g < 3, g, -1), est, np.full(50, 4.0), np.zeros(50, bool), np.full(50, -1),
                          np.arange(50.0))
    np.testing.assert_allclose(full["sum_ratio"].iloc[:3], first["sum_ratio"])
    assert full["n"].iloc[:3].tolist() == first["n"].tolist()


def test_threshold_bunching_binomial_tail() -> None:
    buyer = np.r_[np.zeros(20, int), np.ones(180, int), -np.ones(3, int)]
    ratio = np.r_[np.full(10, 0.9), np.full(10, 0.3), np.linspace(0.05, 3.0, 180), np.full(3, 0.9)]
    out = threshold_bunching(buyer, ratio)
    assert out["n"].tolist() == [20, 180]
    p = out["p_market"].iloc[0]
    assert p == (10 + ((np.linspace(0.05, 3.0, 180) >= 0.8) & (np.linspace(0.05, 3.0, 180) < 1)).sum()) / 200
    from scipy import stats

    assert out["p_value"].iloc[0] == stats.binom.sf(9, 20, p)
    assert out["p_value"].iloc[0] < 1e-4 < out["p_value"].iloc[1]
