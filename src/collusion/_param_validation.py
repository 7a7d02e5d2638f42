"""Small parameter-constraint helpers (our own equivalent of sklearn's private ones).

Detectors declare ``_parameter_constraints = {"contamination": [Interval(0, 0.5), None]}``;
:func:`validate_params` checks them when ``fit`` starts, so ``__init__`` only stores.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["Interval", "Options", "validate_params"]


@dataclass(frozen=True)
class Interval:
    """A real interval; ``closed`` in {"both", "left", "right", "neither"}.

    Examples
    --------
    >>> Interval(0, 0.5, closed="right").accepts(0.5), Interval(0, 0.5, closed="right").accepts(0)
    (True, False)
    """

    low: float | None
    high: float | None
    closed: str = "both"
    integer: bool = False

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` lies in the interval."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.integer and not isinstance(value, numbers.Integral):
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self) -> str:
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        kind = "an int" if self.integer else "a float"
        return f"{kind} in {left}{self.low}, {self.high}{right}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: frozenset[Any]

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is one of the options."""
        try:
            return value in self.values
        except TypeError:
            return False

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in sorted(self.values, key=str))


def _accepts(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, type):
        return isinstance(value, constraint) and not (constraint is not bool and isinstance(value, bool))
    if callable(getattr(constraint, "accepts", None)):
        return bool(constraint.accepts(value))
    raise TypeError(f"unknown constraint {constraint!r}")


def _describe(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, type):
        return f"an instance of {constraint.__name__}"
    return str(constraint)


def validate_params(owner: str, params: Mapping[str, Any], constraints: Mapping[str, list[Any]]) -> None:
    """Raise ``ValueError`` listing every parameter that breaks its constraints.

    Examples
    --------
    >>> validate_params("D", {"k": 3}, {"k": [Interval(1, None, integer=True)]})
    >>> validate_params("D", {"k": 0}, {"k": [Interval(1, None, integer=True)]})
    Traceback (most recent call last):
    ...
    ValueError: D: parameter 'k' must be an int in [1, None]; got 0
    """
    errors = []
    for name, allowed in constraints.items():
        if name not in params:
            continue
        value = params[name]
        if not any(_accepts(c, value) for c in allowed):
            what = " or ".join(_describe(c) for c in allowed)
            errors.append(f"{owner}: parameter {name!r} must be {what}; got {value!r}")
    if errors:
        raise ValueError("\n".join(errors))
