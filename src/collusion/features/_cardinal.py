"""Red-flag indicators of Cardinal (Open Contracting Partnership), vectorised.

Cardinal (``cardinal-rs``, MIT, © 2022 Open Contracting Partnership) computes
procurement red flags from OCDS compiled releases. This module reproduces its
``indicators`` command with the same settings and the same output, computed
with pandas/numpy over the long tables of :class:`collusion.io.OCDSTables`
(what :func:`collusion.io.read_ocds` keeps as ``market.ocds``) or, for markets
that did not come from OCDS, over tables derived from the canonical ones.

=========  =========================================================  ===================
Indicator  Flags                                                      Groups (value)
=========  =========================================================  ===================
R003       tender period shorter than ``threshold`` days (15; per     OCID (1)
           ``procurementMethodDetails`` overrides)
R018       a single tenderer in an open/selective procedure           OCID (1)
R024       winner's price close to the second-lowest bid (ratio <=    OCID (ratio),
           lower fence ``Q1 - 1.5 IQR`` or ``threshold``)             Tenderer (0)
R025       tenderer's win ratio low (<= lower fence) while bidding    Tenderer (ratio)
           often (>= ``percentile`` of bid counts)
R028       identical bid prices from different tenderers              OCID (1), Tenderer (1)
R030       the winner's bid submitted after the tender period ended   OCID (1), Tenderer (1)
R035       all bids but the winner's disqualified                     OCID (count),
                                                                      Tenderer (0)
R036       the lowest bid was disqualified                            OCID (1)
R038       high share of disqualified bids (>= upper fence            Buyer, ProcuringEntity,
           ``Q3 + 1.5 IQR`` or ``threshold``)                         Tenderer (ratio)
R048       supplier of many item classifications (>= upper fence)     Tenderer (count)
R058       winner's price far below the second-lowest bid (ratio >=   OCID (ratio),
           upper fence)                                               Tenderer (0)
=========  =========================================================  ===================

Conventions shared with Cardinal: contracting processes whose tender status
is ``cancelled`` or whose ``procurementMethodDetails`` is excluded
(``[exclusions]``) are ignored; price indicators (R024, R028, R036, R058)
honour ``price_comparison_procurement_methods`` (allow list) or
``no_price_comparison_procurement_methods`` (deny list); bids are *submitted*
unless their status is ``invited`` or ``withdrawn`` (or absent); awards are
*final* when every status is ``active``, ``cancelled`` or ``unsuccessful``;
amounts are compared in one currency (``currency`` or the first one seen);
quartiles are statrs' (Hyndman-Fan type 8, numpy's ``median_unbiased``).

Known differences from Cardinal, all outside its test fixtures:

* identifiers given as JSON numbers count (Cardinal's ``indicators`` ignores
  them unless its ``prepare`` command turned them into strings first), and a
  ``tenderers`` object is read as a one-element list (as ``prepare`` does);
* R030 compares bid and period dates as instants (UTC), not as text, so
  different time-zone offsets compare correctly; unparseable dates never flag;
* R024/R058 ignore processes whose winning price is zero (an infinite or
  undefined ratio);
* when a file repeats an ``ocid``, the reader keeps the first release only.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from .._market import Market
from ..io._ocds import OCDSTables, read_ocds_tables

__all__ = [
    "CARDINAL_COLUMNS",
    "CARDINAL_GROUPS",
    "CARDINAL_INDICATORS",
    "CardinalSettings",
    "cardinal_indicators",
    "cardinal_nested",
    "ocds_tables_from_market",
]

#: Indicators implemented (Cardinal 0.0.8 has these eleven).
CARDINAL_INDICATORS: tuple[str, ...] = (
    "R003", "R018", "R024", "R025", "R028", "R030", "R035", "R036", "R038", "R048", "R058",
)
#: Result groups: the contracting process and the organisations.
CARDINAL_GROUPS: tuple[str, ...] = ("OCID", "Buyer", "ProcuringEntity", "Tenderer")
#: Column order of the tidy result.
CARDINAL_COLUMNS: tuple[str, ...] = ("indicator", "group", "id", "value")

_SET, _INT, _FLOAT, _STR, _BOOL = "set", "int", "float", "str", "bool"
#: Indicator parameters and their types (Cardinal's settings structs).
_PARAMS: dict[str, dict[str, str]] = {
    "R003": {"threshold": _INT, "procurement_methods": _SET, "procurement_method_details": "map"},
    "R018": {"procurement_methods": _SET},
    "R024": {"threshold": _FLOAT},
    "R025": {"percentile": _INT, "threshold": _FLOAT},
    "R028": {},
    "R030": {},
    "R035": {"threshold": _INT},
    "R036": {},
    "R038": {"threshold": _FLOAT, "minimum_submitted_bids": _INT, "minimum_contracting_processes": _INT},
    "R048": {"digits": _INT, "threshold": _INT, "minimum_contracting_processes": _INT},
    "R058": {"threshold": _FLOAT},
}
_TOP = {"currency": _STR, "no_price_comparison_procurement_methods": _SET,
        "price_comparison_procurement_methods": _SET}
#: Sections of Cardinal's settings.ini that configure its ``prepare`` command
#: (or its logging): accepted and ignored here.
_IGNORED_SECTIONS = ("output", "defaults", "redactions", "corrections", "modifications", "codelists")


def _pipe(value: Any) -> tuple[str, ...]:
    """Cardinal's ``split_terminator('|')``: ``"a|b|"`` -> (a, b); ``""`` -> ()."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(str(v) for v in value)
    parts = str(value).split("|")
    if parts and parts[-1] == "":
        parts = parts[:-1]
    return tuple(parts)


