"""The affinity kernel (analyses 1, 5, 6): tails, co-occurrence, strength, pair statistics, bias, ties.

Hand-computed values for the statistics; hypothesis properties for the
invariances every pair statistic must have (row order, company relabelling,
additivity over disjoint sets of tenders); and the same invariances for the
three detectors built on the kernel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from collusion.features._surprisal import bh_threshold
from collusion import Market
from collusion._arrays import group_keys as _group
from collusion.datasets import generate_frames
from collusion.detectors import AgentBidderDetector, BuyerWinnerDetector, ExpertWinnerDetector
from collusion.features._affinity import (
    binomial_surprise,
    context_links,
    cooccurrence,
    empirical_surprise,
    exclusive_trace_uses,
    firm_strength,
    fisher_surprise,
    hypergeom_surprise,
    pair_affinity,
    score_bias,
)
from collusion.graph import build_graph

DETECTORS = [BuyerWinnerDetector, AgentBidderDetector, ExpertWinnerDetector]


# ------------------------------------------------------------------ tails
def test_binomial_surprise_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    n = rng.integers(1, 40, 200)
    k = rng.integers(1, 40, 200) % (n + 1)
    p = rng.uniform(0.01, 0.99, 200)
    want = -np.log10(stats.binom.sf(k - 1, n, p))
    got = binomial_surprise(k, n, p)
    live = k > 0
    np.testing.assert_allclose(got[live], want[live], rtol=1e-9, atol=1e-12)
    assert (got[~live] == 0).all()


def test_binomial_surprise_edges() -> None:
    # No wins, certain wins and an impossible excess.
    out = binomial_surprise(np.array([0, 3, 3]), np.array([5, 3, 3]), np.array([0.2, 1.0, 0.0]))
    assert out[0] == 0.0 and out[1] == 0.0
    assert out[2] == pytest.approx(36.0)  # p clipped to 1e-12: finite, (1e-12) ** 3
    assert float(binomial_surprise(500, 500, 1e-6)) == 300.0  # capped where doubles underflow
    assert binomial_surprise(5, 5, 0.5) == pytest.approx(np.log10(32))


def test_hypergeom_surprise_is_one_sided_fisher_exact() -> None:
    # All 3 wins among the 3 of 10 tenders with the expert present: 1 / C(10, 3).
    assert float(hypergeom_surprise(3, 10, 3, 3)) == pytest.approx(np.log10(120))
    # Same as Fisher's exact test, alternative "greater", on the 2x2 table.
    a, n_in, k_all, n_all = 6, 9, 8, 30
    table = [[a, n_in - a], [k_all - a, n_all - n_in - (k_all - a)]]
    p = stats.fisher_exact(table, alternative="greater").pvalue
    assert float(hypergeom_surprise(a, n_all, k_all, n_in)) == pytest.approx(-np.log10(p))


def test_fisher_surprise() -> None:
    s = np.array([0.0, 0.5, 2.0, 7.0])
    # One test: Fisher's statistic is chi2(2) whose tail at -2 ln p is p itself.
    np.testing.assert_allclose(fisher_surprise(s), s, atol=1e-9)
    # Hand value: two p = 0.01 tests give X2 = 4 ln 100 on 4 df.
    x2 = 4 * np.log(100)
    assert float(fisher_surprise(2.0, 2.0)) == pytest.approx(-np.log10(stats.chi2.sf(x2, 4)))
    # Monotone in every argument.
    assert fisher_surprise(3.0, 1.0) > fisher_surprise(2.0, 1.0)
    with pytest.raises(ValueError):
        fisher_surprise()


def test_empirical_surprise() -> None:
    out = empirical_surprise(np.array([5.0, 1.0, 1.0, 0.0, np.nan]))
    # 4 values (NaN is not one): 5 is the top (1/4), the two 1s share 3/4, 0 gets 1, NaN nothing.
    np.testing.assert_allclose(out, [np.log10(4), np.log10(4 / 3), np.log10(4 / 3), 0.0, 0.0])
    assert empirical_surprise(np.array([])).size == 0


@given(st.lists(st.floats(0, 1, allow_nan=False, exclude_min=True), min_size=1, max_size=60),
       st.sampled_from([0.01, 0.05, 0.2]))
@settings(max_examples=60, deadline=None)
def test_bh_threshold_matches_brute_force(pvalues: list[float], q: float) -> None:
    p = np.asarray(pvalues)
    m = p.size
    order = np.sort(p)
    passing = [i for i in range(m) if order[i] <= q * (i + 1) / m]
    discoveries = set(np.flatnonzero(p <= order[passing[-1]])) if passing else set()
    thr = bh_threshold(-np.log10(p), q)
    flagged = set(np.flatnonzero(-np.log10(p) >= thr - 1e-12))
    assert flagged == discoveries


# -------------------------------------------------------------- co-occurrence
@given(st.integers(0, 10_000))
@settings(max_examples=30, deadline=None)
def test_cooccurrence_is_the_sparse_product(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_t, n_x, n_b = 6, 4, int(rng.integers(0, 15))
    if seed % 2:  # many contexts per tender (experts on a panel)
        ctx, ctx_t = rng.integers(0, n_x, 8), rng.integers(0, n_t, 8)
    else:  # at most one per tender (buyer, agent): the relabelling path
        ctx_t = rng.permutation(n_t)[: int(rng.integers(1, n_t + 1))]
        ctx = rng.integers(0, n_x, ctx_t.size)
    bid_t = rng.integers(0, n_t, n_b)
    x, b = cooccurrence(ctx, ctx_t, bid_t, n_tenders=n_t)
    e = np.zeros((n_x, n_t), dtype=int)
    e[ctx, ctx_t] = 1
    bm = np.zeros((n_t, n_b), dtype=int)
    bm[bid_t, np.arange(n_b)] = 1
    want = np.argwhere(e @ bm > 0)
    got = np.column_stack([x, b]) if x.size else np.zeros((0, 2), dtype=int)
    assert got.tolist() == sorted(map(list, want.tolist()))  # ordered by (x, bid)


# ------------------------------------------------------------------ strength
def test_firm_strength_is_the_map_fixed_point() -> None:
    rng = np.random.default_rng(1)
    n_t, n_c = 60, 8
    t = np.repeat(np.arange(n_t), 4)
    c = np.concatenate([rng.choice(n_c, 4, replace=False) for _ in range(n_t)])
    # Company 0 wins whenever it bids, the rest at random.
    score = rng.random(t.size) + 10 * (c == 0)
    win = np.zeros(t.size, dtype=bool)
    win[np.arange(n_t) * 4 + score.reshape(n_t, 4).argmax(axis=1)] = True
    r, s = firm_strength(t, c, win, n_tenders=n_t, n_companies=n_c, prior=1.0, tol=1e-12, max_iter=5000)
    np.testing.assert_allclose(s, np.bincount(t, weights=r[c], minlength=n_t))
    wins = np.bincount(c[win], minlength=n_c)
    exposure = np.bincount(c, weights=1 / s[t], minlength=n_c)
    np.testing.assert_allclose(r, (wins + 1.0) / (exposure + 1.0), rtol=1e-8)
    assert r.argmax() == 0
    # Row order does not matter.
    perm = rng.permutation(t.size)
    r2, _ = firm_strength(t[perm], c[perm], win[perm], n_tenders=n_t, n_companies=n_c, tol=1e-12, max_iter=5000)
    np.testing.assert_allclose(r2, r, rtol=1e-9)


# ---------------------------------------------------------------- pair kernel
def _toy() -> dict[str, np.ndarray]:
    """Buyer 0 runs tenders 0-3, buyer 1 runs 4-5; firms 0, 1, 2."""
    return dict(
        ctx=np.array([0, 0, 0, 0, 1, 1]),
        ctx_t=np.arange(6),
        bt=np.array([0, 0, 1, 1, 1, 2, 3, 3, 4, 4, 5, 5]),
        bc=np.array([0, 1, 0, 1, 2, 0, 0, 2, 1, 0, 2, 1]),
        bw=np.array([1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 1, 0], dtype=bool),
    )


def test_pair_affinity_by_hand_uniform() -> None:
    d = _toy()
    non_open = np.array([False, True, True, False, False, False])
    value = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    out = pair_affinity(d["ctx"], d["ctx_t"], d["bt"], d["bc"], d["bw"], n_tenders=6, n_companies=3,
                        flags={"non_open": non_open}, value=value, baseline="uniform", flag_prior=2.0)
    row = out.set_index(["context", "company"]).loc[(0, 0)]
    # Firm 0 bid in tenders 0-3 of buyer 0 and won all; tender 2 is single-bid.
    assert (row["tenders"], row["wins"], row["contested"], row["contested_wins"]) == (4, 4, 3, 3)
    assert row["expected"] == pytest.approx(1 / 2 + 1 / 3 + 1 / 2)
    assert row["excess"] == pytest.approx(-np.log10(stats.binom.sf(2, 3, (1 / 2 + 1 / 3 + 1 / 2) / 3)))
    # Flags: 2 of its 4 wins were non-open; buyer 0 has no other wins; market rate 2/6.
    assert row["non_open_wins"] == 2
    assert row["non_open_baseline"] == pytest.approx((0 + 2.0 * 2 / 6) / (0 + 2.0))
    assert row["irregular_wins"] == 2  # the union of the given flags (only non_open here)
    # Value: firm 0 took all of buyer 0's 100; expected = 10/2 + 20/3 + 30 (single bid) + 40/2.
    assert row["value_share"] == pytest.approx(1.0)
    assert row["expected_value_share"] == pytest.approx((5 + 20 / 3 + 30 + 20) / 100)
    assert row["hhi"] == pytest.approx(1.0)
    other = out.set_index(["context", "company"]).loc[(1, 1)]
    assert (other["wins"], other["value_share"]) == (1, pytest.approx(50 / 110))
    assert other["hhi"] == pytest.approx((50 / 110) ** 2 + (60 / 110) ** 2)


def test_pair_affinity_leave_context_out() -> None:
    # Firms 0, 1, 2 bid in all 20 tenders. Firm 0 wins all 10 of buyer 0 and none of
    # buyer 1's, where firms 1 and 2 take turns.
    n_t = 20
    bt = np.repeat(np.arange(n_t), 3)
    bc = np.tile([0, 1, 2], n_t)
    winner = np.r_[np.zeros(10, dtype=int), np.tile([1, 2], 5)]
    bw = bc == np.repeat(winner, 3)
    ctx = np.repeat([0, 1], 10)
    out = pair_affinity(ctx, np.arange(n_t), bt, bc, bw, n_tenders=n_t, n_companies=3).set_index(["context", "company"])
    # Judged by its record at buyer 1 (no win in 10) firm 0 is weak, so its 10 wins at
    # buyer 0 are a large excess; the uniform baseline would have expected 10 / 3.
    # By hand: the global fit has S_t = 3, r0 = 11 / (20/3 + 1); without buyer 0, firm 0
    # has 0 wins over an exposure of 10 / 3, so r = (0 + 1) / (10/3 + 1) and each tender
    # of buyer 0 is won with r / (S_t - r0 + r).
    r0, r_out = 11 / (20 / 3 + 1), 1 / (10 / 3 + 1)
    assert out.loc[(0, 0), "strength"] == pytest.approx(r_out)
    assert out.loc[(0, 0), "expected"] == pytest.approx(10 * r_out / (3 - r0 + r_out), rel=1e-4)
    assert out.loc[(0, 0), "excess"] > 5
    # Firm 0 at buyer 1: no win, no excess; firm 1 only wins at buyer 1 too, but half as often.
    assert out.loc[(1, 0), "excess"] == 0
    assert 0 < out.loc[(1, 1), "excess"] < out.loc[(0, 0), "excess"]
    uniform = pair_affinity(ctx, np.arange(n_t), bt, bc, bw, n_tenders=n_t, n_companies=3, baseline="uniform")
    assert uniform.set_index(["context", "company"]).loc[(0, 0), "expected"] == pytest.approx(10 / 3)


def _random_bids(rng: np.random.Generator, n_t: int, n_c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bids of a random market: 1-4 distinct bidders per tender, one winner each (tender, company, is_winner)."""
    k = rng.integers(1, 5, n_t)
    bt = np.repeat(np.arange(n_t), k)
    bc = np.concatenate([rng.choice(n_c, size, replace=False) for size in k])
    bw = np.zeros(bt.size, dtype=bool)
    bw[np.cumsum(k) - k + rng.integers(0, k)] = True
    return bt, bc, bw


