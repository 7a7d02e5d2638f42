"""Leiden co-bidding groups: reproducible, independent of edge order and of NetworKit's global state."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collusion.features import cobidding_communities


def _cliques(n_groups: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Dense groups of firms joined by a few light edges."""
    rng = np.random.default_rng(seed)
    a, b, w = [], [], []
    for g in range(n_groups):
        members = np.arange(g * size, (g + 1) * size)
        for i in members:
            for j in members[members > i]:
                a.append(i), b.append(j), w.append(1.0 + rng.random())
    n = n_groups * size
    for _ in range(n_groups):
        i, j = rng.choice(n, 2, replace=False)
        a.append(min(i, j)), b.append(max(i, j)), w.append(0.05)
    return np.array(a), np.array(b), np.array(w), n + 3  # three isolated firms at the end


def test_planted_groups_are_found_and_isolated_firms_are_alone():
    a, b, w, n = _cliques(6, 5, seed=0)
    mem = cobidding_communities(a, b, w, n)
    for g in range(6):
        block = mem[g * 5:(g + 1) * 5]
        assert (block == block[0]).all() and block[0] >= 0
    assert len(set(mem[:30].tolist())) == 6
    assert (mem[30:] == -1).all()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), flip=st.booleans())
def test_membership_does_not_depend_on_edge_order_or_direction(seed, flip):
    a, b, w, n = _cliques(5, 4, seed=seed)
    ref = cobidding_communities(a, b, w, n, seed=3)
    perm = np.random.default_rng(seed).permutation(a.size)
    a2, b2 = (b[perm], a[perm]) if flip else (a[perm], b[perm])
    np.testing.assert_array_equal(cobidding_communities(a2, b2, w[perm], n, seed=3), ref)


def test_repeated_pairs_add_their_weights():
    from collusion.features._cobidding import _upper_adjacency

    adj = _upper_adjacency(np.array([0, 2, 1, 0]), np.array([1, 1, 2, 1]), np.array([1.0, 2.0, 3.0, 0.5]), 3)
    assert adj.toarray().tolist() == [[0.0, 1.5, 0.0], [0.0, 0.0, 5.0], [0.0, 0.0, 0.0]]
    # Two cliques joined by one light edge stay apart; repeated 40 times, that edge pulls its two ends together.
    a = np.array([0, 0, 1, 3, 3, 4, 2])
    b = np.array([1, 2, 2, 4, 5, 5, 3])
    w = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.1])
    assert cobidding_communities(a, b, w, 6).tolist() == [0, 0, 0, 1, 1, 1]
    heavy = cobidding_communities(np.r_[a, [2] * 40], np.r_[b, [3] * 40], np.r_[w, [0.1] * 40], 6)
    assert heavy[2] == heavy[3] >= 0


def test_leiden_runs_on_one_thread_and_restores_the_thread_count(monkeypatch):
    import networkit as nk

    seen = []
    real = nk.community.ParallelLeiden

    def spy(*args, **kwargs):
        seen.append(nk.getMaxNumberOfThreads())
        return real(*args, **kwargs)

    monkeypatch.setattr(nk.community, "ParallelLeiden", spy)
    a, b, w, n = _cliques(8, 6, seed=2)
    before = nk.getMaxNumberOfThreads()
    nk.setNumberOfThreads(2)
    try:
        ref = cobidding_communities(a, b, w, n, seed=7)
        assert seen == [1]  # several threads race: the result would depend on them
        assert nk.getMaxNumberOfThreads() == 2
        np.testing.assert_array_equal(cobidding_communities(a, b, w, n, seed=7), ref)
    finally:
        nk.setNumberOfThreads(before)


def test_igraph_projection_gives_the_same_groups_as_its_edges():
    import igraph

    a, b, w, n = _cliques(5, 5, seed=4)
    g = igraph.Graph(n=n, edges=list(zip(a.tolist(), b.tolist())))
    g.es["weight"] = w.tolist()
    np.testing.assert_array_equal(cobidding_communities(None, None, None, n, graph=g),
                                  cobidding_communities(a, b, w, n))


def test_no_usable_edge_means_no_group():
    assert cobidding_communities(np.array([0, 1]), np.array([0, 2]), np.array([1.0, 0.0]), 4).tolist() == [-1] * 4


def test_same_groups_whatever_the_callers_thread_count_on_a_weakly_structured_graph():
    import networkit as nk

    rng = np.random.default_rng(5)
    n = 3000
    a = rng.integers(0, n, 30_000)
    b = (a + rng.integers(1, 200, a.size)) % n
    w = rng.random(a.size)
    before = nk.getMaxNumberOfThreads()
    try:
        nk.setNumberOfThreads(1)
        one = cobidding_communities(a, b, w, n, seed=11)
        nk.setNumberOfThreads(4)  # the graph build too must not run on the caller's threads
        for _ in range(3):
            np.testing.assert_array_equal(cobidding_communities(a, b, w, n, seed=11), one)
    finally:
        nk.setNumberOfThreads(before)


def test_any_integer_seed_and_clear_errors_for_codes_out_of_range():
    a, b, w, n = _cliques(3, 4, seed=0)
    for seed in (-1, 2**70):
        assert (cobidding_communities(a, b, w, float(n), seed=seed) >= 0).sum() == 12
    with pytest.raises(ValueError, match=r"company codes in 'b' must lie in \[0, n_companies=3\)"):
        cobidding_communities(np.array([0]), np.array([5]), np.array([1.0]), 3)


def test_non_finite_weights_are_ignored():
    a, b, w, n = _cliques(3, 4, seed=0)
    ref = cobidding_communities(a, b, w, n)
    noisy = cobidding_communities(np.r_[a, 0, 1], np.r_[b, 11, 10], np.r_[w, np.inf, np.nan], n)
    np.testing.assert_array_equal(noisy, ref)
