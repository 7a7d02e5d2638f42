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
``tender_ids``  tenders the finding involves
``score``       higher = more suspicious; comparable only within one detector
``score_pct``   percentile of the score within the detector, in [0, 1]
``flagged``     ``score >= threshold_`` of the detector
``rank``        1 = most suspicious within the detector
``evidence``    list of records ``{signal, value, baseline, detail, path}``
==============  ==============================================================

``path`` is a walk through the graph written as alternating node and relation
names, e.g. ``["company:C1", "bids", "tender:T9", "bids", "company:C7"]``.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "EVIDENCE_FIELDS",
    "RESULT_COLUMNS",
    "empty_results",
    "evidence",
    "evidence_frame",
    "finding_ids",
]

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


def finding_ids(detector: str, unit: str, keys: Iterable[str]) -> np.ndarray:
    """Stable finding ids: a hash of detector, unit and the unit's sorted members.

    Ids depend only on what the finding is about, never on row order, scores
    or the run, so monitoring systems can track an alert across runs.

    Examples
    --------
    >>> str(finding_ids("bid_rigging", "tender", ["tender:T1"])[0])
    'bid_rigging-tender-...'
    >>> a = finding_ids("x", "pair", ["company:A|company:B"])
    >>> bool(a[0] == finding_ids("x", "pair", ["company:A|company:B"])[0])
    True
    """
    prefix = f"{detector}-{unit}-" if unit else f"{detector}-"
    out = [prefix + hashlib.sha1(f"{detector}|{unit}|{k}".encode()).hexdigest()[:12] for k in keys]
    return np.asarray(out, dtype=object)


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
            "members": pd.Series(dtype=object),
            "tender_ids": pd.Series(dtype=object),
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
