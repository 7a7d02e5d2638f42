"""The seven relationship analyses, each a detector with one interface (:class:`BaseDetector`)."""

from __future__ import annotations

from ._base import BaseDetector, check_is_fitted
from ._bid_rigging import BidRiggingDetector
from ._funds import FundsDetector
from ._winner_builder import WinnerBuilderDetector

__all__ = [
    "BaseDetector",
    "BidRiggingDetector",
    "FundsDetector",
    "WinnerBuilderDetector",
    "check_is_fitted",
]