def _convert(where: str, key: str, kind: str, value: Any) -> Any:
    try:
        if kind == _SET:
            return _pipe(value)
        if kind == _INT:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            out = int(str(value).strip()) if isinstance(value, str) else int(value)
            if out < 0:
                raise ValueError
            return out
        if kind == _FLOAT:
            return float(value)
        if kind == _BOOL:
            return str(value).strip().lower() in ("true", "1", "yes")
        if kind == "map":
            if not isinstance(value, Mapping):
                raise ValueError
            return {str(k): _convert(where, f"{key}.{k}", _INT, v) for k, v in value.items()}
        return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"Cardinal setting [{where}] {key} = {value!r} is not a valid {kind}") from None


@dataclass(frozen=True)
class CardinalSettings:
    """Settings of the Cardinal indicators (its ``settings.ini``).

    Only the indicators named in ``indicators`` run, as in Cardinal, where an
    indicator runs when its section is present. The default runs all eleven
    with Cardinal's default parameters.

    Parameters
    ----------
    currency : str or None
        Currency of the amounts compared; ``None`` takes the first one seen.
    no_price_comparison_procurement_methods : tuple of str
        ``procurementMethodDetails`` values without price competition (deny list).
    price_comparison_procurement_methods : tuple of str
        ``procurementMethodDetails`` values with price competition (allow list;
        when set, the deny list has no effect).
    exclude_procurement_method_details : tuple of str
        ``[exclusions] procurement_method_details``: processes ignored entirely.
    indicators : mapping
        Indicator code -> parameters, e.g. ``{"R003": {"threshold": 10}}``.

    Examples
    --------
    >>> s = CardinalSettings.from_ini('''
    ... currency = USD
    ... [R003]
    ... threshold = 10
    ... [R003.procurement_method_details]
    ... emergency = 5
    ... [R048]
    ... ''')
    >>> s.enabled
    ('R003', 'R048')
    >>> s.param("R003", "procurement_method_details"), s.param("R048", "digits", 2)
    ({'emergency': 5}, 2)
    >>> CardinalSettings.from_dict(s.to_dict()) == s
    True
    """

    currency: str | None = None
    no_price_comparison_procurement_methods: tuple[str, ...] = ()
    price_comparison_procurement_methods: tuple[str, ...] = ()
    exclude_procurement_method_details: tuple[str, ...] = ()
    indicators: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: {code: {} for code in CARDINAL_INDICATORS}
    )

    @property
    def enabled(self) -> tuple[str, ...]:
        """Indicators that run, in Cardinal's order."""
        return tuple(code for code in CARDINAL_INDICATORS if code in self.indicators)

    def param(self, code: str, name: str, default: Any = None) -> Any:
        """Parameter ``name`` of indicator ``code`` (``default`` when unset)."""
        value = self.indicators.get(code, {}).get(name)
        return default if value is None else value

    def to_dict(self) -> dict[str, Any]:
        """Nested dict in the layout of Cardinal's settings (round-trips through :meth:`from_dict`)."""
        out: dict[str, Any] = {}
        if self.currency is not None:
            out["currency"] = self.currency
        if self.no_price_comparison_procurement_methods:
            out["no_price_comparison_procurement_methods"] = "|".join(self.no_price_comparison_procurement_methods)
        if self.price_comparison_procurement_methods:
            out["price_comparison_procurement_methods"] = "|".join(self.price_comparison_procurement_methods)
        if self.exclude_procurement_method_details:
            out["exclusions"] = {"procurement_method_details": "|".join(self.exclude_procurement_method_details)}
        for code in self.enabled:
            out[code] = {k: ("|".join(v) if isinstance(v, tuple) else dict(v) if isinstance(v, Mapping) else v)
                         for k, v in self.indicators[code].items()}
        return out

    @classmethod
    def from_dict(cls, source: Mapping[str, Any]) -> CardinalSettings:
        """Build from a nested dict laid out like Cardinal's settings file.

        Unknown keys and sections are an error (as in Cardinal), except the
        sections of the ``prepare`` command, which are ignored.
        """
        top: dict[str, Any] = {}
        indicators: dict[str, dict[str, Any]] = {}
        exclusions: tuple[str, ...] = ()
        unknown: list[str] = []
        for key, value in source.items():
            if key in _TOP:
                top[key] = _convert("top level", key, _TOP[key], value)
            elif key == "exclusions":
                value = dict(value or {})
                extra = sorted(set(value) - {"procurement_method_details"})
                unknown += [f"exclusions.{k}" for k in extra]
                exclusions = _pipe(value.get("procurement_method_details", ""))
            elif key in _PARAMS:
                params = dict(value or {})
                extra = sorted(set(params) - set(_PARAMS[key]))
                unknown += [f"{key}.{k}" for k in extra]
                indicators[key] = {k: _convert(key, k, _PARAMS[key][k], v) for k, v in params.items()
                                   if k in _PARAMS[key]}
            elif key.split(".")[0] not in _IGNORED_SECTIONS:
                unknown.append(key)
        if unknown:
            raise ValueError(
                f"unknown Cardinal settings {unknown}; known: top-level {sorted(_TOP)}, [exclusions], "
                f"indicator sections {list(CARDINAL_INDICATORS)} with their parameters {_PARAMS}"
            )
        return cls(
            currency=top.get("currency"),
            no_price_comparison_procurement_methods=top.get("no_price_comparison_procurement_methods", ()),
            price_comparison_procurement_methods=top.get("price_comparison_procurement_methods", ()),
            exclude_procurement_method_details=exclusions,
            indicators=indicators,
        )

    @classmethod
    def from_ini(cls, source: str | Path) -> CardinalSettings:
        """Parse Cardinal's ``settings.ini`` (a path, or the text itself).

        Keys before the first section are top-level settings; a section
        ``[R003.procurement_method_details]`` fills that parameter's mapping.
        """
        text = Path(source).read_text(encoding="utf-8") if isinstance(source, Path) or (
            "\n" not in str(source) and Path(str(source)).is_file()) else str(source)
        parser = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"),
                                           inline_comment_prefixes=None, strict=True, default_section="\x00")
        parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep the case of method names
        parser.read_string("[\x01top]\n" + text)
        data: dict[str, Any] = {}
        for section in parser.sections():
            values = dict(parser.items(section))
            if section == "\x01top":
                data.update(values)
                continue
            head, _, sub = section.partition(".")
            if sub and head in _PARAMS:
                data.setdefault(head, {})[sub] = values
            else:
                data.setdefault(section, {}).update(values)
        return cls.from_dict(data)


