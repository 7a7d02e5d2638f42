"""Cardinal red-flag indicators: conformance with Cardinal's fixtures and docs, settings, semantics."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collusion import Market
from collusion.features import (
    CARDINAL_COLUMNS,
    CARDINAL_INDICATORS,
    CardinalSettings,
    cardinal_indicators,
    cardinal_nested,
    ocds_tables_from_market,
)
from collusion.features._cardinal import _fence, _quantile
from collusion.io import read_ocds, read_ocds_tables

CARDINAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ocds-cardinal"
FIXTURES = CARDINAL / "tests_fixtures_indicators"
DOCS = CARDINAL / "docs_examples"
_ABSENT = [pytest.param(None, marks=pytest.mark.skip(reason=f"{CARDINAL} is absent"))]


def fixture_settings(stem: str) -> CardinalSettings:
    """The settings Cardinal's test harness (build.rs) derives from a fixture's name.

    ``R003-threshold-10`` sets ``R003.threshold = 10``; ``R003-procurement_methods-open+selective``
    sets ``"open|selective"``; ``R003-procurement_method_details-x-5-y-10`` sets the map
    ``{x: 5, y: 10}``. Every fixture also runs with ``no_price_comparison_procurement_methods
    = NPC`` and ``[exclusions] procurement_method_details = EXC``.
    """
    ident, *parts = stem.replace("+", "|").split("-")
    params: dict = {}
    if len(parts) == 2:
        params[parts[0]] = parts[1]
    elif len(parts) > 2:
        params[parts[0]] = dict(zip(parts[1::2], parts[2::2]))
    return CardinalSettings.from_dict({
        ident: params,
        "no_price_comparison_procurement_methods": "NPC",
        "exclusions": {"procurement_method_details": "EXC"},
    })


def _fixture_files() -> list:
    files = sorted(FIXTURES.glob("*.jsonl")) if FIXTURES.is_dir() else []
    return [pytest.param(p, id=p.stem) for p in files] or _ABSENT


@pytest.mark.parametrize("path", _fixture_files())
def test_cardinal_fixture(path: Path) -> None:
    settings = fixture_settings(path.stem)
    expected = json.loads(path.with_suffix(".expected").read_text(encoding="utf-8"))
    market = read_ocds(path)
    frame = cardinal_indicators(market, settings)
    assert cardinal_nested(frame) == expected
    # Same result from the parsed tables and from the path.
    pd.testing.assert_frame_equal(cardinal_indicators(read_ocds_tables(path), settings), frame)
    pd.testing.assert_frame_equal(cardinal_indicators(path, settings), frame)
    # Tidy layout: fixed columns, one row per (indicator, group, id), only the fixture's indicator.
    assert tuple(frame.columns) == CARDINAL_COLUMNS
    assert not frame.duplicated(["indicator", "group", "id"]).any()
    assert set(frame["indicator"].astype(str)) <= {path.stem.split("-")[0]}


def test_all_cardinal_fixtures_present() -> None:
    if not FIXTURES.is_dir():
        pytest.skip(f"{FIXTURES} is absent")
    stems = {p.stem.split("-")[0] for p in FIXTURES.glob("*.jsonl")}
    # Every indicator with a fixture is implemented, and every fixture has its oracle.
    assert stems <= set(CARDINAL_INDICATORS)
    assert all(p.with_suffix(".expected").is_file() for p in FIXTURES.glob("*.jsonl"))
    assert len(list(FIXTURES.glob("*.jsonl"))) == 15


#: Outputs printed in Cardinal's documentation (docs/cli/indicators/R/*.md, MIT, © 2022 Open
#: Contracting Partnership) for ``ocdscardinal indicators --settings <ini> --no-meta <jsonl>``;
#: the ini is ``R/<n>.ini`` when it exists, else the docs' ``settings.ini``.
DOCS_EXPECTED = {
    "003": {"OCID": {"F": {"R003": 1.0}}},
    "018": {"OCID": {"F": {"R018": 1.0}}},
    "024": {"OCID": {"F": {"R024": 1.0}}, "Tenderer": {"W": {"R024": 0.0}, "L": {"R024": 0.0}}},
    "025": {"Tenderer": {"F": {"R025": 0.16666666666666666}}},
    "028": {"OCID": {"F": {"R028": 1.0}}, "Tenderer": {"D": {"R028": 1.0}, "V": {"R028": 1.0}}},
    "030": {"OCID": {"F": {"R030": 1.0}}, "Tenderer": {"W": {"R030": 1.0}}},
    "035": {"OCID": {"F": {"R035": 1.0}}, "Tenderer": {"V": {"R035": 0.0}}},
    "036": {"OCID": {"F": {"R036": 1.0}}},
    "038": {"Buyer": {"B": {"R038": 0.5}}},
    "048": {"Tenderer": {"F": {"R048": 2.0}}},
    "058": {"OCID": {"F": {"R058": 99.0}}, "Tenderer": {"W": {"R058": 0.0}}},
}


@pytest.mark.parametrize("number", sorted(DOCS_EXPECTED) if DOCS.is_dir() else _ABSENT)
def test_cardinal_docs_example(number: str) -> None:
    ini = DOCS / "R" / f"{number}.ini"
    settings = CardinalSettings.from_ini(ini if ini.is_file() else DOCS / "settings.ini")
    frame = cardinal_indicators(read_ocds(DOCS / "R" / f"{number}.jsonl"), settings)
    assert cardinal_nested(frame) == DOCS_EXPECTED[number]


def test_docs_meta_fences() -> None:
    if not DOCS.is_dir():
        pytest.skip(f"{DOCS} is absent")
    # R058 docs example: ratios [99, 1, 1, 1, 1]; type-8 quartiles q1 = 1, q3 = 1 + 98/3.
    frame = cardinal_indicators(read_ocds(DOCS / "R" / "058.jsonl"), indicators=["R058"])
    meta = frame.attrs["meta"]["R058"]
    assert meta["q1"] == 1.0 and meta["q3"] == pytest.approx(1 + 98 / 3)
    assert meta["upper_fence"] == pytest.approx(meta["q3"] + 1.5 * (meta["q3"] - 1.0))


# ---------------------------------------------------------------------------- settings


def test_settings_ini_parsing(tmp_path: Path) -> None:
    text = """
