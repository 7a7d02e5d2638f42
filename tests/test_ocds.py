"""OCDS reader: layouts (JSONL, release/record packages, gzip), mapping, malformed lines, reporting."""

from __future__ import annotations

import copy
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collusion import Market, ValidationError
from collusion.io import OCDSFormatError, OCDSSummary, OCDSTables, read_ocds, read_ocds_tables
from collusion.io._ocds import _iter_package

CARDINAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ocds-cardinal"

#: One contracting process with two lots, a consortium bid, a bid without price, an invited
#: bid, a bid on two lots, two active awards, contracts (one valued by its award, one with
#: an unknown award) and transactions (current and deprecated fields, one without amount).
RICH = {
    "ocid": "ocds-x-1",
    "date": "2021-03-01T00:00:00Z",
    "buyer": {"id": "B1", "name": "City"},
    "planning": {"budget": {"amount": {"amount": 5000, "currency": "USD"}}},
    "tender": {
        "id": "t", "status": "complete", "procurementMethod": "limited",
        "procurementMethodDetails": "Invitation", "mainProcurementCategory": "works", "numberOfTenderers": 3,
        "procuringEntity": {"id": "AG1"}, "value": {"amount": 3000, "currency": "USD"},
        "tenderPeriod": {"startDate": "2021-01-01T00:00:00Z", "endDate": "2021-01-21T00:00:00Z"},
        "lots": [{"id": "L1", "value": {"amount": 1000, "currency": "USD"}},
                 {"id": "L2", "value": {"amount": 2000, "currency": "USD"}}],
        "items": [{"id": "i1", "relatedLot": "L2", "classification": {"scheme": "CPV", "id": "45233000"}}],
    },
    "parties": [
        {"id": "B1", "name": "City", "roles": ["buyer"], "address": {"locality": "Town", "region": "North"},
         "contactPoint": {"telephone": "+1 555", "email": "buy@city.org", "name": "Ann"}},
        {"id": "AG1", "name": "Agency", "roles": ["procuringEntity"]},
        {"id": "C1", "name": "Acme", "roles": ["tenderer", "supplier"], "identifier": {"scheme": "XX-REG", "id": 42}},
        {"id": "C2", "name": "Beta", "roles": ["tenderer"]},
        {"id": "C3", "name": "Gamma", "roles": ["tenderer"]},
    ],
    "bids": {"details": [
        {"id": "b1", "status": "valid", "date": "2021-01-10T00:00:00Z", "tenderers": [{"id": "C1"}],
         "value": {"amount": 900, "currency": "USD"}, "relatedLots": ["L1"]},
        {"id": "b2", "status": "disqualified", "tenderers": [{"id": "C2"}, {"id": "C3"}],
         "value": {"amount": 950, "currency": "USD"}, "relatedLots": ["L1"]},
        {"id": "b3", "status": "valid", "tenderers": [{"id": "C2"}], "value": {"amount": 1900, "currency": "USD"},
         "relatedLots": ["L2"]},
        {"id": "b4", "status": "valid", "tenderers": [{"id": "C3"}], "relatedLots": ["L2"]},
        {"id": "b5", "status": "invited", "tenderers": [{"id": "C9"}]},
        {"id": "b6", "status": "valid", "tenderers": [{"id": "C1"}], "value": {"amount": 1, "currency": "USD"},
         "relatedLots": ["L1", "L2"]},
    ]},
    "awards": [
        {"id": "a1", "status": "active", "date": "2021-02-01T00:00:00Z", "suppliers": [{"id": "C1"}],
         "value": {"amount": 900, "currency": "USD"}, "relatedLots": ["L1"]},
        {"id": "a2", "status": "active", "date": "2021-02-05T00:00:00Z", "suppliers": [{"id": "C2"}],
         "value": {"amount": 1900, "currency": "EUR"}, "relatedLots": ["L2"]},
    ],
    "contracts": [
        {"id": "k1", "awardID": "a1", "status": "active", "dateSigned": "2021-02-10T00:00:00Z",
         "value": {"amount": 900, "currency": "USD"},
         "implementation": {"transactions": [
             {"id": "p1", "date": "2021-03-01T00:00:00Z", "value": {"amount": 400, "currency": "USD"},
              "payee": {"id": "C1"}, "payer": {"id": "B1"}},
             {"id": "p2", "date": "2021-04-01T00:00:00Z", "amount": {"amount": 500, "currency": "USD"},
              "receiverOrganization": {"id": "C7"}},
             {"id": "p3", "date": "2021-05-01T00:00:00Z"},
         ]}},
        {"id": "k2", "awardID": "a2"},
        {"id": "k3", "awardID": "zz", "value": {"amount": 5}},
    ],
}

