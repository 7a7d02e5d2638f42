"""Leiden co-bidding groups: reproducible, independent of edge order and of NetworKit's global state."""

from __future__ import annotations

import numpy as np
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
    a, b, w, n = _cliques(4, 4, seed=1)
    once = cobidding_communities(a, b, w, n)
    halves = cobidding_communities(np.r_[a, a], np.r_[b, b], np.r_[w, w] / 2, n)
    np.testing.assert_array_equal(once, halves)


def test_reproducible_whatever_networkit_threads_and_thread_count_restored():
    import networkit as nk

    a, b, w, n = _cliques(8, 6, seed=2)
    before = nk.getMaxNumberOfThreads()
    ref = cobidding_communities(a, b, w, n, seed=7)
    nk.setNumberOfThreads(2)
    try:
        np.testing.assert_array_equal(cobidding_communities(a, b, w, n, seed=7), ref)
        assert nk.getMaxNumberOfThreads() == 2
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
