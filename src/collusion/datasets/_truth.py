"""``Truth``: the planted schemes of a synthetic market, as tidy tables of ids."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

__all__ = ["TRUTH_COLUMNS", "Truth"]

#: Table name -> (columns, unit counted by :meth:`Truth.counts`).
TRUTH_COLUMNS: dict[str, tuple[tuple[str, ...], str]] = {
    "cartels": (("cartel_id", "company_id"), "company"),
    "cartel_tenders": (("tender_id", "cartel_id"), "tender"),
    "favoured_pairs": (("buyer_id", "company_id"), "pair"),
    "captured_agents": (("agent_id", "company_id"), "pair"),
    "captured_experts": (("expert_id", "company_id"), "pair"),
    "licence_lending": (("contract_id", "winner_id", "builder_id"), "contract"),
    "over_disbursement": (("contract_id",), "contract"),
    "misdirected_payments": (("contract_id",), "contract"),
    "early_payments": (("contract_id",), "contract"),
    "win_low_change_high": (("contract_id",), "contract"),
    "cost_overruns": (("project_id",), "project"),
    "split_groups": (("group_id", "tender_id"), "tender"),
    "duplicate_parties": (("party_id", "duplicate_of"), "party"),
}


def _frame(name: str, data: Any = None) -> pd.DataFrame:
    cols = list(TRUTH_COLUMNS[name][0])
    if data is None:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
    frame = pd.DataFrame(data)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"truth table {name!r} lacks columns {missing}")
    return frame[cols].astype(object).reset_index(drop=True)


@dataclass(frozen=True)
class Truth:
    """Ground truth of the schemes planted by :func:`~collusion.datasets.make_market`.

    Every attribute is a DataFrame of string ids that exist in the market
    (see :data:`TRUTH_COLUMNS` for the columns); an empty frame means the
    scheme was disabled or found no room. Only units that left a mark in the
    data are listed: cartels that rigged at least one tender, favoured or
    captured pairs whose company won at least one rigged tender, captured
    experts who sat at least once where their company bid.

    Examples
    --------
    >>> from collusion.datasets import Truth
    >>> t = Truth.from_dict({"cartels": {"cartel_id": ["G1", "G1"], "company_id": ["C1", "C2"]}})
    >>> t.counts().query("scheme == 'cartels'")[["unit", "count"]].to_dict("records")
    [{'unit': 'company', 'count': 2}, {'unit': 'group', 'count': 1}]
    >>> Truth.from_dict(t.to_dict()) == t
    True
    """

    cartels: pd.DataFrame
    cartel_tenders: pd.DataFrame
    favoured_pairs: pd.DataFrame
    captured_agents: pd.DataFrame
    captured_experts: pd.DataFrame
    licence_lending: pd.DataFrame
    over_disbursement: pd.DataFrame
    misdirected_payments: pd.DataFrame
    early_payments: pd.DataFrame
    win_low_change_high: pd.DataFrame
    cost_overruns: pd.DataFrame
    split_groups: pd.DataFrame
    duplicate_parties: pd.DataFrame

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Truth):
            return NotImplemented
        return all(getattr(self, f.name).equals(getattr(other, f.name)) for f in fields(self))

    __hash__ = None  # type: ignore[assignment]  # DataFrames are mutable

    def tables(self) -> dict[str, pd.DataFrame]:
        """Return ``{name: frame}`` of every truth table."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def counts(self) -> pd.DataFrame:
        """Tidy counts per scheme: ``scheme, unit, count`` (distinct units; groups too).

        ``unit`` is what the scheme is planted on: cartels count member firms
        and (in a second row) cartels, split groups count tenders and groups.
        """
        rows = []
        for name, frame in self.tables().items():
            cols, unit = TRUTH_COLUMNS[name]
            key = list(cols[:2]) if unit == "pair" else [c for c in cols if c.endswith("_id")][:1]
            if name == "cartels":
                key = ["company_id"]
            if name == "split_groups":
                key = ["tender_id"]
            rows.append((name, unit, int(frame.drop_duplicates(key).shape[0])))
            if name in ("cartels", "split_groups"):
                gcol = "cartel_id" if name == "cartels" else "group_id"
                rows.append((name, "group", int(frame[gcol].nunique())))
        return pd.DataFrame(rows, columns=["scheme", "unit", "count"])

    def to_dict(self) -> dict[str, dict[str, list[str]]]:
        """Return ``{table: {column: [ids]}}``, JSON-serialisable."""
        return {name: {c: [str(v) for v in frame[c]] for c in frame.columns} for name, frame in self.tables().items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Truth:
        """Build from :meth:`to_dict` output; absent tables become empty."""
        unknown = sorted(set(data) - set(TRUTH_COLUMNS))
        if unknown:
            raise ValueError(f"unknown truth tables {unknown}; known: {sorted(TRUTH_COLUMNS)}")
        return cls(**{name: _frame(name, data.get(name)) for name in TRUTH_COLUMNS})

    def save(self, path: str | Path) -> None:
        """Write the truth as one JSON file."""
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Truth:
        """Read a truth written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
