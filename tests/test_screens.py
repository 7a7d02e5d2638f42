"""Price screens: hand-computed values, the published-screen oracle, degenerate tenders, properties."""

from __future__ import annotations

import warnings
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from collusion.features import (
    PUBLISHED_SCREENS,
    combine_moments,
    market_price_screens,
    moments_to_screens,
    price_regularity,
    price_screens,
    screen_moments,
    subset_screens,
)
from collusion.features._segments import (
    Segments,
    counting_sort,
    group_order,
    offsets_from_sorted,
    segment_max,
    segment_mean,
    segment_min,
    segment_nth,
    segment_rank,
    segment_sum,
    segment_var,
)

CARTELS = Path(__file__).parents[1] / ".." / "shared" / "data" / "cartels"
SCALE_FREE = ("cv", "spd", "diffp", "rd", "rdnor", "rdalt", "kurt", "skew", "kstest")
ALL = ("n_bids",) + SCALE_FREE


def _reference(x: np.ndarray) -> dict[str, float]:
    """Textbook screens of one tender with pandas/scipy (the slow, obvious way)."""
    x = np.sort(np.asarray(x, dtype=float))
    n = len(x)
    s = pd.Series(x)
    const = x[-1] == x[0]
    out = {"n_bids": n}
    out["cv"] = np.nan if n < 2 else (0.0 if const else s.std() / s.mean())
    out["spd"] = np.nan if n < 2 else (x[-1] - x[0]) / x[0]
    out["diffp"] = np.nan if n < 2 else (x[1] - x[0]) / x[0]
    out["rd"] = np.nan if n < 3 or x[-1] == x[1] else (x[1] - x[0]) / x[1:].std(ddof=1)
    out["rdnor"] = np.nan if n < 2 or const else (x[1] - x[0]) / np.diff(x).mean()
    out["rdalt"] = np.nan if n < 3 or x[-1] == x[1] else (x[1] - x[0]) / np.diff(x[1:]).mean()
    out["skew"] = np.nan if n < 3 or const else s.skew()
    out["kurt"] = np.nan if n < 4 or const else s.kurt()
    out["kstest"] = (
        np.nan if n < 2 or const else stats.kstest(x, "uniform", args=(x[0], x[-1] - x[0])).statistic
    )
    return out


# --------------------------------------------------------------------------- hand-computed
def test_hand_computed_tender() -> None:
    # bids 100, 110, 120, 130: mean 115, s = sqrt(500/3), losing bids 110..130 have s = 10
    s = price_screens(np.zeros(4, dtype=int), np.array([130.0, 100.0, 120.0, 110.0]), estimate=np.array([125.0]))
    row = s.loc[0]
    assert row["n_bids"] == 4
    assert row["cv"] == pytest.approx(np.sqrt(500 / 3) / 115)
    assert row["spd"] == pytest.approx(0.3)
    assert row["diffp"] == pytest.approx(0.1)
    assert row["rd"] == pytest.approx(10 / 10)
    assert row["rdnor"] == pytest.approx(10 / 10)
    assert row["rdalt"] == pytest.approx(10 / 10)
    assert row["skew"] == pytest.approx(0.0, abs=1e-12)
    assert row["kurt"] == pytest.approx(-1.2)
    # uniform CDF at 100, 110, 120, 130 is 0, 1/3, 2/3, 1: D = max(1/4 - 0, ...) = 1/4
    assert row["kstest"] == pytest.approx(0.25)
    assert row["discount"] == pytest.approx(0.2)


def test_hand_computed_cover_bids() -> None:
    # A designated winner at 90 and three cover bids tightly at 100, 101, 102.
    row = price_screens(np.zeros(4, dtype=int), np.array([90.0, 100.0, 101.0, 102.0])).loc[0]
    assert row["diffp"] == pytest.approx(10 / 90)
    assert row["rd"] == pytest.approx(10 / 1.0)  # losing bids 100,101,102: s = 1
    assert row["rdnor"] == pytest.approx(10 / 4)  # mean adjacent gap (10 + 1 + 1) / 3 = 4
    assert row["rdalt"] == pytest.approx(10 / 1)


def test_matches_reference_on_random_tenders(global_random_seed: int) -> None:
    rng = np.random.default_rng(global_random_seed)
    counts = rng.integers(1, 9, 60)
    codes = np.repeat(np.arange(60), counts)
    prices = np.round(rng.lognormal(10, 0.2, codes.size), 0)  # rounding makes ties
    got = price_screens(codes, prices)
    for t in range(60):
        ref = _reference(prices[codes == t])
        for col in ALL:
            assert got.loc[t, col] == pytest.approx(ref[col], rel=1e-9, abs=1e-9, nan_ok=True), (t, col)