# --------------------------------------------------------------------------- quantiles


def _quantile(values: np.ndarray, tau: float) -> float:
    """statrs ``Data::quantile`` (R type 8); NaN for no data, as in Cardinal."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n == 0 or not 0.0 <= tau <= 1.0:
        return float("nan")
    h = (n + 1.0 / 3.0) * tau + 1.0 / 3.0
    hf = int(h)
    if hf <= 0 or tau == 0.0:
        return float(x[0])
    if hf >= n or abs(tau - 1.0) <= np.finfo(float).eps:
        return float(x[-1])
    a, b = float(x[hf - 1]), float(x[hf])
    return a + (h - hf) * (b - a)


def _fence(q1: float, q3: float, k: float, base: float) -> float:
    """``(q3 - q1).mul_add(k, base)``: one rounding, like Rust's fused multiply-add."""
    if not (np.isfinite(q1) and np.isfinite(q3)):
        return float("nan")
    return float(Fraction(q3 - q1) * Fraction(k) + Fraction(base))


# --------------------------------------------------------------------------- input


_METHOD_OF_PROCEDURE = {"open": "open", "selective": "selective", "invited": "limited", "negotiated": "limited",
                        "direct": "direct"}


def _column(frame: pd.DataFrame, name: str, n: int) -> np.ndarray:
    if name in frame.columns:
        s = frame[name]
        return s.astype(object).where(s.notna(), None).to_numpy(dtype=object)
    return np.full(n, None, dtype=object)


def ocds_tables_from_market(market: Market) -> OCDSTables:
    """Describe a canonical market as OCDS long tables, so Cardinal's indicators run on it.

    Each tender is a contracting process (``ocid = tender_id``) whose
    ``procuringEntity`` is the agent; each bid has one tenderer, status
    ``disqualified`` or ``valid`` (or the ``status`` extra column), the
    market currency (or the ``currency`` extra column) and ``submitted_at`` as
    date; each winning bid is an ``active`` award dated ``awarded_at``, whose
    item classification is the ``classification`` extra column or
    ``category``. ``procurementMethod`` comes from the
    ``procurement_method`` extra column or from ``procedure`` (invited and
    negotiated -> ``limited``); ``numberOfTenderers`` is the number of bids.

    Parameters
    ----------
    market : Market

    Returns
    -------
    OCDSTables
    """
    t, b = market.tenders, market.bids
    n_t, n_b = len(t), len(b)
    tcode = market.codes("bids", "tender_id").astype(np.int64)
    procedure = _column(t, "procedure", n_t)
    method = _column(t, "procurement_method", n_t)
    method = np.where(pd.isna(method), pd.Series(procedure, dtype=object).map(_METHOD_OF_PROCEDURE).to_numpy(
        dtype=object), method)
    method = np.where(pd.isna(method), None, method)
    start, end = t["published_at"].to_numpy(), t["deadline_at"].to_numpy()
    nat_dt = np.full(n_t, np.datetime64("NaT"), dtype="datetime64[ns]")
    releases = pd.DataFrame({
        "line": np.arange(1, n_t + 1, dtype=np.int64),
        "ocid": t["tender_id"].astype(str).to_numpy(dtype=object),
        "date": nat_dt,
        "tender_status": _column(t, "status", n_t),
        "procurement_method": method,
        "procurement_method_details": _column(t, "procurement_method_details", n_t),
        "main_category": _column(t, "category", n_t),
        "number_of_tenderers": np.bincount(tcode, minlength=n_t).astype(np.float64),
        "tender_start": start,
        "tender_end": end,
        "period_rfc3339": ~np.isnat(start) & ~np.isnat(end),
        "value_amount": t["estimate"].to_numpy(float),
        "value_currency": market.settings.currency,
        "budget_amount": np.nan,
        "buyer_id": _column(t, "buyer_id", n_t),
        "procuring_entity_id": _column(t, "agent_id", n_t),
        "has_tender": True,
        "has_bid_details": True,
        "has_awards": True,
        "has_contracts": market.contracts is not None,
        "has_parties": market.parties is not None,
    })
    status = _column(b, "status", n_b) if "status" in b.columns else np.full(n_b, None, dtype=object)
    status = np.where(pd.isna(status), np.where(b["disqualified"].to_numpy(bool), "disqualified", "valid"), status)
    currency = _column(b, "currency", n_b)
    currency = np.where(pd.isna(currency), market.settings.currency, currency)
    bids = pd.DataFrame({
        "release": tcode,
        "position": np.arange(n_b, dtype=np.int64),
        "bid_id": None,
        "status": status,
        "amount": b["price"].to_numpy(float),
        "currency": currency,
        "date": b["submitted_at"].to_numpy(),
        "n_tenderers": np.ones(n_b, dtype=np.int64),
    })
    bid_tenderers = pd.DataFrame({"bid": np.arange(n_b, dtype=np.int64), "position": np.zeros(n_b, np.int64),
                                  "tenderer_id": b["bidder_id"].astype(str).to_numpy(dtype=object)})
    win = np.flatnonzero(b["is_winner"].to_numpy(bool))
    w_tender = tcode[win]
    awards = pd.DataFrame({
        "release": w_tender,
        "position": np.zeros(len(win), np.int64),
        "award_id": None,
        "status": "active",
        "date": t["awarded_at"].to_numpy()[w_tender],
        "amount": b["price"].to_numpy(float)[win],
        "currency": currency[win],
        "n_suppliers": np.ones(len(win), dtype=np.int64),
    })
    award_suppliers = pd.DataFrame({"award": np.arange(len(win), dtype=np.int64),
                                    "position": np.zeros(len(win), np.int64),
                                    "supplier_id": bid_tenderers["tenderer_id"].to_numpy(dtype=object)[win]})
    classification = _column(t, "classification", n_t)
    classification = np.where(pd.isna(classification), _column(t, "category", n_t), classification)[w_tender]
    has_code = pd.notna(classification)
    award_items = pd.DataFrame({"award": np.flatnonzero(has_code).astype(np.int64),
                                "classification_id": classification[has_code]})
    empty = {
        "lots": ("release", "lot_id", "status", "amount", "currency", "start", "end"),
        "items": ("release", "related_lot", "classification_id"),
        "bid_lots": ("bid", "lot_id"),
        "award_lots": ("award", "lot_id"),
        "contracts": ("release", "position", "contract_id", "award_id", "status", "amount", "currency",
                      "date_signed", "period_end"),
        "transactions": ("contract", "transaction_id", "date", "amount", "currency", "payee_id", "payer_id"),
        "parties": ("release", "party_id", "name", "roles", "identifier", "address", "region", "phone", "email",
                    "contact_name"),
    }
    return OCDSTables(
        releases=releases, bids=bids, bid_tenderers=bid_tenderers, awards=awards, award_suppliers=award_suppliers,
        award_items=award_items,
        **{name: pd.DataFrame({c: pd.Series(dtype=object) for c in cols}) for name, cols in empty.items()},
    )


