"""Analysis 1: buyer ↔ repeat winner (招标人与多次中标人)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..features._affinity import _flags_given, empirical_surprise, fisher_surprise
from ..features._surprisal import brown_surprise
from ._affinity import AffinityDetector

__all__ = ["BuyerWinnerDetector"]


class BuyerWinnerDetector(AffinityDetector):
    """Buyers and the suppliers they favour: unit = (buyer, company) pair.

    A company a buyer favours wins that buyer's tenders far more often than
    its record elsewhere predicts, takes a large share of the buyer's
    business, and wins through irregular tenders — non-open procedures,
    short bidding periods, single bids. Honest local firms also win
    repeatedly at "their" buyer (home advantage), but through ordinary open
    tenders; the irregularity of the wins is what separates the two.

    The score combines two signals, each market-calibrated (the empirical
    tail of its statistic among all scored pairs, because honest home
    advantage makes the nominal nulls too optimistic):

    - dominance: three tests of the company taking over the buyer's
      business — the excess wins (binomial tail against the firm's
      leave-buyer-out strength), its share of the buyer's awarded value and
      its share of the buyer's awarded tenders. They read the same wins
      (rank correlation about 0.9 between the first two in generated
      markets), so they are merged by Brown's method
      (:func:`~collusion.features.brown_surprise`) with their correlation
      estimated from the market's own pairs: counted as independent Fisher
      terms they outweighed the irregularity signal and let large honest
      home suppliers outrank small favoured ones.
    - irregularity: two tests of the same wins merged (Fisher, then
      calibrated): the share of the company's wins at the buyer that carry a
      flag, against the buyer's rate for its other suppliers shrunk to the
      market rate; and the short periods and single bids *beyond what each
      win's procedure explains* (``features._affinity.flag_wins_given``). A
      direct award has one bidder and a negotiated procedure a short
      deadline by design, so the winner of a buyer's direct awards or of the
      lots of a split purchase is not made more suspicious by those flags,
      while an open tender with a five-day deadline or a lone bidder is.

    These are combined by Fisher's method with the nominal surprises of bids
    carrying a trace found only in the buyer's tenders and of direct ties
    between buyer and company (shared contacts, declared relations) — the
    latter two only when some pair of the market shows them: a test no pair
    can pass (no trace or tie data) would only add degrees of freedom. The
    two main signals are moderately dependent in honest markets (correlation
    about 0.4) but are kept as Fisher terms: each is capped at
    ``log10(number of pairs)`` by its empirical calibration, and with
    Brown's correction no pair's evidence could reach the
    Benjamini–Hochberg cut. Higher = more suspicious; the default threshold
    is that cut at false discovery rate ``fdr``.

    Parameters
    ----------
    min_tenders : int, default 2
        Score a pair only when the company bid in at least this many awarded
        tenders of the buyer (a repeat winner needs two).
    baseline : {"strength", "uniform"}, default "strength"
        Win probability under the null: the company's leave-buyer-out
        strength in a conditional-logit model, or ``1 / number of bids``.
    fdr : float, default 0.05
        False discovery rate of the default threshold.
    contamination, fence_k, max_evidence
        See :class:`~collusion.detectors.BaseDetector`.

    Examples
    --------
    >>> from collusion.datasets import make_market
    >>> from collusion.detectors import BuyerWinnerDetector
    >>> market, truth = make_market(3_000, seed=0)
    >>> det = BuyerWinnerDetector().fit(market)
    >>> top = det.results_.iloc[0]
    >>> (top["entity_id"], top["other_id"]) in set(zip(truth.favoured_pairs.buyer_id, truth.favoured_pairs.company_id))
    True
    """

    name: ClassVar[str] = "buyer_winner"
    analysis: ClassVar[int] = 1
    entity_type: ClassVar[str] = "buyer"
    context_type: ClassVar[str] = "buyer"
    required_tables: ClassVar[tuple[str, ...]] = ("tenders", "bids")

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

    #: Flags whose rate depends on the procedure (one bidder, short deadline by design).
    _procedure_flags: ClassVar[tuple[str, ...]] = ("short_period", "single_bid")
    #: Signals always combined; the others enter the score only when some pair shows them.
    _core_signals: ClassVar[tuple[str, ...] | None] = ("dominance", "irregular")

    def _extra(self, table: pd.DataFrame, market: Any, flags: dict[str, np.ndarray]) -> pd.DataFrame:
        """Add the irregular wins that the procedure of each won tender does not explain."""
        table = table.copy(deep=False)
        n_c = market.n("company")
        key = table["context"].to_numpy(np.int64) * n_c + table["company"].to_numpy(np.int64)
        win = market.bids["is_winner"].to_numpy(dtype=bool)
        wt = market.codes("bids", "tender_id").astype(np.int64)[win]
        wc = market.codes("bids", "bidder_id").astype(np.int64)[win]
        wx = market.codes("tenders", "buyer_id").astype(np.int64)[wt]
        proc = np.asarray(market.tenders["procedure"].cat.codes, dtype=np.int64)[wt]
        # Both flags of the same wins: grouped once, so one set of pair keys.
        given = _flags_given(wx, wc, {name: flags[name][wt] for name in self._procedure_flags}, proc,
                             n_companies=n_c)
        g0 = next(iter(given.values()))
        gkey = g0["context"].to_numpy(np.int64) * n_c + g0["company"].to_numpy(np.int64)
        pos = np.minimum(np.searchsorted(gkey, key), max(gkey.size - 1, 0))
        hit = gkey[pos] == key if gkey.size else np.zeros(key.size, dtype=bool)
        parts = []
        for name, g in given.items():
            exp = np.where(hit, g["expected"].to_numpy()[pos] if gkey.size else 0.0, 0.0)
            sur = np.where(hit, g["surprise"].to_numpy()[pos] if gkey.size else 0.0, 0.0)
            table[f"{name}_procedure_expected"] = exp
            table[f"{name}_procedure_surprise"] = sur
            parts.append(sur)
        table["beyond_procedure_surprise"] = fisher_surprise(*parts) if len(table) else np.zeros(0)
        return table

    def _components(self, table: pd.DataFrame, graph: Any) -> dict[str, np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            win_share = table["wins"].to_numpy() / table["context_tenders"].to_numpy()
        return {
            # One dominance signal: excess wins, value share and win share count the same
            # wins, so Brown's method weighs them by their dependence in this market.
            "dominance": brown_surprise(empirical_surprise(table["excess"].to_numpy()),
                                        empirical_surprise(table["value_share"].to_numpy()),
                                        empirical_surprise(win_share)),
            # One irregularity signal: the two tests read the same wins, so they are
            # merged before calibration.
            "irregular": empirical_surprise(fisher_surprise(table["irregular_surprise"].to_numpy(),
                                                            table["beyond_procedure_surprise"].to_numpy())),
            "prepared": table["prepared_surprise"].to_numpy(),
        }
