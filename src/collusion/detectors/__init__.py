"""The seven relationship analyses, each a detector with one interface (:class:`BaseDetector`)."""

from __future__ import annotations

from ._agent_bidder import AgentBidderDetector
from ._base import BaseDetector, SurprisalDetector, check_is_fitted
from ._bid_rigging import BidRiggingDetector
from ._buyer_winner import BuyerWinnerDetector
from ._expert_winner import ExpertWinnerDetector
from ._funds import FundsDetector
from ._lot_splitting import LotSplittingDetector
from ._winner_builder import WinnerBuilderDetector

__all__ = [
    "AgentBidderDetector",
    "BaseDetector",
    "BidRiggingDetector",
    "BuyerWinnerDetector",
    "ExpertWinnerDetector",
    "FundsDetector",
    "LotSplittingDetector",
    "SurprisalDetector",
    "WinnerBuilderDetector",
    "check_is_fitted",
]
