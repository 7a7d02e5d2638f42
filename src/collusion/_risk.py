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

from ._gc import gc_paused
from .features._thresholds import percentile_rank
from .results import RESULT_COLUMNS, _flatten_arrow, _label_hashes, finding_ids, ragged

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


def _touches(results: pd.DataFrame, keep: np.ndarray, tender_project: Mapping[str, str] | pd.Series | None
             ) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """(kept row of results, entity code, entity labels) for every entity a kept finding touches.

    ``members`` is the authority (a contract finding also names its winner and
    buyer); tenders count for their project. Lists are flattened and
    dictionary-encoded in Arrow, so strings are handled once per distinct
    label and everything per item is integer work. Entity codes index the
    returned ``"type:id"`` labels, which are distinct and all touched. A
    finding touching one entity twice (a member, and again through its
    tender's project) appears twice: the callers keep maxima and minima.
    """
    r, codes, uniq = _flatten_arrow(results["members"], keep)
    ok = np.zeros(len(uniq), dtype=bool)
    for kind in _ENTITY_TYPES:  # a prefix test in Arrow, not a Python split per distinct label
        ok |= pc.starts_with(uniq, f"{kind}:").to_numpy(zero_copy_only=False)
    hit = ok[codes]
    rows, keys, names = [r[hit]], [codes[hit]], [uniq.cast(pa.string())]
    if tender_project is not None and len(tender_project):
        tp = tender_project if isinstance(tender_project, pd.Series) else pd.Series(tender_project, dtype="str")
        r, codes, uniq = _flatten_arrow(results["tender_ids"], keep)
        # One hash lookup per distinct tender, in Arrow.
        at = pc.index_in(uniq.cast(pa.string()), value_set=pa.array(tp.index.astype("str").array, type=pa.string()))
        has = np.asarray(at.is_valid(), dtype=bool)
        code = np.full(len(uniq), -1, dtype=np.int64)
        code[has] = len(names[0]) + np.arange(int(has.sum()))
        hit = has[codes]
        rows.append(r[hit])
        keys.append(code[codes[hit]])
        project = pa.array(tp.astype("str").array, type=pa.string()).take(at.filter(at.is_valid()))
        names.append(pc.binary_join_element_wise("project:", project, ""))
    # One code per distinct label (a project can be a member and come through a tender).
    enc = pa.concat_arrays(names).dictionary_encode()
    label_code = enc.indices.to_numpy().astype(np.int64)
    rows_all = np.concatenate(rows).astype(np.int64)
    keys_all = label_code[np.concatenate(keys)]
    # Only labels some finding touches, renumbered densely.
    used = np.bincount(keys_all, minlength=len(enc.dictionary)) > 0
    dense = np.cumsum(used) - 1
    return rows_all, dense[keys_all], enc.dictionary.filter(pa.array(used))


