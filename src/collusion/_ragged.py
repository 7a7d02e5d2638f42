"""Variable-length rows (a finding's members, its tenders) as flat integer arrays.

A detector can score millions of units; one Python list per unit for its
members and tenders costs more time and memory than the scoring itself. A
:class:`Ragged` keeps them as two flat arrays of codes plus offsets, the way
CSR matrices do, and turns into the result frame's Arrow ``list<string>``
columns and into stable finding ids without a Python loop per unit.

Node labels (``"company:C1"``) and their 64-bit hashes are computed once per
market and entity kind (:func:`node_labels`, :func:`node_hashes`) and gathered by code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._schema import ENTITY_KINDS

__all__ = ["Ragged", "entity_strings", "node_hashes", "node_labels", "str_column"]

#: Entity kinds a member can be, in code order (a member's kind is stored as this index).
KINDS: tuple[str, ...] = ENTITY_KINDS
_KIND_INDEX = {k: i for i, k in enumerate(KINDS)}


def node_labels(market: Any, kind: str, *, prefix: bool = True) -> pa.Array:
    """Labels (``"kind:id"``, or bare ids) of every entity of ``kind``, in code order.

    Cached on the market: the labels of a kind are built once. They are built
    in Arrow (the bare ids once, the prefix joined in C): going through numpy's
    fixed-width unicode cost three times as much at a million tenders.
    """
    cache = market.__dict__.setdefault("_node_label_cache", {})
    key = (kind, prefix)
    if key not in cache:
        if prefix:
            bare = node_labels(market, kind, prefix=False)
            cache[key] = pc.binary_join_element_wise(f"{kind}:", bare, "") if len(bare) else bare
        else:
            ids = np.asarray(market.entities[kind], dtype=object)
            try:
                cache[key] = pa.array(ids, type=pa.string())
            except (pa.ArrowTypeError, pa.ArrowInvalid):  # ids that are not strings: their str()
                cache[key] = pa.array(ids.astype(str).astype(object), type=pa.string())
    return cache[key]


def node_hashes(market: Any, kind: str) -> np.ndarray:
    """Scrambled 64-bit hashes (``_mix64`` of pandas' SipHash) of the labels of every entity of ``kind``.

    Cached on the market, separately from the labels: only finding ids need
    them, and scrambling each distinct label once is cheaper than scrambling
    every member of every unit.
    """
    from .results import _label_hashes

    cache = market.__dict__.setdefault("_node_hash_cache", {})
    if kind not in cache:
        cache[kind] = _label_hashes(node_labels(market, kind))
    return cache[kind]


def entity_strings(market: Any, kind: str, codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Ids of the entities ``codes`` of ``kind`` as a pandas ``str`` array, gathered in C."""
    labels = node_labels(market, kind, prefix=False)
    return pd.array(labels.take(pa.array(np.asarray(codes, dtype=np.int64))), dtype="str")


def str_column(values: Any) -> pd.api.extensions.ExtensionArray:
    """``values`` (a scalar repeated, or an array with few distinct strings) as a pandas ``str`` array.

    Building Arrow strings from a Python object array costs a Python call per
    row; factorising first and decoding a dictionary in C does not.
    """
    if isinstance(values, (str, type(None))):
        raise TypeError("str_column needs an array; use pa.repeat for a scalar")
    if isinstance(values, pd.Series):
        values = values.array
    if isinstance(values, pd.api.extensions.ExtensionArray) and values.dtype == "str":
        return values
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    dictionary = pa.array(np.asarray(uniques, dtype=object), type=pa.string())
    arr = pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), dictionary).cast(pa.string())
    return pd.array(arr, dtype="str")


def repeat_str(value: str | None, n: int) -> pd.api.extensions.ExtensionArray:
    """``value`` repeated ``n`` times as a pandas ``str`` array (missing when ``None``)."""
    return pd.array(pa.repeat(pa.scalar(value, type=pa.string()), n), dtype="str")


