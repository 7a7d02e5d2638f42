"""Per-entity features: pure, vectorised functions over arrays and canonical tables.

Detectors compose these functions; each takes arrays or a :class:`collusion.Market`
and returns a DataFrame indexed by the unit (tender, company, pair...).
"""

from __future__ import annotations

from ._cardinal import (
    CARDINAL_COLUMNS,
    CARDINAL_GROUPS,
    CARDINAL_INDICATORS,
    CardinalSettings,
    cardinal_indicators,
    cardinal_nested,
    ocds_tables_from_market,
)
from ._screens import (
    PUBLISHED_SCREENS,
    SCREEN_COLUMNS,
    combine_moments,
    market_price_screens,
    moments_to_screens,
    price_regularity,
    price_screens,
    screen_moments,
    subset_screens,
)
from ._segments import Segments, group_order

__all__ = [
    "CARDINAL_COLUMNS",
    "CARDINAL_GROUPS",
    "CARDINAL_INDICATORS",
    "CardinalSettings",
    "PUBLISHED_SCREENS",
    "SCREEN_COLUMNS",
    "Segments",
    "cardinal_indicators",
    "cardinal_nested",
    "combine_moments",
    "group_order",
    "market_price_screens",
    "moments_to_screens",
    "ocds_tables_from_market",
    "price_regularity",
    "price_screens",
    "screen_moments",
    "subset_screens",
]
