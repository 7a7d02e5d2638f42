"""The one detector interface.

Every analysis is a :class:`BaseDetector`. A subclass writes two things:

* ``_score(graph) -> pandas.DataFrame`` — one row per unit with the unit's ids,
  its signals (one column each) and a ``score`` column;
* ``_evidence(graph, units) -> list[list[dict]]`` — evidence records for some
  rows of that frame (only flagged and top units get evidence in ``fit``; the
  rest on demand through :meth:`BaseDetector.explain`).

The base class does everything else the same way for all seven analyses:
parameter validation, thresholds, percentiles, ranks, stable finding ids and
the one tidy result frame (:data:`collusion.results.RESULT_COLUMNS`).

**Scores: higher = more suspicious**, always. Scores are comparable only within
one detector (and one unit kind); use ``score_pct`` to compare across them.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, ClassVar, TypeVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from .._param_validation import Interval, validate_params
from ..exceptions import NotFittedError
from ..features._thresholds import contamination_threshold, percentile_rank, robust_fence
from ..results import RESULT_COLUMNS, empty_results, evidence_frame, finding_ids

__all__ = ["BaseDetector", "SurprisalDetector", "as_graph", "check_is_fitted", "fit_context"]

F = TypeVar("F", bound=Callable[..., Any])

#: Unit-frame columns that describe the unit rather than a signal.
_UNIT_COLUMNS = ("unit", "entity_type", "entity_id", "other_type", "other_id", "members", "tender_ids", "score")


def as_graph(data: Any) -> Any:
    """Accept a ``ProcurementGraph`` or a ``Market`` (whose graph is built once and cached)."""
    from .._market import Market

    if isinstance(data, Market):
        cached = getattr(data, "_graph_cache", None)
        if cached is None:
            from ..graph import build_graph

            cached = build_graph(data)
            data._graph_cache = cached  # type: ignore[attr-defined]
        return cached
    if hasattr(data, "market") and hasattr(data, "adjacency"):
        return data
    raise TypeError(f"expected a collusion Market or ProcurementGraph, got {type(data).__name__}")


def fit_context(method: F) -> F:
    """Validate ``_parameter_constraints`` before ``fit`` runs (sklearn's pattern, vendored)."""

    @functools.wraps(method)
    def wrapper(self: BaseDetector, *args: Any, **kwargs: Any) -> Any:
        validate_params(type(self).__name__, self.get_params(deep=False), self._parameter_constraints)
        return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def check_is_fitted(detector: BaseDetector) -> None:
    """Raise :class:`NotFittedError` unless ``detector`` has been fitted."""
    if not hasattr(detector, "results_"):
        raise NotFittedError(
            f"this {type(detector).__name__} is not fitted yet; call fit(market_or_graph) first"
        )


class BaseDetector(BaseEstimator):
    """Base class of the seven analyses.

    Parameters (shared by all subclasses, keyword-only)
    ---------------------------------------------------
    contamination : float or None
        When set, flag the top ``contamination`` share of units. When ``None``
        (default) the threshold is the robust upper fence ``Q3 + fence_k * IQR``
        of the scores, or the detector's own calibrated default.
    fence_k : float
        Width of the robust fence in IQRs.
    max_evidence : int
        Besides flagged units, the top ``max_evidence`` units of each unit kind
        get evidence records during ``fit``; the others on demand via ``explain``.

    Attributes
    ----------
    scores_ : pandas.Series
        Score per unit (index: unit key), **higher = more suspicious**.
    threshold_ : float or dict
        Score at or above which a unit is flagged (a dict per unit kind when the
        detector scores several kinds of unit).
    flagged_ : pandas.Series of bool
        ``scores_ >= threshold_``.
    units_ : pandas.DataFrame
        One row per unit with every signal the detector computed (wide).
    results_ : pandas.DataFrame
        The tidy ranked result frame (:data:`collusion.results.RESULT_COLUMNS`).
    evidence_ : pandas.DataFrame
        ``results_``'s evidence exploded into one row per record.
    """

    #: Short name used in results and finding ids.
    name: ClassVar[str] = "base"
    #: Number of the analysis in the SPEC (1–7).
    analysis: ClassVar[int] = 0
    #: Default unit kind and node types (a unit frame may override per row).
    unit: ClassVar[str] = "entity"
    entity_type: ClassVar[str] = "company"
    other_type: ClassVar[str | None] = None
    #: Tables without which the analysis cannot run at all.
    required_tables: ClassVar[tuple[str, ...]] = ("tenders", "bids")

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "contamination": [Interval(0, 0.5, closed="right"), None],
        "fence_k": [Interval(0, None, closed="neither")],
        "max_evidence": [Interval(0, None, integer=True)],
    }

    def __init__(self, *, contamination: float | None = None, fence_k: float = 1.5, max_evidence: int = 100) -> None:
        self.contamination = contamination
        self.fence_k = fence_k
        self.max_evidence = max_evidence

    # ------------------------------------------------------------ subclasses
    def _score(self, graph: Any) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def _evidence(self, graph: Any, units: pd.DataFrame) -> list[list[dict[str, Any]]]:  # pragma: no cover
        raise NotImplementedError

    def _default_threshold(self, scores: np.ndarray, unit: str) -> float:
        """Threshold used when ``contamination`` is None: the robust fence."""
        return robust_fence(scores, k=self.fence_k)

    # ------------------------------------------------------------------- API
    @fit_context
    def fit(self, graph: Any) -> BaseDetector:
        """Score every unit of ``graph`` (a ``ProcurementGraph`` or ``Market``); return ``self``."""
        graph = as_graph(graph)
        graph.market.require(*self.required_tables, analysis=f"{type(self).__name__} (analysis {self.analysis})")
        units = self._score(graph)
        self._finish(graph, units)
        return self

    def fit_score(self, graph: Any) -> pd.Series:
        """``fit(graph)`` then return ``scores_``."""
        return self.fit(graph).scores_

    def explain(self, finding: str | int) -> pd.DataFrame:
        """Evidence of one finding, as a tidy frame (one row per record).

        Parameters
        ----------
        finding : str or int
            A ``finding_id``, a unit key (``scores_`` index) or a rank (1 = top).
        """
        check_is_fitted(self)
        res = self.results_
        if isinstance(finding, (int, np.integer)):
            row = res.loc[res["rank"] == finding]
            row = row.iloc[:1]
        else:
            row = res.loc[(res["finding_id"] == finding) | (res.index == finding)]
        if len(row) == 0:
            raise KeyError(f"no finding {finding!r} in {type(self).__name__}.results_")
        if len(row["evidence"].iloc[0]) == 0 and self._graph_ref is not None:
            records = self._evidence(self._graph_ref, self.units_.loc[row.index])
            row = row.copy()
            row["evidence"] = pd.Series(records, index=row.index, dtype=object)
        return evidence_frame(row)

    # -------------------------------------------------------------- internal
    def _finish(self, graph: Any, units: pd.DataFrame) -> None:
        units = units.copy()
        n = len(units)
        for col, default in (("unit", self.unit), ("entity_type", self.entity_type), ("other_type", self.other_type)):
            if col not in units.columns:
                units[col] = default
        for col in ("other_id",):
            if col not in units.columns:
                units[col] = None
        if "members" not in units.columns:
            units["members"] = _default_members(units)
        if "tender_ids" not in units.columns:
            units["tender_ids"] = pd.Series([[] for _ in range(n)], index=units.index, dtype=object)
        keys = units["members"].map(lambda m: "|".join(sorted(m))).to_numpy(dtype=object)
        units.index = pd.Index(_unit_keys(units), name="unit_key")
        score = units["score"].to_numpy(dtype=np.float64)

        flagged = np.zeros(n, dtype=bool)
        pct = np.zeros(n)
        rank = np.zeros(n, dtype=np.int64)
        thresholds: dict[str, float] = {}
        for kind in pd.unique(units["unit"]):
            sel = np.flatnonzero(units["unit"].to_numpy() == kind)
            s = score[sel]
            if self.contamination is not None:
                thr = contamination_threshold(s, self.contamination)
            else:
                thr = self._default_threshold(s, str(kind))
            thresholds[str(kind)] = float(thr)
            flagged[sel] = np.isfinite(s) & (s >= thr)
            pct[sel] = percentile_rank(s)
            # Ties broken by the unit key so ranks are deterministic across runs.
            order = np.lexsort((keys[sel], -np.nan_to_num(s, nan=-np.inf)))
            rank[sel[order]] = np.arange(1, sel.size + 1)

        results = pd.DataFrame(
            {
                # Stable: a hash of detector, unit kind and the unit's sorted members.
                "finding_id": finding_ids(self.name, "", [f"{u}|{k}" for u, k in zip(units["unit"], keys)]),
                "detector": self.name,
                "analysis": self.analysis,
                "unit": units["unit"].to_numpy(dtype=object),
                "entity_type": units["entity_type"].to_numpy(dtype=object),
                "entity_id": units["entity_id"].astype(object).to_numpy(),
                "other_type": units["other_type"].to_numpy(dtype=object),
                "other_id": units["other_id"].astype(object).to_numpy(),
                "members": units["members"].to_numpy(dtype=object),
                "tender_ids": units["tender_ids"].to_numpy(dtype=object),
                "score": score,
                "score_pct": pct,
                "flagged": flagged,
                "rank": rank,
            },
            index=units.index,
        )
        want = flagged | (rank <= self.max_evidence)
        records: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        if want.any():
            idx = np.flatnonzero(want)
            for i, rec in zip(idx, self._evidence(graph, units.iloc[idx])):
                records[i] = rec
        results["evidence"] = pd.Series(records, index=units.index, dtype=object)
        results = results.sort_values(["unit", "rank"], kind="stable")
        self.units_ = units
        self.scores_ = pd.Series(score, index=units.index, name="score")
        self.flagged_ = pd.Series(flagged, index=units.index, name="flagged")
        # one unit kind: a float; several: a dict per kind; no units: nothing is flagged
        self.threshold_ = (float("inf") if not thresholds
                           else next(iter(thresholds.values())) if len(thresholds) == 1 else thresholds)
        self.results_ = results[list(RESULT_COLUMNS)] if n else empty_results()
        self.evidence_ = evidence_frame(self.results_.loc[self.results_["flagged"]])
        # Kept so explain() can compute evidence for units not covered during fit.
        self._graph_ref = graph


