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

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._arrays import unique_ints
from ._gc import gc_paused
from .features._thresholds import percentile_rank
from .results import RESULT_COLUMNS, finding_ids, flatten_lists, ragged

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


def _touches(results: pd.DataFrame, tender_project: Mapping[str, str] | pd.Series | None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row of results, entity code, entity labels) for every entity a finding touches.

    ``members`` is the authority (a contract finding also names its winner and
    buyer); tenders count for their project. Lists are flattened and
    dictionary-encoded in Arrow, so strings are handled once per distinct
    label and everything per item is integer work. Entity codes index the
    returned ``"type:id"`` labels, which are distinct and all touched.
    """
    r, codes, uniq = flatten_lists(results["members"])
    labels = pd.Series(uniq, dtype="str")
    ok = np.zeros(uniq.size, dtype=bool)
    for kind in _ENTITY_TYPES:  # a prefix test in Arrow, not a Python split per distinct label
        ok |= labels.str.startswith(f"{kind}:").to_numpy(dtype=bool)
    hit = ok[codes]
    rows, keys, names = [r[hit]], [codes[hit]], [uniq]
    if tender_project is not None and len(tender_project):
        tp = tender_project if isinstance(tender_project, pd.Series) else pd.Series(tender_project, dtype="str")
        r, codes, uniq = flatten_lists(results["tender_ids"])
        proj = pd.Series(uniq, dtype="str").map(tp)  # one lookup per distinct tender
        has = proj.notna().to_numpy(dtype=bool)
        code = np.full(uniq.size, -1, dtype=np.int64)
        code[has] = len(names[0]) + np.arange(int(has.sum()))
        hit = has[codes]
        rows.append(r[hit])
        keys.append(code[codes[hit]])
        names.append(("project:" + proj[has].astype(str)).to_numpy(dtype=object))
    # One code per distinct label (a project can be a member and come through a tender).
    label_code, distinct = pd.factorize(np.concatenate(names))
    rows_all = np.concatenate(rows).astype(np.int64)
    keys_all = label_code[np.concatenate(keys)]
    # Only labels some finding touches, renumbered densely.
    used = np.bincount(keys_all, minlength=len(distinct)) > 0
    dense = np.cumsum(used) - 1
    keys_all = dense[keys_all]
    n = max(int(used.sum()), 1)
    # a finding touching one entity twice (member and via its tender) counts once
    pair = unique_ints(rows_all * n + keys_all)
    return pair // n, pair % n, np.asarray(distinct, dtype=object)[used]


def _split_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``"type:id"`` labels into (type, id), per entity type in Arrow (no Python split per label)."""
    arr = pa.array(labels, type=pa.large_string())
    etype = np.empty(len(labels), dtype=object)
    eid = np.empty(len(labels), dtype=object)
    for kind in _ENTITY_TYPES:
        mask = pc.starts_with(arr, f"{kind}:").to_numpy(zero_copy_only=False)
        if mask.any():
            etype[mask] = kind
            eid[mask] = pc.utf8_slice_codeunits(arr.filter(mask), len(kind) + 1).to_numpy(zero_copy_only=False)
    return etype, eid


