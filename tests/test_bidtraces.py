"""Traces shared by bidders of one tender."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from collusion.features._bidtraces import (
    BID_TRACE_TYPES,
    bid_trace_table,
    hub_links,
    pair_trace_counts,
    shared_trace_pairs,
    tender_link_counts,
    tender_trace_counts,
)


def test_bid_trace_table_normalises_before_matching():
    bids = pd.DataFrame({
        "ip": ["192.168.001.010", "192.168.1.10", "127.0.0.1", None],
        "contact": ["+86 138-0013-8000", "13800138000", "J.Doe+x@GoogleMail.com", "jdoe@gmail.com"],
        "bond_account": ["6222 0212-3456", "6222021234 56", "0000", "1"],
    })
    t = bid_trace_table(bids, np.zeros(4, int), np.arange(4))
    ip = t[t["trace_type"] == "ip"]
    assert ip["company"].tolist() == [0, 1] and ip["value"].nunique() == 1  # loopback dropped
    phone = t[t["trace_type"] == "phone"]
    assert phone["value"].unique().tolist() == ["13800138000"]
    mail = t[t["trace_type"] == "email"]
    assert mail["value"].unique().tolist() == ["jdoe@gmail.com"]
    acc = t[t["trace_type"] == "account"]
    assert acc["company"].tolist() == [0, 1, 3]  # all-zero account is a placeholder


def test_shared_trace_pairs_and_counts_hand_computed():
    # tender 0: firms 1, 2, 3 share ip 7; firms 1 and 2 share mac 4 (twice for firm 1)
    tender = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    company = np.array([1, 2, 3, 1, 2, 1, 1, 4])
    ttype = np.array([0, 0, 0, 1, 1, 1, 0, 0])
    trace = np.array([7, 7, 7, 4, 4, 4, 7, 9])
    pairs = shared_trace_pairs(tender, company, ttype, trace)
    assert pairs.values.tolist() == [[0, 0, 7, 1, 2], [0, 0, 7, 1, 3], [0, 0, 7, 2, 3], [0, 1, 4, 1, 2]]
    counts = tender_trace_counts(pairs, 2, BID_TRACE_TYPES)
    assert counts.loc[0, ["pairs_ip", "firms_ip", "pairs_mac", "firms_mac", "pairs_any", "firms_any",
                          "n_trace_types"]].tolist() == [3, 3, 1, 2, 3, 3, 2]
    assert counts.loc[1].sum() == 0
    per_pair = pair_trace_counts(pairs, BID_TRACE_TYPES).set_index(["company_a", "company_b"])
    assert per_pair.loc[(1, 2), "tenders_ip"] == 1 and per_pair.loc[(1, 2), "tenders_any"] == 1
    assert per_pair.loc[(1, 3), "tenders_mac"] == 0


def test_hub_links_and_tender_link_counts():
    # person 0 ties firms 0 and 1; person 1 ties everyone (a switchboard, ignored)
    H = sp.csr_matrix(np.array([[1, 1], [1, 1], [0, 1], [0, 1]]))
    links = hub_links(H, max_hub_degree=3)
    assert links[["company_a", "company_b"]].values.tolist() == [[0, 1]]
    B = sp.csr_matrix(np.array([[1, 0, 1], [1, 1, 0], [1, 1, 1], [0, 0, 0]]))
    counts = tender_link_counts(B, links["company_a"].to_numpy(), links["company_b"].to_numpy())
    assert counts["pairs"].tolist() == [1, 0, 0]
    assert counts["firms"].tolist() == [2, 0, 0]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5), st.integers(0, 1), st.integers(0, 3)),
                min_size=1, max_size=40), st.randoms())
def test_shared_pairs_ignore_row_order(rows, rnd):
    arr = np.array(rows)
    base = shared_trace_pairs(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])
    order = list(range(len(rows)))
    rnd.shuffle(order)
    shuffled = arr[order]
    again = shared_trace_pairs(shuffled[:, 0], shuffled[:, 1], shuffled[:, 2], shuffled[:, 3])
    pd.testing.assert_frame_equal(base.reset_index(drop=True), again.reset_index(drop=True))
    # Every listed pair really shares the value in that tender.
    for t, k, v, a, b in base.itertuples(index=False):
        sel = (arr[:, 0] == t) & (arr[:, 2] == k) & (arr[:, 3] == v)
        assert {a, b} <= set(arr[sel, 1]) and a < b


def test_shared_pairs_with_codes_too_wide_for_one_key():
    # tender × (type, value) codes overflow int64: values are renumbered first.
    tender = np.array([0, 0, 0, 2**40, 2**40, 2**40])
    company = np.array([3, 1, 2, 1, 2, 3])
    ttype = np.zeros(6, dtype=np.int64)
    trace = np.array([2**30, 2**30, 5, 5, 5, 2**30])
    pairs = shared_trace_pairs(tender, company, ttype, trace)
    assert pairs.values.tolist() == [[0, 0, 2**30, 1, 3], [2**40, 0, 5, 1, 2]]
