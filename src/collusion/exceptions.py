"""Exceptions raised by ``collusion``.

The tree, in one place (httpx style)::

    CollusionError                  base of everything the library raises on purpose
    ├── ValidationError (ValueError)   input tables break the schema; ``.problems`` is a tidy table
    ├── MissingTableError (LookupError) an analysis needs a table the market does not have
    ├── NotFittedError (AttributeError) a detector was used before ``fit``
    └── MissingDependencyError (ImportError) an optional extra is not installed
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "CollusionError",
    "MissingDependencyError",
    "MissingTableError",
    "NotFittedError",
    "ValidationError",
]


class CollusionError(Exception):
    """Base class of the errors raised by ``collusion``."""


class ValidationError(CollusionError, ValueError):
    """Input tables break the canonical schema.

    Parameters
    ----------
    problems : pandas.DataFrame
        One row per problem with columns ``table, column, rule, row, value``
        (``row`` is the position in the input frame, ``-1`` for whole-column
        problems). Every problem is listed, not just the first.
    """

    def __init__(self, problems: pd.DataFrame, *, max_lines: int = 30) -> None:
        self.problems = problems
        super().__init__(_format_problems(problems, max_lines=max_lines))


class MissingTableError(CollusionError, LookupError):
    """An analysis needs tables or columns that the market does not provide."""


class NotFittedError(CollusionError, AttributeError):
    """A detector's fitted attributes were read before ``fit`` was called."""


class MissingDependencyError(CollusionError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


def _format_problems(problems: pd.DataFrame, *, max_lines: int) -> str:
    if len(problems) == 0:
        return "no problems"
    groups = problems.groupby(["table", "column", "rule"], sort=False, observed=True)
    lines = [f"{len(problems)} problem(s) in the input tables:"]
    for (table, column, rule), frame in groups:
        rows = frame["row"].tolist()
        shown = ", ".join(str(r) for r in rows[:8]) + (", ..." if len(rows) > 8 else "")
        values = ", ".join(repr(v) for v in frame["value"].tolist()[:3])
        lines.append(f"  {table}.{column}: {rule} — {len(rows)} row(s) [{shown}] e.g. {values}")
        if len(lines) > max_lines:
            lines.append("  ... (see the .problems table for the rest)")
            break
    return "\n".join(lines)