def _as_tables(data: Any) -> OCDSTables:
    if isinstance(data, OCDSTables):
        return data
    if isinstance(data, (str, Path)):
        return read_ocds_tables(data)
    if isinstance(data, Market):
        ocds = getattr(data, "ocds", None)
        return ocds if isinstance(ocds, OCDSTables) else ocds_tables_from_market(data)
    raise TypeError(f"expected a Market, OCDSTables or a path to OCDS releases, got {type(data).__name__}")


# --------------------------------------------------------------------------- the computation


class _Facts:
    """Per-process and per-bid facts shared by the indicators (all arrays)."""

    def __init__(self, t: OCDSTables, s: CardinalSettings) -> None:
        r = t.releases
        self.n = n = len(r)
        self.ocid = r["ocid"].astype(str).to_numpy(dtype=object)
        details = r["procurement_method_details"]
        has_details = details.notna().to_numpy(bool)
        # Global filters: cancelled processes and excluded procurement method details.
        cancelled = (r["tender_status"] == "cancelled").to_numpy(dtype=bool, na_value=False)
        excluded = has_details & details.isin(s.exclude_procurement_method_details).to_numpy(bool)
        self.eligible = ~cancelled & ~excluded
        include, exclude = s.price_comparison_procurement_methods, s.no_price_comparison_procurement_methods
        if include:
            self.price_ok = has_details & details.isin(include).to_numpy(bool)
        else:
            self.price_ok = ~(has_details & details.isin(exclude).to_numpy(bool))
        self.r = r

        bids = t.bids
        self.b_rel = bids["release"].to_numpy(np.int64)
        self.b_status = bids["status"].astype(object).where(bids["status"].notna(), None).to_numpy(dtype=object)
        status = pd.Series(self.b_status, dtype=object)
        self.b_valid = (status == "valid").to_numpy(bool)
        self.b_disq = (status == "disqualified").to_numpy(bool)
        self.b_submitted = status.notna().to_numpy(bool) & ~status.isin(("invited", "withdrawn")).to_numpy(bool)
        self.b_amount = bids["amount"].to_numpy(np.float64)
        self.b_currency = bids["currency"].astype(object).where(bids["currency"].notna(), None).to_numpy(
            dtype=object)
        self.b_has_value = ~np.isnan(self.b_amount) & pd.notna(self.b_currency)
        self.b_n_tenderers = bids["n_tenderers"].to_numpy(np.int64)
        self.b_date = bids["date"].to_numpy()
        bt = t.bid_tenderers
        self.bt_bid = bt["bid"].to_numpy(np.int64)
        self.bt_id = bt["tenderer_id"].astype(str).to_numpy(dtype=object)
        first = (bt["position"].to_numpy() == 0)
        # The single tenderer of a bid whose ``tenderers`` list has exactly one entry with an id.
        self.b_single = np.full(len(bids), None, dtype=object)
        one = first & (self.b_n_tenderers[self.bt_bid] == 1) if len(bt) else first
        self.b_single[self.bt_bid[one]] = self.bt_id[one]

        aw = t.awards
        a_rel = aw["release"].to_numpy(np.int64)
        a_status = aw["status"].astype(object).where(aw["status"].notna(), None)
        self.a_rel = a_rel
        self.a_active = (a_status == "active").to_numpy(bool)
        non_final = a_status.notna().to_numpy(bool) & ~a_status.isin(("active", "cancelled", "unsuccessful")).to_numpy(
            bool)
        self.n_active = np.bincount(a_rel[self.a_active], minlength=n)
        self.any_active = self.n_active > 0
        has_awards = r["has_awards"].to_numpy(bool)
        has_details_list = r["has_bid_details"].to_numpy(bool)
        self.has_awards, self.has_bid_details = has_awards, has_details_list
        # Bids are comparable only once every award is final (Cardinal's get_complete_awards_...).
        self.all_final = has_awards & has_details_list & (np.bincount(a_rel[non_final], minlength=n) == 0)
        sup = t.award_suppliers
        self.s_award = sup["award"].to_numpy(np.int64)
        self.s_id = sup["supplier_id"].astype(str).to_numpy(dtype=object)
        # The supplier of the only active award, when that award has exactly one supplier with an id.
        n_sup = aw["n_suppliers"].to_numpy(np.int64)
        s_first = sup["position"].to_numpy() == 0
        single_award = np.full(n, None, dtype=object)
        if len(sup):
            ok = s_first & self.a_active[self.s_award] & (n_sup[self.s_award] == 1)
            single_award[a_rel[self.s_award[ok]]] = self.s_id[ok]
        self.single_supplier = np.where(self.all_final & (self.n_active == 1), single_award, None)
        self.items = t.award_items
        self.n_sup = n_sup

    # Sets of (process, organisation) pairs as int64 keys over a shared id index.
    def active_supplier_pairs(self) -> pd.DataFrame:
        ok = self.a_active[self.s_award] if len(self.s_award) else np.zeros(0, bool)
        return pd.DataFrame({"release": self.a_rel[self.s_award[ok]], "id": self.s_id[ok]}).drop_duplicates()