#: A plain process (no lots): two bids, one without a price; numeric ids.
PLAIN = {
    "ocid": "ocds-x-2",
    "buyer": {"id": 7},
    "tender": {"procurementMethod": "open", "value": {"amount": 10, "currency": "USD"},
               "tenderPeriod": {"startDate": "2021-05-01T00:00:00+02:00", "endDate": "2021-05-02"}},
    "bids": {"details": [{"status": "valid", "tenderers": [{"id": 5}], "value": {"amount": 9, "currency": "USD"}},
                         {"status": "pending", "tenderers": [{"id": "C2"}]}]},
    "awards": [{"status": "active", "suppliers": [{"id": 5}], "date": "2021-05-03T00:00:00Z"}],
}


def _jsonl(path: Path, releases: list, extra_lines: dict[int, str] | None = None) -> Path:
    lines = [json.dumps(r) for r in releases]
    for where, text in sorted((extra_lines or {}).items()):
        lines.insert(where - 1, text)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _assert_same_tables(a: OCDSTables, b: OCDSTables, *, ignore_line: bool = True) -> None:
    for name in ("releases", "lots", "items", "bids", "bid_tenderers", "bid_lots", "awards", "award_suppliers",
                 "award_items", "award_lots", "contracts", "transactions", "parties"):
        left, right = getattr(a, name), getattr(b, name)
        if ignore_line and name == "releases":
            left, right = left.drop(columns="line"), right.drop(columns="line")
        pd.testing.assert_frame_equal(left, right, check_dtype=False, obj=name)


# ---------------------------------------------------------------------------- mapping


