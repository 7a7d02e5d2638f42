"""The same conformance checks over every detector (sklearn's parametrize_with_checks pattern)."""

from __future__ import annotations

import pytest

from collusion._screen import default_detectors
from collusion.datasets import make_market
from collusion.utils.estimator_checks import parametrize_with_checks


@pytest.fixture(scope="module")
def market():
    market, _ = make_market(2_000, seed=3)
    return market


@parametrize_with_checks(default_detectors())
def test_detector_conformance(detector, check, market) -> None:
    check(detector, market)