; a comment
currency = USD
no_price_comparison_procurement_methods = Random Selection|Lottery

[output]
info_currency_mismatches = true

[defaults]
bid_status = valid

[exclusions]
procurement_method_details = Emergency

[R003]
threshold = 10
procurement_methods = open|selective|

[R003.procurement_method_details]
Emergency = 5

[R025]
percentile = 80
threshold = 0.05

[R038]
minimum_submitted_bids = 3
"""
    path = tmp_path / "settings.ini"
    path.write_text(text, encoding="utf-8")
    s = CardinalSettings.from_ini(path)
    assert s == CardinalSettings.from_ini(text)
    assert s.currency == "USD"
    assert s.no_price_comparison_procurement_methods == ("Random Selection", "Lottery")
    assert s.exclude_procurement_method_details == ("Emergency",)
    assert s.enabled == ("R003", "R025", "R038")
    assert s.param("R003", "threshold") == 10
    assert s.param("R003", "procurement_methods") == ("open", "selective")  # trailing | ignored
    assert s.param("R003", "procurement_method_details") == {"Emergency": 5}  # case kept
    assert s.param("R025", "threshold") == 0.05 and s.param("R025", "percentile") == 80
    assert s.param("R038", "minimum_contracting_processes", 2) == 2
    assert CardinalSettings.from_dict(s.to_dict()) == s


def test_default_settings_run_every_indicator() -> None:
    assert CardinalSettings().enabled == CARDINAL_INDICATORS
    assert CardinalSettings.from_ini("").enabled == ()
    if DOCS.is_dir():
        assert CardinalSettings.from_ini(DOCS / "settings.ini").enabled == CARDINAL_INDICATORS


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[R003]\nthreshhold = 3\n", r"R003\.threshhold"),
        ("[R999]\n", "R999"),
        ("[R003]\nthreshold = ten\n", "not a valid int"),
        ("[R035]\nthreshold = -1\n", "not a valid int"),
        ("[R024]\nthreshold = x\n", "not a valid float"),
        ("colour = red\n", "colour"),
        ("[exclusions]\nmethods = x\n", "exclusions.methods"),
    ],
)
def test_settings_errors_name_the_setting(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CardinalSettings.from_ini(text)


# ---------------------------------------------------------------------------- statistics


def test_quantile_is_statrs_type_8(global_random_seed: int) -> None:
    rng = np.random.default_rng(global_random_seed)
    for n in range(1, 40):
        x = rng.exponential(size=n).round(rng.integers(0, 3))
        for tau in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0):
            assert _quantile(x, tau) == pytest.approx(np.quantile(x, tau, method="median_unbiased"), abs=1e-12)
    assert np.isnan(_quantile(np.array([]), 0.25))
    assert _quantile(np.array([3.0, 1.0]), 0.25) == 1.0  # h = 11/12 < 1: the minimum
    assert _quantile(np.array([3.0, 1.0, 2.0]), 0.25) == pytest.approx(1 + 1 / 6)


def test_fence_rounds_once() -> None:
    assert _fence(0.25, 1.0, 1.5, 1.0) == 2.125
    assert _fence(1.0, 1.0 + 98 / 3, -1.5, 1.0) == pytest.approx(1.0 - 49.0)
    assert np.isnan(_fence(np.nan, 1.0, 1.5, 1.0))


# ---------------------------------------------------------------------------- semantics


def _write(tmp_path: Path, releases: list[dict], name: str = "r.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r) for r in releases) + "\n", encoding="utf-8")
    return path


def _bid(tenderer: str | None, amount: float | None = None, status: str = "valid", currency: str = "USD",
         date: str | None = None) -> dict:
    bid: dict = {"status": status}
    if tenderer is not None:
        bid["tenderers"] = [{"id": tenderer}]
    if amount is not None:
        bid["value"] = {"amount": amount, "currency": currency}
    if date is not None:
        bid["date"] = date
    return bid


def _release(ocid: str, bids: list[dict], winner: str | None = None, **extra: object) -> dict:
    out: dict = {"ocid": ocid, "bids": {"details": bids}, **extra}
    out["awards"] = [{"status": "active", "suppliers": [{"id": winner}] if winner else []}]
    return out


def test_first_currency_seen_is_the_comparison_currency(tmp_path: Path) -> None:
    releases = [
        _release("cad", [_bid("D", 1, "disqualified", "CAD"), _bid("V", 2, currency="CAD")], "V"),
        _release("usd", [_bid("D", 1, "disqualified"), _bid("V", 2)], "V"),
    ]
    path = _write(tmp_path, releases)
    first = cardinal_nested(cardinal_indicators(path, indicators=["R036"]))
    assert first == {"OCID": {"cad": {"R036": 1.0}}}
    chosen = cardinal_nested(cardinal_indicators(path, {"currency": "USD", "R036": {}}))
    assert chosen == {"OCID": {"usd": {"R036": 1.0}}}


def test_price_comparison_allow_list_and_exclusions(tmp_path: Path) -> None:
    def release(ocid: str, details: str | None) -> dict:
        extra = {"tender": {"procurementMethodDetails": details}} if details else {}
        return _release(ocid, [_bid("D", 1, "disqualified"), _bid("V", 2)], "V", **extra)

    path = _write(tmp_path, [release("y", "Y"), release("n", "N"), release("none", None), release("x", "X")])
    deny = cardinal_indicators(path, {"no_price_comparison_procurement_methods": "N", "R036": {}})
    assert sorted(deny["id"]) == ["none", "x", "y"]
    allow = cardinal_indicators(path, {"price_comparison_procurement_methods": "Y", "R036": {}})
    assert allow["id"].tolist() == ["y"]
    excluded = cardinal_indicators(path, {"exclusions": {"procurement_method_details": "X|Y"}, "R036": {}})
    assert sorted(excluded["id"]) == ["n", "none"]


def test_r018_counts_integer_numbers_only(tmp_path: Path) -> None:
    releases = [{"ocid": "int", "tender": {"numberOfTenderers": 1, "procurementMethod": "open"}},
                {"ocid": "float", "tender": {"numberOfTenderers": 1.0, "procurementMethod": "open"}},
                {"ocid": "direct", "tender": {"numberOfTenderers": 1, "procurementMethod": "direct"}}]
    path = _write(tmp_path, releases)
    assert cardinal_indicators(path, indicators=["R018"])["id"].tolist() == ["int"]
    every = cardinal_indicators(path, {"R018": {"procurement_methods": "open|direct"}})
    assert sorted(every["id"]) == ["direct", "int"]


def test_r030_compares_instants_across_offsets(tmp_path: Path) -> None:
    period = {"tenderPeriod": {"endDate": "2000-03-15T00:00:00Z"}}
    releases = [
        # 01:00+02:00 is 23:00Z the day before: not late (a text comparison would say late).
        _release("early", [_bid("W", date="2000-03-15T01:00:00+02:00")], "W", tender=period),
        _release("late", [_bid("W", date="2000-03-14T23:00:00-02:00")], "W", tender=period),
    ]
    frame = cardinal_indicators(_write(tmp_path, releases), indicators=["R030"])
    assert cardinal_nested(frame) == {"OCID": {"late": {"R030": 1.0}}, "Tenderer": {"W": {"R030": 1.0}}}


def test_r038_minimum_counts_submitted_bids_like_cardinal(tmp_path: Path) -> None:
    releases = [
        {"ocid": "0", "buyer": {"id": "B"}, "bids": {"details": [_bid("X", status="disqualified"), _bid("Y")]}},
        {"ocid": "1", "buyer": {"id": "C"}, "bids": {"details": [_bid("Y"), _bid("Z")]}},
        {"ocid": "2", "buyer": {"id": "E"}, "bids": {"details": [_bid("Y")]}},
    ]
    frame = cardinal_indicators(_write(tmp_path, releases), {"R038": {"minimum_contracting_processes": 2}})
    # B and C each ran one process but received two bids: both pass the minimum of 2.
    assert frame.attrs["meta"]["R038"]["Buyer_upper_fence"] == pytest.approx(0.5 + 1.5 * 0.5)
    flagged = cardinal_indicators(_write(tmp_path, releases, "t.jsonl"), {"R038": {"threshold": 0.5}})
    assert cardinal_nested(flagged) == {"Buyer": {"B": {"R038": 0.5}}}


def test_r048_digits_and_threshold(tmp_path: Path) -> None:
    def award(ocid: str, supplier: str, codes: list[str]) -> dict:
        items = [{"classification": {"id": c}} for c in codes]
        return {"ocid": ocid, "awards": [{"status": "active", "suppliers": [{"id": supplier}], "items": items}]}

    releases = [award("1", "S", ["45100000", "45200000"]), award("2", "S", ["45110000"]), award("3", "T", ["30"])]
    path = _write(tmp_path, releases)
    two = cardinal_indicators(path, {"R048": {"minimum_contracting_processes": 1, "threshold": 2}})
    assert two.empty  # two digits: S supplies only "45"
    three = cardinal_indicators(path, {"R048": {"minimum_contracting_processes": 2, "threshold": 2, "digits": 3}})
    assert cardinal_nested(three) == {"Tenderer": {"S": {"R048": 2.0}}}


def test_indicator_subset_and_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"ocid": "a", "tender": {"numberOfTenderers": 1, "procurementMethod": "open",
                                                      "tenderPeriod": {"startDate": "2000-01-01T00:00:00Z",
                                                                       "endDate": "2000-01-02T00:00:00Z"}}}])
    assert set(cardinal_indicators(path)["indicator"].astype(str)) == {"R003", "R018"}
    assert cardinal_indicators(path, indicators=["R018"])["indicator"].astype(str).tolist() == ["R018"]
    assert cardinal_indicators(path, indicators=[]).empty
    with pytest.raises(ValueError, match="R999"):
        cardinal_indicators(path, indicators=["R999"])
    with pytest.raises(TypeError, match="Market, OCDSTables"):
        cardinal_indicators(pd.DataFrame())  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- canonical markets


def _canonical_market() -> Market:
    tenders = pd.DataFrame({
        "tender_id": ["T1", "T2", "T3", "T4"],
        "buyer_id": ["B", "B", "C", "C"],
        "procedure": ["open", "open", "selective", "direct"],
        "published_at": pd.to_datetime(["2021-01-01", "2021-01-01", "2021-01-01", "2021-01-01"]),
        "deadline_at": pd.to_datetime(["2021-01-05", "2021-02-01", "2021-02-01", "2021-02-01"]),
    })
    bids = pd.DataFrame({
        "tender_id": ["T1", "T1", "T2", "T3", "T3", "T4", "T4"],
        "bidder_id": ["a", "b", "c", "a", "b", "a", "c"],
        "price": [100.0, 100.0, 70.0, 50.0, 60.0, 10.0, 30.0],
        "is_winner": [True, False, True, False, True, True, False],
        "disqualified": [False, True, False, True, False, False, False],
        "submitted_at": pd.to_datetime(["2021-01-06", None, None, None, None, None, None]),
    })
    return Market.from_frames(tenders=tenders, bids=bids)


def test_canonical_market_hand_computed() -> None:
    market = _canonical_market()
    settings = CardinalSettings.from_dict({"R003": {}, "R018": {}, "R024": {"threshold": 2.5}, "R028": {},
                                           "R030": {}, "R035": {}, "R036": {}, "R058": {"threshold": 1.5}})
    got = cardinal_nested(cardinal_indicators(market, settings))
    assert got == {
        "OCID": {
            # 4-day period; a and b both bid 100; a bid late; b, the only other bidder, disqualified
            "T1": {"R003": 1.0, "R028": 1.0, "R030": 1.0, "R035": 1.0},
            "T2": {"R018": 1.0},  # one bid in an open procedure
            "T3": {"R035": 1.0, "R036": 1.0},  # the lowest bid (a) was disqualified, b alone valid and won
            "T4": {"R024": 2.0, "R058": 2.0},  # (30 - 10) / 10
        },
        "Tenderer": {
            "a": {"R024": 0.0, "R028": 1.0, "R030": 1.0, "R035": 0.0, "R058": 0.0},
            "b": {"R028": 1.0, "R035": 0.0},
            "c": {"R024": 0.0},
        },
    }
    tables = ocds_tables_from_market(market)
    assert tables.releases["procurement_method"].tolist() == ["open", "open", "selective", "direct"]
    assert tables.releases["number_of_tenderers"].tolist() == [2.0, 1.0, 2.0, 2.0]
    assert tables.bids["status"].tolist() == ["valid", "disqualified", "valid", "disqualified", "valid", "valid",
                                              "valid"]


def test_generated_market_runs_vectorised_and_consistent() -> None:
    from collusion.datasets import make_market

    market, _ = make_market(n_tenders=3000, seed=0)
    start = time.perf_counter()
    frame = cardinal_indicators(market)
    elapsed = time.perf_counter() - start
    assert elapsed < 30  # about 0.7 s on a quiet 2-core machine
    assert tuple(frame.columns) == CARDINAL_COLUMNS and len(frame) > 0
    assert np.isfinite(frame["value"]).all()
    ocid = frame[frame["group"] == "OCID"]
    assert ocid["id"].isin(market.tenders["tender_id"].astype(str)).all()
    tenderer = frame[frame["group"] == "Tenderer"]
    assert tenderer["id"].isin(market.entities["company"]).all()
    # R018 = single bid in an open or selective procedure, recomputed directly.
    per_tender = np.bincount(market.codes("bids", "tender_id"), minlength=len(market.tenders))
    open_like = market.tenders["procedure"].astype(str).isin(["open", "selective"]).to_numpy()
    expected = set(market.tenders["tender_id"].astype(str)[open_like & (per_tender == 1)])
    assert set(frame.loc[frame["indicator"] == "R018", "id"]) == expected
