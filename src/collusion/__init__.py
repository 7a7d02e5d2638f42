"""collusion: bid rigging, collusion and corruption risk in public construction procurement.

Load tables into a :class:`Market`, build the typed procurement graph
(:func:`build_graph`), run the seven relationship analyses
(:mod:`collusion.detectors`, or all at once with :func:`screen`) and read one
ranked result table with evidence (:data:`RESULT_COLUMNS`) plus a risk index.

Examples
--------
>>> import collusion as co
>>> from collusion.datasets import make_market
>>> market, truth = make_market(1_000, seed=0)
>>> screening = co.screen(market)
>>> screening.results.columns.tolist() == list(co.RESULT_COLUMNS)
True
"""

from __future__ import annotations

from typing import Any

from . import datasets, detectors, features, graph, io, results
from ._market import Market
from ._risk import risk_index
from ._schema import ENTITY_KINDS, TABLES
from ._screen import Screening, default_detectors, screen
from ._settings import Settings
from .exceptions import (
    CollusionError,
    MissingDependencyError,
    MissingTableError,
    NotFittedError,
    ValidationError,
)
from .graph import ProcurementGraph, build_graph
from .io import read_ocds
from .results import RESULT_COLUMNS

__version__ = "0.1.0"

__all__ = [
    "CollusionError",
    "ENTITY_KINDS",
    "Market",
    "MissingDependencyError",
    "MissingTableError",
    "NotFittedError",
    "ProcurementGraph",
    "RESULT_COLUMNS",
    "Screening",
    "Settings",
    "TABLES",
    "ValidationError",
    "__version__",
    "build_graph",
    "datasets",
    "default_detectors",
    "detectors",
    "features",
    "graph",
    "io",
    "plot",
    "read_ocds",
    "results",
    "risk_index",
    "screen",
    "supervised",
]


def __getattr__(name: str) -> Any:
    # plot (matplotlib) and supervised (model training) load only when used.
    if name in ("plot", "supervised"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'collusion' has no attribute {name!r}")