def test_rich_release_maps_onto_canonical_tables(tmp_path: Path) -> None:
    market, summary = read_ocds(_jsonl(tmp_path / "r.jsonl", [RICH, PLAIN]), return_summary=True)
    assert isinstance(market, Market) and isinstance(summary, OCDSSummary)
    t = market.tenders.set_index(market.tenders["tender_id"].astype(str))
    # Lots are tenders of one project; the plain process is its own tender.
    assert list(t.index) == ["ocds-x-1/L1", "ocds-x-1/L2", "ocds-x-2"]
    assert t["project_id"].astype(str).tolist() == ["ocds-x-1", "ocds-x-1", "ocds-x-2"]
    assert sorted(market.projects["project_id"].astype(str)) == ["ocds-x-1", "ocds-x-2"]
    assert market.projects.set_index("project_id").loc["ocds-x-1", "budget"] == 5000
    assert t["estimate"].tolist() == [1000.0, 2000.0, 10.0]
    assert t["procedure"].astype(str).tolist() == ["invited", "invited", "open"]
    assert t["procurement_method"].tolist() == ["limited", "limited", "open"]
    assert t.loc["ocds-x-1/L1", "procurement_method_details"] == "Invitation"
    assert t["buyer_id"].astype(str).tolist() == ["B1", "B1", "7"]  # numeric id -> text
    assert t.loc["ocds-x-1/L1", "agent_id"] == "AG1" and pd.isna(t.loc["ocds-x-2", "agent_id"])
    assert t.loc["ocds-x-1/L1", "region"] == "North"
    assert t.loc["ocds-x-1/L2", "classification"] == "45233000"
    assert t.loc["ocds-x-1/L1", "awarded_at"] == pd.Timestamp("2021-02-01")
    assert t.loc["ocds-x-1/L2", "awarded_at"] == pd.Timestamp("2021-02-05")
    # Offsets are converted to UTC; a date without time is read as midnight.
    assert t.loc["ocds-x-2", "published_at"] == pd.Timestamp("2021-04-30 22:00")
    assert t.loc["ocds-x-2", "deadline_at"] == pd.Timestamp("2021-05-02")

    b = market.bids.assign(tender_id=lambda d: d["tender_id"].astype(str), bidder_id=lambda d: d["bidder_id"].astype(
        str)).set_index(["tender_id", "bidder_id"])
    assert sorted(b.index) == [("ocds-x-1/L1", "C1"), ("ocds-x-1/L1", "C2"), ("ocds-x-1/L2", "C2"), ("ocds-x-2", "5")]
    assert b.loc[("ocds-x-1/L1", "C1"), "is_winner"] and not b.loc[("ocds-x-1/L1", "C2"), "is_winner"]
    assert b.loc[("ocds-x-1/L2", "C2"), "is_winner"] and b.loc[("ocds-x-2", "5"), "is_winner"]
    assert b.loc[("ocds-x-1/L1", "C2"), "disqualified"]
    assert b.loc[("ocds-x-1/L1", "C2"), "consortium"] == "C2|C3"
    assert b.loc[("ocds-x-1/L1", "C1"), "submitted_at"] == pd.Timestamp("2021-01-10")
    assert b.loc[("ocds-x-1/L1", "C1"), "bid_id"] == "b1"

    c = market.contracts.set_index(market.contracts["contract_id"].astype(str))
    assert list(c.index) == ["ocds-x-1/k1", "ocds-x-1/k2"]
    assert c["winner_id"].astype(str).tolist() == ["C1", "C2"]
    assert c["tender_id"].astype(str).tolist() == ["ocds-x-1/L1", "ocds-x-1/L2"]
    assert c.loc["ocds-x-1/k2", "amount"] == 1900 and c.loc["ocds-x-1/k2", "currency"] == "EUR"
    p = market.payments
    assert p["amount"].tolist() == [400.0, 500.0]
    assert p["payee_id"].astype(str).tolist() == ["C1", "C7"]  # deprecated receiverOrganization

    parties = market.parties.set_index(market.parties["party_id"].astype(str))
    assert parties["kind"].astype(str).to_dict() == {"AG1": "agent", "B1": "buyer", "C1": "company",
                                                     "C2": "company", "C3": "company"}
    assert parties.loc["B1", "phone"] == "+1 555" and parties.loc["B1", "email"] == "buy@city.org"
    assert parties.loc["B1", "address"] == "Town, North"
    assert parties.loc["C1", "roles"] == "supplier|tenderer" and parties.loc["C1", "identifier"] == "XX-REG-42"

    # Nothing disappears silently: every unmapped object is counted with its reason.
    dropped = summary.dropped.set_index(["table", "reason"])["rows"].to_dict()
    assert dropped == {
        ("bids", "not submitted (status invited or withdrawn)"): 1,
        ("bids", "no positive value.amount"): 2,  # RICH b4 and PLAIN's pending bid
        ("bids", "consortium (bidder_id = first tenderer)"): 1,
        ("bids", "lot not identified (several or unknown relatedLots)"): 1,
        ("contracts", "value taken from the award"): 1,
        ("contracts", "no award supplier (awardID unknown or award without suppliers)"): 1,
        ("transactions", "no positive value.amount"): 1,
    }
    counts = summary.counts.set_index("table")
    assert counts.loc["bids"].tolist() == [8, 4]
    assert counts.loc["contracts"].tolist() == [3, 2]
    assert counts.loc["transactions"].tolist() == [3, 2]
    assert counts.loc["lots"].tolist() == [2, 2]
    missing = summary.missing.set_index("field")["releases"]
    assert missing["contracts"] == 1 and missing["parties"] == 1 and missing["tender.tenderPeriod.endDate"] == 0
    text = str(summary)
    assert "no positive value.amount: 2" in text and "2 release(s) kept" in text

    # The OCDS facts the indicators need stay available, unmapped bids included.
    o = market.ocds
    assert isinstance(o, OCDSTables) and len(o.bids) == 8 and o.bids["status"].tolist()[:2] == ["valid",
                                                                                               "disqualified"]
    assert o.bids["amount"].isna().sum() == 3  # b4, the invited b5 and the pending bid
    assert o.releases["period_rfc3339"].tolist() == [True, False]  # "2021-05-02" is not an RFC 3339 date-time


