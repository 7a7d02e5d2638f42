"""Frame assembly shared by the detectors' unit tables and evidence rows."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["stack_rows", "unit_rows"]


def stack_rows(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """``pd.concat(frames, ignore_index=True)``, built column by column.

    Unit frames of different kinds (contracts and projects, contracts and
    pairs) share few columns. ``pd.concat`` copies them block by block and
    costs seconds for a million contracts; here each column is one
    ``np.concatenate``, with the same result dtypes: a numeric column missing
    from some frames becomes float (NaN where missing), a bool or object
    column becomes object with NaN. Anything else (extension types missing
    from a frame) goes through ``pd.concat`` itself.

    Examples
    --------
    >>> a = pd.DataFrame({"x": [1, 2], "s": ["a", "b"], "b": [True, False], "k": np.array([1, 2], np.int32)})
    >>> b = pd.DataFrame({"y": [0.5], "s": ["c"], "o": [None], "k": [3]})
    >>> stack_rows([a, b]).equals(pd.concat([a, b], ignore_index=True))
    True
    >>> stack_rows([a, b]).dtypes.astype(str).tolist()
    ['float64', 'str', 'object', 'int64', 'float64', 'object']
    """
    names: dict[str, None] = {}
    for f in frames:
        names.update(dict.fromkeys(f.columns))
    columns: dict[str, Any] = {}
    for name in names:
        parts = [f[name] if name in f.columns else None for f in frames]
        dtypes = {p.dtype for p in parts if p is not None}
        dtype = next(iter(dtypes))
        if all(p is not None for p in parts):
            if len(dtypes) > 1:  # pandas' common type (int32 and int64 give int64)
                columns[name] = pd.concat(parts, ignore_index=True).array
            elif isinstance(dtype, np.dtype):
                columns[name] = np.concatenate([p.to_numpy() for p in parts])
            else:
                arrays = [p.array for p in parts]
                columns[name] = type(arrays[0])._concat_same_type(arrays)
        elif isinstance(dtype, np.dtype) and dtype.kind in "iuf":
            out = np.float64 if dtype.kind in "iu" else dtype
            columns[name] = np.concatenate([p.to_numpy(dtype=out) if p is not None else np.full(len(f), np.nan, out)
                                            for p, f in zip(parts, frames)])
        elif len(dtypes) > 1:
            return pd.concat(frames, ignore_index=True)
        elif dtype == object or dtype == bool:  # bool with gaps is object, as in pandas
            missing = np.full(max(len(f) for f in frames), np.nan, dtype=object)
            columns[name] = np.concatenate([p.to_numpy(dtype=object) if p is not None else missing[: len(f)]
                                            for p, f in zip(parts, frames)])
        else:
            return pd.concat(frames, ignore_index=True)
    return pd.DataFrame(columns, copy=False)


def unit_rows(units: pd.DataFrame, fields: Sequence[str]) -> Iterator[Any]:
    """``units[fields].itertuples(index=False)`` (fields missing from ``units`` left out), built from
    whole-column ``tolist`` calls: the same Python values, without a per-element iterator over
    each Arrow string column (the evidence rows of a million contracts).
    """
    present = [c for c in fields if c in units.columns]
    row = namedtuple("Row", present)  # type: ignore[misc]
    return map(row._make, zip(*(units[c].tolist() for c in present)))
