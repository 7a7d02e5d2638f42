"""Root pytest configuration: names available to every doctest under src/ and tests/."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import collusion as co


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace: dict) -> None:
    doctest_namespace["co"] = co
    doctest_namespace["pd"] = pd
    doctest_namespace["np"] = np
