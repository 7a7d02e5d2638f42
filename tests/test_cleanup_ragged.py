"""Ragged rows become the same labels and member hashes whatever kinds they mix."""

import numpy as np
import pandas as pd
import pytest

from collusion._ragged import KINDS, Ragged
from collusion.datasets import make_market
from collusion.results import member_hashes


@pytest.fixture(scope="module")
def market():
    return make_market(300, seed=2)[0]


def _rows(market) -> list[Ragged]:
    n_b, n_c, n_t = market.n("buyer"), market.n("company"), market.n("tender")
    mixed = Ragged.from_columns([np.array([0, 1, -1, n_b - 1]), np.array([2, -1, -1, n_c - 1])],
                                kinds=["buyer", "company"])
    tenders = Ragged.from_pairs(np.array([0, 0, 2]), np.array([n_t - 1, 3, 1]), 4)  # no kinds: tenders
    one_kind = Ragged.from_pairs(np.array([1, 3]), np.array([4, 0]), 4, kind="company")
    return [mixed, tenders, one_kind, mixed.hstack(tenders), Ragged.empty_rows(3)]


def test_labels_are_the_kind_prefixed_ids(market) -> None:
    for r in _rows(market):
        flat = [f"{KINDS[k]}:{market.entities[KINDS[k]][c]}" for k, c in zip(r._kinds(), r.codes)]
        want = [flat[a:b] for a, b in zip(r.offsets[:-1], r.offsets[1:])]
        assert [list(x) for x in r.labels(market)] == want
        bare = r.labels(market, prefix=False)
        assert [list(x) for x in bare] == [[s.split(":", 1)[1] for s in row] for row in want]


def test_labels_rows_pick_and_order_as_take(market) -> None:
    for r in _rows(market):
        rows = np.arange(len(r))[::-1]
        assert r.labels(market, rows=rows).tolist() == r.take(rows).labels(market).tolist()


def test_hashes_are_member_hashes_of_the_labels(market) -> None:
    for r in _rows(market):
        labels = r.labels(market)
        assert r.hashes(market).tolist() == member_hashes(pd.Series(labels)).tolist()