def test_missing_bids_and_values_are_reported_not_fatal(tmp_path: Path) -> None:
    releases = [
        {"ocid": "a", "tender": {"procurementMethod": "direct"}},  # no bids, no awards
        {"ocid": "b", "bids": {"details": [{"status": "valid", "tenderers": [{"id": "X"}]}]}},  # bid without price
        {"ocid": "c", "bids": {"details": [{"status": "valid", "value": {"amount": 3}}]}},  # bid without tenderer
        {"ocid": "d", "bids": {"details": [{"status": "valid", "tenderers": [{"id": "X"}],
                                            "value": {"amount": 0}}]}},  # non-positive price
    ]
    market, summary = read_ocds(_jsonl(tmp_path / "m.jsonl", releases), return_summary=True)
    assert len(market.tenders) == 4 and len(market.bids) == 0
    dropped = summary.dropped.set_index(["table", "reason"])["rows"]
    assert dropped[("bids", "no positive value.amount")] == 2
    assert dropped[("bids", "no tenderer id")] == 1
    missing = summary.missing.set_index("field")["releases"]
    assert missing["bids.details"] == 1 and missing["bids.details[].value.amount"] == 2 and missing["awards"] == 4
    assert market.report().set_index("issue").loc["no bids", "rows"] == 4


def test_repeated_bids_and_several_winners_follow_market_rules(tmp_path: Path) -> None:
    release = {"ocid": "r", "bids": {"details": [
        {"status": "disqualified", "tenderers": [{"id": "A"}], "value": {"amount": 5}},
        {"status": "valid", "tenderers": [{"id": "A"}], "value": {"amount": 8}},
        {"status": "valid", "tenderers": [{"id": "A"}], "value": {"amount": 7}},
        {"status": "valid", "tenderers": [{"id": "B"}], "value": {"amount": 6}},
    ]}, "awards": [{"status": "active", "suppliers": [{"id": "A"}, {"id": "B"}]}]}
    market, summary = read_ocds(_jsonl(tmp_path / "w.jsonl", [release]), return_summary=True)
    bids = market.bids.set_index(market.bids["bidder_id"].astype(str))
    assert bids["price"].to_dict() == {"A": 7.0, "B": 6.0}  # A's lowest valid bid kept
    assert bids["awarded"].all() and bids["is_winner"].to_dict() == {"A": False, "B": True}
    dropped = summary.dropped.set_index(["table", "reason"])["rows"]
    assert dropped[("bids", "further bids by the same tenderer (lowest valid kept)")] == 2
    assert dropped[("bids", "awarded but not the tender's winner (several awarded bidders)")] == 1


def test_dates_out_of_order_are_blanked_and_reported(tmp_path: Path) -> None:
    releases = [
        {"ocid": "p", "tender": {"tenderPeriod": {"startDate": "2021-02-01T00:00:00Z",
                                                  "endDate": "2021-01-01T00:00:00Z"}}},
        {"ocid": "q", "tender": {"tenderPeriod": {"startDate": "2021-01-01T00:00:00Z",
                                                  "endDate": "2021-02-01T00:00:00Z"}},
         "awards": [{"status": "active", "date": "2021-01-15T00:00:00Z"}]},
    ]
    market, summary = read_ocds(_jsonl(tmp_path / "d.jsonl", releases), return_summary=True)
    t = market.tenders
    assert t["published_at"].isna().tolist() == [True, False] and t["awarded_at"].isna().all()
    dropped = summary.dropped.set_index("reason")["rows"]
    assert dropped["tenderPeriod starts after it ends (both dates left empty)"] == 1
    assert dropped["award date before the tender period (awarded_at left empty)"] == 1
    # The raw dates stay in the OCDS tables.
    assert market.ocds.releases["tender_start"].notna().all()