class SurprisalDetector(BaseDetector):
    """A detector whose scores are sums of calibrated surprisals (``-log p``).

    With calibrated, independent signals an ordinary unit's score exceeds
    ``t`` with probability about ``exp(-t)``, so the default threshold
    ``log(n_units / alpha)`` lets an honest market of ``n_units`` see about
    ``alpha`` false flags per unit kind (a Bonferroni-style bound). The robust
    fence would not work here: most units score exactly 0, so its quartiles
    are 0 and it would flag every unit with any signal at all.

    Parameters
    ----------
    alpha : float
        Expected false flags per unit kind in an honest market. Ignored when
        ``contamination`` is set.
    contamination, fence_k, max_evidence
        See :class:`BaseDetector`.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDetector._parameter_constraints,
        "alpha": [Interval(0, 1, closed="neither")],
    }

    def __init__(
        self,
        *,
        alpha: float = 0.01,
        contamination: float | None = None,
        fence_k: float = 1.5,
        max_evidence: int = 100,
    ) -> None:
        super().__init__(contamination=contamination, fence_k=fence_k, max_evidence=max_evidence)
        self.alpha = alpha

    def _default_threshold(self, scores: np.ndarray, unit: str) -> float:
        """``log(n / alpha)``: about ``alpha`` false flags per honest market."""
        n = int(np.isfinite(scores).sum())
        return float(np.log(max(n, 1) / self.alpha))


def _default_members(units: pd.DataFrame) -> pd.Series:
    et = units["entity_type"].astype(object).to_numpy()
    ei = units["entity_id"].astype(object).to_numpy()
    ot = units["other_type"].astype(object).to_numpy()
    oi = units["other_id"].astype(object).to_numpy()
    members = [
        [f"{a}:{b}"] + ([f"{c}:{d}"] if d is not None and d == d else [])
        for a, b, c, d in zip(et, ei, ot, oi)
    ]
    return pd.Series(members, index=units.index, dtype=object)


def _unit_keys(units: pd.DataFrame) -> list[str]:
    """Human-readable unit key: ``entity_id`` or ``entity_id|other_id`` (groups: the unit's own id)."""
    ei = units["entity_id"].astype(object).to_numpy()
    oi = units["other_id"].astype(object).to_numpy()
    return [f"{a}|{b}" if b is not None and b == b else str(a) for a, b in zip(ei, oi)]

