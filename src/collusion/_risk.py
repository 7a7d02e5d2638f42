"""The risk index ("smoke index"): one 0–100 score per entity from all analyses.

Each finding touches entities (its ``members``, and the projects of its
tenders). A finding's *strength* is its within-detector percentile raised to a
power (``sharpness``), so the bulk of ordinary units contributes almost nothing
and the extreme tail dominates: 0.99 → 0.96, 0.9 → 0.66, 0.5 → 0.06 at the
default power 4. Per entity and detector we keep the strongest finding; the
detectors are then combined by a weighted noisy-or (findings below their
detector's data-driven threshold count ``unflagged_factor`` of their
strength, so the index leans on what the detectors flagged and a market's
top decile is not "high risk" merely for being the top decile),

    index = 100 · (1 − Π_d (1 − w_d · s_d)),

so one strong analysis gives a clear signal, several agreeing analyses push
the index towards 100, and weights stay interpretable (the most one analysis
alone can contribute is ``100 · w_d``).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from .features._thresholds import percentile_rank
from .results import RESULT_COLUMNS, evidence, finding_ids

__all__ = ["DEFAULT_WEIGHTS", "LEVELS", "risk_index"]

#: Default weight per detector name (the most one analysis alone can add, /100).
DEFAULT_WEIGHTS: dict[str, float] = {
    "buyer_winner": 0.6,
    "bid_rigging": 0.7,
    "winner_builder": 0.6,
    "funds": 0.6,
    "agent_bidder": 0.6,
    "expert_winner": 0.6,
    "lot_splitting": 0.5,
}

#: Upper bounds (exclusive) of the index levels.
LEVELS: tuple[tuple[str, float], ...] = (("low", 25.0), ("medium", 50.0), ("high", 75.0), ("critical", np.inf))

_ENTITY_TYPES = ("company", "buyer", "agent", "expert", "project")


def _touches(results: pd.DataFrame, tender_project: Mapping[str, str] | None) -> pd.DataFrame:
    """Long table (row of results, entity_type, entity_id) of the entities each finding touches."""
    m = results["members"].explode().dropna()
    # split the unique "type:id" strings only: members repeat across findings
    codes, uniq = pd.factorize(m.to_numpy(dtype=object))
    split = [str(u).split(":", 1) for u in uniq]
    types = np.array([p[0] for p in split], dtype=object)
    ids = np.array([p[1] if len(p) > 1 else "" for p in split], dtype=object)
    touch = pd.DataFrame({"row": m.index.to_numpy(), "entity_type": types[codes], "entity_id": ids[codes]})
    if tender_project:
        t = results[["tender_ids"]].explode("tender_ids").dropna()
        proj = t["tender_ids"].map(tender_project)
        ok = proj.notna().to_numpy()
        touch = pd.concat(
            [touch, pd.DataFrame({"row": t.index.to_numpy()[ok], "entity_type": "project",
                                  "entity_id": proj.to_numpy()[ok]})],
            ignore_index=True,
        )
    touch = touch[touch["entity_type"].isin(_ENTITY_TYPES)]
    return touch.drop_duplicates()


def risk_index(
    results: pd.DataFrame,
    *,
    weights: Mapping[str, float] | None = None,
    sharpness: float = 4.0,
    tender_project: Mapping[str, str] | None = None,
    max_contributions: int = 5,
    max_explained: int = 1000,
    unflagged_factor: float = 0.1,
) -> pd.DataFrame:
    """Combine detector findings into one 0–100 risk index per entity.

    Parameters
    ----------
    results : pandas.DataFrame
        Findings of one or more detectors in the result schema.
    weights : mapping, optional
        Weight in [0, 1] per detector name (default :data:`DEFAULT_WEIGHTS`;
        unknown detectors get 0.5).
    sharpness : float
        Power applied to percentiles (see module docstring).
    tender_project : mapping, optional
        tender id → project id, so tender-level findings count for the project.
    max_contributions : int
        How many contributing findings are listed as evidence.
    unflagged_factor : float
        Share of its strength an unflagged finding contributes.
    max_explained : int
        Entities below the "medium" level get their contributions listed only
        within the top ``max_explained``.

    Returns
    -------
    pandas.DataFrame
        In the result schema (``detector="risk_index"``, ``unit="entity"``),
        plus ``level`` (low / medium / high / critical) and
        ``contributions`` (finding id → contribution).

    Examples
    --------
    >>> import pandas as pd
    >>> findings = pd.DataFrame({
    ...     "finding_id": ["a", "b", "c"], "detector": ["bid_rigging", "buyer_winner", "bid_rigging"],
    ...     "members": [["company:X", "company:Y"], ["buyer:B", "company:X"], ["company:Z"]],
    ...     "tender_ids": [["T1"], ["T2"], ["T3"]], "score_pct": [0.99, 0.95, 0.5], "flagged": [True, True, False]})
    >>> r = risk_index(findings)
    >>> r.set_index("entity_id")["score"].round(1).to_dict()
    {'X': 83.3, 'Y': 67.2, 'B': 48.9, 'Z': 0.4}
    >>> r.set_index("entity_id")["level"].to_dict()
    {'X': 'critical', 'Y': 'high', 'B': 'medium', 'Z': 'low'}
    """
    w = {**DEFAULT_WEIGHTS, **(dict(weights) if weights else {})}
    for name, value in w.items():
        if not 0 <= value <= 1:
            raise ValueError(f"risk_index: weight of {name!r} must be in [0, 1], got {value}")
    res = results.reset_index(drop=True)
    touch = _touches(res, tender_project)
    if len(touch) == 0:
        out = pd.DataFrame(columns=[*RESULT_COLUMNS, "level", "contributions"])
        return out
    strength = res["score_pct"].to_numpy(dtype=float) ** sharpness
    strength = np.where(res["flagged"].to_numpy(dtype=bool), strength, unflagged_factor * strength)
    weight = res["detector"].map(lambda d: w.get(d, 0.5)).to_numpy(dtype=float)
    touch["detector"] = res["detector"].to_numpy()[touch["row"]]
    touch["contribution"] = (weight * strength)[touch["row"]]
    touch["finding_id"] = res["finding_id"].to_numpy()[touch["row"]]
    # strongest finding per (entity, detector), then noisy-or over detectors
    best = touch.sort_values("contribution", ascending=False, kind="stable").drop_duplicates(
        ["entity_type", "entity_id", "detector"]
    )
    best["log_keep"] = np.log1p(-np.clip(best["contribution"].to_numpy(), 0, 1 - 1e-12))
    agg = best.groupby(["entity_type", "entity_id"], sort=False).agg(
        log_keep=("log_keep", "sum"), n_detectors=("detector", "nunique")
    )
    score = 100.0 * (1.0 - np.exp(agg["log_keep"].to_numpy()))
    out = agg.reset_index()
    out["score"] = score
    out = out.sort_values(["score", "entity_type", "entity_id"], ascending=[False, True, True], kind="stable")
    # Contributions are listed for entities worth reading (medium level and up, or the
    # top ``max_explained``): building records for a million quiet firms costs seconds.
    explain = (out["score"].to_numpy() >= LEVELS[0][1]) | (np.arange(len(out)) < max_explained)
    wanted = out.loc[explain, ["entity_type", "entity_id"]]
    top = best.merge(wanted, on=["entity_type", "entity_id"]).sort_values(
        ["entity_type", "entity_id", "contribution"], ascending=[True, True, False], kind="stable"
    )
    top = top.groupby(["entity_type", "entity_id"], sort=False).head(max_contributions)
    records: dict[tuple[str, str], list[dict]] = {}
    for et, ei, d, c, fid in zip(top["entity_type"], top["entity_id"], top["detector"], top["contribution"],
                                 top["finding_id"]):
        records.setdefault((et, ei), []).append(
            evidence(f"finding:{d}", c, None, detail=f"strongest {d} finding", path=[fid])
        )
    out["evidence"] = [records.get(k, []) for k in zip(out["entity_type"], out["entity_id"])]
    keys = (out["entity_type"] + ":" + out["entity_id"]).tolist()
    bounds = np.array([b for _, b in LEVELS])
    names = np.array([n for n, _ in LEVELS], dtype=object)
    result = pd.DataFrame(
        {
            "finding_id": finding_ids("risk_index", "entity", keys),
            "detector": "risk_index",
            "analysis": 0,
            "unit": "entity",
            "entity_type": out["entity_type"].to_numpy(),
            "entity_id": out["entity_id"].to_numpy(),
            "other_type": None,
            "other_id": None,
            "members": [[k] for k in keys],
            "tender_ids": [[] for _ in keys],
            "score": out["score"].to_numpy(),
            "score_pct": np.zeros(len(keys)),
            "flagged": out["score"].to_numpy() >= 50.0,
            "rank": np.arange(1, len(keys) + 1),
            "evidence": out["evidence"].to_numpy(),
        }
    )
    result["score_pct"] = percentile_rank(result["score"].to_numpy())
    result["level"] = names[np.searchsorted(bounds, result["score"].to_numpy(), side="right")]
    result["contributions"] = [
        {r["path"][0]: round(r["value"], 6) for r in ev} for ev in result["evidence"]
    ]
    return result.reset_index(drop=True)
