"""Settings: the serialisable knobs that depend on jurisdiction and data, not on code."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    """Jurisdiction thresholds and time windows used by the analyses.

    Settings travel with the market (``market.settings``) and from there to
    the graph and the detectors; there is no global state.

    Parameters
    ----------
    currency : str
        Currency of all amounts (informational).
    open_tender_threshold : float
        Estimated value at or above which a tender must use an open procedure
        (default 4,000,000: the PRC threshold for construction works).
    thresholds_by_category : dict
        Per-category overrides of ``open_tender_threshold``.
    open_procedures : tuple of str
        Procedures counted as open competition.
    lot_window_days : int
        Time window in which tenders of one buyer are grouped for lot splitting.
    short_period_days : int
        Bidding periods shorter than this are "short" (PRC minimum is 20 days).

    Examples
    --------
    >>> s = Settings.from_path_or_dict({"open_tender_threshold": 2e6})
    >>> s.threshold_for("works")
    2000000.0
    >>> Settings.from_path_or_dict(s.to_dict()) == s
    True
    """

    currency: str = "CNY"
    open_tender_threshold: float = 4_000_000.0
    thresholds_by_category: Mapping[str, float] = field(default_factory=dict)
    open_procedures: tuple[str, ...] = ("open",)
    lot_window_days: int = 90
    short_period_days: int = 20

    def threshold_for(self, category: str | None) -> float:
        """Return the open-tender threshold for ``category``."""
        if category is not None and category in self.thresholds_by_category:
            return float(self.thresholds_by_category[category])
        return float(self.open_tender_threshold)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        out = asdict(self)
        out["thresholds_by_category"] = dict(self.thresholds_by_category)
        out["open_procedures"] = list(self.open_procedures)
        return out

    @classmethod
    def from_path_or_dict(cls, source: str | Path | Mapping[str, Any] | None) -> Settings:
        """Build settings from a dict, a JSON file path, or ``None`` (defaults)."""
        if source is None:
            return cls()
        if isinstance(source, (str, Path)):
            source = json.loads(Path(source).read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(source) - known)
        if unknown:
            raise ValueError(f"unknown settings {unknown}; known settings are {sorted(known)}")
        values = dict(source)
        if "open_procedures" in values:
            values["open_procedures"] = tuple(values["open_procedures"])
        if "thresholds_by_category" in values:
            values["thresholds_by_category"] = dict(values["thresholds_by_category"])
        return cls(**values)
