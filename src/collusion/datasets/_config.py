"""``MarketConfig``: every knob of the synthetic market generator."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

__all__ = ["SCHEME_RATES", "MarketConfig"]

#: The rate fields that plant a scheme; setting one to 0 disables that scheme.
SCHEME_RATES: tuple[str, ...] = (
    "favoured_buyer_rate",
    "cartel_tender_rate",
    "captured_agent_rate",
    "captured_expert_rate",
    "licence_lending_rate",
    "over_disbursement_rate",
    "misdirected_payment_rate",
    "early_payment_rate",
    "win_low_change_high_rate",
    "cost_overrun_rate",
    "split_tender_rate",
    "duplicate_party_rate",
)

# Fields that are probabilities or shares: must lie in [0, 1].
_UNIT_INTERVAL = SCHEME_RATES + (
    "multi_lot_share",
    "agent_share",
    "single_bid_share",
    "two_bid_share",
    "champion_bid_rate",
    "disqualified_rate",
    "evaluated_share",
    "public_ip_rate",
    "shared_template_rate",
    "missing_trace_rate",
    "change_approved_rate",
    "favoured_win_share",
    "favoured_single_bid_rate",
    "favoured_short_period_rate",
    "favoured_non_open_rate",
    "cartel_participation",
    "cartel_outsider_rate",
    "cartel_trace_rate",
    "cartel_shareholder_rate",
    "captured_agent_win_share",
    "agent_prepared_rate",
    "captured_expert_sit_rate",
    "lending_builder_bids_rate",
    "split_shared_project_rate",
)


@dataclass(frozen=True)
class MarketConfig:
    """All knobs of :func:`~collusion.datasets.make_market`.

    Entity counts are ratios of ``n_tenders``; scheme rates are shares of
    their natural unit (stated per field). A scheme rate of 0 plants nothing.
    ``make_market(..., cartel_tender_rate=0.1)`` overrides single fields.

    Parameters
    ----------
    buyers_per_tender, agents_per_tender, companies_per_tender, experts_per_tender : float
        Entities per tender (defaults: one buyer per 50 tenders, one agent per
        250, one company per 8, one expert per 25).
    n_regions, n_categories : int
        Regions and work categories of a large market. Small markets get fewer
        regions (one per ``tenders_per_region`` tenders, at least 2) so that
        every (region, category) cell keeps enough active firms to bid.
    tenders_per_region : int
        See ``n_regions``.
    multi_lot_share : float
        Share of honest projects tendered as 2-6 lots (each lot one tender).
    agent_share : float
        Share of tenders run through a procurement agent.
    start, years : str, float
        Publication dates are spread over ``years`` years from ``start``.
    open_bids_mean : float
        Mean number of bids of open tenders with 3 or more bids (capped at
        ``max_bids``); non-open procedures draw fewer bids.
    single_bid_share, two_bid_share : float
        Shares of open tenders with one and two bids.
    max_bids : int
        Largest number of bids of a tender.
    estimate_median, estimate_sigma : float
        Lognormal distribution of tender estimates (CNY).
    discount_mean, discount_firm_sd, tender_shock_sd, bid_noise_sd : float
        Honest price model: ``price = estimate * (1 - firm discount - tender
        shock + bid noise)``, firm discounts ~ N(discount_mean, discount_firm_sd).
    home_discount : float
        Extra discount of a buyer's local champions (honest home advantage).
    champions_per_buyer : int
        Local champion firms per buyer.
    champion_bid_rate : float
        Probability that a champion bids in a tender of its buyer's main cell.
    disqualified_rate : float
        Share of bids disqualified (never the winner).
    evaluated_share : float
        Share of tenders decided by an expert panel (best mean score wins).
    panel_size : int
        Typical panel size (panels have 3-7 experts, mostly this many).
    public_ip_rate : float
        Share of honest bids sent from a shared public IP (coincidental sharing).
    shared_template_rate : float
        Share of honest bids built from a widespread document template (shared fingerprint).
    missing_trace_rate : float
        Share of missing values in each bid trace column.
    change_approved_rate : float
        Share of honest change orders that are approved.
    favoured_buyer_rate : float
        Share of buyers with a favoured supplier.
    favoured_win_share : float
        Share of a favouring buyer's tenders rigged for its supplier.
    favoured_single_bid_rate, favoured_short_period_rate, favoured_non_open_rate : float
        Within rigged favoured tenders: share with the supplier as the only
        bidder, with a 5-15 day bidding period, and (below the open-tender
        threshold) with a non-open procedure.
    cartel_tender_rate : float
        Share of tenders rigged by a cartel.
    cartel_size_min, cartel_size_max : int
        Cartel sizes (members).
    cartel_tenders_mean : float
        Mean number of rigged tenders per cartel (sets the number of cartels).
    cartel_participation : float
        Probability that a non-designated member bids in a cartel tender
        (the designated winner and the next member in the rotation always bid).
    cartel_outsider_rate : float
        Share of cartel tenders that also draw 1-3 honest outsiders.
    cartel_trace_rate : float
        Share of cover bids that share submission traces with the designated winner.
    cartel_shareholder_rate : float
        Share of cartels whose members share a hidden shareholder.
    captured_agent_rate : float
        Share of agents captured by a company.
    captured_agent_win_share : float
        Share of a captured agent's tenders rigged for its company.
    agent_prepared_rate : float
        Share of those tenders in which the agent prepares several bids.
    captured_expert_rate : float
        Share of experts captured by a company.
    captured_expert_bias : float
        Points the captured expert adds to its company's technical score (out of
        75; the price part is out of 25).
    captured_expert_sit_rate : float
        Probability that the captured expert sits on a panel where its company bids.
    licence_lending_rate : float
        Share of contracts built by a firm other than the winner.
    lending_contracts_per_hub : float
        Mean lending contracts per lending winner (few hubs lend to many builders).
    lending_builder_bids_rate : float
        Share of lending contracts whose builder was a losing bidder.
    over_disbursement_rate, misdirected_payment_rate, early_payment_rate : float
        Shares of contracts paid 10-40% above contract + approved changes,
        with a payee that is neither winner nor builder, and paid before signing.
    win_low_change_high_rate : float
        Share of contracts awarded 20-35% below the estimate and then restored
        above the estimate by approved changes.
    cost_overrun_rate : float
        Share of projects whose estimate chain and final account overrun.
    split_tender_rate : float
        Share of tenders that belong to a lot-splitting group.
    split_shared_project_rate : float
        Share of splitting groups whose tenders keep one project id.
    duplicate_party_rate : float
        Share of companies registered a second time under a variant name.

    Examples
    --------
    >>> from collusion.datasets import MarketConfig
    >>> cfg = MarketConfig(cartel_tender_rate=0.1)
    >>> MarketConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> cfg.without_schemes().cartel_tender_rate
    0.0
    """

    # entities
    buyers_per_tender: float = 1 / 50
    agents_per_tender: float = 1 / 250
    companies_per_tender: float = 1 / 8
    experts_per_tender: float = 1 / 25
    n_regions: int = 30
    n_categories: int = 12
    tenders_per_region: int = 3000
    multi_lot_share: float = 0.3
    agent_share: float = 0.75
    start: str = "2021-01-01"
    years: float = 3.0
    # bids and prices
    open_bids_mean: float = 9.25
    single_bid_share: float = 0.03
    two_bid_share: float = 0.05
    max_bids: int = 15
    estimate_median: float = 2.5e6
    estimate_sigma: float = 1.0
    discount_mean: float = 0.10
    discount_firm_sd: float = 0.025
    tender_shock_sd: float = 0.02
    bid_noise_sd: float = 0.035
    home_discount: float = 0.03
    champions_per_buyer: int = 2
    champion_bid_rate: float = 0.6
    disqualified_rate: float = 0.015
    evaluated_share: float = 0.3
    panel_size: int = 5
    public_ip_rate: float = 0.015
    shared_template_rate: float = 0.002
    missing_trace_rate: float = 0.03
    change_approved_rate: float = 0.9
    # 1. favoured suppliers
    favoured_buyer_rate: float = 0.05
    favoured_win_share: float = 0.5
    favoured_single_bid_rate: float = 0.3
    favoured_short_period_rate: float = 0.5
    favoured_non_open_rate: float = 0.7
    # 2. cartels
    cartel_tender_rate: float = 0.03
    cartel_size_min: int = 3
    cartel_size_max: int = 8
    cartel_tenders_mean: float = 25.0
    cartel_participation: float = 0.8
    cartel_outsider_rate: float = 0.4
    cartel_trace_rate: float = 0.3
    cartel_shareholder_rate: float = 0.3
    # 5. captured agents
    captured_agent_rate: float = 0.05
    captured_agent_win_share: float = 0.4
    agent_prepared_rate: float = 0.4
    # 6. captured experts
    captured_expert_rate: float = 0.02
    captured_expert_bias: float = 20.0
    captured_expert_sit_rate: float = 0.8
    # 3. licence lending
    licence_lending_rate: float = 0.02
    lending_contracts_per_hub: float = 6.0
    lending_builder_bids_rate: float = 0.7
    # 4. funds
    over_disbursement_rate: float = 0.01
    misdirected_payment_rate: float = 0.01
    early_payment_rate: float = 0.01
    win_low_change_high_rate: float = 0.01
    cost_overrun_rate: float = 0.02
    # 7. lot splitting
    split_tender_rate: float = 0.02
    split_shared_project_rate: float = 0.5
    # entity resolution
    duplicate_party_rate: float = 0.01

    def __post_init__(self) -> None:
        bad = [f"{name}={getattr(self, name)!r}" for name in _UNIT_INTERVAL if not 0.0 <= getattr(self, name) <= 1.0]
        positive = (
            "buyers_per_tender", "agents_per_tender", "companies_per_tender", "experts_per_tender",
            "n_regions", "n_categories", "tenders_per_region", "open_bids_mean", "max_bids",
            "estimate_median", "cartel_tenders_mean", "lending_contracts_per_hub", "panel_size",
        )
        bad += [f"{name}={getattr(self, name)!r}" for name in positive if not getattr(self, name) > 0]
        nonneg = ("estimate_sigma", "discount_firm_sd", "tender_shock_sd", "bid_noise_sd", "home_discount",
                  "champions_per_buyer", "captured_expert_bias")
        bad += [f"{name}={getattr(self, name)!r}" for name in nonneg if not getattr(self, name) >= 0]
        if not 2 <= self.cartel_size_min <= self.cartel_size_max:
            bad.append(f"cartel_size_min={self.cartel_size_min}, cartel_size_max={self.cartel_size_max} "
                       "(need 2 <= min <= max)")
        if not self.years >= 0.5:
            bad.append(f"years={self.years!r} (need at least half a year of publications)")
        if not 3 <= self.panel_size <= 7:
            bad.append(f"panel_size={self.panel_size} (panels have 3-7 experts)")
        if self.single_bid_share + self.two_bid_share > 1:
            bad.append("single_bid_share + two_bid_share > 1")
        if bad:
            raise ValueError("invalid MarketConfig: " + "; ".join(bad)
                             + " (rates and shares must lie in [0, 1], counts and scales must be positive)")

    # ------------------------------------------------------------ conversion
    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, source: Mapping[str, Any] | str | Path) -> MarketConfig:
        """Build a config from a dict or a JSON file; unknown keys are an error."""
        if isinstance(source, (str, Path)):
            source = json.loads(Path(source).read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(source) - known)
        if unknown:
            raise ValueError(f"unknown MarketConfig fields {unknown}; known fields are {sorted(known)}")
        return cls(**dict(source))

    def replace(self, **changes: Any) -> MarketConfig:
        """Return a copy with ``changes`` applied; unknown fields are an error."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(f"unknown MarketConfig fields {unknown}; known fields are {sorted(known)}")
        return replace(self, **changes)

    def without_schemes(self) -> MarketConfig:
        """Return a copy with every scheme rate set to 0 (an honest market)."""
        return replace(self, **{name: 0.0 for name in SCHEME_RATES})
