"""Analysis 7: lot splitting (拆分标段) — one purchase cut into tenders below the open-tender threshold."""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._arrays import unique_ints
from .._param_validation import Interval
from .._ragged import Ragged
from ..features._contracts import to_days
from ..features._lots import (
    group_summary,
    lot_keys,
    rate_outside,
    tender_thresholds,
    threshold_bunching,
    win_counts,
    window_groups,
)
from ..features._surprisal import binom_surprisal, flag_surprisal
from ..results import evidence
from ._base import SurprisalDetector, Units

__all__ = ["LotSplittingDetector"]


def _group_ids(tender_ids: pd.Series) -> pd.api.extensions.ExtensionArray:
    """``"LS-"`` + 12 hex digits of the sha1 of each group's sorted tender ids joined by ``"|"``.

    The id depends only on which tenders form the group, never on row order or
    the run. The ids are joined in Arrow; only the sha1 itself runs per group
    (about 1 µs each).
    """
    joined = pc.binary_join(pa.array(tender_ids.array), "|").cast(pa.binary())
    ids = ["LS-" + hashlib.sha1(b).hexdigest()[:12] for b in joined.to_pylist()]
    return pd.array(pa.array(ids, type=pa.string()), dtype="str")


class LotSplittingDetector(SurprisalDetector):
    """Groups of tenders that look like one purchase split to stay below the open-tender threshold.

    Candidate groups: tenders of one buyer for the same work (category and
    region; the project when those are unknown — a split purchase is usually
    registered as several projects), each below its open-tender threshold
    (``settings.threshold_for(category)``), published within ``window_days``
    of each other (one sort and a gap split, windows anchored at the first
    tender so chains cannot drift). Open and non-open tenders, and tenders
    just below the threshold (``[near_low, 1)`` × threshold) and far below it,
    are grouped apart: a split is pieces that escaped open competition, and
    pooling them with the buyer's ordinary small purchases would dilute them.

    A group is a split when its summed estimate reaches the threshold and it
    was procured without open competition. Its score adds the surprisal
    (nats) of:

    * ``split`` — the sum crossing the threshold, by its prevalence among
      candidate groups;
    * ``non_open`` — the buyer procuring without open competition, against its
      own non-open rate outside the group (shrunk towards the market's);
    * ``near_threshold`` — members just below the threshold (binomial tail
      against the market's share of such estimates below the threshold);
    * ``buyer_bunching`` — the buyer's estimates bunch just below the threshold
      (binomial density test of all its tenders against the market,
      :func:`~collusion.features._lots.threshold_bunching`), in proportion to
      the members inside the bunch;
    * ``same_winner`` — the most frequent winner wins more members than its
      share of the buyer's other awards predicts (binomial tail).

    Other groups score 0: whatever else they show, they did not avoid an open
    tender (honest multi-lot projects tendered openly are never flagged). The
    buyer's own baselines make the score measure an *episode*: a buyer that
    always procures this way or always awards one firm is analysis 1's concern.

    Parameters
    ----------
    window_days : int or None
        Time window; ``None`` uses ``settings.lot_window_days``.
    near_low : float
        Lower edge of the "just below the threshold" band (share of it).
    alpha : float
        Default flagging level: flag scores above ``log(n_groups / alpha)``.
        Ignored when ``contamination`` is set.
    contamination, fence_k, max_evidence
        See :class:`~collusion.detectors.BaseDetector`.

    Examples
    --------
    >>> import pandas as pd
    >>> from collusion import Market
    >>> from collusion.detectors import LotSplittingDetector
    >>> tenders = pd.DataFrame({
    ...     "tender_id": ["T1", "T2", "T3", "T4"], "buyer_id": "B", "category": "roads", "region": "R",
    ...     "procedure": ["direct", "direct", "direct", "open"], "estimate": [3.6e6, 3.8e6, 3.5e6, 9e6],
    ...     "published_at": pd.to_datetime(["2024-01-01", "2024-01-10", "2024-01-20", "2024-01-05"])})
    >>> bids = pd.DataFrame({"tender_id": ["T1", "T2", "T3", "T4"], "bidder_id": ["A", "A", "A", "C"],
    ...                      "price": [3.5e6, 3.7e6, 3.4e6, 8e6], "is_winner": True})
    >>> det = LotSplittingDetector().fit(Market.from_frames(tenders=tenders, bids=bids))
    >>> det.results_["unit"].tolist(), det.results_["tender_ids"].tolist()
    (['group'], [['T1', 'T2', 'T3']])
    """

    name: ClassVar[str] = "lot_splitting"
    analysis: ClassVar[int] = 7
    unit: ClassVar[str] = "group"
    entity_type: ClassVar[str] = "group"
    other_type: ClassVar[str | None] = None
    required_tables: ClassVar[tuple[str, ...]] = ("tenders", "bids")

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **SurprisalDetector._parameter_constraints,
        "window_days": [Interval(0, None, closed="neither"), None],
        "near_low": [Interval(0, 1, closed="neither")],
    }

    def __init__(
        self,
        *,
        window_days: float | None = None,
        near_low: float = 0.8,
        alpha: float = 0.01,
        contamination: float | None = None,
        fence_k: float = 1.5,
        max_evidence: int = 100,
    ) -> None:
        super().__init__(alpha=alpha, contamination=contamination, fence_k=fence_k, max_evidence=max_evidence)
        self.window_days = window_days
        self.near_low = near_low

    # ------------------------------------------------------------ features
    def _tender_frame(self, graph: Any) -> dict[str, np.ndarray]:
        """Per-tender arrays (one per name, in tender code order).

        A dict rather than a DataFrame: the frame would copy its 12 columns into one
        block (+100 MB at 1M tenders) and every use reads them back as arrays anyway.
        """
        m = graph.market
        t = m.tenders
        n = len(t)
        thr = tender_thresholds(t["category"], m.settings)
        est = t["estimate"].to_numpy(dtype=np.float64)
        open_procs = {p.lower() for p in m.settings.open_procedures}
        proc = t["procedure"]
        proc_cats = np.array([str(c).lower() in open_procs for c in proc.cat.categories] + [False])
        pcodes = np.asarray(proc.cat.codes, dtype=np.int64)
        known_proc = pcodes >= 0
        is_open = proc_cats[np.where(known_proc, pcodes, -1)]
        # Winner of each tender (first winning bid; -1 when none).
        tc, bc = m.codes("bids", "tender_id"), m.codes("bids", "bidder_id")
        win = m.bids["is_winner"].to_numpy(dtype=bool)
        winner = np.full(n, -1, dtype=np.int64)
        winner[tc[win][::-1]] = bc[win][::-1]
        cat = np.asarray(t["category"].cat.codes, dtype=np.int64)
        reg = np.asarray(t["region"].cat.codes, dtype=np.int64)
        n_reg = len(t["region"].cat.categories) + 1
        return {
            "buyer": np.asarray(t["buyer_id"].cat.codes, dtype=np.int64),
            "project": np.asarray(t["project_id"].cat.codes, dtype=np.int64),
            "category": cat,
            "region": reg,
            "cell": np.where((cat >= 0) & (reg >= 0), cat * n_reg + reg, -1),
            "estimate": est,
            "threshold": thr,
            "ratio": est / thr,
            "non_open": known_proc & ~is_open,
            "days": to_days(t["published_at"].to_numpy()),
            "winner": winner,
        }

    def _score(self, graph: Any) -> pd.DataFrame | Units:
        m = graph.market
        tf = self._tender_frame(graph)
        window = float(self.window_days if self.window_days is not None else m.settings.lot_window_days)
        below = np.isfinite(tf["ratio"]) & (tf["ratio"] < 1.0)
        # Open and non-open tenders, and tenders just below the threshold and far below it, are
        # grouped apart: a split is pieces that escaped open competition, and pooling them with
        # the buyer's ordinary small purchases would dilute the group.
        near = below & (tf["ratio"] >= self.near_low)
        extra = tf["non_open"].astype(np.int64) * 2 + near
        keys = lot_keys(np.where(below, tf["buyer"], -1), tf["category"], tf["region"], project=tf["project"],
                        extra=extra)
        groups = window_groups(keys, tf["days"], window)
        size = np.bincount(groups[groups >= 0]) if (groups >= 0).any() else np.zeros(0, np.int64)
        multi = np.flatnonzero(size >= 2)
        # Relabel so only groups of two or more tenders remain, numbered 0..G-1.
        relabel = np.full(size.size, -1, dtype=np.int64)
        relabel[multi] = np.arange(multi.size)
        g = np.where(groups >= 0, relabel[np.maximum(groups, 0)], -1)
        summ = group_summary(g, tf["estimate"], tf["threshold"], tf["non_open"], tf["winner"], tf["days"],
                             near_low=self.near_low)
        if len(summ) == 0:
            return self._empty_units()

        member_rows = np.flatnonzero(g >= 0)
        first_row = np.full(len(summ), -1, dtype=np.int64)
        first_row[g[member_rows][::-1]] = member_rows[::-1]
        summ["buyer"] = tf["buyer"][first_row]
        summ["cell"] = tf["cell"][first_row]

        # Market baselines among tenders that could be split pieces (below the threshold).
        ref = below & (tf["buyer"] >= 0)
        p_non_open = float(tf["non_open"][ref].mean()) if ref.any() else 0.0
        ratio = tf["ratio"]
        p_near = float(((ratio >= self.near_low) & ref).sum() / max(ref.sum(), 1))
        bunch = threshold_bunching(tf["buyer"], ratio, low=self.near_low, high=1.0)
        top_winner = summ["top_winner"].to_numpy()
        cell_wins, cell_awarded = win_counts(tf["cell"], tf["winner"], summ["cell"].to_numpy(), top_winner)
        cell_share = np.where(cell_awarded > 0, cell_wins / np.maximum(cell_awarded, 1), 0.0)

        split = summ["split"].to_numpy()
        n, n_aw, top = summ["n"].to_numpy(), summ["n_awarded"].to_numpy(), summ["top_wins"].to_numpy()
        # Baselines of the group's own buyer outside the group (shrunk to the market): a buyer
        # that always procures this way, or always awards one firm, is analysis 1's business;
        # a split is an episode that stands out against the buyer's other purchases.
        gb = np.maximum(summ["buyer"].to_numpy(), 0)
        rb = tf["buyer"][ref]
        n_b = np.bincount(rb, minlength=gb.max(initial=0) + 1)
        k_b = np.bincount(rb[tf["non_open"][ref]], minlength=n_b.size)
        p_no_g = rate_outside(k_b[gb], n_b[gb], summ["n_non_open"].to_numpy(), n, p_non_open)
        b_wins, b_awarded = win_counts(tf["buyer"], tf["winner"], gb, top_winner)
        share = np.where(top_winner >= 0, rate_outside(b_wins, b_awarded, top, n_aw, cell_share), cell_share)
        sig = pd.DataFrame(index=summ.index)
        sig["s_split"] = flag_surprisal(split)
        # Groups are keyed by procedure class, so "all members non-open" holds by construction;
        # the evidence is that this buyer procured the group without open competition at all.
        sig["s_non_open"] = np.where(summ["n_non_open"].to_numpy() > 0, -np.log(p_no_g), 0.0)
        sig["s_near_threshold"] = binom_surprisal(summ["n_near"].to_numpy(), n, p_near)
        bp = bunch["p_value"].to_numpy()
        # The buyer's bunching supports the group in proportion to the members inside the bunch.
        sig["s_buyer_bunching"] = (-np.log(np.maximum(bp[np.maximum(summ["buyer"].to_numpy(), 0)], 1e-300))
                                   * summ["n_near"].to_numpy() / n)
        sig["s_same_winner"] = np.where(top >= 2, binom_surprisal(top - 1, n_aw - 1, share), 0.0)
        evaded = split & (summ["n_non_open"].to_numpy() > 0)
        score = np.where(evaded, sig.sum(axis=1).to_numpy(), 0.0)

        # Each group's rows by publication day (evidence walks them in that order).
        order = member_rows[np.lexsort((tf["days"][member_rows], g[member_rows]))]
        bounds = np.searchsorted(g[order], np.arange(len(summ) + 1))
        # Tenders and distinct winners as integer codes, not one Python list per group: the
        # base class turns them into list columns and finding ids in Arrow. Entity codes are
        # in sorted id order, so sorting codes within a group sorts its ids.
        gm = g[member_rows]
        tenders = Ragged.from_pairs(gm, m.codes("tenders", "tender_id")[member_rows], len(summ), kind="tender")
        w = tf["winner"][member_rows]
        width = np.int64(max(int(w.max(initial=-1)), 0) + 1)
        pairs = unique_ints(gm[w >= 0] * width + w[w >= 0])
        winners = Ragged.from_pairs(pairs // width, pairs % width, len(summ), kind="company")
        members = Ragged.from_columns([summ["buyer"].to_numpy()], kinds=["buyer"]).hstack(tenders).hstack(winners)
        out = pd.concat([summ, sig], axis=1)
        out["p_non_open"], out["p_near"] = p_non_open, p_near
        out["buyer_near"] = bunch["n_near"].to_numpy()[np.maximum(summ["buyer"].to_numpy(), 0)]
        out["buyer_n"] = bunch["n"].to_numpy()[np.maximum(summ["buyer"].to_numpy(), 0)]
        out["buyer_p_market"] = float(bunch["p_market"].iloc[0]) if len(bunch) else 0.0
        out["top_share"] = share
        # Slices with Python ints: np.split costs ~2 µs per piece in its own Python loop.
        out["rows"] = [order[a:b] for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]
        out["score"] = score
        # Each group's tender ids, built once: they make its id here, and the base class
        # gathers them into the results' ``tender_ids`` (given a Ragged, it built them again).
        tender_ids = tenders.labels(m, prefix=False)
        out = out.assign(unit="group", entity_type="group", entity_id=_group_ids(tender_ids), other_type=None,
                         other_id=None, winner_ids=winners.labels(m, prefix=False).array,
                         tender_ids=tender_ids.array)
        return Units(out, members)

    @staticmethod
    def _empty_units() -> pd.DataFrame:
        return pd.DataFrame({
            "unit": pd.Series(dtype=object), "entity_type": pd.Series(dtype=object),
            "entity_id": pd.Series(dtype=object), "other_type": pd.Series(dtype=object),
            "other_id": pd.Series(dtype=object), "members": pd.Series(dtype=object),
            "tender_ids": pd.Series(dtype=object), "score": pd.Series(dtype=np.float64),
        })

    # ------------------------------------------------------------ evidence
    def _evidence(self, graph: Any, units: pd.DataFrame) -> list[list[dict[str, Any]]]:
        m = graph.market
        t = m.tenders
        tid = m.entities["tender"].to_numpy(dtype=object)
        cid = m.entities["company"].to_numpy(dtype=object)
        thr = tender_thresholds(t["category"], m.settings)
        est = t["estimate"].to_numpy(dtype=np.float64)
        proc = t["procedure"].astype(object).to_numpy()
        pub = t["published_at"]
        tc, bc = m.codes("bids", "tender_id"), m.codes("bids", "bidder_id")
        win = m.bids["is_winner"].to_numpy(dtype=bool)
        winner = np.full(len(t), -1, dtype=np.int64)
        winner[tc[win][::-1]] = bc[win][::-1]
        # Member rows of all units gathered once: a pandas .iloc per member tender cost
        # ~50 µs (2 s for the 4,000 flagged groups at 1M tenders).
        flat = np.concatenate([np.asarray(r, dtype=np.int64) for r in units["rows"]]) if len(units) else (
            np.zeros(0, np.int64))
        dates = pub.iloc[flat].dt.date.to_numpy(dtype=object)
        missing = pub.iloc[flat].isna().to_numpy()
        at = 0  # position of the unit's first member in ``flat``
        out = []
        for row in units.itertuples(index=False):
            buyer = row.members[0]
            recs = [evidence("sum_of_estimates", row.sum_ratio * float(np.min(thr[row.rows])),
                             float(np.min(thr[row.rows])),
                             detail=f"{int(row.n)} tenders of {buyer} within {row.span_days:.0f} days sum to "
                                    f"{row.sum_ratio:.2f}× the open-tender threshold, each below it",
                             path=[buyer, "organizes", f"tender:{tid[row.rows[0]]}"])]
            if row.n_non_open:
                recs.append(evidence("non_open_procedures", float(row.n_non_open), row.n * row.p_non_open,
                                     detail=f"{int(row.n_non_open)} of {int(row.n)} awarded without open procedure "
                                            f"(market share below the threshold {row.p_non_open:.0%})",
                                     path=[buyer, "organizes", f"tender:{tid[row.rows[0]]}"]))
            if row.n_near:
                recs.append(evidence("near_threshold", float(row.n_near), row.n * row.p_near,
                                     detail=f"{int(row.n_near)} of {int(row.n)} estimates within "
                                            f"[{self.near_low:.0%}, 100%) of the threshold",
                                     path=[buyer, "organizes", f"tender:{tid[row.rows[0]]}"]))
            if row.s_buyer_bunching > 0:
                recs.append(evidence("buyer_bunching", float(row.buyer_near), row.buyer_n * row.buyer_p_market,
                                     detail=f"{buyer} has {int(row.buyer_near)} of {int(row.buyer_n)} estimates just below the "
                                            f"threshold (market share {row.buyer_p_market:.1%})",
                                     path=[buyer]))
            if row.top_wins >= 2:
                w = f"company:{cid[row.top_winner]}"
                recs.append(evidence("same_winner", float(row.top_wins), max(row.n_awarded, 0) * row.top_share,
                                     detail=f"{w} won {int(row.top_wins)} of the {int(row.n_awarded)} awarded tenders "
                                            f"(its share of the buyer's other awards: {row.top_share:.1%})",
                                     path=[buyer, "organizes", f"tender:{tid[row.rows[0]]}", "wins", w]))
            for j, r in enumerate(row.rows, start=at):
                when = "" if missing[j] else f", published {dates[j]}"
                path = [buyer, "organizes", f"tender:{tid[r]}"]
                if winner[r] >= 0:
                    path += ["wins", f"company:{cid[winner[r]]}"]
                recs.append(evidence("member_estimate", est[r], thr[r],
                                     detail=f"tender:{tid[r]} ({proc[r]}{when}) estimate {est[r]:,.0f} "
                                            f"= {est[r] / thr[r]:.0%} of the threshold",
                                     path=path))
            at += len(row.rows)
            out.append(recs)
        return out
