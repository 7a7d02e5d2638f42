"""``Market``: the validated, integer-coded canonical tables of one procurement market."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd

from ._schema import ENTITY_KINDS, TABLES
from ._settings import Settings
from ._validation import (
    DATE_ORDER,
    Problems,
    check_date_order,
    check_foreign_keys,
    check_keys,
    check_winners,
    coerce_table,
)
from .exceptions import MissingTableError, ValidationError

__all__ = ["Market", "validate_tables"]

_OPTIONAL_TABLES = ("evaluations", "contracts", "changes", "payments", "projects", "parties", "relations")

#: Sort keys of the canonical row order (besides tenders/contracts/projects/parties,
#: which are sorted by their single id so that row i is entity code i).
_ORDER: dict[str, tuple[str, ...]] = {
    "tenders": ("tender_id",),
    "bids": ("tender_id", "price", "bidder_id"),
    "evaluations": ("tender_id", "bidder_id", "expert_id"),
    "contracts": ("contract_id",),
    "changes": ("contract_id", "changed_at", "amount_delta"),
    "payments": ("contract_id", "paid_at", "amount"),
    "projects": ("project_id",),
    "parties": ("party_id",),
    "relations": ("src_id", "dst_id", "kind"),
}


def _empty_column(spec: Any, n: int, categories: pd.Index | None) -> Any:
    if spec.kind in ("id", "trace", "str"):
        cats = categories if categories is not None else pd.Index([], dtype=object)
        return pd.Categorical.from_codes(np.full(n, -1, dtype=np.int8), categories=cats)
    if spec.kind == "float":
        return np.full(n, np.nan)
    if spec.kind == "bool":
        return np.full(n, spec.name == "approved", dtype=bool)
    return np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")


def _sort_key(col: pd.Series) -> np.ndarray:
    if isinstance(col.dtype, pd.CategoricalDtype):
        return np.asarray(col.cat.codes)
    return col.to_numpy()


def _sorted_union(parts: list[pd.Index], kind: str) -> pd.Index:
    """Sorted unique ids of a namespace from the categories of all its columns."""
    distinct: list[pd.Index] = []
    for p in parts:  # the same categories object often serves several columns
        if not any(p is q or (len(p) == len(q) and p.equals(q)) for q in distinct):
            distinct.append(p)
    if not distinct:
        return pd.Index(np.asarray([], dtype=object), dtype=object, name=kind)
    values = pd.unique(np.concatenate([p.to_numpy(dtype=object) for p in distinct]))
    values = np.sort(np.asarray(values, dtype=str))  # C-level sort of a unicode array
    return pd.Index(values.astype(object), dtype=object, name=kind)


def _is_lex_sorted(keys: list[np.ndarray]) -> bool:
    """O(n) check that rows are already in lexicographic order of ``keys`` (NaN last)."""
    n = len(keys[0])
    if n < 2:
        return True
    undecided = np.ones(n - 1, dtype=bool)  # consecutive pairs equal on the keys seen so far
    for k in keys:
        a, b = k[:-1], k[1:]
        if k.dtype.kind == "f":
            # NaN sorts last (as lexsort does): a NaN before a number is out of order
            an, bn = np.isnan(a), np.isnan(b)
            less = (a < b) | (~an & bn)
            greater = (a > b) | (an & ~bn)
        else:
            less, greater = a < b, a > b
        if (undecided & greater).any():
            return False
        undecided &= ~less
        if not undecided.any():
            return True
    return True


def validate_tables(
    tables: Mapping[str, pd.DataFrame | None],
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.Index], pd.DataFrame]:
    """Coerce, recode and check the canonical tables.

    Parameters
    ----------
    tables : mapping
        Table name to DataFrame (``None`` for absent tables).

    Returns
    -------
    tables : dict
        Coerced tables in canonical row order (see :class:`Market`).
    entities : dict
        Namespace to sorted ``pd.Index`` of ids.
    problems : pandas.DataFrame
        Every problem found (empty when the tables are valid), columns
        ``table, column, rule, row, value``; ``row`` refers to the input frame.
    """
    problems = Problems()
    unknown = sorted(set(tables) - set(TABLES))
    for name in unknown:
        problems.add(name, "*", f"unknown table (known: {', '.join(TABLES)})", [-1])
    raw: dict[str, dict[str, Any]] = {}
    cache: dict = {}
    for name in TABLES:
        frame = tables.get(name)
        if frame is None:
            if name in ("tenders", "bids"):
                problems.add(name, "*", "required table is missing", [-1])
            continue
        raw[name] = coerce_table(name, frame, problems, cache)

    # One shared, sorted category index per namespace, so codes agree across tables
    # and do not depend on row order.
    pools: dict[str, list[pd.Index]] = {k: [] for k in ENTITY_KINDS}
    for name, cols in raw.items():
        for spec in TABLES[name]:
            if spec.kind == "id" and spec.name in cols:
                pools[spec.entity].append(cols[spec.name].categories)  # type: ignore[index]
    entities: dict[str, pd.Index] = {}
    for kind, parts in pools.items():
        entities[kind] = _sorted_union(parts, kind)

    out: dict[str, pd.DataFrame] = {}
    for name, cols in raw.items():
        n = cols.pop("__len__", 0)
        data: dict[str, Any] = {}
        for spec in TABLES[name]:
            cats = entities[spec.entity] if spec.kind == "id" else None
            if spec.name not in cols:
                data[spec.name] = _empty_column(spec, n, cats)
                continue
            value = cols.pop(spec.name)
            if spec.kind == "id":
                codes = entities[spec.entity].get_indexer(value.categories)
                codes = np.append(codes, -1)[np.asarray(value.codes)]
                value = pd.Categorical.from_codes(codes, categories=entities[spec.entity])
            data[spec.name] = value
        data.update(cols)  # user's extra columns, kept as given
        out[name] = pd.DataFrame(data)

    if "bids" in out:
        check_winners(out["bids"], problems)
    for name, table in out.items():
        check_keys(name, table, problems)
        if name in DATE_ORDER:
            check_date_order(name, table, DATE_ORDER[name], problems)
    check_foreign_keys(out, problems)

    for name, table in out.items():
        keys = [_sort_key(table[c]) for c in _ORDER[name]]
        if len(table) and not _is_lex_sorted(keys):
            order = np.lexsort(keys[::-1])
            table = table.iloc[order].reset_index(drop=True)
        out[name] = table
    return out, entities, problems.frame()


class Market:
    """The validated canonical tables of one procurement market.

    Build it with :meth:`from_frames` or :meth:`from_folder`. Only ``tenders``
    and ``bids`` are required; every analysis says which tables it misses.

    After validation:

    * id columns are ``Categorical`` whose categories are
      ``market.entities[namespace]`` — sorted unique ids shared by every
      column of that namespace, so ``market.codes(table, column)`` are integer
      codes meaning the same entity in all tables, independent of row order;
    * tables are in canonical order with a ``RangeIndex``: row *i* of
      ``tenders``/``contracts``/``projects`` is entity code *i*; ``bids`` are
      sorted by (tender, price, bidder), ready for segment-wise screens;
    * every schema column exists (absent optional columns are all missing);
      extra user columns are kept.

    Examples
    --------
    >>> import pandas as pd
    >>> from collusion import Market
    >>> tenders = pd.DataFrame({"tender_id": ["T2", "T1"], "buyer_id": ["B1", "B1"]})
    >>> bids = pd.DataFrame({"tender_id": ["T1", "T1", " T2"], "bidder_id": ["c", "a", "a"],
    ...                      "price": [101.0, 99.0, 50.0], "is_winner": [False, True, True]})
    >>> m = Market.from_frames(tenders=tenders, bids=bids)
    >>> m
    Market(tenders=2, bids=3, companies=2, buyers=1)
    >>> list(m.entities["company"]), m.codes("bids", "bidder_id").tolist()
    (['a', 'c'], [0, 1, 0])
    """

    tenders: pd.DataFrame
    bids: pd.DataFrame
    evaluations: pd.DataFrame | None
    contracts: pd.DataFrame | None
    changes: pd.DataFrame | None
    payments: pd.DataFrame | None
    projects: pd.DataFrame | None
    parties: pd.DataFrame | None
    relations: pd.DataFrame | None

    def __init__(
        self,
        tables: Mapping[str, pd.DataFrame],
        entities: Mapping[str, pd.Index],
        *,
        settings: Settings | None = None,
        name: str | None = None,
    ) -> None:
        # Use from_frames: __init__ trusts that tables are already validated.
        for t in TABLES:
            setattr(self, t, tables.get(t))
        self.entities = dict(entities)
        self.settings = settings if settings is not None else Settings()
        self.name = name

    # ------------------------------------------------------------------ build
    @classmethod
    def from_frames(
        cls,
        tenders: pd.DataFrame,
        bids: pd.DataFrame,
        *,
        evaluations: pd.DataFrame | None = None,
        contracts: pd.DataFrame | None = None,
        changes: pd.DataFrame | None = None,
        payments: pd.DataFrame | None = None,
        projects: pd.DataFrame | None = None,
        parties: pd.DataFrame | None = None,
        relations: pd.DataFrame | None = None,
        settings: Settings | Mapping[str, Any] | str | Path | None = None,
        name: str | None = None,
    ) -> Market:
        """Validate DataFrames and build a market.

        Raises
        ------
        ValidationError
            Listing every problem (``err.problems`` is the tidy table).
        """
        tables = dict(
            tenders=tenders,
            bids=bids,
            evaluations=evaluations,
            contracts=contracts,
            changes=changes,
            payments=payments,
            projects=projects,
            parties=parties,
            relations=relations,
        )
        out, entities, problems = validate_tables(tables)
        if len(problems):
            raise ValidationError(problems)
        if not isinstance(settings, Settings):
            settings = Settings.from_path_or_dict(settings)
        return cls(out, entities, settings=settings, name=name)

    @classmethod
    def from_folder(
        cls, path: str | Path, *, settings: Settings | Mapping[str, Any] | str | Path | None = None
    ) -> Market:
        """Read ``<table>.parquet`` or ``<table>.csv`` files from a folder.

        A ``settings.json`` in the folder is used when ``settings`` is not given.
        Files whose names are not canonical tables are an error (a typo such as
        ``bid.csv`` must not be ignored silently).
        """
        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder of tables")
        frames: dict[str, pd.DataFrame] = {}
        stray: list[str] = []
        for file in sorted(folder.iterdir()):
            if file.suffix not in (".csv", ".parquet") or file.name.startswith("."):
                continue
            if file.stem not in TABLES:
                stray.append(file.name)
                continue
            if file.stem in frames:
                raise ValueError(f"{folder}: both CSV and Parquet given for table {file.stem!r}")
            if file.suffix == ".csv":
                frames[file.stem] = pd.read_csv(file, dtype=str, keep_default_na=False, na_values=[""])
            else:
                frames[file.stem] = pd.read_parquet(file)
        if stray:
            raise ValueError(
                f"{folder}: files {stray} are not canonical tables (expected names: "
                f"{', '.join(t + '.csv|.parquet' for t in TABLES)})"
            )
        if settings is None and (folder / "settings.json").exists():
            settings = folder / "settings.json"
        for required in ("tenders", "bids"):
            if required not in frames:
                raise MissingTableError(f"{folder}: required table {required!r} (.csv or .parquet) not found")
        return cls.from_frames(**frames, settings=settings, name=folder.name)  # type: ignore[arg-type]

    def to_folder(self, path: str | Path, *, format: str = "parquet") -> None:
        """Write every present table as ``<table>.parquet`` (or ``.csv``)."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        for name, table in self.items():
            if format == "csv":
                table.to_csv(folder / f"{name}.csv", index=False)
            else:
                table.to_parquet(folder / f"{name}.parquet", index=False)
        (folder / "settings.json").write_text(
            json.dumps(self.settings.to_dict(), indent=2), encoding="utf-8"
        )

    # ----------------------------------------------------------------- access
    def table(self, name: str) -> pd.DataFrame | None:
        """Return table ``name`` or ``None`` when the market does not have it."""
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; known tables: {', '.join(TABLES)}")
        return getattr(self, name)

    def has(self, *names: str) -> bool:
        """True when every named table is present and non-empty."""
        return all((t := self.table(n)) is not None and len(t) > 0 for n in names)

    def require(self, *names: str, analysis: str = "this analysis") -> None:
        """Raise :class:`MissingTableError` naming the tables ``analysis`` lacks."""
        missing = [n for n in names if not self.has(n)]
        if missing:
            raise MissingTableError(f"{analysis} needs table(s) {missing}, which the market does not have")

    def items(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """Iterate over ``(name, table)`` of the present tables."""
        for name in TABLES:
            table = getattr(self, name)
            if table is not None:
                yield name, table

    def codes(self, table: str, column: str) -> np.ndarray:
        """Integer codes of an id column into ``entities[namespace]`` (-1 = missing)."""
        frame = self.table(table)
        if frame is None:
            raise MissingTableError(f"the market has no {table!r} table")
        return np.asarray(frame[column].cat.codes, dtype=np.int32)

    def n(self, kind: str) -> int:
        """Number of entities in namespace ``kind``."""
        return len(self.entities[kind])

    def ids(self, kind: str, codes: Any) -> np.ndarray:
        """Translate integer codes of namespace ``kind`` back to id strings."""
        return self.entities[kind].to_numpy()[np.asarray(codes)]

    # ---------------------------------------------------------------- reports
    def report(self) -> pd.DataFrame:
        """Count rows that are kept but unusable for some analysis.

        Nothing is dropped by validation; this table says what each analysis
        will have to skip, so nothing disappears silently.

        Returns
        -------
        pandas.DataFrame
            Columns ``table, issue, rows, share, affects``.
        """
        rows: list[tuple[str, str, int, int, str]] = []
        t, b = self.tenders, self.bids
        n_t = len(t)
        per_tender = np.bincount(self.codes("bids", "tender_id"), minlength=n_t)
        valid = ~b["disqualified"].to_numpy()
        valid_per_tender = np.bincount(self.codes("bids", "tender_id")[valid], minlength=n_t)
        winners = np.bincount(self.codes("bids", "tender_id")[b["is_winner"].to_numpy()], minlength=n_t)
        rows += [
            ("tenders", "no bids", int((per_tender == 0).sum()), n_t, "all bid analyses"),
            ("tenders", "fewer than 4 valid bids (price screens are NaN)",
             int(((valid_per_tender > 0) & (valid_per_tender < 4)).sum()), n_t, "bid rigging screens"),
            ("tenders", "no winning bid", int(((per_tender > 0) & (winners == 0)).sum()), n_t,
             "repeat-winner, agent and expert analyses"),
            ("tenders", "no estimate", int(t["estimate"].isna().sum()), n_t, "discount screens, lot splitting"),
            ("tenders", "no buyer", int(t["buyer_id"].isna().sum()), n_t, "buyer-winner, lot splitting"),
            ("tenders", "no publication date", int(t["published_at"].isna().sum()), n_t,
             "bidding period, lot splitting window"),
            ("bids", "winner disqualified", int((b["is_winner"] & b["disqualified"]).sum()), len(b), "bid rigging"),
            ("bids", "no submission trace", int(b[["ip", "mac", "doc_fingerprint", "bond_account", "contact"]]
                                               .isna().all(axis=1).sum()), len(b), "shared-trace signals"),
        ]
        if self.contracts is not None:
            c = self.contracts
            rows += [
                ("contracts", "no builder", int(c["builder_id"].isna().sum()), len(c), "winner-builder analysis"),
                ("contracts", "no signing date", int(c["signed_at"].isna().sum()), len(c), "payment timing"),
            ]
        if self.payments is not None:
            p = self.payments
            rows += [
                ("payments", "no payee", int(p["payee_id"].isna().sum()), len(p), "payee checks"),
                ("payments", "no payment date", int(p["paid_at"].isna().sum()), len(p), "payment timing"),
            ]
        if self.evaluations is not None and len(self.evaluations):
            e = self.evaluations
            key_b = self.codes("bids", "tender_id").astype(np.int64) * (self.n("company") + 1) + self.codes(
                "bids", "bidder_id"
            )
            key_e = self.codes("evaluations", "tender_id").astype(np.int64) * (self.n("company") + 1) + self.codes(
                "evaluations", "bidder_id"
            )
            rows.append(("evaluations", "scores a company that did not bid",
                         int((~np.isin(key_e, key_b)).sum()), len(e), "expert analysis"))
        frame = pd.DataFrame(rows, columns=["table", "issue", "rows", "of", "affects"])
        frame["share"] = np.where(frame["of"] > 0, frame["rows"] / frame["of"].clip(lower=1), 0.0)
        return frame[["table", "issue", "rows", "share", "affects"]]

    def summary(self) -> pd.DataFrame:
        """Rows per table and entities per namespace, as a tidy frame."""
        rows = [("table", name, len(table)) for name, table in self.items()]
        rows += [("entities", kind, len(ids)) for kind, ids in self.entities.items() if len(ids)]
        return pd.DataFrame(rows, columns=["what", "name", "count"])

    def __repr__(self) -> str:
        parts = [f"{name}={len(table)}" for name, table in self.items()]
        for kind, label in (("company", "companies"), ("buyer", "buyers"), ("agent", "agents"), ("expert", "experts")):
            if self.n(kind):
                parts.append(f"{label}={self.n(kind)}")
        return f"Market({', '.join(parts)})"

    def _repr_html_(self) -> str:
        summary = self.summary()
        head = f"<b>collusion.Market</b>{' ' + self.name if self.name else ''}"
        return head + summary.to_html(index=False)

