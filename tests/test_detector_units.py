"""The base detector's contract with subclasses: every unit has a kind and an entity."""

from __future__ import annotations

import pandas as pd
import pytest

from collusion import Market
from collusion.detectors._base import BaseDetector


class _TwoKinds(BaseDetector):
    """A custom detector scoring firms under two unit kinds, one left missing when asked."""

    name = "two_kinds"

    def __init__(self, *, missing: str | None = None) -> None:
        super().__init__()
        self.missing = missing

    def _score(self, graph):
        units = pd.DataFrame({"entity_id": ["A", "B", "C"], "unit": ["firm", "firm", "pair"],
                              "score": [3.0, 1.0, 2.0]})
        if self.missing:
            units[self.missing] = units[self.missing].astype(object)
            units.loc[1, self.missing] = None
        return units

    def _evidence(self, graph, units):
        return [[{"what": "score", "value": s}] for s in units["score"]]


@pytest.fixture
def market():
    return Market.from_frames(
        tenders=pd.DataFrame({"tender_id": ["T1"]}),
        bids=pd.DataFrame({"tender_id": ["T1", "T1", "T1"], "bidder_id": ["A", "B", "C"], "price": [1.0, 2.0, 3.0]}))


def test_units_of_two_kinds_are_ranked_within_their_kind(market):
    res = _TwoKinds().fit(market).results_
    assert res["unit"].tolist() == ["firm", "firm", "pair"]
    assert res["entity_id"].tolist() == ["A", "B", "C"]
    assert res["rank"].tolist() == [1, 2, 1]


@pytest.mark.parametrize("column", ["unit", "entity_id"])
def test_a_unit_without_kind_or_entity_is_a_clear_error(market, column):
    with pytest.raises(ValueError, match=rf"detector 'two_kinds': units column '{column}' is missing at rows \[1\]"):
        _TwoKinds(missing=column).fit(market)