@given(st.integers(0, 10_000))
@settings(max_examples=25, deadline=None)
def test_pair_affinity_invariances(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_t, n_c, n_x = 30, 7, 3
    bt, bc, bw = _random_bids(rng, n_t, n_c)
    ctx = rng.integers(0, n_x, n_t)
    flags = {"f": rng.random(n_t) < 0.3}
    value = rng.uniform(1, 100, n_t)
    kw = dict(n_tenders=n_t, n_companies=n_c, flags=flags, value=value)
    base = pair_affinity(ctx, np.arange(n_t), bt, bc, bw, **kw)
    # Shuffled bid rows: identical result.
    perm = rng.permutation(bt.size)
    shuffled = pair_affinity(ctx, np.arange(n_t), bt[perm], bc[perm], bw[perm], **kw)
    pd.testing.assert_frame_equal(base, shuffled, rtol=1e-6)
    # Relabelled companies: the same statistics under the new labels.
    relabel = rng.permutation(n_c)
    moved = pair_affinity(ctx, np.arange(n_t), bt, relabel[bc], bw, **kw)
    moved["company"] = np.argsort(relabel)[moved["company"].to_numpy()]
    moved = moved.sort_values(["context", "company"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(base, moved, rtol=1e-6)
    # Value in other units: shares do not move.
    scaled = pair_affinity(ctx, np.arange(n_t), bt, bc, bw, **{**kw, "value": value * 1000})
    np.testing.assert_allclose(scaled["value_share"], base["value_share"])


@given(st.lists(st.integers(-5, 2**40), max_size=200))
@settings(max_examples=60, deadline=None)
def test_group_is_unique_with_inverse(keys: list[int]) -> None:
    key = np.array(keys, dtype=np.int64)
    uniq, inv = _group(key)
    ref_u, ref_inv = np.unique(key, return_inverse=True)
    assert uniq.tolist() == ref_u.tolist()
    assert inv.tolist() == ref_inv.ravel().tolist()


@given(st.integers(0, 10_000), st.integers(2, 4))
@settings(max_examples=20, deadline=None)
def test_pair_affinity_min_tenders_is_a_filter(seed: int, min_tenders: int) -> None:
    """Skipping low-support pairs early gives the very rows (and triples) of filtering afterwards."""
    rng = np.random.default_rng(seed)
    n_t, n_c, n_x = 40, 6, 3
    bt, bc, bw = _random_bids(rng, n_t, n_c)
    ctx = rng.integers(0, n_x, n_t)
    kw = dict(n_tenders=n_t, n_companies=n_c, flags={"f": rng.random(n_t) < 0.3},
              value=rng.uniform(1, 100, n_t), bid_flags={"b": rng.random(bt.size) < 0.2}, return_triples=True)
    full, tri_full = pair_affinity(ctx, np.arange(n_t), bt, bc, bw, **kw)
    some, tri_some = pair_affinity(ctx, np.arange(n_t), bt, bc, bw, min_tenders=min_tenders, **kw)
    keep = full["tenders"].to_numpy() >= min_tenders
    pd.testing.assert_frame_equal(some, full.loc[keep].reset_index(drop=True))
    rows = np.cumsum(keep) - 1
    expect = tri_full.loc[keep[tri_full["pair"].to_numpy()]].assign(
        pair=lambda f: rows[f["pair"].to_numpy()]).reset_index(drop=True)
    pd.testing.assert_frame_equal(tri_some, expect)


def test_pair_affinity_counts_add_over_disjoint_tenders() -> None:
    rng = np.random.default_rng(5)
    n_t, n_c = 40, 6
    bt, bc, bw = _random_bids(rng, n_t, n_c)
    ctx = rng.integers(0, 3, n_t)
    flags = {"f": rng.random(n_t) < 0.4}
    half = np.arange(n_t) < 20
    kw = dict(n_tenders=n_t, n_companies=n_c, flags=flags, baseline="uniform")
    cols = ["tenders", "wins", "contested", "contested_wins", "expected", "f_wins"]
    full = pair_affinity(ctx, np.arange(n_t), bt, bc, bw, **kw).set_index(["context", "company"])[cols]
    parts = [pair_affinity(ctx[sel], np.flatnonzero(sel), bt, bc, bw, **kw).set_index(["context", "company"])[cols]
             for sel in (half, ~half)]
    summed = parts[0].add(parts[1], fill_value=0).reindex(full.index)
    pd.testing.assert_frame_equal(full.astype(float), summed.astype(float))


def test_pair_affinity_unrelated_tenders_leave_pairs_unchanged() -> None:
    d = _toy()
    before = pair_affinity(d["ctx"], d["ctx_t"], d["bt"], d["bc"], d["bw"], n_tenders=6, n_companies=3)
    # Buyer 2 with new firms 3 and 4 and tenders 6-8.
    bt = np.r_[d["bt"], [6, 6, 7, 7, 8]]
    bc = np.r_[d["bc"], [3, 4, 3, 4, 4]]
    bw = np.r_[d["bw"], [True, False, False, True, True]]
    after = pair_affinity(np.r_[d["ctx"], [2, 2, 2]], np.arange(9), bt, bc, bw, n_tenders=9, n_companies=5)
    cols = ["tenders", "wins", "contested", "contested_wins", "expected", "excess", "strength"]
    pd.testing.assert_frame_equal(before[cols], after.iloc[: len(before)][cols], rtol=1e-5)


def test_pair_affinity_bid_flags_and_triples() -> None:
    d = _toy()
    prepared = np.zeros(d["bt"].size, dtype=bool)
    prepared[[0, 2]] = True  # firm 0's bids in tenders 0 and 1
    out, tri = pair_affinity(d["ctx"], d["ctx_t"], d["bt"], d["bc"], d["bw"], n_tenders=6, n_companies=3,
                             bid_flags={"prepared": prepared}, return_triples=True)
    row = out.set_index(["context", "company"]).loc[(0, 0)]
    assert row["prepared_bids"] == 2
    assert row["prepared_baseline"] == pytest.approx(2 / 12)
    assert row["prepared_surprise"] == pytest.approx(-np.log10(stats.binom.sf(1, 4, 2 / 12)))
    assert len(tri) == d["bt"].size and set(tri["bid"]) == set(range(d["bt"].size))
    assert tri.loc[tri["tender"] == 2, "p"].tolist() == [1.0]  # the single bid wins for sure


def test_pair_affinity_rejects_bad_input() -> None:
    d = _toy()
    with pytest.raises(ValueError, match="flag 'x'"):
        pair_affinity(d["ctx"], d["ctx_t"], d["bt"], d["bc"], d["bw"], n_tenders=6, n_companies=3,
                      flags={"x": np.zeros(5, dtype=bool)})
    with pytest.raises(ValueError, match="baseline"):
        pair_affinity(d["ctx"], d["ctx_t"], d["bt"], d["bc"], d["bw"], n_tenders=6, n_companies=3, baseline="x")
    with pytest.raises(ValueError, match="same length"):
        pair_affinity(d["ctx"], d["ctx_t"], d["bt"], d["bc"][:-1], d["bw"], n_tenders=6, n_companies=3)


# ----------------------------------------------------------------- score bias
def test_score_bias_is_a_pooled_t_test() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for t in range(12):
        for e in range(4):
            for c in range(3):
                rows.append((t, e, c, 60 + 5 * c + rng.normal(0, 2) + (8 if (e == 0 and c == 2) else 0)))
    ev = pd.DataFrame(rows, columns=["t", "e", "c", "s"])
    out = score_bias(ev.t, ev.e, ev.c, ev.s, n_experts=4, n_companies=3).set_index(["expert", "company"])
    # Hand: bias = own score minus the mean of the other three experts' scores.
    panel = ev.groupby(["t", "c"])["s"].transform("sum")
    ev["d"] = ev.s - (panel - ev.s) / 3
    mine = ev[(ev.e == 0) & (ev.c == 2)].d
    rest = ev[(ev.e == 0) & (ev.c != 2)].d
    t_ref = stats.ttest_ind(mine, rest, equal_var=True)
    row = out.loc[(0, 2)]
    assert row["scored"] == 12
    assert row["bias"] == pytest.approx(mine.mean())
    assert row["other_bias"] == pytest.approx(rest.mean())
    assert row["bias_t"] == pytest.approx(t_ref.statistic)
    assert row["bias_surprise"] == pytest.approx(-np.log10(t_ref.pvalue / 2), rel=1e-6)
    # The captured pair stands out from every other pair.
    assert out["bias_surprise"].idxmax() == (0, 2)


def test_score_bias_for_given_pairs() -> None:
    rng = np.random.default_rng(4)
    t = np.repeat(np.arange(20), 6)
    e = np.tile(np.repeat([0, 1, 2], 2), 20)
    c = rng.integers(0, 4, t.size)
    s = rng.normal(60, 5, t.size)
    full = score_bias(t, e, c, s, n_experts=3, n_companies=4)
    want = np.array([0 * 4 + 1, 1 * 4 + 3, 2 * 4 + 0, 2 * 4 + 2])
    have = full["expert"].to_numpy() * 4 + full["company"].to_numpy()
    asked = np.union1d(want, [7 * 4])  # an expert code never seen: no bias, no test
    some = score_bias(t, e, c, s, n_experts=8, n_companies=4, pairs=asked)
    assert (some["expert"].to_numpy() * 4 + some["company"].to_numpy()).tolist() == asked.tolist()
    pd.testing.assert_frame_equal(some.iloc[:-1].reset_index(drop=True),
                                  full.loc[np.isin(have, want)].reset_index(drop=True))
    assert some.iloc[-1]["scored"] == 0 and some.iloc[-1]["bias_surprise"] == 0.0


def test_score_bias_does_not_depend_on_row_order() -> None:
    """Scores grouped by (tender, company) take the run path, shuffled ones the hash path: same result."""
    rng = np.random.default_rng(6)
    t = np.repeat(np.arange(30), 6)
    e = np.tile(np.repeat([0, 1, 2], 2), 30)
    c = np.tile([0, 1], 90) + 2 * (t % 2)
    s = rng.normal(60, 5, t.size)
    order = np.lexsort((e, c, t))  # grouped by (tender, company)
    grouped = score_bias(t[order], e[order], c[order], s[order], n_experts=3, n_companies=4)
    mixed = rng.permutation(t.size)
    shuffled = score_bias(t[mixed], e[mixed], c[mixed], s[mixed], n_experts=3, n_companies=4)
    pd.testing.assert_frame_equal(grouped, shuffled)


def test_score_bias_skips_single_scorer_panels() -> None:
    out = score_bias(np.array([0, 1, 1]), np.array([0, 0, 1]), np.array([0, 0, 0]), np.array([50.0, 60.0, 40.0]),
                     n_experts=2, n_companies=1)
    assert out["scored"].tolist() == [1, 1]  # tender 0 had one scorer: no bias
    assert out["bias"].tolist() == [20.0, -20.0]


# ------------------------------------------------------------------- traces
def test_exclusive_trace_uses() -> None:
    ctx = np.array([0, 0, 1, -1])
    # Value 1: two firms, only agent 0 -> exclusive. Value 2: one firm. Value 3: also in a
    # tender without agent. Value 4: two agents.
    trace = np.array([1, 1, 2, 2, 3, 3, 4, 4])
    company = np.array([5, 6, 5, 5, 5, 6, 7, 8])
    tender = np.array([0, 1, 0, 1, 0, 3, 1, 2])
    assert exclusive_trace_uses(trace, company, tender, ctx).tolist() == [True, True] + [False] * 6
    assert exclusive_trace_uses(np.array([]), np.array([]), np.array([]), ctx).size == 0


def _tie_market() -> Market:
    tenders = pd.DataFrame({"tender_id": ["T1", "T2"], "agent_id": ["A1", "A2"], "buyer_id": ["B1", "B1"]})
    bids = pd.DataFrame({"tender_id": ["T1", "T1", "T2", "T2"], "bidder_id": ["C1", "C2", "C3", "C4"],
                         "price": [1.0, 2.0, 1.0, 2.0], "is_winner": [True, False, True, False],
                         "contact": ["a1@agency.cn", None, None, None]})
    parties = pd.DataFrame({
        "party_id": ["A1", "A2", "C1", "C2", "C3", "C4", "P1"],
        "kind": ["agent", "agent", "company", "company", "company", "company", "person"],
        "address": ["1 Main St", None, None, "1 Main St.", None, None, None],
        "email": ["a1@agency.cn", None, None, None, None, None, None],
    })
    relations = pd.DataFrame({"src_id": ["P1", "P1", "A2"], "dst_id": ["A2", "C4", "C3"],
                              "kind": ["legal_rep", "shareholder", "subsidiary"]})
    return Market.from_frames(tenders=tenders, bids=bids, parties=parties, relations=relations)


def test_context_links_finds_every_kind_of_tie() -> None:
    G = build_graph(_tie_market())
    links = context_links(G, "agent")
    m = G.market
    got = {(m.entities["agent"][x], m.entities["company"][c], k)
           for x, c, k in zip(links["context"], links["company"], links["link"])}
    assert got == {
        ("A1", "C1", "bid_trace"),          # C1's bid gives A1's e-mail as contact
        ("A1", "C2", "party_trace"),        # same registered address
        ("A2", "C3", "relation"),           # declared relation, either direction
        ("A2", "C4", "relation_via_person"),  # P1 is A2's legal rep and C4's shareholder
    }
    via = links.set_index("link").loc["relation_via_person"]
    assert via["path"] == ["agent:A2", "relations", "person:P1", "relations", "company:C4"]
    with pytest.raises(ValueError, match="context_type"):
        context_links(G, "company")


# -------------------------------------------- detector-level invariances (all three)
@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    tables, _ = generate_frames(1_000, seed=4)
    return tables


def _scores(tables: dict[str, pd.DataFrame]) -> dict[str, pd.Series]:
    market = Market.from_frames(**tables)  # the graph is built once and shared by the three
    return {cls.name: cls().fit(market).scores_ for cls in DETECTORS}


@pytest.fixture(scope="module")
def base_scores(frames: dict[str, pd.DataFrame]) -> dict[str, pd.Series]:
    return _scores(frames)


def test_detectors_ignore_row_order_and_price_units(frames: dict[str, pd.DataFrame],
                                                    base_scores: dict[str, pd.Series]) -> None:
    rng = np.random.default_rng(0)
    shuffled = _scores({k: v.iloc[rng.permutation(len(v))].reset_index(drop=True) for k, v in frames.items()})
    scaled_frames = dict(frames)
    for table, cols in {"bids": ["price"], "tenders": ["estimate"], "contracts": ["amount", "final_amount"],
                        "payments": ["amount"], "changes": ["amount_delta"],
                        "projects": ["investment_estimate", "preliminary_estimate", "budget", "final_account"]}.items():
        scaled_frames[table] = frames[table].assign(**{c: frames[table][c] * 7.0 for c in cols})
    scaled = _scores(scaled_frames)
    for name, base in base_scores.items():
        assert len(base) > 100
        pd.testing.assert_series_equal(shuffled[name], base)
        pd.testing.assert_series_equal(scaled[name], base, rtol=1e-9)


@given(st.integers(0, 1_000))
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_detectors_ignore_company_ids(frames: dict[str, pd.DataFrame], base_scores: dict[str, pd.Series],
                                      seed: int) -> None:
    # Rename every company (also in parties and relations) so that their sort order changes.
    rng = np.random.default_rng(seed)
    ids = frames["bids"]["bidder_id"].cat.categories
    new = pd.Index([f"Z{i:05d}" for i in rng.permutation(len(ids))])
    mapping = dict(zip(ids, new))

    def rename(col: pd.Series) -> pd.Series:
        return col.astype(object).map(lambda v: mapping.get(v, v)).astype("category")

    cols = {"bids": ["bidder_id"], "evaluations": ["bidder_id"], "contracts": ["winner_id", "builder_id"],
            "payments": ["payee_id"], "parties": ["party_id"], "relations": ["src_id", "dst_id"]}
    moved = dict(frames)
    for table, names in cols.items():
        moved[table] = frames[table].assign(**{c: rename(frames[table][c]) for c in names})
    got_all = _scores(moved)
    for name, base in base_scores.items():
        got = got_all[name]
        back = {f"{a}|{mapping[b]}": f"{a}|{b}" for a, b in (k.split("|") for k in base.index)}
        got.index = got.index.map(lambda k: back.get(k, k))
        pd.testing.assert_series_equal(got.sort_index(), base.sort_index(), check_names=False, rtol=1e-9)


def test_flag_wins_given_explains_flags_by_stratum() -> None:
    from collusion.features._affinity import flag_wins_given

    # Buyer 0: firm 0 wins 6 direct awards (stratum 1, always single-bid); firm 1 wins 6
    # open tenders (stratum 0), 5 of them single-bid; firms 2-9 win 24 open tenders, one single-bid.
    x = np.zeros(36, dtype=np.int64)
    c = np.r_[np.zeros(6), np.ones(6), np.repeat(np.arange(2, 10), 3)].astype(np.int64)
    s = np.r_[np.ones(6), np.zeros(30)].astype(np.int64)
    f = np.r_[np.ones(6), np.ones(5), 0, 1, np.zeros(23)].astype(bool)
    out = flag_wins_given(x, c, f, s, n_companies=10).set_index("company")
    assert out.loc[0, "flagged"] == 6 and out.loc[0, "surprise"] == 0.0
    assert out.loc[1, "flagged"] == 5 and out.loc[1, "surprise"] > 2.0
    assert out.loc[1, "expected"] < 1.0
    # Stratum codes are labels: any relabelling gives the same result.
    again = flag_wins_given(x, c, f, np.where(s == 1, -1, 7), n_companies=10).set_index("company")
    pd.testing.assert_frame_equal(out, again)
    with pytest.raises(ValueError, match="same length"):
        flag_wins_given(x, c[:-1], f, s, n_companies=10)