def _split_labels(labels: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``"type:id"`` labels into (type, id), in Arrow: no type name holds a colon, so the first one splits."""
    parts = pc.split_pattern(labels, ":", max_splits=1)
    return pc.list_element(parts, 0), pc.list_element(parts, 1)


def _rank_order(score: np.ndarray, labels: pa.Array) -> np.ndarray:
    """Entities by descending score, ties by (type, id).

    The order of the ``"type:id"`` labels is that of (type, id), as no type name is a
    prefix of another; labels are sorted in Arrow (byte order = code point order),
    and only those of tied entities (a few percent): sorting every label cost more
    than the rest of the ranking.
    """
    order = np.argsort(-score, kind="stable")
    s = score[order]
    tied = np.zeros(s.size, dtype=bool)
    same = s[1:] == s[:-1]
    tied[1:] |= same
    tied[:-1] |= same
    slots = np.flatnonzero(tied)  # runs of equal scores, in descending score order
    if slots.size:
        ent = order[slots]
        label_rank = np.empty(ent.size, dtype=np.int64)
        label_rank[pc.sort_indices(labels.take(pa.array(ent))).to_numpy()] = np.arange(ent.size)
        order[slots] = ent[np.lexsort((label_rank, -score[ent]))]
    return order


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
    det_codes, det_names = pd.factorize(results["detector"])  # in order of appearance, as the sums expect
    det_names = np.asarray(det_names, dtype=object)
    weight = np.array([w.get(d, 0.5) for d in det_names], dtype=float)[det_codes]
    strength = results["score_pct"].to_numpy(dtype=float) ** sharpness
    strength = np.where(results["flagged"].to_numpy(dtype=bool), strength, unflagged_factor * strength)
    contribution = np.clip(weight * strength, 0.0, 1.0 - 1e-12)
    keep = contribution >= min_contribution
    kept = np.flatnonzero(keep)  # rows below are positions among the kept findings
    det_codes, contribution = det_codes[keep], contribution[keep]
    rows, ent, ent_keys = _touches(results, keep, tender_project)
    if rows.size == 0:
        return pd.DataFrame(columns=[*RESULT_COLUMNS, "level", "contributions"])
    # Strongest finding per (entity, detector), the first finding among equals: two
    # scatters over the dense (entity, detector) space instead of a sort of every touch
    # (a maximum and a minimum, so touches listed twice need no deduplication).
    n_det = len(det_names)
    pair = ent * n_det + det_codes[rows]
    c_row = contribution[rows]
    top_c = np.full(len(ent_keys) * n_det, -1.0)
    np.maximum.at(top_c, pair, c_row)
    is_top = c_row == top_c[pair]
    none = np.iinfo(np.int64).max
    first_row = np.full(top_c.size, none)
    np.minimum.at(first_row, pair[is_top], rows[is_top])
    present = np.flatnonzero(first_row != none)  # in (entity, detector) order
    best_rows = first_row[present]
    best_ent = present // n_det
    best_c = contribution[best_rows]
    del pair, c_row, top_c, is_top, first_row
    # noisy-or over detectors: 1 - prod(1 - c)
    log_keep = np.bincount(best_ent, weights=np.log1p(-best_c), minlength=len(ent_keys))
    score = 100.0 * (1.0 - np.exp(log_keep))
    etype, eid = _split_labels(ent_keys)
    rank_order = _rank_order(score, ent_keys)
    rank = np.empty(len(score), dtype=np.int64)
    rank[rank_order] = np.arange(1, len(score) + 1)
    # Contributions are listed for entities worth reading (medium level and up, or the
    # top ``max_explained``): building records for a million quiet firms costs seconds.
    explain = (score >= LEVELS[0][1]) | (rank <= max_explained)
    keep = explain[best_ent]
    sel = np.flatnonzero(keep)
    # A score floor and a rank cut are both prefixes of the rank order, so the explained
    # entities are the index's top rows: their findings are laid out in rank order.
    sel = sel[np.lexsort((-best_c[sel], rank[best_ent[sel]]))]
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
    # Only the listed findings' ids become Python strings.
    fids = results["finding_id"].array.take(kept[best_rows[sel]]).tolist()
    flat = [{"signal": sg, "value": c, "baseline": nan, "detail": dt, "path": [f]}
            for sg, c, dt, f in zip(signal[dcode].tolist(), best_c[sel].tolist(), detail[dcode].tolist(), fids)]
    # One span of records per explained entity, in rank order: the first rows of the output.
    bounds_e = np.r_[0, np.flatnonzero(np.diff(ent_sel)) + 1, sel.size] if sel.size else np.zeros(1, np.int64)
    spans = list(zip(bounds_e[:-1].tolist(), bounds_e[1:].tolist()))
    vals = np.round(best_c[sel], 6).tolist()  # finding id -> contribution, from the same slices
    quiet = len(score) - len(spans)
    evidence = [flat[a:b] for a, b in spans] + [[] for _ in range(quiet)]
    contributions = [dict(zip(fids[a:b], vals[a:b])) for a, b in spans] + [{} for _ in range(quiet)]
    o = rank_order
    take = pa.array(o)
    labels = ent_keys.take(take)
    # One member per entity: its finding hash is its label's scrambled hash, as member_hashes would sum it.
    hashes = _label_hashes(labels)
    bounds = np.array([b for _, b in LEVELS])
    level = np.searchsorted(bounds, score[o], side="right")
    result = pd.DataFrame(
        {
            "finding_id": finding_ids("risk_index", "entity", hashes=hashes),
            "detector": "risk_index",
            "analysis": 0,
            "unit": "entity",
            "entity_type": pd.array(etype.take(take), dtype="str"),
            "entity_id": pd.array(eid.take(take), dtype="str"),
            "other_type": None,
            "other_id": None,
            "members": ragged(labels, np.arange(o.size), np.arange(o.size + 1)).array,
            "tender_ids": ragged([], np.zeros(0, np.int64), np.zeros(o.size + 1, np.int64)).array,
            "score": score[o],
            "score_pct": percentile_rank(score[o]),
            "flagged": score[o] >= 50.0,
            "rank": rank[o],
            "evidence": evidence,
            "level": pd.array(pa.DictionaryArray.from_arrays(
                pa.array(level), pa.array([n for n, _ in LEVELS])).cast(pa.string()), dtype="str"),
            "contributions": contributions,
        }
    )
    return result
