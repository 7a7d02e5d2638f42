"""Validation and coercion of the canonical tables.

Every rule appends rows to one problem table (pandera style: ``table, column,
rule, row, value``) instead of raising at the first failure, so a user fixing
a broken export sees everything at once. ``row`` is the position of the row in
the frame the user passed (0-based), ``-1`` for whole-column problems.

Coercion works on pandas ``Categorical`` categories wherever possible: ids and
traces repeat massively (7.5M bids, 100k firms), so normalising the unique
values and recoding is what keeps validation linear and cheap.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._schema import FOREIGN_KEYS, TABLE_KEYS, TABLES, ColumnSpec

__all__ = ["PROBLEM_COLUMNS", "Problems", "coerce_table", "normalize_id_values"]

#: Column order of the problem table.
PROBLEM_COLUMNS: tuple[str, ...] = ("table", "column", "rule", "row", "value")

_TRUE = {"true", "t", "yes", "y", "1", "1.0", "是"}
_FALSE = {"false", "f", "no", "n", "0", "0.0", "否", ""}
#: Rows whose value is shown in a problem table: enough to diagnose, bounded memory.
_MAX_ROWS_PER_RULE = 10_000


@dataclass
class Problems:
    """Accumulates validation problems; ``frame()`` returns the tidy table."""

    parts: list[pd.DataFrame] = field(default_factory=list)

    def add(self, table: str, column: str, rule: str, rows: Any, values: Any = None) -> None:
        """Record that ``rows`` of ``table.column`` break ``rule``."""
        rows = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        if rows.size == 0:
            return
        if values is None:
            values = [None] * rows.size
        values = list(values)[:_MAX_ROWS_PER_RULE]
        rows = rows[:_MAX_ROWS_PER_RULE]
        self.parts.append(
            pd.DataFrame(
                {
                    "table": table,
                    "column": column,
                    "rule": rule,
                    "row": rows,
                    "value": pd.Series(values, dtype=object),
                }
            )
        )

    def __bool__(self) -> bool:
        return bool(self.parts)

    def frame(self) -> pd.DataFrame:
        """Return all problems as one table with columns :data:`PROBLEM_COLUMNS`."""
        if not self.parts:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in PROBLEM_COLUMNS}).astype(
                {"row": np.int64}
            )
        return pd.concat(self.parts, ignore_index=True)[list(PROBLEM_COLUMNS)]


def normalize_id_values(values: pd.Index) -> pd.Index:
    """Normalise id strings: Unicode NFKC, surrounding whitespace removed.

    Case is preserved: ``"C1"`` and ``"c1"`` stay different ids, because
    registries do use case-distinct codes; folding is a policy for the entity
    resolution step, not for keys.

    Examples
    --------
    >>> import pandas as pd
    >>> list(normalize_id_values(pd.Index([" C1 ", "Ｃ２", "华建 ", "c1"])))
    ['C1', 'C2', '华建', 'c1']
    """
    as_text = _to_text(values)
    # NFKC leaves ASCII unchanged; skipping it there saves most of the cost on
    # millions of generated or exported ids.
    return pd.Index(
        [(v if v.isascii() else unicodedata.normalize("NFKC", v)).strip() for v in as_text], dtype=object
    )


def _to_text(values: pd.Index) -> list[str]:
    """Render ids as text; integral floats lose their ``.0`` (1e3 → '1000')."""
    if pd.api.types.is_float_dtype(values.dtype):
        arr = values.to_numpy(dtype=float)
        integral = np.isfinite(arr) & (arr == np.round(arr))
        return [str(int(v)) if ok else repr(v) for v, ok in zip(arr, integral)]
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        return [v if isinstance(v, str) else str(v) for v in values]
    return [str(v) for v in values]


def _as_categorical(series: pd.Series) -> pd.Categorical:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.array  # type: ignore[return-value]
    return pd.Categorical(series)


def _recode_categories(cat: pd.Categorical, new_values: pd.Index) -> pd.Categorical:
    """Map each category to ``new_values[i]``; merge equal results; ``None``/"" become missing."""
    new = pd.Index(new_values, dtype=object)
    blank = new.isna() | (new == "")
    if not blank.any() and new.is_unique:
        # Fast path (clean exports, the generator): nothing merges, codes stay as they are.
        return pd.Categorical.from_codes(np.asarray(cat.codes), categories=new)
    text = np.array(["\x00" if b else str(v) for v, b in zip(new, blank)], dtype=object)
    uniq, inverse = np.unique(text.astype(str), return_inverse=True)
    keep = uniq != "\x00"
    remap = np.where(keep, np.cumsum(keep) - 1, -1)
    mapping = np.append(remap[inverse.reshape(-1)], -1)  # code -1 (missing) stays -1
    new_codes = mapping[np.asarray(cat.codes)]
    return pd.Categorical.from_codes(new_codes, categories=pd.Index(uniq[keep], dtype=object))


def _clean_categorical(
    series: pd.Series, *, normalize: bool, lower: bool = False, cache: dict | None = None
) -> pd.Categorical:
    """Categorical with normalised, non-empty, unique string categories.

    ``cache`` maps ``id(categories)`` to the cleaned categories, so a category
    index shared by several columns (tender ids in four tables) is cleaned once.
    """
    cat = _as_categorical(series)
    cats = cat.categories
    key = (id(cats), normalize, lower)
    hit = cache.get(key) if cache is not None else None
    if hit is not None and hit[0] is cats:
        return _recode_categories(cat, hit[1])
    new = normalize_id_values(cats) if normalize else pd.Index([v.strip() for v in _to_text(cats)], dtype=object)
    if lower:
        new = pd.Index([v.lower() for v in new], dtype=object)
    if cache is not None:
        cache[key] = (cats, new)  # keeps ``cats`` alive so its id is not reused
    return _recode_categories(cat, new)


def _coerce_float(name: str, col: ColumnSpec, s: pd.Series, problems: Problems) -> pd.Series:
    if pd.api.types.is_float_dtype(s.dtype) or pd.api.types.is_integer_dtype(s.dtype):
        out = s.astype(np.float64)
    else:
        out = pd.to_numeric(s, errors="coerce").astype(np.float64)
        blank = s.astype(object).map(lambda v: isinstance(v, str) and v.strip() == "").to_numpy()
        bad = out.isna().to_numpy() & s.notna().to_numpy() & ~blank
        rows = np.flatnonzero(bad)
        problems.add(name, col.name, "not a number", rows, s.iloc[rows].tolist())
    arr = out.to_numpy()
    if not col.nullable:
        rows = np.flatnonzero(s.isna().to_numpy())
        problems.add(name, col.name, "missing value", rows)
    if col.positive:
        with np.errstate(invalid="ignore"):
            rows = np.flatnonzero(~np.isnan(arr) & ~((arr > 0) & np.isfinite(arr)))
        problems.add(name, col.name, "must be positive and finite", rows, arr[rows].tolist())
    else:
        rows = np.flatnonzero(np.isinf(arr))
        problems.add(name, col.name, "must be finite", rows, arr[rows].tolist())
    return out


def _coerce_bool(name: str, col: ColumnSpec, s: pd.Series, problems: Problems, *, default: bool) -> pd.Series:
    if pd.api.types.is_bool_dtype(s.dtype) and not s.isna().any():
        return s.astype(bool)
    cat = pd.Categorical(s.astype(object).where(s.notna(), None))
    lookup = {}
    bad_cats = []
    for i, v in enumerate(cat.categories):
        t = str(v).strip().lower()
        if isinstance(v, (bool, np.bool_)):
            lookup[i] = bool(v)
        elif t in _TRUE:
            lookup[i] = True
        elif t in _FALSE:
            lookup[i] = False
        else:
            bad_cats.append(i)
    codes = np.asarray(cat.codes)
    table = np.full(len(cat.categories) + 1, default, dtype=bool)
    for i, v in lookup.items():
        table[i] = v
    rows = np.flatnonzero(np.isin(codes, bad_cats))
    problems.add(name, col.name, "not a boolean (true/false, 1/0, yes/no)", rows, s.iloc[rows].tolist())
    return pd.Series(table[codes], index=s.index, name=s.name)


def _coerce_datetime(name: str, col: ColumnSpec, s: pd.Series, problems: Problems) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        out = s
        if getattr(out.dt, "tz", None) is not None:
            out = out.dt.tz_convert("UTC").dt.tz_localize(None)
        return out.astype("datetime64[ns]")
    if pd.api.types.is_numeric_dtype(s.dtype):
        # Numbers are Unix seconds (OCDS exports, the cartel files).
        out = pd.to_datetime(s, unit="s", errors="coerce")
    else:
        text = s.astype(object).where(s.notna(), None)
        out = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
        out = out.dt.tz_localize(None)
        blank = text.map(lambda v: isinstance(v, str) and v.strip() == "").to_numpy()
        rows = np.flatnonzero(out.isna().to_numpy() & text.notna().to_numpy() & ~blank)
        problems.add(name, col.name, "not a date", rows, s.iloc[rows].tolist())
    return out.astype("datetime64[ns]")


def coerce_table(name: str, frame: pd.DataFrame, problems: Problems, cache: dict | None = None) -> dict[str, Any]:
    """Coerce one input table to its schema kinds, recording problems.

    Returns a dict of column name to coerced data (id columns as
    ``Categorical`` with normalised categories, not yet recoded into their
    shared namespace) plus the user's extra columns unchanged.
    """
    if not isinstance(frame, pd.DataFrame):
        problems.add(name, "*", f"must be a pandas DataFrame, got {type(frame).__name__}", [-1])
        return {}
    frame = frame.reset_index(drop=True)
    out: dict[str, Any] = {}
    present = set(frame.columns)
    for col in TABLES[name]:
        if col.name not in present:
            if col.required:
                problems.add(name, col.name, "required column is missing", [-1])
            continue
        s = frame[col.name]
        if col.kind in ("id", "trace", "str"):
            # Procedures and party kinds are vocabularies: compare them case-free.
            lower = col.kind == "str" and col.name in ("procedure", "kind")
            cat = _clean_categorical(s, normalize=col.kind == "id", lower=lower, cache=cache)
            if not col.nullable:
                rows = np.flatnonzero(np.asarray(cat.codes) < 0)
                problems.add(name, col.name, "missing value", rows, s.iloc[rows].tolist())
            out[col.name] = cat
        elif col.kind == "float":
            out[col.name] = _coerce_float(name, col, s, problems)
        elif col.kind == "bool":
            out[col.name] = _coerce_bool(name, col, s, problems, default=col.name == "approved")
        elif col.kind == "datetime":
            out[col.name] = _coerce_datetime(name, col, s, problems)
    known = {c.name for c in TABLES[name]}
    for extra in frame.columns:
        if extra not in known:
            out[str(extra)] = frame[extra]
    out["__len__"] = len(frame)
    return out


def check_keys(name: str, table: pd.DataFrame, problems: Problems) -> None:
    """Duplicate keys (e.g. two bids by one bidder in one tender)."""
    key = TABLE_KEYS.get(name)
    if key is None or any(k not in table.columns for k in key):
        return
    codes = [np.asarray(table[k].cat.codes, dtype=np.int64) for k in key]
    if len(codes) == 1:
        combined = codes[0]
    else:
        combined = codes[0]
        for c in codes[1:]:
            combined = combined * (int(c.max(initial=0)) + 2) + (c + 1)
    valid = np.all(np.stack([c >= 0 for c in codes]), axis=0)
    ordered = np.sort(combined[valid])
    if not (ordered[1:] == ordered[:-1]).any():
        return  # the common case: one sort, no hashing of millions of keys
    dup = pd.Series(combined).duplicated(keep=False).to_numpy() & valid
    rows = np.flatnonzero(dup)
    if rows.size:
        values = table.loc[rows, list(key)].astype(str).agg("|".join, axis=1).tolist()
        problems.add(name, ",".join(key), f"duplicate key ({', '.join(key)})", rows, values)


def check_foreign_keys(tables: dict[str, pd.DataFrame], problems: Problems) -> None:
    """Rows that point at tenders/contracts/projects that do not exist."""
    for (child, col), (parent, pcol) in FOREIGN_KEYS.items():
        if child not in tables or parent not in tables or col not in tables[child].columns:
            continue
        child_codes = np.asarray(tables[child][col].cat.codes)
        present = np.zeros(len(tables[parent][pcol].cat.categories) + 1, dtype=bool)
        parent_codes = np.asarray(tables[parent][pcol].cat.codes)
        present[parent_codes[parent_codes >= 0]] = True
        rows = np.flatnonzero((child_codes >= 0) & ~present[child_codes])
        problems.add(
            child, col, f"unknown {pcol} (not in {parent})", rows, tables[child][col].iloc[rows].astype(object).tolist()
        )


def check_winners(bids: pd.DataFrame, problems: Problems) -> None:
    """At most one winning bid per tender (lots are separate tenders)."""
    win = bids["is_winner"].to_numpy()
    tcodes = np.asarray(bids["tender_id"].cat.codes)
    counts = np.bincount(tcodes[win & (tcodes >= 0)], minlength=len(bids["tender_id"].cat.categories))
    rows = np.flatnonzero(win & (tcodes >= 0) & (counts[np.maximum(tcodes, 0)] > 1))
    problems.add(
        "bids", "is_winner", "several winners in one tender", rows, bids["tender_id"].iloc[rows].astype(object).tolist()
    )


def check_date_order(name: str, table: pd.DataFrame, pairs: list[tuple[str, str]], problems: Problems) -> None:
    """``first`` must not come after ``second`` on any row where both are known."""
    for first, second in pairs:
        a = table[first].to_numpy()
        b = table[second].to_numpy()
        rows = np.flatnonzero(~np.isnat(a) & ~np.isnat(b) & (a > b))
        values = [f"{x} > {y}" for x, y in zip(table[first].iloc[rows], table[second].iloc[rows])]
        problems.add(name, f"{first},{second}", f"{first} after {second}", rows, values)


DATE_ORDER: dict[str, list[tuple[str, str]]] = {
    "tenders": [("published_at", "deadline_at"), ("deadline_at", "awarded_at"), ("published_at", "awarded_at")],
    "contracts": [("signed_at", "completed_at")],
}