@dataclass(frozen=True)
class Ragged:
    """Rows of variable length: row ``i`` is ``codes[offsets[i]:offsets[i + 1]]``.

    ``kinds`` (optional, same length as ``codes``) says which entity kind each
    code belongs to (an index into :data:`KINDS`); without it every code is a
    tender.

    Examples
    --------
    >>> r = Ragged.from_columns([np.array([0, 1]), np.array([2, -1])], kinds=["buyer", "company"])
    >>> r.offsets.tolist(), r.codes.tolist(), r.kinds.tolist()
    ([0, 2, 3], [0, 2, 1], [1, 3, 1])
    """

    codes: np.ndarray
    offsets: np.ndarray
    kinds: np.ndarray | None = None

    def __len__(self) -> int:
        return self.offsets.size - 1

    # ------------------------------------------------------------ building
    @classmethod
    def from_columns(cls, columns: list[np.ndarray], *, kinds: list[str] | None = None) -> Ragged:
        """One row per position of the columns; ``-1`` means "absent" (the row is shorter)."""
        block = np.stack([np.asarray(c, dtype=np.int64) for c in columns], axis=1)
        present = block >= 0
        offsets = np.zeros(block.shape[0] + 1, dtype=np.int64)
        np.cumsum(present.sum(axis=1), out=offsets[1:])
        kind_codes = None
        if kinds is not None:
            kind_block = np.broadcast_to(np.array([_KIND_INDEX[k] for k in kinds], dtype=np.int8), block.shape)
            kind_codes = kind_block[present]
        return cls(block[present], offsets, kind_codes)

    @classmethod
    def from_pairs(cls, row: np.ndarray, code: np.ndarray, n_rows: int, *, kind: str | None = None) -> Ragged:
        """Rows from unordered ``(row, code)`` pairs; codes within a row are sorted."""
        row = np.asarray(row, dtype=np.int64)
        code = np.asarray(code, dtype=np.int64)
        order = np.lexsort((code, row))
        offsets = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(row, minlength=n_rows), out=offsets[1:])
        kinds = None if kind is None else np.full(code.size, _KIND_INDEX[kind], dtype=np.int8)
        return cls(code[order], offsets, kinds)

    @classmethod
    def empty_rows(cls, n_rows: int) -> Ragged:
        return cls(np.zeros(0, np.int64), np.zeros(n_rows + 1, np.int64), np.zeros(0, np.int8))

    @classmethod
    def concat(cls, parts: list[Ragged]) -> Ragged:
        """Rows of ``parts`` one after the other."""
        codes = np.concatenate([p.codes for p in parts])
        sizes = np.concatenate([np.diff(p.offsets) for p in parts])
        offsets = np.zeros(sizes.size + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        kinds = None
        if any(p.kinds is not None for p in parts):
            kinds = np.concatenate([p._kinds() for p in parts])
        return cls(codes, offsets, kinds)

    def hstack(self, other: Ragged) -> Ragged:
        """Row ``i`` of ``self`` followed by row ``i`` of ``other`` (same number of rows)."""
        sa, sb = np.diff(self.offsets), np.diff(other.offsets)
        offsets = np.zeros(sa.size + 1, dtype=np.int64)
        np.cumsum(sa + sb, out=offsets[1:])
        # Each item's place is computed (row start in the result + place inside its row), not
        # found by a stable sort over every item.
        pos_a = np.repeat(offsets[:-1] - self.offsets[:-1], sa) + np.arange(self.codes.size)
        pos_b = np.repeat(offsets[:-1] + sa - other.offsets[:-1], sb) + np.arange(other.codes.size)
        codes = np.empty(self.codes.size + other.codes.size, dtype=np.result_type(self.codes, other.codes))
        kinds = np.empty(codes.size, dtype=np.int8)
        codes[pos_a], codes[pos_b] = self.codes, other.codes
        kinds[pos_a], kinds[pos_b] = self._kinds(), other._kinds()
        return Ragged(codes, offsets, kinds)

    def take(self, rows: np.ndarray) -> Ragged:
        """The rows ``rows``, in that order."""
        pos, offsets = self._positions(rows)
        return Ragged(self.codes[pos], offsets, None if self.kinds is None else self.kinds[pos])

    def _positions(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat positions of the items of rows ``rows`` (in that order) and the offsets of those rows."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, sizes = self.offsets[rows], np.diff(self.offsets)[rows]
        offsets = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        # start of the row + position inside it
        return np.repeat(starts - offsets[:-1], sizes) + np.arange(offsets[-1]), offsets

    # ------------------------------------------------------------- output
    def _kinds(self) -> np.ndarray:
        return self.kinds if self.kinds is not None else np.full(self.codes.size, _KIND_INDEX["tender"], np.int8)

    def _gather_index(self, table: Callable[[str], Any]) -> tuple[np.ndarray, list[Any]]:
        """The per-kind tables of the kinds present and each item's index into them laid end to end.

        ``table(kind)`` gives a kind's table (labels or hashes, indexed by code);
        it is asked only for the kinds present, found by one count. Returns the
        index and the tables in kind order. With one kind the index is the codes
        themselves.
        """
        if self.kinds is None:
            present = [_KIND_INDEX["tender"]]
        else:
            present = np.flatnonzero(np.bincount(self.kinds, minlength=len(KINDS))).tolist()
        tables = [table(KINDS[k]) for k in present]
        if len(present) <= 1:
            return self.codes, tables
        base = np.zeros(len(KINDS), dtype=np.int64)
        start = 0
        for k, t in zip(present, tables):
            base[k] = start
            start += len(t)
        return base[self.kinds] + self.codes, tables

    def labels(self, market: Any, *, prefix: bool = True, rows: np.ndarray | None = None) -> pd.Series:
        """The rows as a ``list<string>`` column of node labels (or bare ids without ``prefix``).

        ``rows``, when given, picks and orders the rows (as :meth:`take` would) in
        the same gather. All kinds' labels are gathered by one take from their
        tables laid end to end: a take per kind, a concatenation and a take back
        into row order copied every string three times.
        """
        from .results import list_series

        index, tables = self._gather_index(lambda kind: node_labels(market, kind, prefix=prefix))
        offsets = self.offsets
        if rows is not None:
            pos, offsets = self._positions(rows)
            index = index[pos]
        if index.size == 0:
            flat = pa.array([], type=pa.string())
        else:
            table = tables[0] if len(tables) == 1 else pa.concat_arrays(tables)
            flat = table.take(pa.array(np.asarray(index, dtype=np.int64)))
        return list_series(offsets, flat)

    def hashes(self, market: Any) -> np.ndarray:
        """Order-free 64-bit hash of each row's set of node labels (see :func:`collusion.results.member_hashes`).

        The same value as ``member_hashes(self.labels(market))``: each row sums
        (wrapping) its members' scrambled label hashes. The per-kind tables are
        scrambled once per entity (:func:`node_hashes`) and gathered by one take
        from their end-to-end concatenation; the row sums are differences of one
        running sum at the row offsets (exact modulo 2**64) rather than an
        unbuffered scatter-add.
        """
        index, tables = self._gather_index(lambda kind: node_hashes(market, kind))
        if index.size == 0:
            mixed = np.zeros(0, np.uint64)
        else:
            mixed = (tables[0] if len(tables) == 1 else np.concatenate(tables))[index]
        running = np.zeros(mixed.size + 1, dtype=np.uint64)
        np.cumsum(mixed, out=running[1:])
        return running[self.offsets[1:]] - running[self.offsets[:-1]]
