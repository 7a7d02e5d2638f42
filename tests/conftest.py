"""Shared test fixtures (the doctest namespace lives in the root conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

#: The read-only real data folder (labelled cartels, Cardinal fixtures), beside the repo.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
