"""Trace counts of the graph: distinct sources per target, checked against a set-based count."""

import numpy as np

from collusion.graph._graph import _sources_per_target


def test_sources_per_target_counts_distinct_sources():
    rng = np.random.default_rng(0)
    src = rng.integers(0, 40, 5000).astype(np.int32)
    dst = rng.integers(0, 300, 5000).astype(np.int32)
    got = _sources_per_target(src, dst, (45, 310))
    expected = np.zeros(310, dtype=np.int64)
    for d in range(310):
        expected[d] = len(set(src[dst == d].tolist()))
    assert got.dtype == np.int64 and got.tolist() == expected.tolist()


def test_sources_per_target_many_duplicates_and_empty():
    # 300 copies of one pair: bool data must not wrap around when duplicates merge.
    src = np.zeros(300, dtype=np.int32)
    dst = np.full(300, 2, dtype=np.int32)
    assert _sources_per_target(src, dst, (1, 4)).tolist() == [0, 0, 1, 0]
    empty = np.empty(0, dtype=np.int32)
    assert _sources_per_target(empty, empty, (3, 2)).tolist() == [0, 0]