def test_degenerate_tenders_are_nan_without_warnings() -> None:
    codes = np.array([0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 5])
    prices = np.array([10.0, 5.0, 5.0, 7.0, 7.0, 7.0, 3.0, 3.0, 3.0, 3.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = price_screens(codes, prices, n_tenders=7)
    assert s["n_bids"].tolist() == [1, 2, 3, 4, 0, 1, 0]
    # single bids, empty tenders: nothing defined
    assert s.loc[[0, 4, 5, 6], list(SCALE_FREE)].isna().all().all()
    # equal bids: cv/spd/diffp are 0, dispersion-normalised screens NaN
    assert (s.loc[[1, 2, 3], ["cv", "spd", "diffp"]] == 0).all().all()
    assert s.loc[[1, 2, 3], ["rd", "rdnor", "rdalt", "skew", "kurt", "kstest"]].isna().all().all()


def test_minimum_bids_per_screen() -> None:
    s = price_screens(np.array([0, 0, 1, 1, 1]), np.array([1.0, 2.0, 1.0, 2.0, 4.0]))
    assert s.loc[0, ["rd", "rdalt", "skew", "kurt"]].isna().all()
    assert s.loc[0, ["cv", "spd", "diffp", "rdnor", "kstest"]].notna().all()
    assert s.loc[1, ["rd", "rdalt", "skew"]].notna().all() and np.isnan(s.loc[1, "kurt"])


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="bids.price.*rows \\[1\\]"):
        price_screens(np.array([0, 0]), np.array([1.0, -2.0]))
    with pytest.raises(ValueError, match="negative"):
        price_screens(np.array([0, -1]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="not sorted inside tender 0"):
        price_screens(np.array([0, 0]), np.array([2.0, 1.0]), assume_sorted=True)
    with pytest.raises(ValueError, match="convention"):
        price_screens(np.array([0]), np.array([1.0]), convention="other")  # type: ignore[arg-type]


def test_assume_sorted_equals_unsorted(global_random_seed: int) -> None:
    rng = np.random.default_rng(global_random_seed)
    codes = rng.integers(0, 50, 400)
    prices = rng.lognormal(5, 0.3, 400)
    order = np.lexsort((prices, codes))
    a = price_screens(codes, prices, n_tenders=55)
    b = price_screens(codes[order], prices[order], n_tenders=55, assume_sorted=True)
    pd.testing.assert_frame_equal(a, b)


# --------------------------------------------------------------------------- published oracle
#: Measured share of tenders whose published screen is reproduced to 4 decimals
#: with convention="garcia2022" (floors: a regression makes these fail).
PUBLISHED_MATCH = {
    "brazil": dict(CV=1.0, SPD=1.0, DIFFP=1.0, RD=1.0, KURT=1.0, SKEW=1.0, KSTEST=1.0),
    "japan": dict(CV=1.0, SPD=1.0, DIFFP=0.323, RD=0.087, KURT=1.0, SKEW=1.0, KSTEST=1.0),
    "switzerland": dict(CV=1.0, SPD=1.0, DIFFP=0.966, RD=0.030, KURT=1.0, SKEW=1.0, KSTEST=1.0),
}
FILES = {
    "brazil": "DB_Collusion_Brazil_processed.csv",
    "japan": "DB_Collusion_Japan_processed.csv",
    "switzerland": "DB_Collusion_Switzerland_GR_and_See-Gaster_processed.csv",
}


@pytest.mark.realdata
@pytest.mark.parametrize("market", sorted(FILES))
def test_published_screens_oracle(market: str) -> None:
    path = CARTELS / FILES[market]
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    raw = pd.read_csv(path, usecols=["Tender", "Bid_value", *PUBLISHED_SCREENS])
    codes, _ = pd.factorize(raw["Tender"], sort=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = price_screens(codes, raw["Bid_value"].to_numpy(float), convention="garcia2022")
    published = raw.groupby("Tender", sort=True)[list(PUBLISHED_SCREENS)].first().reset_index(drop=True)
    shares = {
        col: float(((got[ours].round(4) - published[col]).abs() <= 1e-4 + 1e-9).mean())
        for col, ours in PUBLISHED_SCREENS.items()
    }
    for col, floor in PUBLISHED_MATCH[market].items():
        assert shares[col] >= floor - 1e-12, (market, col, shares[col])


@pytest.mark.realdata
def test_published_screens_via_market() -> None:
    if not (CARTELS / FILES["brazil"]).is_file():
        pytest.skip("cartel data absent")
    from collusion.io import load_cartel_market, tender_labels

    market, labels = load_cartel_market("brazil", CARTELS)
    got = market_price_screens(market, convention="garcia2022")
    pub = tender_labels(labels)
    assert got.index.equals(pub.index)
    for col, ours in PUBLISHED_SCREENS.items():
        np.testing.assert_allclose(got[ours].round(4), pub[col], atol=1.0001e-4)
    # discount uses the pre-tender estimate
    est = market.tenders["estimate"].to_numpy()
    lowest = market.bids.groupby("tender_id", observed=True)["price"].min().to_numpy()
    np.testing.assert_allclose(got["discount"].to_numpy(), 1 - lowest / est)


# --------------------------------------------------------------------------- properties
tenders_strategy = st.lists(
    st.lists(st.integers(1, 60).map(lambda v: v * 25.0), min_size=1, max_size=8), min_size=1, max_size=8
)


def _flatten(tenders: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    codes = np.repeat(np.arange(len(tenders)), [len(t) for t in tenders])
    return codes, np.concatenate([np.asarray(t, dtype=float) for t in tenders])


@settings(max_examples=60, deadline=None)
@given(tenders=tenders_strategy, c=st.sampled_from([0.001, 0.37, 3.0, 1e4]))
def test_scale_free_screens_are_scale_invariant(tenders: list[list[float]], c: float) -> None:
    codes, prices = _flatten(tenders)
    a = price_screens(codes, prices)[list(SCALE_FREE)]
    b = price_screens(codes, prices * c)[list(SCALE_FREE)]
    pd.testing.assert_frame_equal(a, b, rtol=1e-7, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(tenders=tenders_strategy, seed=st.integers(0, 2**31 - 1))
def test_row_permutation_does_not_change_screens(tenders: list[list[float]], seed: int) -> None:
    codes, prices = _flatten(tenders)
    perm = np.random.default_rng(seed).permutation(codes.size)
    for convention in ("imhof", "garcia2022"):
        a = price_screens(codes, prices, convention=convention)
        b = price_screens(codes[perm], prices[perm], convention=convention)
        pd.testing.assert_frame_equal(a, b, rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(tenders=tenders_strategy, extra=st.lists(st.floats(1.0, 1e6), min_size=1, max_size=6))
def test_unrelated_tender_does_not_change_others(tenders: list[list[float]], extra: list[float]) -> None:
    codes, prices = _flatten(tenders)
    a = price_screens(codes, prices)
    k = len(tenders)
    b = price_screens(np.r_[np.full(len(extra), k), codes], np.r_[extra, prices])
    pd.testing.assert_frame_equal(a, b.iloc[:k], rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- subsets
def _brute_subsets(x: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Screens of every k-subset via itertools and scipy, vectorised over subsets."""
    sub = np.array(list(combinations(np.sort(x), k)))  # (n_subsets, k), rows ascending
    b1, b2, bk = sub[:, 0], sub[:, 1], sub[:, -1]
    varying = bk > b1
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "cv": np.where(varying, sub.std(axis=1, ddof=1) / sub.mean(axis=1), 0.0),
            "spd": (bk - b1) / b1,
            "diffp": (b2 - b1) / b1,
        }
        if k >= 3:
            out["rd"] = np.where(bk > b2, (b2 - b1) / sub[:, 1:].std(axis=1, ddof=1), np.nan)
            out["skew"] = np.where(varying, stats.skew(sub, axis=1, bias=False), np.nan)
        if k >= 4:
            out["kurt"] = np.where(varying, stats.kurtosis(sub, axis=1, bias=False), np.nan)
    return out


def test_subset_screens_equal_brute_force(global_random_seed: int) -> None:
    rng = np.random.default_rng(global_random_seed)
    counts = rng.integers(2, 10, 25)
    codes = np.repeat(np.arange(25), counts)
    prices = np.round(rng.lognormal(8, 0.15, codes.size), 0)
    stats_ = ("mean", "median", "min", "max", "std")
    got = subset_screens(codes, prices, sizes=(2, 3, 4), stats=stats_)
    reducers = {"mean": np.mean, "median": np.median, "min": np.min, "max": np.max, "std": np.std}
    for t in range(25):
        x = prices[codes == t]
        for k in (2, 3, 4):
            if len(x) < k:
                assert np.isnan(got.loc[t, f"cv{k}_mean"])
                continue
            assert got.loc[t, f"n_subsets{k}"] == len(list(combinations(range(len(x)), k)))
            for s, v in _brute_subsets(x, k).items():
                v = np.asarray(v)
                v = v[~np.isnan(v)]
                for stat in stats_:
                    expected = reducers[stat](v) if v.size else np.nan
                    assert got.loc[t, f"{s}{k}_{stat}"] == pytest.approx(expected, rel=1e-9, abs=1e-12, nan_ok=True), (
                        t, k, s, stat)


def test_subset_screens_windows_beyond_cap() -> None:
    x = np.array([100.0, 140.0, 141.0, 142.0, 143.0, 190.0, 260.0])
    got = subset_screens(np.zeros(7, dtype=int), x, sizes=(3,), stats=("min",), screens=("spd", "cv"),
                         max_exact_bids=5)
    assert got.loc[0, "n_subsets3"] == 5 and not got.loc[0, "exact3"]
    # the min-spread subset is a window: 141..143
    assert got.loc[0, "spd3_min"] == pytest.approx(2 / 141)
    exact = subset_screens(np.zeros(7, dtype=int), x, sizes=(3,), stats=("min",), screens=("spd", "cv"))
    assert exact.loc[0, "exact3"] and got.loc[0, "spd3_min"] == pytest.approx(exact.loc[0, "spd3_min"])


def test_subset_screens_validation() -> None:
    with pytest.raises(ValueError, match="sizes"):
        subset_screens(np.array([0]), np.array([1.0]), sizes=(1,))
    with pytest.raises(ValueError, match="stats"):
        subset_screens(np.array([0]), np.array([1.0]), stats=("mode",))


# --------------------------------------------------------------------------- regularity
def test_price_regularity_hand_computed() -> None:
    codes = np.repeat([0, 1, 2, 3], [4, 4, 3, 2])
    prices = np.array(
        [100.0, 110.0, 120.0, 130.0,  # arithmetic
         100.0, 110.0, 121.0, 133.1,  # fixed ratio 1.1
         50.0, 50.0, 60.0,  # two identical
         10.0, 11.0]  # too few for sequences
    )
    r = price_regularity(codes, prices, tol=1e-6)
    assert r["is_arithmetic"].tolist() == [True, False, False, False]
    assert r["is_fixed_ratio"].tolist() == [False, True, False, False]
    assert r["n_identical"].tolist() == [0, 0, 2, 0]
    assert r.loc[2, "share_identical"] == pytest.approx(2 / 3)
    assert r.loc[0, "diff_dev"] == pytest.approx(0.0, abs=1e-12)
    assert r.loc[1, "ratio_dev"] == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(r.loc[3, "diff_dev"])
    loose = price_regularity(codes, prices, identical_rtol=0.2)
    assert loose.loc[0, "n_identical"] == 4  # 10% gaps count as identical at 20%


# --------------------------------------------------------------------------- moments
def test_moments_add_over_partitions(global_random_seed: int) -> None:
    rng = np.random.default_rng(global_random_seed)
    codes = rng.integers(0, 40, 300)
    prices = rng.lognormal(16, 0.01, 300)  # ~1e7 with CV 1%: needs the shift
    shift = np.full(40, 8.9e6)
    split = rng.random(300) < 0.5
    parts = [screen_moments(codes[m], prices[m], n_tenders=40, shift=shift) for m in (split, ~split)]
    whole = moments_to_screens(screen_moments(codes, prices, n_tenders=40, shift=shift))
    combined = moments_to_screens(combine_moments(*parts))
    pd.testing.assert_frame_equal(whole, combined, rtol=1e-9)
    ref = price_screens(codes, prices, n_tenders=40)
    for col in ("n_bids", "cv", "skew", "kurt", "spd"):
        np.testing.assert_allclose(whole[col], ref[col], rtol=1e-6, atol=1e-9)
    # disjoint sets of tenders concatenate
    lo = screen_moments(codes[codes < 20], prices[codes < 20], n_tenders=20)
    hi = screen_moments(codes[codes >= 20] - 20, prices[codes >= 20], n_tenders=20)
    hi.index = hi.index + 20
    cat = moments_to_screens(combine_moments(lo, hi))
    np.testing.assert_allclose(cat["cv"], ref["cv"], rtol=1e-6)


def test_combine_moments_rejects_mixed_shifts() -> None:
    a = screen_moments(np.array([0]), np.array([1.0]), shift=0.5)
    b = screen_moments(np.array([0]), np.array([2.0]), shift=0.0)
    with pytest.raises(ValueError, match="different shifts"):
        combine_moments(a, b)


# --------------------------------------------------------------------------- segments
def test_segments_match_pandas_groupby(global_random_seed: int) -> None:
    rng = np.random.default_rng(global_random_seed)
    codes = rng.integers(0, 30, 500)
    codes[codes == 7] = 8  # an empty group in the middle
    values = rng.normal(10, 3, 500)
    order, offsets = group_order(codes, 32, values=values)
    x = values[order]
    g = pd.Series(values).groupby(codes)
    full = pd.RangeIndex(32)
    np.testing.assert_allclose(segment_sum(x, offsets), g.sum().reindex(full, fill_value=0.0))
    np.testing.assert_allclose(segment_mean(x, offsets), g.mean().reindex(full))
    np.testing.assert_allclose(segment_var(x, offsets, ddof=1), g.var(ddof=1).reindex(full))
    np.testing.assert_allclose(segment_var(x, offsets, ddof=0), g.var(ddof=0).reindex(full))
    np.testing.assert_allclose(segment_min(x, offsets), g.min().reindex(full))
    np.testing.assert_allclose(segment_max(x, offsets), g.max().reindex(full))
    np.testing.assert_allclose(segment_nth(x, offsets, 2), g.apply(lambda s: np.sort(s.to_numpy())[2]
                                                                   if len(s) > 2 else np.nan).reindex(full))
    # ranks inside segments = pandas rank (values are distinct)
    rank = np.empty(500, dtype=np.int64)
    rank[order] = segment_rank(offsets)
    np.testing.assert_array_equal(rank, g.rank(method="first").to_numpy().astype(int) - 1)


def test_counting_sort_is_stable_and_handles_empty() -> None:
    order, offsets = counting_sort(np.array([3, 1, 3, 1, 0]), 5)
    assert order.tolist() == [4, 1, 3, 0, 2]
    assert offsets.tolist() == [0, 1, 3, 3, 5, 5]
    order, offsets = counting_sort(np.array([], dtype=int), 3)
    assert order.size == 0 and offsets.tolist() == [0, 0, 0, 0]
    assert segment_min(np.array([]), offsets).shape == (3,)
    with pytest.raises(ValueError, match="not sorted"):
        offsets_from_sorted(np.array([1, 0]))
    seg = Segments.from_codes(np.array([0, 0, 1]), assume_sorted=True)
    assert seg.order is None and seg.counts.tolist() == [2, 1]


def test_market_price_screens_index_and_disqualified() -> None:
    from collusion import Market

    tenders = pd.DataFrame({"tender_id": ["T1", "T2", "T3"], "estimate": [100.0, 50.0, np.nan]})
    bids = pd.DataFrame(
        {
            "tender_id": ["T1", "T1", "T1", "T2", "T2"],
            "bidder_id": ["a", "b", "c", "a", "b"],
            "price": [90.0, 95.0, 99.0, 40.0, 60.0],
            "disqualified": [False, False, True, False, False],
        }
    )
    market = Market.from_frames(tenders=tenders, bids=bids)
    s = market_price_screens(market)
    assert s.index.tolist() == ["T1", "T2", "T3"] and s.index.name == "tender_id"
    assert s["n_bids"].tolist() == [3, 2, 0]
    assert s.loc["T1", "discount"] == pytest.approx(0.1) and np.isnan(s.loc["T3", "discount"])
    valid = market_price_screens(market, include_disqualified=False)
    assert valid.loc["T1", "n_bids"] == 2 and valid.loc["T1", "spd"] == pytest.approx(5 / 90)


@settings(max_examples=80, deadline=None)
@given(
    codes=st.lists(st.integers(0, 6), max_size=40),
    seed=st.integers(0, 2**31 - 1),
)
def test_group_order_equals_lexsort(codes: list[int], seed: int) -> None:
    from collusion.features._segments import sort_by_group

    c = np.asarray(codes, dtype=np.int64)
    v = np.random.default_rng(seed).integers(0, 4, c.size).astype(float)  # many ties
    order, offsets = group_order(c, 7, values=v)
    order = np.arange(c.size) if order is None else order
    ref = np.lexsort((np.arange(c.size), v, c))  # ties keep input order
    np.testing.assert_array_equal(order, ref)
    x, off2 = sort_by_group(c, v, 7)
    np.testing.assert_array_equal(x, v[ref])
    np.testing.assert_array_equal(offsets, off2)
    np.testing.assert_array_equal(offsets, np.r_[0, np.cumsum(np.bincount(c, minlength=7))])
