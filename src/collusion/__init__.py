"""collusion: bid rigging, collusion and corruption risk in public construction procurement.

Load tables into a :class:`Market`, build the typed procurement graph, run the
seven relationship analyses, read one ranked result table with evidence.
"""

from __future__ import annotations

from ._market import Market
from ._schema import ENTITY_KINDS, TABLES
from ._settings import Settings
from .exceptions import (
    CollusionError,
    MissingDependencyError,
    MissingTableError,
    NotFittedError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "CollusionError",
    "ENTITY_KINDS",
    "Market",
    "MissingDependencyError",
    "MissingTableError",
    "NotFittedError",
    "Settings",
    "TABLES",
    "ValidationError",
    "__version__",
]
