"""Market construction and validation: every rule, all problems at once, nothing dropped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import collusion as co
from collusion import Market, ValidationError


def _valid(n_tenders: int = 4, n_bidders: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    tenders = pd.DataFrame(
        {
            "tender_id": [f"T{i}" for i in range(n_tenders)],
            "buyer_id": ["B1"] * n_tenders,
            "estimate": 100.0,
            "published_at": pd.Timestamp("2024-01-01"),
            "deadline_at": pd.Timestamp("2024-01-25"),
        }
    )
    bids = pd.DataFrame(
        {
            "tender_id": np.repeat(tenders["tender_id"], n_bidders).to_numpy(),
            "bidder_id": [f"C{j}" for _ in range(n_tenders) for j in range(n_bidders)],
            "price": np.linspace(90, 99, n_tenders * n_bidders),
            "is_winner": [j == 0 for _ in range(n_tenders) for j in range(n_bidders)],
        }
    )
    return tenders, bids


def _problems(**frames: pd.DataFrame) -> pd.DataFrame:
    with pytest.raises(ValidationError) as err:
        Market.from_frames(**frames)
    problems = err.value.problems
    assert list(problems.columns) == ["table", "column", "rule", "row", "value"]
    return problems


def _has(problems: pd.DataFrame, table: str, column: str, rule_part: str, rows: list[int]) -> bool:
    sel = problems[(problems.table == table) & (problems.column == column) & problems.rule.str.contains(rule_part)]
    return sorted(sel.row.tolist()) == sorted(rows)


def test_valid_market_round_trip_of_ids_and_codes() -> None:
    tenders, bids = _valid()
    m = Market.from_frames(tenders=tenders, bids=bids)
    assert list(m.entities["company"]) == ["C0", "C1", "C2"]
    assert m.codes("tenders", "tender_id").tolist() == [0, 1, 2, 3]
    assert m.bids["tender_id"].cat.categories.equals(m.entities["tender"])
    # every schema column exists, even if absent from input
    assert {"ip", "mac", "doc_fingerprint", "bond_account", "contact"} <= set(m.bids.columns)
    assert m.has("tenders", "bids") and not m.has("contracts")


def test_every_rule_is_reported_at_once_with_table_column_and_row() -> None:
    tenders, bids = _valid()
    tenders.loc[1, "deadline_at"] = pd.Timestamp("2023-12-01")  # deadline before publication
    tenders = pd.concat([tenders, tenders.iloc[[2]]], ignore_index=True)  # duplicate tender row 4
    bids = bids.astype({"price": object, "is_winner": object})
    bids.loc[0, "price"] = -5.0
    bids.loc[1, "price"] = "abc"
    bids.loc[2, "price"] = np.inf
    bids.loc[3, "tender_id"] = "T99"  # unknown tender
    bids.loc[4, "is_winner"] = True  # second winner in T1 (row 3 is T1's winner... row 3 moved to T99)
    bids.loc[5, "is_winner"] = True
    bids = pd.concat([bids, bids.iloc[[6]]], ignore_index=True)  # duplicate (T2, C0) bid at row 12
    problems = _problems(tenders=tenders, bids=bids)
    assert _has(problems, "bids", "price", "positive", [0, 2])
    assert _has(problems, "bids", "price", "not a number", [1])
    assert _has(problems, "bids", "tender_id", "unknown tender_id", [3])
    # rows 4, 5 win T1; the duplicate (row 12) of T2's winner (row 6) makes T2 two-winner too
    assert _has(problems, "bids", "is_winner", "several winners", [4, 5, 6, 12])
    assert _has(problems, "bids", "tender_id,bidder_id", "duplicate key", [6, 12])
    assert _has(problems, "tenders", "tender_id", "duplicate key", [2, 4])
    assert _has(problems, "tenders", "published_at,deadline_at", "after", [1])


def test_missing_required_columns_and_tables() -> None:
    tenders, bids = _valid()
    problems = _problems(tenders=tenders, bids=bids.drop(columns=["price"]))
    assert _has(problems, "bids", "price", "required column is missing", [-1])
    problems = _problems(tenders=tenders.drop(columns=["tender_id"]), bids=bids.drop(columns=["bidder_id"]))
    assert _has(problems, "tenders", "tender_id", "required column", [-1])
    assert _has(problems, "bids", "bidder_id", "required column", [-1])


def test_foreign_keys_of_contract_tables() -> None:
    tenders, bids = _valid()
    contracts = pd.DataFrame({"contract_id": ["K1", "K2"], "tender_id": ["T0", "TX"], "winner_id": ["C0", "C0"],
                              "amount": [90.0, 91.0], "signed_at": ["2024-03-01", "2024-03-01"],
                              "completed_at": ["2024-06-01", "2024-01-01"]})
    payments = pd.DataFrame({"contract_id": ["K1", "K9"], "amount": [10.0, 0.0]})
    problems = _problems(tenders=tenders, bids=bids, contracts=contracts, payments=payments)
    assert _has(problems, "contracts", "tender_id", "unknown tender_id", [1])
    assert _has(problems, "contracts", "signed_at,completed_at", "after", [1])
    assert _has(problems, "payments", "contract_id", "unknown contract_id", [1])
    assert _has(problems, "payments", "amount", "positive", [1])


def test_bad_types_dates_and_booleans() -> None:
    tenders, bids = _valid()
    tenders["published_at"] = ["2024-01-01", "not a date", "", None]
    bids["disqualified"] = ["no", "yes", "maybe", 1, 0, "TRUE", "否", "是", None, "0", "1", False]
    problems = _problems(tenders=tenders, bids=bids)
    assert _has(problems, "tenders", "published_at", "not a date", [1])
    assert _has(problems, "bids", "disqualified", "not a boolean", [2])


def test_ids_with_spaces_case_and_unicode() -> None:
    tenders = pd.DataFrame({"tender_id": [" 标段一 ", "T-b"], "buyer_id": ["市住建局", "市住建局 "]})
    bids = pd.DataFrame({"tender_id": ["标段一", "标段一", "T-b", "T-b "], "bidder_id": ["华建", "ＡＢＣ", "abc", "ABC"],
                         "price": [1.0, 2.0, 3.0, 4.0]})
    m = Market.from_frames(tenders=tenders, bids=bids)
    assert list(m.entities["tender"]) == ["T-b", "标段一"]
    assert list(m.entities["buyer"]) == ["市住建局"]
    # full-width folds to half-width; case is preserved (ABC and abc are different firms)
    assert list(m.entities["company"]) == ["ABC", "abc", "华建"]
    assert m.n("company") == 3


def test_codes_do_not_depend_on_row_order(global_random_seed: int) -> None:
    tenders, bids = _valid(6, 4)
    rng = np.random.default_rng(global_random_seed)
    a = Market.from_frames(tenders=tenders, bids=bids)
    b = Market.from_frames(tenders=tenders.sample(frac=1, random_state=global_random_seed),
                           bids=bids.iloc[rng.permutation(len(bids))])
    pd.testing.assert_frame_equal(a.bids, b.bids)
    pd.testing.assert_frame_equal(a.tenders, b.tenders)


def test_report_counts_unusable_rows_instead_of_dropping() -> None:
    tenders, bids = _valid()
    tenders.loc[3, "estimate"] = np.nan
    bids = bids[bids.tender_id != "T3"]
    m = Market.from_frames(tenders=tenders, bids=bids)
    report = m.report().set_index("issue")
    assert report.loc["no bids", "rows"] == 1
    assert report.loc["no estimate", "rows"] == 1
    assert report.loc["fewer than 4 valid bids (price screens are NaN)", "rows"] == 3
    assert len(m.tenders) == 4  # the tender without bids is kept


def test_folder_round_trip_and_stray_files(tmp_path) -> None:
    tenders, bids = _valid()
    m = Market.from_frames(tenders=tenders, bids=bids, settings={"open_tender_threshold": 1e6})
    m.to_folder(tmp_path / "csv", format="csv")
    again = Market.from_folder(tmp_path / "csv")
    assert again.settings.open_tender_threshold == 1e6
    pd.testing.assert_series_equal(again.bids["price"], m.bids["price"])
    (tmp_path / "csv" / "bid.csv").write_text("x\n1\n")
    with pytest.raises(ValueError, match="bid.csv"):
        Market.from_folder(tmp_path / "csv")


_RULES = ["negative_price", "nan_price", "unknown_tender", "duplicate_bid", "second_winner"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_RULES), st.integers(0, 23)), min_size=1, max_size=6, unique_by=lambda x: x[1] // 3))  # one corruption per tender
def test_hypothesis_every_planted_problem_is_reported(corruptions: list[tuple[str, int]]) -> None:
    """Plant random problems at random rows; each planted row must be named with its rule."""
    tenders, bids = _valid(8, 3)
    bids = bids.astype({"price": object})
    expected: list[tuple[str, str, int]] = []
    extra = []
    for rule, row in corruptions:
        if rule == "negative_price":
            bids.loc[row, "price"] = -1.0
            expected.append(("price", "positive", row))
        elif rule == "nan_price":
            bids.loc[row, "price"] = None
            expected.append(("price", "missing value", row))
        elif rule == "unknown_tender":
            bids.loc[row, "tender_id"] = f"NOPE{row}"
            expected.append(("tender_id", "unknown", row))
        elif rule == "duplicate_bid":
            extra.append(row)
        elif rule == "second_winner":
            loser = row - row % 3 + 1  # bidder C1 of the same tender; C0 already wins
            bids.loc[loser, "is_winner"] = True
            expected.append(("is_winner", "several winners", loser))
    dup_rows = bids.iloc[extra]
    bids = pd.concat([bids, dup_rows], ignore_index=True)
    with pytest.raises(ValidationError) as err:
        Market.from_frames(tenders=tenders, bids=bids)
    p = err.value.problems
    for column, rule, row in expected:
        hits = p[(p.table == "bids") & (p.column == column) & p.rule.str.contains(rule) & (p.row == row)]
        assert len(hits) == 1, (column, rule, row, p)
    for k, row in enumerate(extra):
        dup = p[p.rule.str.contains("duplicate key")]
        if bids.loc[row, "tender_id"] in set(tenders.tender_id):
            assert {row, 24 + k} <= set(dup.row), p


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="unknown settings"):
        co.Settings.from_path_or_dict({"threshold": 1})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([1.0, 2.0, float("nan")]), st.integers(0, 2)),
                min_size=0, max_size=12))
def test_lex_sorted_check_agrees_with_lexsort(rows: list[tuple[int, float, int]]) -> None:
    """The O(n) sortedness check (which lets validation skip the sort) agrees with np.lexsort."""
    from collusion._market import _is_lex_sorted

    if not rows:
        return
    a = np.array([r[0] for r in rows]), np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    order = np.lexsort(a[::-1])
    resorted = [k[order] for k in a]
    assert _is_lex_sorted(list(resorted))
    same = all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, resorted))
    assert _is_lex_sorted(list(a)) == same
