"""Co-bidding pairs, suspicious co-bidding, Leiden groups and group statistics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from collusion.features._cobidding import (
    bid_incidence,
    cobid_pairs,
    cobidding_communities,
    group_ids,
    group_statistics,
    group_tenders,
    pair_wins,
    suspicious_cobids,
    tender_group_share,
    tender_winner,
)
from collusion.features._surprisal import bh_qvalues


def _market(tender, company, winner=None, n_t=None, n_c=None):
    tender, company = np.asarray(tender), np.asarray(company)
    n_t = n_t or int(tender.max()) + 1
    n_c = n_c or int(company.max()) + 1
    B = bid_incidence(tender, company, n_tenders=n_t, n_companies=n_c)
    W = None if winner is None else bid_incidence(tender, company, n_tenders=n_t, n_companies=n_c,
                                                  mask=np.asarray(winner, bool))
    return B, W


def test_bid_incidence_counts_duplicate_bids_once_and_drops_missing():
    B = bid_incidence(np.array([0, 0, 1, -1]), np.array([1, 1, 0, 0]), n_tenders=2, n_companies=2)
    assert B.toarray().tolist() == [[0, 1], [1, 0]]


def test_cobid_pairs_hand_computed():
    # tenders: 0 {0,1,2}, 1 {0,1}, 2 {1,2}, 3 {0}
    t = [0, 0, 0, 1, 1, 2, 2, 3]
    c = [0, 1, 2, 0, 1, 1, 2, 0]
    w = [1, 0, 0, 0, 1, 0, 1, 1]
    B, W = _market(t, c, w)
    p = cobid_pairs(B, W).set_index(["company_a", "company_b"])
    assert p.loc[(0, 1), "n_cobids"] == 2
    assert p.loc[(0, 2), "n_cobids"] == 1
    assert p.loc[(1, 2), "n_cobids"] == 2
    assert p.loc[(0, 1), "n_a"] == 3 and p.loc[(0, 1), "n_b"] == 3
    assert p.loc[(0, 1), "jaccard"] == pytest.approx(2 / 4)
    assert p.loc[(1, 2), "exclusivity_b"] == pytest.approx(1.0)
    # firm 0 won tender 0 (with 1 and 2), firm 1 won tender 1, firm 2 won tender 2
    assert (p.loc[(0, 1), "wins_a"], p.loc[(0, 1), "wins_b"]) == (1, 1)
    assert (p.loc[(1, 2), "wins_a"], p.loc[(1, 2), "wins_b"]) == (0, 1)
    assert len(cobid_pairs(B, W, min_cobids=3)) == 0
    assert cobid_pairs(B, W, min_cobids=2)[["company_a", "company_b"]].values.tolist() == [[0, 1], [1, 2]]


def test_underwin_matches_binomial_tail():
    # Firm 0 bids 10 tenders with firm 1 (never wins) and 10 alone (wins 5).
    t = np.r_[np.repeat(np.arange(10), 2), np.arange(10, 20)]
    c = np.r_[np.tile([0, 1], 10), np.zeros(10, int)]
    w = np.r_[np.tile([0, 1], 10), np.arange(10) % 2 == 0].astype(bool)
    B, W = _market(t, c, w)
    out = pair_wins(B, W, np.array([0]), np.array([1]))
    expected = -stats.binom.logcdf(0, 10, 0.5) / np.log(10)
    assert out["wins_a"].iloc[0] == 0 and out["wins_b"].iloc[0] == 10
    assert out["underwin_a"].iloc[0] == pytest.approx(expected)
    assert out["underwin_b"].iloc[0] == 0.0  # firm 1 never bids without firm 0


def test_suspicious_cobids_binomial_and_bh():
    t = np.repeat(np.arange(20), 2)
    c = np.tile([0, 1], 20)
    B, _ = _market(t, c)
    sus = np.zeros(20, bool)
    sus[:10] = True  # q = 0.5 over contested tenders, the pair meets in all 20
    out = suspicious_cobids(B, sus, np.array([0]), np.array([1]), np.array([20]))
    assert out["n_suspicious"].iloc[0] == 10
    assert out["logp"].iloc[0] == pytest.approx(-stats.binom.logsf(9, 20, 0.5) / np.log(10))
    lp = np.array([5.0, 0.5, 2.0, 0.0])
    p = 10 ** -lp
    order = np.argsort(p)
    q = np.minimum.accumulate((p[order] * 4 / np.arange(1, 5))[::-1])[::-1]
    ref = np.empty(4)
    ref[order] = q
    np.testing.assert_allclose(bh_qvalues(lp), -np.log10(np.minimum(ref, 1)), atol=1e-12)


def test_communities_find_two_cliques_deterministically():
    a = np.array([0, 0, 1, 3, 3, 4, 2, 6])
    b = np.array([1, 2, 2, 4, 5, 5, 3, 7])
    w = np.array([5.0, 5, 5, 5, 5, 5, 0.1, 0.1])
    mem = cobidding_communities(a, b, w, 9, seed=1)
    assert mem[:3].tolist() == [mem[0]] * 3 and mem[3:6].tolist() == [mem[3]] * 3
    assert mem[0] != mem[3]
    assert mem[8] == -1  # isolated
    np.testing.assert_array_equal(mem, cobidding_communities(a, b, w, 9, seed=1))


def test_group_statistics_rotation_and_exclusivity():
    # Group {0, 1, 2} bids together in tenders 0-5, wins rotate 0, 1, 2, 0, 1, 2;
    # firm 3 bids alone with member 0 once in tender 6 and wins.
    t = np.r_[np.repeat(np.arange(6), 3), 6, 6]
    c = np.r_[np.tile([0, 1, 2], 6), 0, 3]
    B, _ = _market(t, c)
    winner = np.array([0, 1, 2, 0, 1, 2, 3])
    pairs = cobid_pairs(B)
    mem = np.array([0, 0, 0, -1])
    st_ = group_statistics(mem, B, winner, pairs, time=np.arange(7))
    row = st_.iloc[0]
    assert row["n_members"] == 3 and row["n_tenders"] == 6
    assert row["member_win_share"] == 1.0
    assert row["rotation_evenness"] == pytest.approx(1.0)
    assert row["rotation_alternation"] == 1.0 and row["rotation_expected"] == pytest.approx(2 / 3)
    assert row["presence"] == 1.0 and row["member_bid_share"] == 1.0
    # internal ties 3 pairs x 6 tenders = 18; strength: members 6*2 each + firm 0 once more
    assert row["exclusivity"] == pytest.approx(2 * 18 / (12 + 12 + 13))
    gt = group_tenders(mem, B)
    assert gt["tender"].tolist() == list(range(6))
    share = tender_group_share(mem, B)
    assert share["group_share"].tolist()[:6] == [1.0] * 6 and share["group"].iloc[6] == -1


def test_tender_winner_lowest_code():
    _, W = _market([0, 0, 1], [2, 1, 0], [1, 1, 0])
    assert tender_winner(W).tolist() == [1, -1]


def test_group_ids_depend_only_on_member_set():
    a = group_ids([["company:x", "company:y"]])[0]
    assert a == group_ids([["company:y", "company:x"]])[0]
    assert a != group_ids([["company:x", "company:z"]])[0]


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_pair_counts_invariant_to_relabelling_and_add_up(data):
    n_t = data.draw(st.integers(2, 12))
    n_c = data.draw(st.integers(2, 8))
    rows = data.draw(st.lists(st.tuples(st.integers(0, n_t - 1), st.integers(0, n_c - 1)), min_size=2, max_size=40))
    t = np.array([r[0] for r in rows])
    c = np.array([r[1] for r in rows])
    B, _ = _market(t, c, n_t=n_t, n_c=n_c)
    base = cobid_pairs(B)
    perm = np.array(data.draw(st.permutations(range(n_c))))
    B2, _ = _market(t, perm[c], n_t=n_t, n_c=n_c)
    relabelled = cobid_pairs(B2)
    key = {(min(perm[a], perm[b]), max(perm[a], perm[b])): n for a, b, n in
           zip(base["company_a"], base["company_b"], base["n_cobids"])}
    got = dict(zip(zip(relabelled["company_a"], relabelled["company_b"]), relabelled["n_cobids"]))
    assert got == key
    # Counts over disjoint tender sets add up.
    half = t < n_t // 2
    B_lo, _ = _market(t[half], c[half], n_t=n_t, n_c=n_c) if half.any() else (None, None)
    B_hi, _ = _market(t[~half], c[~half], n_t=n_t, n_c=n_c) if (~half).any() else (None, None)
    total: dict = {}
    for part in (B_lo, B_hi):
        if part is None:
            continue
        p = cobid_pairs(part)
        for a, b, n in zip(p["company_a"], p["company_b"], p["n_cobids"]):
            total[(a, b)] = total.get((a, b), 0) + n
    assert total == dict(zip(zip(base["company_a"], base["company_b"]), base["n_cobids"]))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_cobid_pairs_wins_match_pair_wins(data):
    # cobid_pairs counts wins in its pass over the incidences; pair_wins uses
    # sparse products. Both must give the same columns, also for winner
    # matrices with wins outside B or duplicate entries (the general path).
    n_t = data.draw(st.integers(2, 12))
    n_c = data.draw(st.integers(2, 8))
    rows = data.draw(st.lists(st.tuples(st.integers(0, n_t - 1), st.integers(0, n_c - 1), st.booleans()),
                              min_size=2, max_size=40))
    t = np.array([r[0] for r in rows])
    c = np.array([r[1] for r in rows])
    w = np.array([r[2] for r in rows])
    B, W = _market(t, c, w, n_t=n_t, n_c=n_c)
    kind = data.draw(st.sampled_from(["plain", "outside", "duplicates"]))
    if kind == "outside":
        W = W + sp.csr_matrix(([1], ([0], [n_t - 1])), shape=W.shape, dtype=W.dtype)
    elif kind == "duplicates" and W.nnz:
        # a non-canonical CSR matrix: the first stored win repeated
        r = int(np.flatnonzero(np.diff(W.indptr))[0])
        at = W.indptr[r]
        indptr = W.indptr.copy()
        indptr[r + 1:] += 1
        W = sp.csr_matrix((np.insert(W.data, at, 1), np.insert(W.indices, at, W.indices[at]), indptr), shape=W.shape)
        assert not W.has_canonical_format
    for min_cobids in (1, 2, 3):
        p = cobid_pairs(B, W, min_cobids=min_cobids)
        ref = pair_wins(B, W, p["company_a"].to_numpy(), p["company_b"].to_numpy(), p["n_cobids"].to_numpy())
        for col in ref.columns:
            np.testing.assert_array_equal(p[col].to_numpy(), ref[col].to_numpy(), err_msg=col)


def test_cobid_pairs_underwin_table_matches_pair_wins():
    # Enough pairs per firm for cobid_pairs to take underwin of pairs meeting
    # in few tenders from its per-firm table: the numbers must not change.
    rng = np.random.default_rng(1)
    t = np.repeat(np.arange(400), 3)
    c = np.where(t < 100, rng.integers(0, 5, t.size), rng.integers(0, 60, t.size))  # a few firms meet often
    w = np.tile([True, False, False], 400)
    B, W = _market(t, c, w, n_t=400, n_c=60)
    p = cobid_pairs(B, W)
    assert (p["n_cobids"] <= 4).sum() * 2 >= 60 * 14 and (p["n_cobids"] > 4).any()
    ref = pair_wins(B, W, p["company_a"].to_numpy(), p["company_b"].to_numpy(), p["n_cobids"].to_numpy())
    for col in ref.columns:
        np.testing.assert_array_equal(p[col].to_numpy(), ref[col].to_numpy(), err_msg=col)


def test_binomial_tail_table_gives_the_same_numbers():
    from collusion.features._cobidding import _binom_logsf_at_least

    rng = np.random.default_rng(2)
    n = rng.integers(0, 90, 20_000).astype(np.float64)  # counts above the table size too
    k = np.floor(rng.random(n.size) * (n + 1))
    k[:3], n[:3] = [0.5, -1.0, 5.0], [2.0, 3.0, np.nan]  # not counts: computed directly
    np.testing.assert_array_equal(_binom_logsf_at_least(k, n, 0.13), stats.binom.logsf(k - 1, n, 0.13))


def test_chunked_pair_computations_do_not_depend_on_the_chunk_size(monkeypatch):
    import collusion._incidences as incidences

    rng = np.random.default_rng(3)
    t = np.repeat(np.arange(300), rng.integers(1, 7, 300))
    c = rng.integers(0, 40, t.size)
    w = rng.random(t.size) < 0.3
    B, W = _market(t, c, w, n_t=300, n_c=40)
    sus = rng.random(300) < 0.2

    def run():
        p = cobid_pairs(B, W, flags=sus)
        p2 = cobid_pairs(B, min_cobids=2, flags=sus)
        sc = suspicious_cobids(B, sus, p2["company_a"], p2["company_b"], p2["n_cobids"], p2["n_flagged"])
        return p, p2, sc

    ref = run()
    monkeypatch.setattr(incidences, "CHUNK", 7)
    for x, y in zip(ref, run()):
        assert x.equals(y)


def test_communities_ignore_zero_weights_and_self_loops():
    a = np.array([0, 0, 1, 3, 3, 4, 2])
    b = np.array([1, 2, 2, 4, 5, 5, 3])
    w = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.1])
    ref = cobidding_communities(a, b, w, 7)
    noisy = cobidding_communities(np.r_[a, 6, 2], np.r_[b, 6, 5], np.r_[w, 5.0, 0.0], 7)
    assert noisy.tolist() == ref.tolist() == [0, 0, 0, 1, 1, 1, -1]


@pytest.mark.parametrize("n_min", [0, 1, 3])
def test_triangle_lists_every_count_pair_at_its_cell(n_min):
    from collusion.features._cobidding import _triangle, _triangle_cell

    tn, tk = _triangle(n_min, 9)
    cells = [(n, k) for n in range(n_min, 10) for k in range(n + 1)]
    assert list(zip(tn.tolist(), tk.tolist())) == cells
    assert [_triangle_cell(n_min, n, k) for n, k in cells] == list(range(len(cells)))


def test_underwin_table_over_distinct_totals_gives_the_same_numbers():
    from collusion.features._cobidding import _UNDERWIN_TABLE_N, _Underwin

    rng = np.random.default_rng(4)
    n_tot = rng.integers(1, 30, 50).astype(np.float64)
    n_tot[:10] = n_tot[10:20]  # firms sharing their totals share table rows
    w_tot = np.floor(rng.random(50) * (n_tot + 1))
    w_tot[:10] = w_tot[10:20]
    firm = rng.integers(0, 50, 5_000)
    n = np.minimum(rng.integers(1, 2 * _UNDERWIN_TABLE_N, firm.size), n_tot[firm]).astype(np.int64)
    k = np.floor(rng.random(firm.size) * (n + 1)).astype(np.int64)
    tab = _Underwin(w_tot, n_tot, n)
    assert tab.table is not None and (n > _UNDERWIN_TABLE_N).any()
    np.testing.assert_array_equal(tab(n, k, firm), _Underwin(w_tot, n_tot)(n, k, firm))
