"""``screen``: run all seven analyses and the risk index in one call."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ._risk import risk_index
from .detectors._base import BaseDetector, as_graph
from .exceptions import MissingTableError
from .results import RESULT_COLUMNS, empty_results, evidence_frame

__all__ = ["Screening", "default_detectors", "screen"]


def default_detectors(**params: Any) -> list[BaseDetector]:
    """Fresh instances of the seven analyses, in SPEC order.

    ``params`` (e.g. ``contamination=0.05``) are passed to every detector.

    Examples
    --------
    >>> [d.analysis for d in default_detectors()]
    [1, 2, 3, 4, 5, 6, 7]
    """
    from . import detectors as d

    classes = [
        d.BuyerWinnerDetector,
        d.BidRiggingDetector,
        d.WinnerBuilderDetector,
        d.FundsDetector,
        d.AgentBidderDetector,
        d.ExpertWinnerDetector,
        d.LotSplittingDetector,
    ]
    return [cls(**params) for cls in classes]


@dataclass
class Screening:
    """The outcome of :func:`screen`.

    Attributes
    ----------
    results : pandas.DataFrame
        Every finding of every analysis in the one result schema, ordered by
        flagged first, then percentile within its detector.
    risk : pandas.DataFrame
        The risk index per company, buyer, agent, expert and project.
    detectors : dict
        Detector name → fitted detector (for ``explain`` and ``units_``).
    skipped : pandas.DataFrame
        Analyses that could not run and why (missing tables).
    timings : dict
        Seconds per stage.
    """

    results: pd.DataFrame
    risk: pd.DataFrame
    detectors: dict[str, BaseDetector]
    skipped: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)
    graph: Any = None

    def __repr__(self) -> str:
        flagged = self.results.groupby("detector", sort=False)["flagged"].sum()
        parts = ", ".join(f"{d}={int(n)}" for d, n in flagged.items())
        levels = self.risk["level"].value_counts() if "level" in self.risk else pd.Series(dtype=int)
        risk = ", ".join(f"{k}={int(levels.get(k, 0))}" for k in ("critical", "high", "medium"))
        skipped = f", skipped={list(self.skipped['detector'])}" if len(self.skipped) else ""
        return f"Screening(findings={len(self.results)}, flagged: {parts}; risk: {risk}{skipped})"

    def _repr_html_(self) -> str:
        per = self.results.groupby(["analysis", "detector", "unit"], sort=True).agg(
            units=("finding_id", "size"), flagged=("flagged", "sum")
        ).reset_index()
        top = self.top(1)[["analysis", "detector", "unit", "entity_id", "other_id", "score", "flagged"]]
        risk = self.risk.head(10)[["entity_type", "entity_id", "score", "level"]] if len(self.risk) else self.risk
        skipped = self.skipped.to_html(index=False) if len(self.skipped) else "<i>none</i>"
        return (
            "<b>collusion.Screening</b>"
            "<h4>Findings per analysis</h4>" + per.to_html(index=False)
            + "<h4>Top finding of each analysis</h4>" + top.to_html(index=False)
            + "<h4>Risk index (top 10)</h4>" + risk.to_html(index=False)
            + "<h4>Skipped analyses</h4>" + skipped
        )

    def top(self, n: int = 5, *, per_detector: bool = True, flagged_only: bool = False) -> pd.DataFrame:
        """The ``n`` most suspicious findings (of each detector when ``per_detector``)."""
        res = self.results[self.results["flagged"]] if flagged_only else self.results
        if per_detector:
            return res.sort_values(["analysis", "rank"], kind="stable").groupby("detector", sort=False).head(n)
        return res.head(n)

    def evidence(self, finding_id: str) -> pd.DataFrame:
        """Evidence of one finding (computed on demand when it was not kept during fit)."""
        row = self.results.loc[self.results["finding_id"] == finding_id]
        if len(row) == 0:
            row = self.risk.loc[self.risk["finding_id"] == finding_id]
            if len(row) == 0:
                raise KeyError(f"no finding {finding_id!r}")
            return evidence_frame(row)
        detector = self.detectors[row["detector"].iloc[0]]
        return detector.explain(finding_id)

    def summary(self, by: str | Sequence[str] = ("buyer", "region", "quarter")) -> pd.DataFrame:
        """Findings per buyer / region / quarter (of publication) for periodic reports.

        Tender-level links come from each finding's ``tender_ids``; a finding
        touching several tenders counts once per group it touches.
        """
        keys = [by] if isinstance(by, str) else list(by)
        allowed = {"buyer", "region", "quarter", "category", "agent", "detector"}
        unknown = sorted(set(keys) - allowed)
        if unknown:
            raise ValueError(f"summary: unknown keys {unknown}; choose from {sorted(allowed)}")
        tenders = self.graph.market.tenders
        info = pd.DataFrame(
            {
                "tender_id": tenders["tender_id"].astype(str).to_numpy(),
                "buyer": tenders["buyer_id"].astype(object).to_numpy(),
                "agent": tenders["agent_id"].astype(object).to_numpy(),
                "region": tenders["region"].astype(object).to_numpy(),
                "category": tenders["category"].astype(object).to_numpy(),
                "quarter": tenders["published_at"].dt.to_period("Q").astype(str).to_numpy(),
            }
        )
        links = self.results[["finding_id", "detector", "flagged", "score_pct", "tender_ids"]].explode("tender_ids")
        links = links.dropna(subset=["tender_ids"]).merge(info, left_on="tender_ids", right_on="tender_id")
        group_keys = [k for k in keys if k != "detector"] + (["detector"] if "detector" in keys else [])
        links = links.drop_duplicates(["finding_id", *group_keys])
        out = links.groupby(group_keys, dropna=False, sort=True).agg(
            findings=("finding_id", "size"),
            flagged=("flagged", "sum"),
            mean_pct=("score_pct", "mean"),
            tenders=("tender_ids", "nunique"),
        )
        return out.reset_index().sort_values("flagged", ascending=False, kind="stable").reset_index(drop=True)

    def to_parquet(self, path: str | Path) -> None:
        """Write findings and the risk index (``<stem>.risk.parquet``) with nested evidence."""
        path = Path(path)
        _write_parquet(_for_export(self.results), path)
        _write_parquet(_for_export(self.risk), path.with_suffix(".risk.parquet"))

    def to_jsonl(self, path: str | Path) -> None:
        """Write findings then risk-index rows as JSON Lines (one finding per line)."""
        with open(path, "w", encoding="utf-8") as fh:
            for frame in (self.results, self.risk):
                for rec in _for_export(frame).to_dict(orient="records"):
                    fh.write(json.dumps(rec, ensure_ascii=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    return str(value)


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Parquet without pandas' dtype metadata, so any reader (pandas 2, polars, DuckDB) gets plain lists."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.replace_schema_metadata(None), path)


def _for_export(frame: pd.DataFrame) -> pd.DataFrame:
    """Plain, Arrow-friendly columns: lists of str, evidence as list of structs with float values."""
    out = frame.copy()
    for col in ("other_type", "other_id", "entity_id", "entity_type"):
        if col in out.columns:
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    if "contributions" in out.columns:
        out["contributions"] = out["contributions"].map(lambda d: json.dumps(d, ensure_ascii=False))
    return out.reset_index(drop=True)


#: Markets up to this many tenders keep every fitted attribute under ``screen(keep="auto")``.
_KEEP_ALL_UP_TO = 250_000


#: Result columns stored as categories (a few distinct values each).
_CATEGORY_COLUMNS = ("detector", "unit", "entity_type", "other_type")


def _merge_results(frames: list[pd.DataFrame], *, release: bool) -> pd.DataFrame:
    """All detectors' results in one frame, ordered flagged first, then by percentile, analysis and rank.

    Assembled column by column in the final order: concatenating all frames
    and then sorting held two copies of every column at once (at a million
    tenders several GB, the screen's memory peak). With ``release`` each
    column is dropped from the detectors' frames once merged, so at most one
    column exists twice.
    """
    if not frames:
        return empty_results()

    def merged(col: str) -> np.ndarray | pd.api.extensions.ExtensionArray:
        return pd.concat([f[col] for f in frames], ignore_index=True).array

    keys = {col: merged(col) for col in ("rank", "analysis", "score_pct", "flagged")}  # merged once
    order = np.lexsort((np.asarray(keys["rank"]), np.asarray(keys["analysis"]),
                        -np.asarray(keys["score_pct"]), ~np.asarray(keys["flagged"], dtype=bool)))
    out: dict[str, Any] = {}
    for col in RESULT_COLUMNS:
        values = keys.pop(col) if col in keys else merged(col)
        if col in _CATEGORY_COLUMNS:
            # A handful of distinct values over millions of rows: categories, one byte a
            # row. Encoding before the reordering gathers small codes, not strings.
            codes, categories = pd.factorize(values, sort=True)
            out[col] = pd.Categorical.from_codes(codes.take(order), dtype=pd.CategoricalDtype(categories))
        else:
            out[col] = values.take(order)
        del values
        if release:
            for f in frames:
                del f[col]
    return pd.DataFrame(out, copy=False)


def screen(
    data: Any,
    *,
    detectors: Sequence[BaseDetector] | None = None,
    weights: Mapping[str, float] | None = None,
    progress: Callable[[str], None] | None = None,
    keep: str = "auto",
    n_jobs: int = 1,
) -> Screening:
    """Run the seven analyses and the risk index over a market.

    Parameters
    ----------
    data : Market or ProcurementGraph
        The market (its graph is built once) or a graph built already.
    detectors : sequence of BaseDetector, optional
        Detectors to run (default :func:`default_detectors`).
    weights : mapping, optional
        Risk-index weights per detector name.
    progress : callable, optional
        Called with a stage name before each stage (the CLI shows a bar).
    keep : {"auto", "all", "results"}
        What the fitted detectors keep. ``"all"``: every fitted attribute
        (``units_`` with every signal, the caches ``explain`` needs for units
        whose evidence was not computed during fit). ``"results"``: only
        ``results_`` (read from the screen's frame, not copied), ``scores_``,
        ``flagged_``, ``threshold_`` and ``evidence_`` — a tenth of the
        memory at a million tenders; flagged and top units keep their
        evidence. ``"auto"`` (default): ``"all"`` up to 250,000 tenders.
    n_jobs : int
        Analyses fitted at the same time, in threads sharing the one graph
        (numpy, scipy and Arrow release the GIL in their kernels: two threads
        took 6.1 s where one took 8.6 s at 100k tenders on two cores). Peak
        memory grows with the analyses running together. Results do not
        depend on it.

    Returns
    -------
    Screening
        Ranked findings, risk index, fitted detectors, skipped analyses.

    Examples
    --------
    >>> from collusion.datasets import make_market
    >>> market, truth = make_market(1_500, seed=1)
    >>> s = screen(market)
    >>> sorted(s.results["detector"].unique())  # doctest: +NORMALIZE_WHITESPACE
    ['agent_bidder', 'bid_rigging', 'buyer_winner', 'expert_winner', 'funds', 'lot_splitting', 'winner_builder']
    >>> list(s.results.columns) == list(co.results.RESULT_COLUMNS)
    True
    """
    if keep not in ("auto", "all", "results"):
        raise ValueError(f"screen: keep must be 'auto', 'all' or 'results', got {keep!r}")
    if not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ValueError(f"screen: n_jobs must be a positive integer, got {n_jobs!r}")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if progress:
        progress("graph")
    graph = as_graph(data)
    lean = keep == "results" or (keep == "auto" and len(graph.market.tenders) > _KEEP_ALL_UP_TO)
    timings["graph"] = time.perf_counter() - t0
    dets = list(detectors) if detectors is not None else default_detectors()
    fitted: dict[str, BaseDetector] = {}
    skipped: list[tuple[str, str]] = []
    def run(det: BaseDetector) -> tuple[BaseDetector, float, MissingTableError | None]:
        if progress:
            progress(det.name)
        t = time.perf_counter()
        try:
            det.fit(graph)
        except MissingTableError as err:
            return det, 0.0, err
        if lean:
            det._release()
        return det, time.perf_counter() - t, None

    if n_jobs > 1 and len(dets) > 1:
        with ThreadPoolExecutor(max_workers=int(n_jobs)) as pool:
            outcomes = list(pool.map(run, dets))  # in the detectors' order, whatever finishes first
    else:
        outcomes = []
        for i, det in enumerate(dets):
            outcomes.append(run(det))
            # Scratch arrays shared between analyses (hundreds of MB at 1M tenders) live
            # only while a later analysis still needs them.
            later = {key for d in dets[i + 1:] for key in getattr(d, "_graph_scratch", ())}
            for key in set(getattr(det, "_graph_scratch", ())) - later:
                graph.__dict__.pop(key, None)
    frames = []
    for det, seconds, err in outcomes:
        if err is not None:
            skipped.append((det.name, str(err)))
            continue
        timings[det.name] = seconds
        fitted[det.name] = det
        frames.append(det.results_)
    if lean:  # detectors will read their rows from the screen's frame: one copy of the results, not two
        for det in fitted.values():
            det.__dict__.pop("_results", None)
    results = _merge_results(frames, release=lean)
    del frames
    if lean:
        for det in fitted.values():
            det._release(results)
    if progress:
        progress("risk index")
    t = time.perf_counter()
    market = graph.market
    tender_project = None
    if market.tenders["project_id"].notna().any():
        tp = market.tenders[["tender_id", "project_id"]].dropna()
        tender_project = pd.Series(tp["project_id"].astype("str").to_numpy(), index=tp["tender_id"].astype("str"))
    risk = risk_index(results, weights=weights, tender_project=tender_project)
    timings["risk_index"] = time.perf_counter() - t
    for det in dets:  # scratch shared by analyses is not part of the graph
        for key in getattr(det, "_graph_scratch", ()):
            graph.__dict__.pop(key, None)
    timings["total"] = time.perf_counter() - t0
    return Screening(
        results=results,
        risk=risk,
        detectors=fitted,
        skipped=pd.DataFrame(skipped, columns=["detector", "reason"]),
        timings=timings,
        graph=graph,
    )
