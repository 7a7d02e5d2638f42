"""Synthetic procurement markets with planted schemes and their ground truth.

:func:`make_market` builds a seeded market of all nine canonical tables in
which honest firms behave realistically (regional co-bidding, home advantage,
lawful procedures) and seven schemes are planted at configurable rates;
:class:`Truth` lists what was planted. It is the benchmark data, the test
fixture and the demo of ``collusion``.
"""

from __future__ import annotations

from ._config import SCHEME_RATES, MarketConfig
from ._evaluate import evaluate, truth_labels
from ._generator import generate_frames, make_market
from ._truth import TRUTH_COLUMNS, Truth

__all__ = [
    "MarketConfig",
    "SCHEME_RATES",
    "TRUTH_COLUMNS",
    "Truth",
    "evaluate",
    "generate_frames",
    "make_market",
    "truth_labels",
]
