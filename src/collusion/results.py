"""The one tidy result schema shared by every detector, the suite and the risk index.

One row per finding (a unit a detector scored), in this column order:

==============  ==============================================================
``finding_id``  stable id: the same finding gets the same id on the next run
``detector``    detector name, e.g. ``"bid_rigging"``
``analysis``    number of the analysis in the SPEC (1–7; 0 for the risk index)
``unit``        ``pair``, ``tender``, ``group``, ``contract``, ``project``, ``entity``
``entity_type`` type of the primary node (``company``, ``buyer``, ``tender``...)
``entity_id``   id of the primary node
``other_type``  type of the second node of a pair (empty otherwise)
``other_id``    id of the second node of a pair (empty otherwise)
``members``     every node of the unit as ``"type:id"`` (groups list them all)
``tender_ids``  tenders the finding involves (sorted)
``score``       higher = more suspicious; comparable only within one detector
``score_pct``   percentile of the score within the detector, in [0, 1]
``flagged``     ``score >= threshold_`` of the detector
``rank``        1 = most suspicious within the detector
``evidence``    list of records ``{signal, value, baseline, detail, path}``
==============  ==============================================================

``members`` and ``tender_ids`` are Arrow list columns
(``list<string>[pyarrow]``): one flat buffer of strings plus offsets rather
than a Python list per row, which is what keeps a million-tender screen in
memory. Reading one cell (``.iloc``, ``.tolist()``, ``itertuples``) gives a
Python list; ``.explode()`` and the ``.list`` accessor work column-wide.
``evidence`` is computed during ``fit`` for flagged and top units only;
other rows hold an empty tuple until :meth:`BaseDetector.explain` is asked.

``path`` is a walk through the graph written as alternating node and relation
names, e.g. ``["company:C1", "bids", "tender:T9", "bids", "company:C7"]``.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "EVIDENCE_FIELDS",
    "LIST_DTYPE",
    "RESULT_COLUMNS",
    "empty_results",
    "evidence",
    "evidence_frame",
    "finding_ids",
    "list_column",
    "member_hashes",
    "ragged",
]

#: dtype of the ``members`` and ``tender_ids`` columns.
LIST_DTYPE = pd.ArrowDtype(pa.list_(pa.string()))

RESULT_COLUMNS: tuple[str, ...] = (
    "finding_id",
    "detector",
    "analysis",
    "unit",
    "entity_type",
    "entity_id",
    "other_type",
    "other_id",
    "members",
    "tender_ids",
    "score",
    "score_pct",
    "flagged",
    "rank",
    "evidence",
)

EVIDENCE_FIELDS: tuple[str, ...] = ("signal", "value", "baseline", "detail", "path")


def evidence(
    signal: str,
    value: float,
    baseline: float | None = None,
    *,
    detail: str = "",
    path: Sequence[str] = (),
) -> dict[str, Any]:
    """Build one evidence record.

    Parameters
    ----------
    signal : str
        Name of the signal, e.g. ``"win_rate_at_buyer"``.
    value : float
        Observed value for this unit.
    baseline : float, optional
        What an unsuspicious unit would show (expected value, market median).
    detail : str
        One human-readable sentence.
    path : sequence of str
        Walk through the graph: node, relation, node, ...

    Examples
    --------
    >>> evidence("shared_ip", 1.0, 0.0, detail="same IP", path=["company:A", "uses", "ip:1.2.3.4"])
    {'signal': 'shared_ip', 'value': 1.0, 'baseline': 0.0, 'detail': 'same IP', 'path': ['company:A', 'uses', 'ip:1.2.3.4']}
    """
    return {
        "signal": str(signal),
        "value": float(value) if value is not None else float("nan"),
        "baseline": float(baseline) if baseline is not None else float("nan"),
        "detail": str(detail),
        "path": [str(p) for p in path],
    }


def ragged(labels: Any, codes: np.ndarray, offsets: np.ndarray, *, index: Any = None) -> pd.Series:
    """A ``list<string>`` column from integer codes into ``labels``, cut at ``offsets``.

    Row ``i`` holds ``labels[codes[offsets[i]:offsets[i + 1]]]``: the strings
    are gathered once in C, no Python list is built per row.

    Parameters
    ----------
    labels : array-like of str
        The distinct strings (e.g. every tender id).
    codes : array of int
        Flat positions into ``labels``, row after row.
    offsets : array of int
        ``n_rows + 1`` increasing offsets into ``codes``.

    Examples
    --------
    >>> ragged(["T1", "T2", "T3"], np.array([2, 0, 1]), np.array([0, 1, 1, 3])).tolist()
    [['T3'], [], ['T1', 'T2']]
    """
    labels = labels if isinstance(labels, (pa.Array, pa.ChunkedArray)) else pa.array(
        np.asarray(labels, dtype=object), type=pa.string())
    if isinstance(labels, pa.ChunkedArray):
        labels = labels.combine_chunks()
    values = labels.take(pa.array(np.asarray(codes, dtype=np.int64)))
    if values.type != pa.string():
        values = values.cast(pa.string())
    return list_series(offsets, values, index=index)


def list_series(offsets: np.ndarray, values: pa.Array, *, index: Any = None) -> pd.Series:
    """A ``list<string>`` column whose row ``i`` is ``values[offsets[i]:offsets[i + 1]]``."""
    arr = pa.LargeListArray.from_arrays(pa.array(np.asarray(offsets, dtype=np.int64)), values)
    return pd.Series(pd.arrays.ArrowExtensionArray(arr.cast(pa.list_(pa.string()))), index=index)


def flatten_lists(column: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, code, distinct items) for every item of a list column, flattened and encoded in Arrow.

    Examples
    --------
    >>> rows, codes, items = flatten_lists([["a", "b"], [], ["b"]])
    >>> rows.tolist(), items[codes].tolist()
    ([0, 0, 2], ['a', 'b', 'b'])
    """
    col = list_column(column)
    if len(col) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, object)
    rows, codes, items = _flatten_arrow(col)
    return rows, codes, items.to_numpy(zero_copy_only=False).astype(object)


