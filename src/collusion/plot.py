"""Pictures of the evidence, one per analysis (matplotlib, imported lazily).

Every function takes ``ax=`` (a new figure when ``None``) and returns the
``Axes`` it drew on, like networkx's drawing functions, so plots compose in
notebooks and reports. Install the extra with ``pip install 'collusion[plot]'``.

=============================  ===============================================
function                       shows
=============================  ===============================================
:func:`finding`                the ego graph of any finding (all analyses)
:func:`ego_graph`              typed ego graph around a node, traces visible
:func:`cartel_rotation`        co-bidding group: who bid and who won, over time
:func:`tender_screens`         a tender's price screens vs the market (2)
:func:`payment_curve`          cumulative payments vs amount + changes (4)
:func:`lot_split`              lots of a split group vs the threshold (7)
:func:`risk_distribution`      the risk index histogram with levels
=============================  ===============================================
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from .exceptions import MissingDependencyError

__all__ = [
    "NODE_COLORS",
    "cartel_rotation",
    "ego_graph",
    "finding",
    "lot_split",
    "payment_curve",
    "risk_distribution",
    "tender_screens",
]

#: Colour per node type; trace nodes share warm colours so shared traces stand out.
NODE_COLORS: dict[str, str] = {
    "buyer": "#1f77b4", "agent": "#9467bd", "company": "#2ca02c", "expert": "#17becf", "person": "#8c564b",
    "tender": "#c7c7c7", "contract": "#7f7f7f", "project": "#bcbd22",
    "phone": "#d62728", "email": "#ff7f0e", "address": "#e377c2", "ip": "#d62728", "mac": "#ff9896",
    "doc_fingerprint": "#ff7f0e", "account": "#e6550d",
}


def _plt() -> Any:
    try:
        import matplotlib

        if matplotlib.get_backend().lower() not in ("agg",) and not _interactive():
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("plotting needs matplotlib: pip install 'collusion[plot]'") from err
    return plt


def _interactive() -> bool:
    import sys

    return "ipykernel" in sys.modules


def _axes(ax: Any, figsize: tuple[float, float] = (7, 5)) -> Any:
    if ax is not None:
        return ax
    _, ax = _plt().subplots(figsize=figsize)
    return ax


def ego_graph(graph: Any, node: str, *, hops: int = 2, max_degree: int | None = 50, ax: Any = None,
              label: bool = True, seed: int = 0) -> Any:
    """Draw the typed ego graph around ``node`` (``"type:id"``).

    Node colours follow :data:`NODE_COLORS`; trace nodes (phones, IPs,
    accounts...) touched by two or more parties are drawn large with a black
    edge, because a shared trace is the evidence.
    """
    import networkx as nx

    from .graph import ego_subgraph

    plt = _plt()
    ax = _axes(ax, (8, 6))
    g = ego_subgraph(graph, node, hops=hops, max_degree=max_degree, as_networkx=True)
    simple = nx.Graph(g.to_undirected())
    pos = nx.spring_layout(simple, seed=seed, k=1.2 / max(np.sqrt(max(len(simple), 1)), 1))
    types = {n: d.get("type", "?") for n, d in g.nodes(data=True)}
    from .graph import TRACE_NODE_TYPES

    shared = {n for n in simple if types[n] in TRACE_NODE_TYPES and simple.degree(n) >= 2}
    nx.draw_networkx_edges(simple, pos, ax=ax, alpha=0.35, width=0.8)
    for t in sorted(set(types.values())):
        nodes = [n for n in simple if types[n] == t]
        sizes = [320 if n in shared else (420 if n == node else 120) for n in nodes]
        edge = ["black" if (n in shared or n == node) else "none" for n in nodes]
        nx.draw_networkx_nodes(simple, pos, nodelist=nodes, node_color=NODE_COLORS.get(t, "#333333"),
                               node_size=sizes, edgecolors=edge, linewidths=1.2, ax=ax, label=t)
    if label:
        keep = {n: n.split(":", 1)[1][:18] for n in simple if n == node or n in shared or types[n] != "tender"}
        nx.draw_networkx_labels(simple, pos, labels=keep, font_size=7, ax=ax)
    ax.legend(loc="upper left", fontsize=7, markerscale=0.6, frameon=False)
    ax.set_title(f"{node}: {hops}-hop neighbourhood ({len(shared)} shared trace(s))")
    ax.set_axis_off()
    plt.tight_layout()
    return ax


def finding(screening: Any, finding_id: str, *, hops: int = 2, ax: Any = None) -> Any:
    """Draw the evidence of a finding: the ego graph of its first member."""
    row = screening.results.loc[screening.results["finding_id"] == finding_id]
    if len(row) == 0:
        raise KeyError(f"no finding {finding_id!r}")
    centre = row["members"].iloc[0][0]
    ax = ego_graph(screening.graph, centre, hops=hops, ax=ax)
    ax.set_title(f"{row['detector'].iloc[0]} #{row['rank'].iloc[0]}: {centre}")
    return ax


def cartel_rotation(market: Any, members: Sequence[str], *, ax: Any = None) -> Any:
    """Who bid (dot) and who won (star) in the tenders where two or more members bid, over time.

    Rotation shows as wins passed from member to member while the others
    cover; outsiders rarely win those tenders.
    """
    ax = _axes(ax, (8, 0.5 * max(len(members), 4) + 1.5))
    ids = [m.split(":", 1)[-1] for m in members]
    bids = market.bids
    firm = bids["bidder_id"].astype(object)
    in_group = firm.isin(ids).to_numpy()
    tender = bids["tender_id"].cat.codes.to_numpy()
    per = np.bincount(tender[in_group], minlength=market.n("tender"))
    keep = in_group & (per[tender] >= 2)
    sub = bids.loc[keep]
    when = market.tenders["published_at"].to_numpy()[tender[keep]]
    if pd.isna(when).all():
        when = tender[keep]
    y = pd.Categorical(sub["bidder_id"].astype(object), categories=ids).codes
    won = sub["is_winner"].to_numpy()
    ax.scatter(when[~won], y[~won], s=14, c="#999999", label="bid (cover)")
    ax.scatter(when[won], y[won], s=80, marker="*", c="#d62728", label="won")
    ax.set_yticks(range(len(ids)), labels=ids)
    ax.set_xlabel("tender published")
    ax.set_title(f"co-bidding group of {len(ids)}: {int(won.sum())} wins in {int((per >= 2).sum())} shared tenders")
    ax.legend(loc="upper right", fontsize=8)
    return ax


def tender_screens(screens: pd.DataFrame, tender_id: str, *, columns: Sequence[str] = ("cv", "spd", "diffp", "rd", "kstest", "skew"),
                   ax: Any = None) -> Any:
    """A tender's price screens (red) against the market's distribution (box per screen).

    ``screens`` is :func:`collusion.features.market_price_screens` of the market.
    Each screen is standardised by the market's median and IQR so they share an axis.
    """
    ax = _axes(ax, (8, 4))
    cols = [c for c in columns if c in screens.columns]
    data = screens[cols].astype(float)
    med = data.median()
    iqr = (data.quantile(0.75) - data.quantile(0.25)).replace(0, 1.0)
    z = (data - med) / iqr
    ax.boxplot([z[c].dropna().to_numpy() for c in cols], tick_labels=cols, showfliers=False)
    point = z.loc[tender_id, cols].to_numpy(dtype=float)
    ax.scatter(np.arange(1, len(cols) + 1), point, c="#d62728", s=60, zorder=3, label=f"tender {tender_id}")
    ax.axhline(0, color="#999999", lw=0.6)
    ax.set_ylabel("(screen − market median) / IQR")
    ax.set_title(f"price screens of tender {tender_id} vs the market")
    ax.legend(loc="upper right", fontsize=8)
    return ax


def payment_curve(market: Any, contract_id: str, *, ax: Any = None) -> Any:
    """Cumulative payments of a contract against its amount and amount + approved changes."""
    ax = _axes(ax, (7, 4))
    contracts = market.contracts
    row = contracts.loc[contracts["contract_id"].astype(object) == contract_id]
    if len(row) == 0:
        raise KeyError(f"no contract {contract_id!r}")
    amount = float(row["amount"].iloc[0])
    signed = row["signed_at"].iloc[0]
    pay = market.payments
    pay = pay.loc[pay["contract_id"].astype(object) == contract_id].sort_values("paid_at", kind="stable")
    approved = 0.0
    if market.changes is not None:
        ch = market.changes
        ch = ch.loc[(ch["contract_id"].astype(object) == contract_id) & ch["approved"]]
        approved = float(ch["amount_delta"].sum())
    cum = pay["amount"].cumsum().to_numpy()
    ax.step(pay["paid_at"].to_numpy(), cum, where="post", color="#1f77b4", label="cumulative payments")
    ax.scatter(pay["paid_at"].to_numpy(), cum, s=12, color="#1f77b4")
    ax.axhline(amount, color="#2ca02c", ls="--", label="contract amount")
    ax.axhline(amount + approved, color="#ff7f0e", ls=":", label="amount + approved changes")
    if pd.notna(signed):
        ax.axvline(signed, color="#7f7f7f", lw=0.8, label="signed")
    over = cum > amount + approved + 1e-9
    if over.any():
        ax.scatter(pay["paid_at"].to_numpy()[over], cum[over], s=60, color="#d62728", zorder=3, label="over-disbursed")
    ax.set_ylabel(f"amount ({market.settings.currency})")
    ax.set_title(f"payments of contract {contract_id}")
    ax.legend(loc="lower right", fontsize=8)
    return ax


def lot_split(market: Any, tender_ids: Sequence[str], *, ax: Any = None) -> Any:
    """Estimates of the lots of a group against the open-tender threshold, and their sum."""
    ax = _axes(ax, (7, 4))
    t = market.tenders.set_index(market.tenders["tender_id"].astype(object))
    lots = t.loc[list(tender_ids)].sort_values("published_at", kind="stable")
    cat = lots["category"].iloc[0]
    thr = market.settings.threshold_for(None if pd.isna(cat) else str(cat))
    est = lots["estimate"].to_numpy(dtype=float)
    labels = [f"{i}\n{str(p)[:10]}" for i, p in zip(lots.index, lots["published_at"])]
    ax.bar(range(len(est)), est, color="#1f77b4", label="lot estimate")
    ax.bar(len(est), est.sum(), color="#d62728", alpha=0.7, label="sum of lots")
    ax.axhline(thr, color="black", ls="--", label="open-tender threshold")
    ax.set_xticks(range(len(est) + 1), labels=labels + ["sum"], fontsize=7)
    ax.set_ylabel(f"estimate ({market.settings.currency})")
    ax.set_title(f"{len(est)} lots, each below the threshold, sum {est.sum() / thr:.1f}× the threshold")
    ax.legend(loc="upper left", fontsize=8)
    return ax


def risk_distribution(risk: pd.DataFrame, *, entity_type: str | None = None, ax: Any = None) -> Any:
    """Histogram of the risk index with the level bands."""
    from ._risk import LEVELS

    ax = _axes(ax, (7, 4))
    data = risk if entity_type is None else risk[risk["entity_type"] == entity_type]
    ax.hist(data["score"].to_numpy(dtype=float), bins=np.linspace(0, 100, 41), color="#1f77b4", log=True)
    lo = 0.0
    colors = {"low": "#2ca02c", "medium": "#ffdd57", "high": "#ff7f0e", "critical": "#d62728"}
    for name, hi in LEVELS:
        ax.axvspan(lo, min(hi, 100), color=colors[name], alpha=0.12, label=name)
        lo = hi
    ax.set_xlabel("risk index")
    ax.set_ylabel("entities (log)")
    ax.set_title(f"risk index of {len(data)} {entity_type or 'entities'}")
    ax.legend(loc="upper right", fontsize=8)
    return ax