# ---------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("layout", ["release package", "record package", "one-line package", "gzip jsonl"])
def test_packages_and_gzip_read_like_jsonl(tmp_path: Path, layout: str) -> None:
    releases = [RICH, PLAIN]
    reference = read_ocds_tables(_jsonl(tmp_path / "ref.jsonl", releases))
    meta = {"uri": "http://example.com", "publisher": {"name": "P", "nested": {"releases": [1, 2]}},
            "version": "1.1"}
    if layout == "release package":
        path = tmp_path / "p.json"
        path.write_text(json.dumps({**meta, "releases": releases}, indent=2), encoding="utf-8")
    elif layout == "record package":
        path = tmp_path / "p.json"
        records = [{"ocid": r["ocid"], "releases": [{"url": "x"}], "compiledRelease": r} for r in releases]
        path.write_text(json.dumps({**meta, "records": records}, indent=1), encoding="utf-8")
    elif layout == "one-line package":
        path = tmp_path / "p.json"
        path.write_text(json.dumps({**meta, "releases": releases}), encoding="utf-8")
    else:
        path = tmp_path / "r.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write("\n".join(json.dumps(r) for r in releases) + "\n")
    got = read_ocds_tables(path)
    _assert_same_tables(got, reference)
    assert got.summary.format == {"release package": "release package", "record package": "record package",
                                  "one-line package": "release package", "gzip jsonl": "jsonl"}[layout]
    market = read_ocds(path)
    assert len(market.tenders) == 3 and len(market.bids) == 4


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64])
def test_package_stream_is_exact_at_any_chunk_size(chunk: int) -> None:
    # Numbers, strings and escapes cut across chunk boundaries must decode exactly.
    entries = [{"ocid": f"o{i}", "v": 123456.789 * i, "s": "a\\\"b\u00e9\n" * i, "n": [i] * i} for i in range(6)]
    text = json.dumps({"a": {"b": [1, {"c": "]}"}]}, "releases": entries, "z": 10}, indent=2)
    got = list(_iter_package(io.StringIO(text), chunk=chunk))
    assert [e for _, _, e in got] == entries
    # Line numbers point at the entry's first line.
    lines = text.split("\n")
    for line, _, entry in got:
        assert f'"ocid": "{entry["ocid"]}"' in "\n".join(lines[line - 1:line + 1])


