"""Analysis 5: procurement agent ↔ bidders (代理机构与招投标人)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..features._affinity import empirical_surprise
from ._affinity import AffinityDetector

__all__ = ["AgentBidderDetector"]


class AgentBidderDetector(AffinityDetector):
    """Procurement agents captured by a company: unit = (agent, company) pair.

    A captured agent steers the tenders it runs to one company: the company
    wins the agent's tenders far more often than its record elsewhere
    predicts and takes a large share of the value awarded through the agent;
    the agent may prepare several bids itself (the same document fingerprint
    or contact on bids of different firms, found in no other agent's
    tenders) and often shares a phone, e-mail, address or a person with the
    company.

    The score combines, by Fisher's method, the market-calibrated surprises
    of the excess wins and of the value share with the nominal surprises of
    the prepared bids (binomial tail against the market rate) and of direct
    ties. Irregular wins (non-open, short period, single bid) are reported
    as evidence. Higher = more suspicious; the default threshold is the
    Benjamini–Hochberg cut at false discovery rate ``fdr``.

    Parameters
    ----------
    min_tenders : int, default 3
        Score a pair only when the company bid in at least this many awarded
        tenders run by the agent.
    baseline : {"strength", "uniform"}, default "strength"
        Win probability under the null (see :class:`BuyerWinnerDetector`).
    fdr : float, default 0.05
        False discovery rate of the default threshold.
    contamination, fence_k, max_evidence
        See :class:`~collusion.detectors.BaseDetector`.

    Examples
    --------
    >>> from collusion.datasets import make_market
    >>> from collusion.detectors import AgentBidderDetector
    >>> market, truth = make_market(5_000, seed=0)
    >>> det = AgentBidderDetector().fit(market)
    >>> top = det.results_.iloc[0]
    >>> (top["entity_id"], top["other_id"]) in set(zip(truth.captured_agents.agent_id, truth.captured_agents.company_id))
    True
    """

    name: ClassVar[str] = "agent_bidder"
    analysis: ClassVar[int] = 5
    entity_type: ClassVar[str] = "agent"
    context_type: ClassVar[str] = "agent"
    required_tables: ClassVar[tuple[str, ...]] = ("tenders", "bids")

    def __init__(
        self,
        *,
        min_tenders: int = 3,
        baseline: str = "strength",
        fdr: float = 0.05,
        contamination: float | None = None,
        fence_k: float = 1.5,
        max_evidence: int = 100,
    ) -> None:
        super().__init__(min_tenders=min_tenders, baseline=baseline, fdr=fdr, contamination=contamination,
                         fence_k=fence_k, max_evidence=max_evidence)

    def _components(self, table: pd.DataFrame, graph: Any) -> dict[str, np.ndarray]:
        return {
            "excess": empirical_surprise(table["excess"].to_numpy()),
            "value_share": empirical_surprise(table["value_share"].to_numpy()),
            "prepared": table["prepared_surprise"].to_numpy(),
        }
