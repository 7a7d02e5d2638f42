"""Readers that map external data onto the canonical tables of a :class:`collusion.Market`."""

from __future__ import annotations

from ._cartels import CARTEL_MARKETS, load_cartel_market, read_cartel_csv, tender_labels
from ._ocds import OCDSFormatError, OCDSSummary, OCDSTables, read_ocds, read_ocds_tables

__all__ = [
    "CARTEL_MARKETS",
    "OCDSFormatError",
    "OCDSSummary",
    "OCDSTables",
    "load_cartel_market",
    "read_cartel_csv",
    "read_ocds",
    "read_ocds_tables",
    "tender_labels",
]