def _currency_choice(s: CardinalSettings, candidates: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> str | None:
    """Cardinal's ``item.currency``: the setting, else the first currency compared.

    ``candidates`` are ``(release, order, currency)`` arrays, one per consumer
    in the order Cardinal folds them within a release.
    """
    if s.currency is not None:
        return s.currency
    best: tuple[int, int, int] | None = None
    chosen = None
    for k, (rel, order, cur) in enumerate(candidates):
        if len(rel) == 0:
            continue
        i = int(np.lexsort((order, rel))[0])
        key = (int(rel[i]), k, int(order[i]))
        if best is None or key < best:
            best, chosen = key, cur[i]
    return chosen


def _slbr_candidates(f: _Facts) -> np.ndarray:
    """Bids that SecondLowestBidRatio compares (before the currency filter)."""
    rel = f.b_rel
    return (f.eligible[rel] & f.price_ok[rel] & pd.notna(f.single_supplier[rel]) & f.b_valid & f.b_has_value
            & pd.notna(f.b_single))


def _r036_candidates(f: _Facts) -> np.ndarray:
    rel = f.b_rel
    return (f.eligible[rel] & f.price_ok[rel] & f.has_awards[rel] & f.any_active[rel] & f.b_submitted
            & f.b_has_value)


def _second_lowest_bid_ratios(f: _Facts, currency: str | None) -> pd.DataFrame:
    """Per process: ``ratio = (lowest other - winner) / winner``, winner and lowest non-winner ids."""
    sel = np.flatnonzero(_slbr_candidates(f) & (f.b_currency == currency))
    rel = f.b_rel[sel]
    frame = pd.DataFrame({"release": rel, "bid": sel, "amount": f.b_amount[sel], "tenderer": f.b_single[sel],
                          "is_winner": f.b_single[sel] == f.single_supplier[rel]})
    # First lowest of each side (strict ``<`` in Cardinal keeps the earliest bid on ties).
    frame = frame.sort_values(["release", "is_winner", "amount", "bid"], kind="stable")
    best = frame.drop_duplicates(["release", "is_winner"])
    both = best[best["is_winner"]].merge(best[~best["is_winner"]], on="release", suffixes=("_w", "_o"))
    both = both[(both["amount_o"] >= both["amount_w"]) & (both["amount_w"] != 0)]
    ratio = (both["amount_o"] - both["amount_w"]) / both["amount_w"]
    return pd.DataFrame({"release": both["release"].to_numpy(np.int64), "ratio": ratio.to_numpy(np.float64),
                         "winner": both["tenderer_w"].to_numpy(dtype=object),
                         "other": both["tenderer_o"].to_numpy(dtype=object)})


def _rows(indicator: str, group: str, ids: Iterable[Any], values: Any) -> pd.DataFrame:
    ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=object)
    values = np.broadcast_to(np.asarray(values, dtype=np.float64), ids.shape)
    return pd.DataFrame({"indicator": indicator, "group": group, "id": ids, "value": values})


