"""Shared fixtures; also injects ``co``, ``pd`` and ``np`` into doctests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import collusion as co

#: The read-only real data folder (labelled cartels, Cardinal fixtures), beside the repo.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace: dict) -> None:
    doctest_namespace["co"] = co
    doctest_namespace["pd"] = pd
    doctest_namespace["np"] = np


@pytest.fixture
def shared_data() -> Path:
    """Path of ../shared/data; skips the test when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(params=[0, 1])
def global_random_seed(request: pytest.FixtureRequest) -> int:
    """Seeds that every randomised test runs with (sklearn's pattern)."""
    return int(request.param)