def _flatten_arrow(column: Any, keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """:func:`flatten_lists` of the rows ``keep`` (a boolean mask; all rows without it), the
    distinct items left in Arrow: callers that compare, join or sort labels do it there,
    never as Python strings. Rows are numbered among the kept rows.
    """
    arr = pa.chunked_array(list_column(column).array._pa_array).combine_chunks()
    if keep is not None:
        arr = arr.filter(pa.array(keep))
    rows = pc.list_parent_indices(arr).to_numpy()
    enc = pc.list_flatten(arr).dictionary_encode()
    return rows, enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary


def sum_mixed(rows: np.ndarray, hashes: np.ndarray, n_rows: int) -> np.ndarray:
    """Per row, the wrapping sum of its items' scrambled hashes: an order-free hash of the row's set."""
    acc = np.zeros(n_rows, dtype=np.uint64)
    np.add.at(acc, rows, _mix64(hashes))
    return acc


def list_column(values: Any, *, index: Any = None) -> pd.Series:
    """``values`` (a list column, or any sequence of string sequences) as a ``list<string>`` column.

    Examples
    --------
    >>> list_column([["b", "a"], []]).tolist()
    [['b', 'a'], []]
    """
    if isinstance(values, pd.Series) and values.dtype == LIST_DTYPE:
        return values if index is None else values.set_axis(index)
    data = values.tolist() if isinstance(values, (pd.Series, np.ndarray)) else list(values)
    arr = pa.array([[str(x) for x in row] for row in data], type=pa.list_(pa.string()))
    return pd.Series(pd.arrays.ArrowExtensionArray(arr), index=index)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijective scrambling of 64-bit integers (wraps by design)."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _label_hashes(labels: pa.Array) -> np.ndarray:
    """Each label's scrambled hash (``_mix64`` of pandas' SipHash): what :func:`member_hashes`
    sums per row, so a one-member row's hash is its member's label hash.
    """
    text = labels.to_numpy(zero_copy_only=False)
    return _mix64(pd.util.hash_array(text, categorize=False)) if text.size else np.zeros(0, np.uint64)


def _hex16(h: np.ndarray, prefix: str) -> pa.Array:
    """``prefix`` + 16 lowercase hex digits of each uint64, built as one byte buffer."""
    p = np.frombuffer(prefix.encode(), dtype=np.uint8)
    b = h.astype(">u8").view(np.uint8).reshape(-1, 8)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    out = np.empty((h.size, p.size + 16), dtype=np.uint8)
    out[:, : p.size] = p
    out[:, p.size :: 2] = digits[b >> 4]
    out[:, p.size + 1 :: 2] = digits[b & 15]
    width = p.size + 16
    offsets = np.arange(0, (h.size + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(h.size, pa.py_buffer(offsets), pa.py_buffer(out.tobytes()))


def member_hashes(members: Any) -> np.ndarray:
    """One order-free 64-bit hash per row of a list column: equal member sets give equal hashes.

    Each distinct string is hashed once (pandas' fixed-key SipHash); a row's
    hash combines its members' scrambled hashes by a wrapping sum, so it does
    not depend on their order.
    """
    col = list_column(members)
    rows, codes, items = flatten_lists(col)
    h = pd.util.hash_array(items, categorize=False) if items.size else np.zeros(0, np.uint64)
    return sum_mixed(rows, h[codes], len(col))


def finding_ids(detector: str, unit: Any, members: Any = None, *, hashes: np.ndarray | None = None) -> pd.Series:
    """Stable finding ids: a hash of the detector, the unit kind and the unit's set of members.

    Ids depend only on what the finding is about, never on row order, member
    order, scores or the run, so monitoring systems can track an alert across
    runs. 64 bits: a detector scoring ten million units has about one chance in
    400,000 of one collision.

    Parameters
    ----------
    detector : str
    unit : str or array of str
        Unit kind, one for all rows or one per row.
    members : list column or sequence of sequences of str
        Each unit's members (``"type:id"``).
    hashes : array of uint64, optional
        :func:`member_hashes` of the members, when already known.

    Examples
    --------
    >>> ids = finding_ids("x", "pair", [["company:A", "company:B"], ["company:B", "company:A"], ["company:C"]])
    >>> ids.str.len().tolist(), ids.iloc[0] == ids.iloc[1], ids.iloc[0] == ids.iloc[2]
    ([18, 18, 18], True, False)
    >>> str(ids.iloc[0])
    'x-...'
    """
    h = member_hashes(members) if hashes is None else np.asarray(hashes, dtype=np.uint64)
    units = np.broadcast_to(np.asarray(unit, dtype=object), h.shape)
    out = np.empty(h.size, dtype=np.uint64)
    for kind in pd.unique(units):
        sel = units == kind
        salt = np.frombuffer(hashlib.sha1(f"{detector}|{kind}".encode()).digest()[:8], dtype="<u8")[0]
        out[sel] = _mix64(h[sel] ^ salt)
    return pd.Series(pd.array(_hex16(out, f"{detector}-"), dtype="str"), name="finding_id")


def empty_results() -> pd.DataFrame:
    """An empty result frame with the schema's columns and dtypes."""
    return pd.DataFrame(
        {
            "finding_id": pd.Series(dtype=object),
            "detector": pd.Series(dtype=object),
            "analysis": pd.Series(dtype=np.int64),
            "unit": pd.Series(dtype=object),
            "entity_type": pd.Series(dtype=object),
            "entity_id": pd.Series(dtype=object),
            "other_type": pd.Series(dtype=object),
            "other_id": pd.Series(dtype=object),
            "members": pd.Series(dtype=LIST_DTYPE),
            "tender_ids": pd.Series(dtype=LIST_DTYPE),
            "score": pd.Series(dtype=np.float64),
            "score_pct": pd.Series(dtype=np.float64),
            "flagged": pd.Series(dtype=bool),
            "rank": pd.Series(dtype=np.int64),
            "evidence": pd.Series(dtype=object),
        }
    )


def evidence_frame(results: pd.DataFrame) -> pd.DataFrame:
    """Explode the ``evidence`` column into one tidy row per record.

    Returns
    -------
    pandas.DataFrame
        Columns ``finding_id, detector, rank, signal, value, baseline, detail, path``.
    """
    cols = ["finding_id", "detector", "rank", *EVIDENCE_FIELDS]
    if len(results) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    ev = results[["finding_id", "detector", "rank", "evidence"]].explode("evidence")
    ev = ev[ev["evidence"].notna()]
    records = pd.DataFrame(ev["evidence"].tolist(), index=ev.index, columns=list(EVIDENCE_FIELDS))
    return pd.concat([ev[["finding_id", "detector", "rank"]], records], axis=1).reset_index(drop=True)[cols]
