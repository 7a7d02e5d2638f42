"""Contract-execution features (collusion.features._contracts): hand-computed values and properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from collusion import Market
from collusion.features._contracts import (
    builder_signals,
    change_totals,
    company_links,
    cost_overrun_chain,
    disbursement,
    early_payments,
    graph_accounts,
    graph_ties,
    group_robust_z,
    lending_hubs,
    lookup_pairs,
    manager_ties,
    payee_roles,
    payment_shares,
    segment_cumsum,
    to_days,
)
from collusion.graph import build_graph


def test_segment_cumsum_restarts_per_segment() -> None:
    v = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    offsets = np.array([0, 2, 2, 5, 6])  # segments: [1,2], [], [3,4,5], [6]
    assert segment_cumsum(v, offsets).tolist() == [1.0, 3.0, 3.0, 7.0, 12.0, 6.0]
    assert segment_cumsum(np.zeros(0), np.array([0])).size == 0


def test_change_totals_split_approved_and_unapproved() -> None:
    out = change_totals(np.array([1, 1, 1, -1, 0]), np.array([10.0, -4.0, 99.0, 5.0, 2.0]),
                        np.array([True, True, False, True, True]), 3)
    assert out["n_changes"].tolist() == [1, 3, 0]
    assert out["approved_delta"].tolist() == [2.0, 6.0, 0.0]
    assert out["approved_increase"].tolist() == [2.0, 10.0, 0.0]
    assert out["unapproved_delta"].tolist() == [0.0, 99.0, 0.0]


def test_disbursement_finds_the_crossing_payment_in_date_order() -> None:
    # Contract 0: ceiling 100; by date the payments are 40 (Jan), 50 (Feb), 30 (Mar) -> Mar crosses.
    contract = np.array([0, 0, 0, 1, 1])
    amount = np.array([30.0, 40.0, 50.0, 5.0, 5.0])
    paid_at = pd.to_datetime(["2024-03-01", "2024-01-01", "2024-02-01", "2024-01-01", "2024-01-02"]).to_numpy()
    out = disbursement(contract, amount, np.array([100.0, 10.0]), paid_at=paid_at)
    assert out["paid"].tolist() == [120.0, 10.0]
    assert out["excess"].tolist() == [20.0, 0.0]  # paying exactly the ceiling is no excess
    assert out["excess_ratio"].tolist() == [0.2, 0.0]
    assert out["crossing_row"].tolist() == [0, -1]
    assert out["n_payments"].tolist() == [3, 2]


def test_disbursement_tolerates_float_rounding_of_a_full_payment() -> None:
    parts = np.full(10, 0.1)
    out = disbursement(np.zeros(10, dtype=int), parts, np.array([1.0]))
    assert out["excess"].iloc[0] == 0.0 and out["crossing_row"].iloc[0] == -1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.floats(1, 1e6), st.integers(0, 400)), min_size=1, max_size=40),
       st.floats(0.5, 1e4), st.randoms(use_true_random=False))
def test_disbursement_invariant_to_row_order_and_scale(rows, scale, rnd) -> None:
    contract = np.array([r[0] for r in rows])
    amount = np.array([r[1] for r in rows])
    days = np.array([r[2] for r in rows])
    paid_at = (np.datetime64("2024-01-01") + days.astype("timedelta64[D]")).astype("datetime64[ns]")
    # distinct days within a contract make the crossing payment unambiguous
    days = days + np.arange(days.size) * 1000
    paid_at = (np.datetime64("2020-01-01") + days.astype("timedelta64[D]")).astype("datetime64[ns]")
    ceiling = np.bincount(contract, weights=amount, minlength=5) * 0.7 + 1.0
    a = disbursement(contract, amount, ceiling, paid_at=paid_at)
    perm = np.arange(len(rows))
    rnd.shuffle(perm)
    b = disbursement(contract[perm], amount[perm] * scale, ceiling * scale, paid_at=paid_at[perm])
    np.testing.assert_allclose(a["excess_ratio"], b["excess_ratio"], rtol=1e-9, atol=1e-12)
    crossed = a["crossing_row"].to_numpy()
    back = np.where(b["crossing_row"].to_numpy() >= 0, perm[np.maximum(b["crossing_row"].to_numpy(), 0)], -1)
    assert crossed.tolist() == back.tolist()


def test_early_payments_measure_the_lead_over_signing() -> None:
    paid = pd.to_datetime(["2024-01-01", "2024-01-05", "2024-02-01", None]).to_numpy()
    signed = pd.to_datetime(["2024-01-10", None]).to_numpy()
    out = early_payments(np.array([0, 0, 0, 1]), np.array([1.0, 2.0, 3.0, 4.0]), paid, signed)
    assert out["n_early"].tolist() == [2, 0]
    assert out["early_amount"].tolist() == [3.0, 0.0]
    assert out["days_early"].tolist() == [9.0, 0.0]
    assert np.isnan(to_days(np.array(["NaT"], dtype="datetime64[ns]"))[0])


def test_payee_roles_and_shares() -> None:
    links = sp.csr_matrix(([True, True], ([2, 4], [4, 2])), shape=(6, 6))  # firm 2 tied to builder 4
    owners = sp.csr_matrix(([True], ([0], [7])), shape=(6, 9))           # the winner uses account 7
    payee = np.array([0, 4, 2, 5, -1, -1])
    account = np.array([-1, -1, -1, -1, 7, -1])
    winner = np.zeros(6, dtype=int)
    builder = np.full(6, 4)
    role = payee_roles(payee, account, winner, builder, links, owners)
    assert role.tolist() == [0, 1, 2, 3, 2, 4]
    shares = payment_shares(np.zeros(6, dtype=int), np.array([10.0, 20.0, 30.0, 40.0, 0.0, 0.0]) + 0.0, role, 1)
    assert shares["paid_unrelated"].iloc[0] == 40.0
    assert shares["share_winner"].iloc[0] == pytest.approx(0.1)
    assert shares["share_unrelated"].iloc[0] == pytest.approx(0.4)


def test_builder_signals_against_the_bids() -> None:
    # tender 0: bidders 0 (won), 1, 2; tender 1: bidder 3 only.
    out = builder_signals(
        np.array([0, 0, 1, 1]), np.array([0, 0, 3, 3]), np.array([1, 5, 3, -1]),
        np.array([0, 0, 0, 1]), np.array([0, 1, 2, 3]), np.array([True, False, False, True]), 6,
    )
    assert out["builder_differs"].tolist() == [True, True, False, False]
    assert out["builder_bid"].tolist() == [True, False, True, False]
    assert out["builder_lost"].tolist() == [True, False, False, False]
    assert out["builder_known"].tolist() == [True, True, True, False]


def test_lending_hubs_poisson_tail() -> None:
    # Firm 0 has 4 contracts built by 4 different firms; the other 16 contracts are built by their winners.
    winner = np.r_[np.zeros(4, int), np.arange(1, 17)]
    builder = np.r_[np.arange(20, 24), np.arange(1, 17)]
    hubs = lending_hubs(winner, builder, 30)
    assert hubs.loc[0, ["n_contracts", "n_lent", "n_builders"]].tolist() == [4, 4, 4]
    assert hubs.loc[0, "expected"] == pytest.approx(4 * 4 / 20)
    assert hubs.loc[0, "p_value"] < 0.01
    assert hubs.loc[5, "p_value"] == 1.0


def test_manager_ties() -> None:
    ties = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]], dtype=bool))
    out = manager_ties(np.array([0, 1, 2, -1]), np.array([0, 0, 0, 0]), np.array([1, 2, 2, 2]), ties)
    assert out["pm_tied_winner"].tolist() == [True, False, False, False]
    assert out["pm_tied_builder"].tolist() == [False, True, False, False]
    assert out["pm_elsewhere"].tolist() == [False, True, False, False]
    assert out["pm_n_ties"].tolist() == [1, 1, 0, 0]


def test_company_links_through_people_parents_and_same_as() -> None:
    cc = sp.csr_matrix(([1], ([0], [1])), shape=(5, 5))        # 0 -> 1 (subsidiary)
    pc = sp.csr_matrix(([1, 1], ([0, 0], [2, 3])), shape=(1, 5))  # one person in firms 2 and 3
    same = sp.csr_matrix(([1], ([4], [3])), shape=(5, 5))
    links = company_links(cc, pc, same_as=same).toarray()
    assert links[0, 1] and links[1, 0] and links[2, 3] and links[3, 4]
    assert links[2, 4]  # 2 -- person -- 3 == 4 (two hops through a related company)
    assert not links.diagonal().any()
    one_hop = company_links(cc, pc, same_as=same, hops=1).toarray()
    assert not one_hop[2, 4]
    assert lookup_pairs(sp.csr_matrix(links), np.array([0, 0, -1]), np.array([1, 2, 1])).tolist() == [True, False, False]


def test_group_robust_z_shrinks_small_groups_to_the_market() -> None:
    rng = np.random.default_rng(0)
    big = rng.normal(0, 1, 500)
    small = np.array([0.0, 0.01, -0.01, 3.0])  # a tiny group with a near-zero spread
    values = np.r_[big, small]
    groups = np.r_[np.zeros(500, int), np.ones(4, int)]
    z_raw = group_robust_z(values, groups, prior=0)
    z = group_robust_z(values, groups)
    assert z_raw[-1] > 100  # its own MAD makes 3.0 look astronomically far
    assert 2 < z[-1] < 10   # shrunk to the market it is a plain outlier
    assert np.isnan(group_robust_z(np.array([np.nan, 1.0, 2.0]), np.array([0, 0, 0]))[0])


def test_cost_overrun_chain_counts_the_three_overruns() -> None:
    out = cost_overrun_chain(np.array([100.0, 100.0, 100.0]), np.array([110.0, 95.0, np.nan]),
                             np.array([121.0, 90.0, 80.0]), np.array([133.1, 85.0, 70.0]))
    np.testing.assert_allclose(out["log_prelim_invest"].iloc[0], np.log(1.1))
    assert out["n_exceed"].tolist() == [3, 0, 0]
    assert out["n_steps"].tolist() == [3, 3, 1]
    assert np.isnan(out["log_budget_prelim"].iloc[2])


def _tiny_market() -> Market:
    tenders = pd.DataFrame({"tender_id": ["T1", "T2"], "buyer_id": "B"})
    bids = pd.DataFrame({"tender_id": ["T1", "T1", "T2"], "bidder_id": ["A", "X", "C"],
                         "price": [1.0, 2.0, 1.0], "is_winner": [True, False, True],
                         "bond_account": ["6222-0001", None, None]})
    contracts = pd.DataFrame({"contract_id": ["K1", "K2"], "tender_id": ["T1", "T2"], "winner_id": ["A", "C"],
                              "amount": [1.0, 1.0], "builder_id": ["X", "C"], "project_manager_id": ["P1", "P2"]})
    payments = pd.DataFrame({"contract_id": ["K1", "K1", "K2"], "amount": [1.0, 1.0, 1.0],
                             "payee_id": ["X", None, "C"], "payee_account": [None, "6222 0001", None]})
    relations = pd.DataFrame({"src_id": ["P1", "P9", "P9"], "dst_id": ["X", "A", "C"],
                              "kind": ["employee", "shareholder", "shareholder"]})
    parties = pd.DataFrame({"party_id": ["P1", "P9", "A", "X", "C"],
                            "kind": ["person", "person", "company", "company", "company"]})
    return Market.from_frames(tenders=tenders, bids=bids, contracts=contracts, payments=payments,
                              relations=relations, parties=parties)


def test_graph_ties_and_accounts_on_market_codes() -> None:
    m = _tiny_market()
    G = build_graph(m)
    links, person_company = graph_ties(G)
    comp = list(m.entities["company"])
    a, c, x = comp.index("A"), comp.index("C"), comp.index("X")
    assert links.shape == (m.n("company"), m.n("company"))
    assert links[a, c] and links[c, a] and not links[a, x]
    p1 = list(m.entities["person"]).index("P1")
    assert person_company[p1, x] and not person_company[p1, a]
    owners, pay_acc = graph_accounts(G)
    has = m.payments["payee_account"].notna().to_numpy()
    assert (pay_acc[~has] == -1).all() and (pay_acc[has] >= 0).all()
    # "6222 0001" on a payment is the account "6222-0001" the winner A used for its bid bond.
    assert owners[a, pay_acc[has][0]] and not owners[x, pay_acc[has][0]]