def _r003(f: _Facts, s: CardinalSettings) -> list[pd.DataFrame]:
    methods = s.param("R003", "procurement_methods", ())
    per_details: Mapping[str, int] = s.param("R003", "procurement_method_details", {})
    r = f.r
    method_ok = r["procurement_method"].isin(methods).to_numpy(bool) if methods else np.ones(f.n, bool)
    start, end = r["tender_start"].to_numpy(), r["tender_end"].to_numpy()
    ok = f.eligible & method_ok & r["period_rfc3339"].to_numpy(bool) & ~np.isnat(start) & ~np.isnat(end)
    span = (end - start).astype("timedelta64[ns]").astype(np.int64)
    day = 86_400 * 10**9
    days = np.sign(span) * (np.abs(span) // day)  # chrono's num_days truncates toward zero
    threshold = np.full(f.n, s.param("R003", "threshold", 15), dtype=np.int64)
    details = r["procurement_method_details"]
    special = details.isin(list(per_details)).to_numpy(bool)
    threshold[special] = details[special].map(dict(per_details)).to_numpy(np.int64)
    hit = ok & (days < threshold)
    return [_rows("R003", "OCID", f.ocid[hit], 1.0)]


def _r018(f: _Facts, s: CardinalSettings) -> list[pd.DataFrame]:
    methods = s.param("R018", "procurement_methods", ("open", "selective"))
    r = f.r
    method_ok = r["procurement_method"].isin(methods).to_numpy(bool) if methods else np.ones(f.n, bool)
    hit = f.eligible & method_ok & (r["number_of_tenderers"].to_numpy(float) == 1)
    return [_rows("R018", "OCID", f.ocid[hit], 1.0)]


def _r024(f: _Facts, s: CardinalSettings, slbr: pd.DataFrame, meta: dict) -> list[pd.DataFrame]:
    threshold = s.param("R024", "threshold")
    ratios = slbr["ratio"].to_numpy()
    if threshold is None:
        q1, q3 = _quantile(ratios, 0.25), _quantile(ratios, 0.75)
        lower = _fence(q1, q3, -1.5, q1)
        meta["R024"] = {"q1": q1, "q3": q3}
    else:
        q1, lower = 1.0, float(threshold)  # Cardinal's dummy q1 passes the guard
    meta.setdefault("R024", {})["lower_fence"] = lower
    if not (q1 > 0 and lower > 0):
        return []
    hit = slbr[ratios <= lower]
    tenderers = np.unique(np.concatenate([hit["winner"].to_numpy(dtype=object), hit["other"].to_numpy(dtype=object)]))
    return [_rows("R024", "OCID", f.ocid[hit["release"].to_numpy()], hit["ratio"].to_numpy()),
            _rows("R024", "Tenderer", tenderers, 0.0)]


def _r058(f: _Facts, s: CardinalSettings, slbr: pd.DataFrame, meta: dict) -> list[pd.DataFrame]:
    threshold = s.param("R058", "threshold")
    ratios = slbr["ratio"].to_numpy()
    if threshold is None:
        q1, q3 = _quantile(ratios, 0.25), _quantile(ratios, 0.75)
        upper = _fence(q1, q3, 1.5, q3)
        meta["R058"] = {"q1": q1, "q3": q3}
    else:
        upper = float(threshold)
    meta.setdefault("R058", {})["upper_fence"] = upper
    if not upper > 0:
        return []
    hit = slbr[ratios >= upper]
    return [_rows("R058", "OCID", f.ocid[hit["release"].to_numpy()], hit["ratio"].to_numpy()),
            _rows("R058", "Tenderer", np.unique(hit["winner"].to_numpy(dtype=object)), 0.0)]


def _r025(f: _Facts, s: CardinalSettings, meta: dict) -> list[pd.DataFrame]:
    rel = f.b_rel
    sel = f.eligible[rel] & pd.notna(f.single_supplier[rel]) & f.b_valid & pd.notna(f.b_single)
    pairs = pd.DataFrame({"release": rel[sel], "id": f.b_single[sel]}).drop_duplicates()
    pairs["won"] = pairs["id"].to_numpy(dtype=object) == f.single_supplier[pairs["release"].to_numpy()]
    per = pairs.groupby("id", sort=True)["won"].agg(["sum", "count"])
    counts = per["count"].to_numpy(np.float64)
    ratio = per["sum"].to_numpy(np.float64) / np.where(counts > 0, counts, 1)
    upper = _quantile(counts, s.param("R025", "percentile", 75) / 100.0)
    threshold = s.param("R025", "threshold")
    if threshold is None:
        q1, q3 = _quantile(ratio, 0.25), _quantile(ratio, 0.75)
        lower = _fence(q1, q3, -1.5, q1)
        meta["R025"] = {"q1": q1, "q3": q3}
    else:
        q1, lower = 1.0, float(threshold)
    meta.setdefault("R025", {}).update(upper_fence=upper, lower_fence=lower)
    if not (q1 > 0 and lower > 0):
        return []
    hit = (counts >= upper) & (ratio <= lower)
    return [_rows("R025", "Tenderer", per.index.to_numpy(dtype=object)[hit], ratio[hit])]


def _r028(f: _Facts, s: CardinalSettings) -> list[pd.DataFrame]:
    rel = f.b_rel
    # Bids with a tenderers list holding at least one id, and a numeric amount in a currency.
    n_ids = np.bincount(f.bt_bid, minlength=len(rel))
    sel = np.flatnonzero(f.eligible[rel] & f.price_ok[rel] & f.b_submitted & f.b_has_value
                         & (f.b_n_tenderers >= 0) & (n_ids > 0))
    if len(sel) < 2:
        return []
    frame = pd.DataFrame({"release": rel[sel], "amount": f.b_amount[sel] + 0.0, "currency": f.b_currency[sel],
                          "bid": sel})
    # Each bid is compared with the previous bid at the same price (Cardinal's map keeps the last one).
    frame = frame.sort_values(["release", "currency", "amount", "bid"], kind="stable")
    same = (frame[["release", "currency", "amount"]].shift() == frame[["release", "currency", "amount"]]).all(axis=1)
    cur = frame["bid"].to_numpy()[same.to_numpy()]
    prev = frame["bid"].shift().to_numpy()[same.to_numpy()].astype(np.int64)
    if len(cur) == 0:
        return []
    members = pd.DataFrame({"bid": f.bt_bid, "id": f.bt_id}).drop_duplicates()
    size = members.groupby("bid").size()
    pair = pd.DataFrame({"pair": np.arange(len(cur)), "cur": cur, "prev": prev})
    left = pair.merge(members, left_on="cur", right_on="bid")[["pair", "id"]]
    right = pair.merge(members, left_on="prev", right_on="bid")[["pair", "id"]]
    common = left.merge(right, on=["pair", "id"]).groupby("pair").size().reindex(pair["pair"], fill_value=0)
    n_cur, n_prev = size.reindex(cur).to_numpy(), size.reindex(prev).to_numpy()
    differ = ~((n_cur == n_prev) & (common.to_numpy() == n_cur))
    flagged = pair[differ]
    if not len(flagged):
        return []
    ocids = np.unique(f.ocid[rel[flagged["cur"].to_numpy()]])
    bids = np.concatenate([flagged["cur"].to_numpy(), flagged["prev"].to_numpy()])
    ids = np.unique(members[members["bid"].isin(bids)]["id"].to_numpy(dtype=object))
    return [_rows("R028", "OCID", ocids, 1.0), _rows("R028", "Tenderer", ids, 1.0)]


def _r030(f: _Facts, s: CardinalSettings) -> list[pd.DataFrame]:
    end = f.r["tender_end"].to_numpy()
    ok_rel = f.eligible & ~np.isnat(end) & f.has_awards & f.has_bid_details
    rel = f.b_rel
    late = ok_rel[rel] & f.b_valid & (f.b_n_tenderers >= 0) & ~np.isnat(f.b_date)
    late &= np.where(late, f.b_date > end[rel], False)
    if not late.any():
        return []
    late_bt = late[f.bt_bid]
    bidders = pd.DataFrame({"release": rel[f.bt_bid[late_bt]], "id": f.bt_id[late_bt]})
    hit = bidders.merge(f.active_supplier_pairs(), on=["release", "id"]).drop_duplicates()
    return [_rows("R030", "OCID", np.unique(f.ocid[hit["release"].to_numpy()]), 1.0),
            _rows("R030", "Tenderer", np.unique(hit["id"].to_numpy(dtype=object)), 1.0)]


def _r035(f: _Facts, s: CardinalSettings) -> list[pd.DataFrame]:
    threshold = max(int(s.param("R035", "threshold", 1)), 1)
    rel = f.b_rel
    listed = f.all_final[rel] & f.eligible[rel] & (f.b_n_tenderers >= 0)
    bt_rel = rel[f.bt_bid]
    members = pd.DataFrame({"release": bt_rel, "id": f.bt_id, "valid": f.b_valid[f.bt_bid],
                            "disq": f.b_disq[f.bt_bid]})[listed[f.bt_bid]]
    valid = members[members["valid"]][["release", "id"]].drop_duplicates()
    disq = members[members["disq"]][["release", "id"]].drop_duplicates()
    awarded = f.active_supplier_pairs()
    awarded = awarded[f.all_final[awarded["release"].to_numpy()]]
    n_valid = valid.groupby("release").size()
    n_awarded = awarded.groupby("release").size()
    one = valid[valid["release"].map(n_valid).to_numpy() == 1]
    # The single valid tenderer is the only awarded supplier.
    one = one.merge(awarded, on=["release", "id"])
    one = one[one["release"].map(n_awarded).to_numpy() == 1]
    if not len(one):
        return []
    others = disq.merge(one, on="release", suffixes=("", "_winner"))
    others = others[others["id"] != others["id_winner"]]
    difference = others.groupby("release").size().reindex(one["release"], fill_value=0).to_numpy()
    hit = difference >= threshold
    return [_rows("R035", "OCID", f.ocid[one["release"].to_numpy()[hit]], difference[hit]),
            _rows("R035", "Tenderer", np.unique(one["id"].to_numpy(dtype=object)[hit]), 0.0)]


def _r036(f: _Facts, s: CardinalSettings, currency: str | None) -> list[pd.DataFrame]:
    sel = np.flatnonzero(_r036_candidates(f) & (f.b_currency == currency))
    frame = pd.DataFrame({"release": f.b_rel[sel], "amount": f.b_amount[sel], "bid": sel,
                          "disq": f.b_disq[sel], "valid": f.b_valid[sel]})
    lowest = frame.sort_values(["release", "amount", "bid"], kind="stable").drop_duplicates("release")
    has_valid = frame.groupby("release")["valid"].any()
    hit = lowest[lowest["disq"].to_numpy() & has_valid.reindex(lowest["release"]).to_numpy(bool)]
    return [_rows("R036", "OCID", f.ocid[hit["release"].to_numpy()], 1.0)]


def _r038(f: _Facts, s: CardinalSettings, meta: dict) -> list[pd.DataFrame]:
    rel = f.b_rel
    sub = f.b_submitted & f.eligible[rel]
    n_sub = np.bincount(rel[sub], minlength=f.n)
    n_disq = np.bincount(rel[sub & f.b_disq], minlength=f.n)
    out = []
    minimum = s.param("R038", "minimum_contracting_processes", 2)
    threshold = s.param("R038", "threshold")
    r = f.r
    tables = []
    for group, column in (("Buyer", "buyer_id"), ("ProcuringEntity", "procuring_entity_id")):
        ids = r[column].to_numpy(dtype=object)
        ok = pd.notna(ids) & (n_sub > 0)
        frame = pd.DataFrame({"id": ids[ok].astype(str), "num": n_disq[ok], "den": n_sub[ok]})
        tables.append((group, frame, minimum))
    bt_sub = sub[f.bt_bid]
    frame = pd.DataFrame({"id": f.bt_id[bt_sub], "num": f.b_disq[f.bt_bid[bt_sub]].astype(np.int64), "den": 1})
    tables.append(("Tenderer", frame, s.param("R038", "minimum_submitted_bids", 2)))
    for group, frame, least in tables:
        per = frame.groupby("id", sort=True)[["num", "den"]].sum()
        # Cardinal compares the minimum with the denominator: submitted bids, also for buyers.
        per = per[per["den"] >= least]
        if not len(per):
            continue
        ratio = (per["num"] / per["den"]).to_numpy(np.float64)
        if threshold is None:
            q1, q3 = _quantile(ratio, 0.25), _quantile(ratio, 0.75)
            upper = _fence(q1, q3, 1.5, q3)
            meta.setdefault("R038", {}).update({f"{group}_q1": q1, f"{group}_q3": q3})
        else:
            upper = float(threshold)
        meta.setdefault("R038", {})[f"{group}_upper_fence"] = upper
        if upper > 0:
            hit = ratio >= upper
            out.append(_rows("R038", group, per.index.to_numpy(dtype=object)[hit], ratio[hit]))
    return out


def _r048(f: _Facts, s: CardinalSettings, meta: dict) -> list[pd.DataFrame]:
    digits = s.param("R048", "digits", 2)
    minimum = s.param("R048", "minimum_contracting_processes", 20)
    items = f.items
    award = items["award"].to_numpy(np.int64)
    # Active awards of eligible processes with exactly one supplier (Cardinal does not
    # assume that several suppliers all supply every item).
    ok_award = f.a_active & (f.n_sup == 1) & f.eligible[f.a_rel]
    supplier = pd.Series(f.s_id, index=f.s_award)
    supplier = supplier[~supplier.index.duplicated()]  # a one-supplier award has one row
    sel = ok_award[award] if len(award) else np.zeros(0, bool)
    codes = pd.DataFrame({"award": award[sel],
                          "code": items["classification_id"].astype(str).str.slice(0, digits).to_numpy(dtype=object)[
                              sel]})
    codes["id"] = supplier.reindex(codes["award"]).to_numpy(dtype=object)
    codes = codes[pd.notna(codes["id"].to_numpy())]
    codes["release"] = f.a_rel[codes["award"].to_numpy()]
    processes = codes[["release", "id"]].drop_duplicates().groupby("id").size()
    distinct = codes[["id", "code"]].drop_duplicates().groupby("id").size()
    keep = processes[processes >= minimum].index
    lengths = distinct.reindex(keep).astype(np.float64)
    threshold = s.param("R048", "threshold")
    if threshold is None:
        q1, q3 = _quantile(lengths.to_numpy(), 0.25), _quantile(lengths.to_numpy(), 0.75)
        upper = _fence(q1, q3, 1.5, q3)
        meta["R048"] = {"q1": q1, "q3": q3}
    else:
        upper = float(threshold)
    meta.setdefault("R048", {})["upper_fence"] = upper
    hit = lengths[lengths >= upper]
    return [_rows("R048", "Tenderer", hit.index.to_numpy(dtype=object), hit.to_numpy())]


def cardinal_indicators(
    data: Market | OCDSTables | str | Path,
    settings: CardinalSettings | Mapping[str, Any] | str | Path | None = None,
    indicators: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Compute Cardinal's red-flag indicators.

    Parameters
    ----------
    data : Market, OCDSTables or path
        A market read by :func:`collusion.io.read_ocds` (its ``ocds`` tables
        are used), any other market (see :func:`ocds_tables_from_market`),
        parsed OCDS tables, or the path of an OCDS file.
    settings : CardinalSettings, dict, ini path/text or None
        Cardinal settings; ``None`` runs every indicator with its defaults.
    indicators : iterable of str, optional
        Run only these indicators (their parameters still come from
        ``settings``); default: the indicators enabled in ``settings``.

    Returns
    -------
    pandas.DataFrame
        Tidy, one row per flag, columns :data:`CARDINAL_COLUMNS`
        (``indicator, group, id, value``), sorted by indicator, group and id.
        ``group`` is ``"OCID"`` (id = ocid, or tender id for a market not read
        from OCDS), ``"Buyer"``, ``"ProcuringEntity"`` or ``"Tenderer"``.
        ``frame.attrs["meta"]`` holds the quartiles and fences used, per
        indicator (Cardinal's ``Meta``). :func:`cardinal_nested` turns the frame
        into Cardinal's JSON output.

    Examples
    --------
    >>> import pandas as pd
    >>> from collusion import Market
    >>> tenders = pd.DataFrame({"tender_id": ["T1", "T2"], "procedure": ["open", "open"]})
    >>> bids = pd.DataFrame({"tender_id": ["T1", "T1", "T2"], "bidder_id": ["a", "b", "a"],
    ...                      "price": [100.0, 90.0, 50.0], "is_winner": [True, False, True],
    ...                      "disqualified": [False, True, False]})
    >>> market = Market.from_frames(tenders=tenders, bids=bids)
    >>> cardinal_indicators(market, indicators=["R018", "R036"])
      indicator group  id  value
    0      R018  OCID  T2    1.0
    1      R036  OCID  T1    1.0
    """
    if settings is None:
        settings = CardinalSettings()
    elif isinstance(settings, Mapping):
        settings = CardinalSettings.from_dict(settings)
    elif not isinstance(settings, CardinalSettings):
        settings = CardinalSettings.from_ini(settings)
    run = settings.enabled if indicators is None else tuple(indicators)
    unknown = sorted(set(run) - set(CARDINAL_INDICATORS))
    if unknown:
        raise ValueError(f"unknown Cardinal indicators {unknown}; known: {list(CARDINAL_INDICATORS)}")
    f = _Facts(_as_tables(data), settings)
    meta: dict[str, dict[str, float]] = {}
    parts: list[pd.DataFrame] = []
    uses_slbr = "R024" in run or "R058" in run
    currency = None
    if uses_slbr or "R036" in run:
        candidates = []
        if uses_slbr:
            slbr_sel = np.flatnonzero(_slbr_candidates(f))
            candidates.append((f.b_rel[slbr_sel], slbr_sel, f.b_currency[slbr_sel]))
        if "R036" in run:
            sel = np.flatnonzero(_r036_candidates(f))
            candidates.append((f.b_rel[sel], sel, f.b_currency[sel]))
        currency = _currency_choice(settings, candidates)
    slbr = _second_lowest_bid_ratios(f, currency) if uses_slbr else None
    for code in CARDINAL_INDICATORS:
        if code not in run:
            continue
        if code in ("R024", "R058"):
            parts += (_r024 if code == "R024" else _r058)(f, settings, slbr, meta)
        elif code == "R036":
            parts += _r036(f, settings, currency)
        elif code in ("R025", "R038", "R048"):
            parts += {"R025": _r025, "R038": _r038, "R048": _r048}[code](f, settings, meta)
        else:
            parts += {"R003": _r003, "R018": _r018, "R028": _r028, "R030": _r030, "R035": _r035}[code](f, settings)
    parts = [p for p in parts if len(p)]
    frame = pd.concat(parts, ignore_index=True) if parts else _rows("R003", "OCID", [], 0.0)
    frame["indicator"] = pd.Categorical(frame["indicator"], categories=CARDINAL_INDICATORS)
    frame["group"] = pd.Categorical(frame["group"], categories=CARDINAL_GROUPS)
    frame["id"] = frame["id"].astype(object)
    frame = frame.drop_duplicates(["indicator", "group", "id"], keep="last")
    frame = frame.sort_values(["indicator", "group", "id"], kind="stable").reset_index(drop=True)
    frame = frame[list(CARDINAL_COLUMNS)]
    frame.attrs["meta"] = meta
    return frame


def cardinal_nested(frame: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """Cardinal's JSON output ``{group: {id: {indicator: value}}}`` from the tidy frame.

    Groups without flags are left out, as Cardinal does.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"indicator": ["R003", "R024"], "group": ["OCID", "Tenderer"],
    ...                       "id": ["ocds-1", "W"], "value": [1.0, 0.0]})
    >>> cardinal_nested(frame)
    {'OCID': {'ocds-1': {'R003': 1.0}}, 'Tenderer': {'W': {'R024': 0.0}}}
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for indicator, group, ident, value in zip(frame["indicator"].astype(str), frame["group"].astype(str),
                                              frame["id"].astype(str), frame["value"].astype(float)):
        out.setdefault(group, {}).setdefault(ident, {})[indicator] = float(value)
    return out
