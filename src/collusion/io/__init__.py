"""Readers that map external data onto the canonical tables of a :class:`collusion.Market`."""

from __future__ import annotations

from ._cartels import CARTEL_MARKETS, load_cartel_market, read_cartel_csv, tender_labels

__all__ = [
    "CARTEL_MARKETS",
    "load_cartel_market",
    "read_cartel_csv",
    "tender_labels",
]
