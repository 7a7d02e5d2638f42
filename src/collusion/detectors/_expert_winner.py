"""Analysis 6: evaluation expert ↔ repeat winner (评标专家与多次中标人)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .._arrays import first_of_runs, unique_ints
from ..exceptions import MissingTableError
from ..features._affinity import empirical_surprise, hypergeom_surprise, score_bias
from ..results import evidence
from ._affinity import AffinityDetector

__all__ = ["ExpertWinnerDetector"]


class ExpertWinnerDetector(AffinityDetector):
    """Evaluation experts who favour a company: unit = (expert, company) pair.

    A captured expert scores its company above the rest of the panel, and the
    company wins more often when the expert sits on the panel. Both are
    measured on the evaluated tenders only (the bids the panels scored):

    * score bias — the expert's score for the company minus the mean score
      of the rest of the panel, averaged over the tenders, against the
      expert's bias for all other firms (pooled two-sample t-test: an expert
      who is generous with everyone is not suspicious);
    * excess wins with the expert on the panel against the company's
      strength on panels without the expert (the presence effect, adjusted
      for competition; the plain hypergeometric presence test is reported as
      evidence).

    The score combines, by Fisher's method, the nominal surprise of the bias
    t-test, the market-calibrated surprise of the excess wins and the
    surprise of direct ties (shared phone, address, e-mail, relations).
    Higher = more suspicious; the default threshold is the
    Benjamini–Hochberg cut at false discovery rate ``fdr``.

    Parameters
    ----------
    min_tenders : int, default 2
        Score a pair only when the expert sat on at least this many panels
        that evaluated the company. One shared panel cannot show a repeated
        pattern, and single-panel pairs are two thirds of all pairs (754k of
        the 1M pairs of a 100k-tender market): scoring them all costs three
        times the time and memory for the few captured experts met only once.
    baseline : {"strength", "uniform"}, default "strength"
        Win probability under the null (see :class:`BuyerWinnerDetector`).
    fdr : float, default 0.05
        False discovery rate of the default threshold.
    contamination, fence_k, max_evidence
        See :class:`~collusion.detectors.BaseDetector`.

    Examples
    --------
    >>> from collusion.datasets import make_market
    >>> from collusion.detectors import ExpertWinnerDetector
    >>> market, truth = make_market(3_000, seed=0)
    >>> det = ExpertWinnerDetector().fit(market)
    >>> top = det.results_.iloc[0]
    >>> (top["entity_id"], top["other_id"]) in set(zip(truth.captured_experts.expert_id, truth.captured_experts.company_id))
    True
    """

    name: ClassVar[str] = "expert_winner"
    analysis: ClassVar[int] = 6
    entity_type: ClassVar[str] = "expert"
    context_type: ClassVar[str] = "expert"
    required_tables: ClassVar[tuple[str, ...]] = ("tenders", "bids", "evaluations")
    _tender_list: ClassVar[str] = "all"
    _graph_scratch: ClassVar[tuple[str, ...]] = ()  # its own universe: neither the traces nor the strength fit

    def __init__(
        self,
        *,
        min_tenders: int = 2,
        baseline: str = "strength",
        fdr: float = 0.05,
        contamination: float | None = None,
        fence_k: float = 1.5,
        max_evidence: int = 100,
    ) -> None:
        super().__init__(min_tenders=min_tenders, baseline=baseline, fdr=fdr, contamination=contamination,
                         fence_k=fence_k, max_evidence=max_evidence)

    def _score(self, graph: Any) -> pd.DataFrame:
        # The evaluation codes as int64, read once per fit: the context, the universe and the
        # score bias all need them (three columns of tens of millions of scores at 1M tenders).
        m = graph.market
        if m.n("expert") == 0:
            raise MissingTableError(f"{type(self).__name__} (analysis 6) needs evaluations.expert_id, which is empty")
        self._eval = {col: m.codes("evaluations", col).astype(np.int64)
                      for col in ("tender_id", "expert_id", "bidder_id")}
        try:
            return super()._score(graph)
        finally:
            del self._eval

    def _context(self, market: Any) -> tuple[np.ndarray, np.ndarray]:
        n_e = market.n("expert")
        t = self._eval["tender_id"]
        key = t * n_e + self._eval["expert_id"]
        if np.all(t[1:] >= t[:-1]):
            # Scores listed by tender: the keys are sorted but for the short runs of a panel's
            # experts, which the stable sort (timsort) merges 6x faster than the default sort.
            key.sort(kind="stable")
            key = key[first_of_runs(key)]
        else:
            key = unique_ints(key)
        return key % n_e, key // n_e

    def _universe(self, market: Any) -> np.ndarray:
        # Only the bids a panel scored: presence and strength compare like with like.
        n_c = market.n("company")
        bid_key = market.codes("bids", "tender_id").astype(np.int64) * n_c + market.codes("bids", "bidder_id")
        ev_key = self._eval["tender_id"] * n_c + self._eval["bidder_id"]
        if np.all(ev_key[1:] >= ev_key[:-1]):  # scores grouped by bid, one per expert: hash each bid once
            ev_key = ev_key[first_of_runs(ev_key)]
        return pd.Series(bid_key).isin(ev_key).to_numpy()  # a hash lookup: np.isin sorts both arrays

    def _extra(self, table: pd.DataFrame, market: Any, flags: dict[str, np.ndarray]) -> pd.DataFrame:
        ev = market.evaluations
        n_c = market.n("company")
        # The score bias of exactly the scored pairs (the table is sorted by its key).
        bias = score_bias(
            self._eval["tender_id"], self._eval["expert_id"], self._eval["bidder_id"], ev["score"].to_numpy(dtype=np.float64),
            n_experts=market.n("expert"), n_companies=n_c,
            pairs=table["context"].to_numpy(np.int64) * n_c + table["company"].to_numpy(np.int64),
        )
        table = table.copy(deep=False)
        for col in ("scored", "bias", "other_bias", "bias_sd", "bias_t", "bias_surprise"):
            table[col] = bias[col].to_numpy()
        table["presence"] = hypergeom_surprise(table["wins"], table["company_tenders"], table["company_wins"],
                                               table["tenders"])
        return table

    def _components(self, table: pd.DataFrame, graph: Any) -> dict[str, np.ndarray]:
        return {
            "excess": empirical_surprise(table["excess"].to_numpy()),
            "bias": table["bias_surprise"].to_numpy(),
        }

    def _specific_evidence(self, row: dict[str, Any], part: dict[str, np.ndarray], x_node: str, c_node: str,
                           via: Any, flags: dict[str, np.ndarray], tender_ids: np.ndarray) -> list[dict[str, Any]]:
        recs: list[dict[str, Any]] = []
        first = via(int(part["tender"][0]), "bids") if part["tender"].size else []
        if row["scored"] > 0 and np.isfinite(row["bias"]):
            recs.append(evidence(
                "score_bias", row["bias"], row["other_bias"],
                detail=(f"{x_node} scored {c_node} {row['bias']:+.1f} points against the rest of the panel over "
                        f"{int(row['scored'])} evaluations; its bias for other firms is {row['other_bias']:+.1f} "
                        f"(t = {row['bias_t']:.1f}, p = 10^-{row['bias_surprise']:.1f})"),
                path=first,
            ))
        n_in, n_all = int(row["tenders"]), int(row["company_tenders"])
        k_in, k_all = int(row["wins"]), int(row["company_wins"])
        rate_out = (k_all - k_in) / (n_all - n_in) if n_all > n_in else float("nan")
        recs.append(evidence(
            "presence_effect", k_in / n_in if n_in else float("nan"), rate_out,
            detail=(f"{c_node} won {k_in} of {n_in} evaluated tenders with {x_node} on the panel and "
                    f"{k_all - k_in} of {n_all - n_in} without (hypergeometric p = 10^-{row['presence']:.1f})"),
            path=first,
        ))
        return recs