def test_package_with_other_keys_after_releases_and_empty_list(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_text('{\n "releases": [],\n "extensions": ["x"]\n}\n', encoding="utf-8")
    tables = read_ocds_tables(path)
    assert len(tables.releases) == 0 and tables.summary.format == "release package"


# ---------------------------------------------------------------------------- malformed input


def test_malformed_lines_raise_with_line_numbers(tmp_path: Path) -> None:
    good = [{"ocid": "a"}, {"ocid": "b"}, {"ocid": "c"}]
    extra = {2: '{"ocid": "x", ', 4: "[1, 2]", 5: '{"tender": {}}', 6: "", 8: '{"ocid": "a"}'}
    path = _jsonl(tmp_path / "bad.jsonl", good, extra)
    # Lines: 1 a, 2 broken, 3 b, 4 list, 5 no ocid, 6 blank, 7 c, 8 duplicate a.
    with pytest.raises(OCDSFormatError) as info:
        read_ocds(path)
    err = info.value
    assert isinstance(err, ValidationError) and isinstance(err, ValueError)
    assert err.problems["row"].tolist() == [2, 4, 5]
    assert err.problems["rule"].tolist() == ["invalid JSON", "not a JSON object", "no ocid"]
    message = str(err)
    assert "line 2: invalid JSON" in message and "line 4: not a JSON object" in message and "line 5: no ocid" in message
    assert "on_error='skip'" in message


def test_malformed_lines_skipped_and_counted(tmp_path: Path) -> None:
    good = [{"ocid": "a"}, {"ocid": "b"}, {"ocid": "c"}]
    extra = {2: '{"ocid": "x", ', 4: "[1, 2]", 5: '{"tender": {}}', 6: "", 8: '{"ocid": "a", "tender": {}}'}
    market, summary = read_ocds(_jsonl(tmp_path / "bad.jsonl", good, extra), on_error="skip", return_summary=True)
    assert market.tenders["tender_id"].astype(str).tolist() == ["a", "b", "c"]
    assert summary.malformed["line"].tolist() == [2, 4, 5, 8]
    assert summary.malformed["reason"].tolist()[-1] == "duplicate ocid (first release kept)"
    assert summary.lines == 7 and summary.releases == 3  # the blank line is not counted
    assert market.ocds.releases["has_tender"].tolist() == [False, False, False]  # the first "a" is kept
    assert "4 malformed/skipped" in str(summary)


def test_broken_package_reports_line_and_keeps_earlier_entries(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"releases": [\n{"ocid": "a"},\n{"ocid": "b"},\n{"ocid": \n', encoding="utf-8")
    with pytest.raises(OCDSFormatError, match="line 4"):
        read_ocds_tables(path)
    tables = read_ocds_tables(path, on_error="skip")
    assert tables.releases["ocid"].tolist() == ["a", "b"]
    assert tables.summary.malformed["line"].tolist() == [4]
    records = tmp_path / "records.json"
    records.write_text(json.dumps({"records": [{"ocid": "r", "releases": []}, {"compiledRelease": {"ocid": "s"}}]}))
    with pytest.raises(OCDSFormatError, match="record without compiledRelease"):
        read_ocds_tables(records)
    assert read_ocds_tables(records, on_error="skip").releases["ocid"].tolist() == ["s"]


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_ocds(tmp_path / "nope.jsonl")
    path = _jsonl(tmp_path / "x.jsonl", [{"ocid": "a"}])
    with pytest.raises(ValueError, match="on_error"):
        read_ocds(path, on_error="ignore")  # type: ignore[arg-type]


def test_read_ocds_does_not_mutate_and_is_deterministic(tmp_path: Path) -> None:
    before = copy.deepcopy(RICH)
    path = _jsonl(tmp_path / "r.jsonl", [RICH, PLAIN])
    a, b = read_ocds(path), read_ocds(path)
    assert RICH == before
    for name, table in a.items():
        pd.testing.assert_frame_equal(table, b.table(name))


# ---------------------------------------------------------------------------- Cardinal's fixtures


def test_cardinal_fixtures_read(shared_data: Path) -> None:
    folder = shared_data / "ocds-cardinal" / "tests_fixtures_indicators"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    files = sorted(folder.glob("*.jsonl"))
    assert files
    for path in files:
        market, summary = read_ocds(path, return_summary=True)
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        assert summary.releases == len(lines) == len(market.ocds.releases), path.name
        assert len(summary.malformed) == 0
        assert len(market.ocds.bids) == sum(len(json.loads(line).get("bids", {}).get("details", []))
                                            for line in lines)
        # Canonical bids are the submitted, priced, identified ones.
        o = market.ocds.bids
        priced = (o["amount"] > 0) & ~o["status"].isin(["invited", "withdrawn"])
        assert len(market.bids) <= int(priced.sum())
        assert np.isin(market.bids["tender_id"].astype(str), market.tenders["tender_id"].astype(str)).all()


def test_ids_are_normalised_like_the_market(tmp_path: Path) -> None:
    # Ids equal after NFKC and stripping are one entity: no duplicate-key error, one bid kept.
    releases = [
        {"ocid": "o-1", "bids": {"details": [
            {"status": "valid", "tenderers": [{"id": "C1"}], "value": {"amount": 5}},
            {"status": "valid", "tenderers": [{"id": " C1 "}], "value": {"amount": 4}},
            {"status": "valid", "tenderers": [{"id": "  "}], "value": {"amount": 3}},
            {"status": "valid", "tenderers": [{"id": "Ｃ２"}], "value": {"amount": 6}}]},
         "awards": [{"status": "active", "suppliers": [{"id": "C1 "}]}],
         "parties": [{"id": "C1", "roles": ["tenderer"]}, {"id": "C1 ", "roles": ["supplier"]}]},
        {"ocid": "o-1 ", "tender": {}},
    ]
    market, summary = read_ocds(_jsonl(tmp_path / "n.jsonl", releases), on_error="skip", return_summary=True)
    bids = market.bids.set_index(market.bids["bidder_id"].astype(str))
    assert bids["price"].to_dict() == {"C1": 4.0, "C2": 6.0} and bids.loc["C1", "is_winner"]
    assert summary.malformed["reason"].tolist() == ["duplicate ocid (first release kept)"]
    assert market.parties["party_id"].astype(str).tolist() == ["C1"]
    assert market.parties["roles"].tolist() == ["supplier|tenderer"]
    dropped = summary.dropped.set_index("reason")["rows"]
    assert dropped["no tenderer id"] == 1


def test_cardinal_docs_examples_read(shared_data: Path) -> None:
    folder = shared_data / "ocds-cardinal" / "docs_examples"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    # prepare.jsonl: a bid with a numeric id and no status (Cardinal's ``prepare`` fills statuses in).
    market, summary = read_ocds(folder / "prepare.jsonl", return_summary=True)
    assert summary.releases == 1 and market.ocds.bids["bid_id"].tolist() == ["1"]
    assert summary.dropped.set_index("reason").loc["no tenderer id", "rows"] == 1
    # coverage*.jsonl are JSON objects but not releases: no ocid, reported by line.
    for name in ("coverage.jsonl", "coverage-bracket.jsonl", "coverage-duplicate.jsonl", "coverage-empty.jsonl"):
        with pytest.raises(OCDSFormatError, match="line 1: no ocid"):
            read_ocds_tables(folder / name)
    for path in sorted((folder / "R").glob("*.jsonl")):
        assert len(read_ocds_tables(path).summary.malformed) == 0, path.name