@gc_paused()  # hundreds of thousands of evidence records: see collusion._gc
def risk_index(
    results: pd.DataFrame,
    *,
    weights: Mapping[str, float] | None = None,
    sharpness: float = 4.0,
    tender_project: Mapping[str, str] | pd.Series | None = None,
    max_contributions: int = 5,
    max_explained: int = 1000,
    unflagged_factor: float = 0.1,
    min_contribution: float = 0.01,
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
    tender_project : mapping or pandas.Series, optional
        tender id → project id, so tender-level findings count for the project
        (a Series indexed by tender id is looked up without a Python dict).
    max_contributions : int
        How many contributing findings are listed as evidence.
    unflagged_factor : float
        Share of its strength an unflagged finding contributes.
    min_contribution : float
        Findings that would add less than this (0.01 = one index point) to
        any entity are skipped: they cannot change a level, and at a million
        tenders they are most of the work.
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
    {'X': 83.3, 'Y': 67.2, 'B': 48.9}
    >>> r.set_index("entity_id")["level"].to_dict()
    {'X': 'critical', 'Y': 'high', 'B': 'medium'}
    """
    w = {**DEFAULT_WEIGHTS, **(dict(weights) if weights else {})}
    for name, value in w.items():
        if not 0 <= value <= 1:
            raise ValueError(f"risk_index: weight of {name!r} must be in [0, 1], got {value}")
    res = results.reset_index(drop=True)
    det_codes, det_names = pd.factorize(res["detector"].to_numpy(dtype=object))
    weight = np.array([w.get(d, 0.5) for d in det_names], dtype=float)[det_codes]
    strength = res["score_pct"].to_numpy(dtype=float) ** sharpness
    strength = np.where(res["flagged"].to_numpy(dtype=bool), strength, unflagged_factor * strength)
    contribution = np.clip(weight * strength, 0.0, 1.0 - 1e-12)
    keep = contribution >= min_contribution
    res = res.loc[keep, ["finding_id", "members", "tender_ids"]].reset_index(drop=True)
    det_codes, contribution = det_codes[keep], contribution[keep]
    rows, ent, ent_keys = _touches(res, tender_project)
    if rows.size == 0:
        return pd.DataFrame(columns=[*RESULT_COLUMNS, "level", "contributions"])
    # Strongest finding per (entity, detector), the first finding among equals: two
    # scatters over the dense (entity, detector) space instead of a sort of every touch.
    n_det = len(det_names)
    pair = ent.astype(np.int64) * n_det + det_codes[rows]
    c_row = contribution[rows]
    top_c = np.full(len(ent_keys) * n_det, -1.0)
    np.maximum.at(top_c, pair, c_row)
    is_top = c_row == top_c[pair]
    none = np.iinfo(np.int64).max
    first_row = np.full(top_c.size, none)
    np.minimum.at(first_row, pair[is_top], rows[is_top].astype(np.int64))
    present = np.flatnonzero(first_row != none)  # in (entity, detector) order
    best_rows = first_row[present]
    best_ent = present // n_det
    best_c = contribution[best_rows]
    del pair, c_row, top_c, is_top, first_row
    # noisy-or over detectors: 1 - prod(1 - c)
    log_keep = np.bincount(best_ent, weights=np.log1p(-best_c), minlength=len(ent_keys))
    score = 100.0 * (1.0 - np.exp(log_keep))
    etype, eid = _split_labels(ent_keys)
    # Ties by (type, id): the order of the "type:id" labels, as no type name is a prefix of
    # another; sorted in Arrow (byte order = code point order), not as Python objects.
    label_rank = np.empty(len(ent_keys), dtype=np.int64)
    label_rank[pc.sort_indices(pa.array(ent_keys, type=pa.large_string())).to_numpy()] = np.arange(len(ent_keys))
    rank_order = np.lexsort((label_rank, -score))
    rank = np.empty(len(score), dtype=np.int64)
    rank[rank_order] = np.arange(1, len(score) + 1)
    # Contributions are listed for entities worth reading (medium level and up, or the
    # top ``max_explained``): building records for a million quiet firms costs seconds.
    explain = (score >= LEVELS[0][1]) | (rank <= max_explained)
    keep = explain[best_ent]
    fid = res["finding_id"].to_numpy(dtype=object)
    sel = np.flatnonzero(keep)
    sel = sel[np.lexsort((-best_c[sel], best_ent[sel]))]
    # The strongest ``max_contributions`` findings of each explained entity, in that order.
    ent_sel = best_ent[sel]
    starts = np.r_[0, np.flatnonzero(np.diff(ent_sel)) + 1]
    within = np.arange(sel.size) - np.repeat(starts, np.diff(np.r_[starts, sel.size]))
    sel, ent_sel = sel[within < max_contributions], ent_sel[within < max_contributions]
    # Records built as dict literals (the shape of ``evidence``): hundreds of thousands at 1M tenders.
    signal = np.array([f"finding:{d}" for d in det_names], dtype=object)
    detail = np.array([f"strongest {d} finding" for d in det_names], dtype=object)
    dcode = det_codes[best_rows[sel]]
    nan = float("nan")
    flat = [{"signal": sg, "value": c, "baseline": nan, "detail": dt, "path": [f]}
            for sg, c, dt, f in zip(signal[dcode].tolist(), best_c[sel].tolist(), detail[dcode].tolist(),
                                    fid[best_rows[sel]].tolist())]
    bounds_e = np.r_[0, np.flatnonzero(np.diff(ent_sel)) + 1, sel.size]
    spans = [(a, b) for a, b in zip(bounds_e[:-1].tolist(), bounds_e[1:].tolist()) if b > a]
    records: dict[int, list[dict]] = {int(ent_sel[a]): flat[a:b] for a, b in spans}
    # finding id -> contribution, from the same slices (no pass over the records)
    fids, vals = fid[best_rows[sel]].tolist(), np.round(best_c[sel], 6).tolist()
    contrib: dict[int, dict] = {int(ent_sel[a]): dict(zip(fids[a:b], vals[a:b])) for a, b in spans}
    o = rank_order
    members = ragged(ent_keys[o], np.arange(o.size), np.arange(o.size + 1))
    bounds = np.array([b for _, b in LEVELS])
    names = np.array([n for n, _ in LEVELS], dtype=object)
    result = pd.DataFrame(
        {
            "finding_id": finding_ids("risk_index", "entity", members),
            "detector": "risk_index",
            "analysis": 0,
            "unit": "entity",
            "entity_type": etype[o],
            "entity_id": eid[o],
            "other_type": None,
            "other_id": None,
            "members": members.array,
            "tender_ids": ragged([], np.zeros(0, np.int64), np.zeros(o.size + 1, np.int64)).array,
            "score": score[o],
            "score_pct": percentile_rank(score[o]),
            "flagged": score[o] >= 50.0,
            "rank": rank[o],
            "evidence": [records.get(e, []) for e in o.tolist()],
        }
    )
    result["level"] = names[np.searchsorted(bounds, result["score"].to_numpy(), side="right")]
    result["contributions"] = [contrib.get(e, {}) for e in o.tolist()]
    return result
