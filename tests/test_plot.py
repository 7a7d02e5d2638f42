"""Every plot renders to a file on a generated market and draws what it claims."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import collusion as co  # noqa: E402
from collusion import plot  # noqa: E402
from collusion.datasets import make_market  # noqa: E402
from collusion.features import market_price_screens  # noqa: E402


@pytest.fixture(scope="module")
def screened():
    market, truth = make_market(1_500, seed=2)
    return market, truth, co.screen(market)


def _saved(ax, tmp_path, name):
    path = tmp_path / f"{name}.png"
    ax.figure.savefig(path, dpi=60)
    plt.close(ax.figure)
    assert path.stat().st_size > 2_000
    return path


def test_ego_graph_colours_types_and_marks_shared_traces(screened, tmp_path) -> None:
    market, truth, s = screened
    member = truth.cartels["company_id"].iloc[0]
    ax = plot.ego_graph(s.graph, f"company:{member}", hops=2)
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"company", "tender"} <= labels
    assert len(ax.collections) >= 3  # edges + one node collection per type
    _saved(ax, tmp_path, "ego")


def test_finding_plot_of_top_finding_of_each_analysis(screened, tmp_path) -> None:
    _, _, s = screened
    for det, part in s.top(1).groupby("detector"):
        ax = plot.finding(s, part["finding_id"].iloc[0], hops=1)
        assert det in ax.get_title()
        _saved(ax, tmp_path, f"finding_{det}")


def test_cartel_rotation_shows_wins_of_members(screened, tmp_path) -> None:
    market, truth, _ = screened
    cid = truth.cartels["cartel_id"].iloc[0]
    members = truth.cartels.loc[truth.cartels.cartel_id == cid, "company_id"].tolist()
    ax = plot.cartel_rotation(market, members)
    wins = ax.collections[1].get_offsets()
    assert len(wins) > 0 and len(ax.get_yticklabels()) == len(members)
    _saved(ax, tmp_path, "rotation")


def test_tender_screens_against_market(screened, tmp_path) -> None:
    market, truth, _ = screened
    screens = market_price_screens(market)
    tid = truth.cartel_tenders["tender_id"].iloc[0]
    ax = plot.tender_screens(screens, tid)
    assert len(ax.collections[0].get_offsets()) == 6
    _saved(ax, tmp_path, "screens")


def test_payment_curve_marks_over_disbursement(screened, tmp_path) -> None:
    market, truth, _ = screened
    cid = truth.over_disbursement["contract_id"].iloc[0]
    ax = plot.payment_curve(market, cid)
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    assert "over-disbursed" in labels
    _saved(ax, tmp_path, "payments")


def test_lot_split_bars_and_threshold(screened, tmp_path) -> None:
    market, truth, _ = screened
    gid = truth.split_groups["group_id"].iloc[0]
    tids = truth.split_groups.loc[truth.split_groups.group_id == gid, "tender_id"].tolist()
    ax = plot.lot_split(market, tids)
    assert len(ax.patches) == len(tids) + 1
    _saved(ax, tmp_path, "lots")


def test_risk_distribution(screened, tmp_path) -> None:
    _, _, s = screened
    ax = plot.risk_distribution(s.risk)
    assert len(ax.patches) >= 40  # histogram bars (+ level bands)
    _saved(ax, tmp_path, "risk")


def test_axes_are_reused(screened) -> None:
    _, _, s = screened
    fig, ax = plt.subplots()
    assert plot.risk_distribution(s.risk, ax=ax) is ax
    plt.close(fig)
