"""The seven relationship analyses, each a detector with one interface (:class:`BaseDetector`)."""

from __future__ import annotations

from ._base import BaseDetector, check_is_fitted
from ._winner_builder import WinnerBuilderDetector

__all__ = [
    "BaseDetector",
    "WinnerBuilderDetector",
    "check_is_fitted",
]
