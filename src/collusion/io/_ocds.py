"""OCDS reader: compiled releases (JSON Lines or packages) -> canonical tables.

The Open Contracting Data Standard (OCDS) is the international exchange format
for public procurement. A *compiled release* describes one contracting process
(``ocid``): the ``tender`` (with optional ``lots``), the ``bids.details``
(bids extension), ``awards``, ``contracts`` with their
``implementation.transactions``, and the ``parties`` with their roles.

Reading happens in two steps:

1. **Parsing** (one Python pass, constant memory per release): each release is
   flattened into rows of long tables, kept as an :class:`OCDSTables`. Nothing
   is interpreted yet, so every OCDS fact that an indicator may need (bid,
   award and tender status, ``procurementMethodDetails``, tender period and
   bid dates, bids without prices, consortium bids, award items) survives.
2. **Mapping** (vectorised pandas): the long tables are mapped onto the
   canonical tables of :class:`collusion.Market`.

Mapping onto the canonical tables
---------------------------------
``tenders``
    One row per release, ``tender_id = ocid``; when ``tender.lots`` exist, one
    row per lot, ``tender_id = "<ocid>/<lot id>"``. ``project_id = ocid``
    always (the lots of one process share it; ``projects`` has one row per
    ocid with ``buyer_id`` and ``budget = planning.budget.amount.amount``).
    ``buyer_id = buyer.id`` (else the first party with role ``buyer``);
    ``agent_id = tender.procuringEntity.id`` when it differs from the buyer
    (a buyer procuring for itself is not an agency); ``category =
    tender.mainProcurementCategory``; ``region`` = the buyer party's
    ``address.region``; ``procedure`` from ``procurementMethod`` (open ->
    open, selective -> selective, limited -> invited, direct -> direct, other
    values -> other); ``estimate`` = lot or tender ``value.amount``;
    ``published_at``/``deadline_at`` = ``tenderPeriod.startDate``/``endDate``
    (the lot's own period when given); ``awarded_at`` = earliest date of the
    active awards covering the tender.
    Extra columns: ``ocid``, ``lot_id``, ``status`` (tender or lot status),
    ``procurement_method`` (the OCDS code), ``procurement_method_details``,
    ``number_of_tenderers``, ``currency``, ``classification`` (first item
    classification id).
``bids``
    Submitted bids of ``bids.details`` (status not ``invited``/``withdrawn``)
    with a tenderer and a positive ``value.amount``. ``bidder_id`` = the first
    tenderer (consortium members are kept in the extra ``consortium`` column,
    ``|``-joined); ``disqualified = status == "disqualified"``;
    ``submitted_at = date``; ``is_winner`` = the bidder supplies an active
    award covering the tender. Extra columns: ``bid_id``, ``status``,
    ``currency``, ``consortium``, ``awarded`` (supplier of an active award,
    before the one-winner-per-tender rule below).
``contracts``
    ``contract_id = "<ocid>/<contract id>"``; ``winner_id`` = first supplier of
    the award named by ``awardID``; ``amount = value.amount`` (the award's when
    the contract has none); ``signed_at = dateSigned``. Extra columns:
    ``award_id``, ``status``, ``currency``, ``period_end``.
``payments``
    ``contracts.implementation.transactions``: ``paid_at = date``, ``amount =
    value.amount`` (deprecated ``amount.amount`` too), ``payee_id = payee.id``
    (deprecated ``receiverOrganization.id`` too). Extra: ``transaction_id``,
    ``currency``, ``payer_id``.
``parties``
    One row per party id across releases: ``kind`` from the roles (``buyer``;
    ``agent`` for ``procuringEntity``; ``company`` for
    ``tenderer``/``supplier``/``payee``; else ``organization``), ``name``,
    ``address`` (street, locality, region, postal code, country), ``phone`` and
    ``email`` of the ``contactPoint``. Extra: ``roles`` (``|``-joined, sorted),
    ``identifier`` (``scheme-id``), ``contact_name``.

Rows that cannot be mapped are never dropped silently: :class:`OCDSSummary`
counts them by reason (bids without price or tenderer, a tenderer's repeated
bids, several winners of one tender, contracts without award, dates in the
wrong order...), and :attr:`OCDSTables` keeps them for the indicators.
Identifiers given as JSON numbers are turned into text (as Cardinal's
``prepare`` command does).
"""

from __future__ import annotations

import gc
import gzip
import io
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator, Literal

import numpy as np
import pandas as pd

from .._market import Market
from .._settings import Settings
from .._validation import normalize_id_values
from ..exceptions import ValidationError

__all__ = ["OCDSFormatError", "OCDSSummary", "OCDSTables", "read_ocds", "read_ocds_tables"]

#: OCDS ``procurementMethod`` -> canonical ``procedure``.
PROCUREMENT_METHODS: dict[str, str] = {
    "open": "open",
    "selective": "selective",
    "limited": "invited",
    "direct": "direct",
}

#: Bid statuses that are not submitted bids (OCDS bidStatus codelist).
_NOT_SUBMITTED = ("invited", "withdrawn")

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")
_PACKAGE_KEY = re.compile(r'"(releases|records)"\s*:\s*\[')
#: RFC 3339 date-time (what Cardinal's chrono parser accepts for tender periods).
_RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"


class OCDSFormatError(ValidationError):
    """Malformed lines or entries in an OCDS file.

    ``problems`` is the tidy table of :class:`collusion.ValidationError`
    (``table="ocds"``, ``column="line"``, ``rule`` = the reason, ``row`` = the
    1-based line number, ``value`` = detail); the message lists every line.
    """

    def __init__(self, problems: pd.DataFrame, *, source: str = "") -> None:
        super().__init__(problems)
        lines = [f"{len(problems)} malformed line(s) in OCDS file {source}:"]
        for rec in problems.head(50).itertuples(index=False):
            lines.append(f"  line {rec.row}: {rec.rule} ({rec.value})")
        if len(problems) > 50:
            lines.append(f"  ... and {len(problems) - 50} more (see .problems)")
        lines.append("Use on_error='skip' to read the other lines and count these in the summary.")
        self.args = ("\n".join(lines),)


@dataclass
class OCDSSummary:
    """What an OCDS read found, mapped, and could not map.

    Attributes
    ----------
    source : str
        The path read.
    format : str
        ``"jsonl"``, ``"release package"`` or ``"record package"``.
    lines : int
        Lines (JSONL) or package entries seen, blank lines excluded.
    releases : int
        Releases kept (one per ocid).
    malformed : pandas.DataFrame
        ``line, reason, detail`` of every skipped line or entry (invalid JSON,
        not an object, no ocid, record without compiled release, duplicate
        ocid).
    counts : pandas.DataFrame
        ``table, read, mapped``: OCDS objects parsed (releases, lots,
        ``bids.details``, awards, contracts, transactions, party entries) and
        canonical rows made from them (tenders from releases without lots,
        tenders from lots, bids, *active* awards, contracts, payments, unique
        parties).
    dropped : pandas.DataFrame
        ``table, reason, rows``: what could not be mapped (or was changed) and why.
    missing : pandas.DataFrame
        ``field, releases, share``: releases that lack an OCDS field.
    """

    source: str
    format: str
    lines: int
    releases: int
    malformed: pd.DataFrame
    counts: pd.DataFrame
    dropped: pd.DataFrame
    missing: pd.DataFrame

    def __str__(self) -> str:
        out = [
            f"OCDS {self.format} {self.source}: {self.lines} line(s), {self.releases} release(s) kept, "
            f"{len(self.malformed)} malformed/skipped"
        ]
        for rec in self.counts.itertuples(index=False):
            out.append(f"  {rec.table:<13} read {rec.read:>9,}  mapped {rec.mapped:>9,}")
        if len(self.dropped):
            out.append("  not mapped or changed:")
            for rec in self.dropped.itertuples(index=False):
                out.append(f"    {rec.table}: {rec.reason}: {rec.rows:,}")
        lacking = self.missing[self.missing["releases"] > 0]
        if len(lacking):
            out.append("  releases lacking a field:")
            for rec in lacking.itertuples(index=False):
                out.append(f"    {rec.field}: {rec.releases:,} ({rec.share:.0%})")
        return "\n".join(out)

    __repr__ = __str__


@dataclass
class OCDSTables:
    """The long tables parsed from OCDS releases, before any interpretation.

    Row *i* of ``releases`` is release *i*; the other tables point at their
    parent by integer row (``release``, ``bid``, ``award``, ``contract``).
    Dates are parsed to UTC ``datetime64[ns]`` (NaT when absent or invalid),
    amounts are ``float64`` (NaN when absent or not a JSON number), ids and
    codes are strings (``<NA>`` when absent).

    Attributes
    ----------
    releases : DataFrame
        ``line, ocid, date, tender_status, procurement_method,
        procurement_method_details, main_category, number_of_tenderers
        (integers only), tender_start, tender_end, period_rfc3339 (both period
        dates are RFC 3339 date-times), value_amount, value_currency, budget_amount,
        buyer_id, procuring_entity_id, has_tender, has_bid_details (``bids.details``
        is a list), has_awards (``awards`` is a list), has_contracts,
        has_parties``.
    lots : DataFrame
        ``release, lot_id, status, amount, currency, start, end``.
    items : DataFrame
        Tender items: ``release, related_lot, classification_id``.
    bids : DataFrame
        ``release, position, bid_id, status, amount, currency, date,
        n_tenderers`` (length of ``tenderers``; -1 when it is not a list).
    bid_tenderers : DataFrame
        ``bid, position, tenderer_id``.
    bid_lots : DataFrame
        ``bid, lot_id`` (``relatedLots``).
    awards : DataFrame
        ``release, position, award_id, status, date, amount, currency,
        n_suppliers`` (-1 when ``suppliers`` is not a list).
    award_suppliers : DataFrame
        ``award, position, supplier_id``.
    award_items : DataFrame
        ``award, classification_id``.
    award_lots : DataFrame
        ``award, lot_id``.
    contracts : DataFrame
        ``release, position, contract_id, award_id, status, amount, currency,
        date_signed, period_end``.
    transactions : DataFrame
        ``contract, transaction_id, date, amount, currency, payee_id, payer_id``.
    parties : DataFrame
        ``release, party_id, name, roles, identifier, address, region, phone,
        email, contact_name``.
    summary : OCDSSummary or None
        Filled by :func:`read_ocds_tables`.
    """

    releases: pd.DataFrame
    lots: pd.DataFrame
    items: pd.DataFrame
    bids: pd.DataFrame
    bid_tenderers: pd.DataFrame
    bid_lots: pd.DataFrame
    awards: pd.DataFrame
    award_suppliers: pd.DataFrame
    award_items: pd.DataFrame
    award_lots: pd.DataFrame
    contracts: pd.DataFrame
    transactions: pd.DataFrame
    parties: pd.DataFrame
    summary: OCDSSummary | None = None

    def __repr__(self) -> str:
        sizes = ", ".join(
            f"{name}={len(getattr(self, name))}"
            for name in ("releases", "lots", "bids", "awards", "contracts", "transactions", "parties")
        )
        return f"OCDSTables({sizes})"


# --------------------------------------------------------------------------- parsing


def _text(value: Any) -> str | None:
    """A string, or None (Cardinal reads codes only when they are JSON strings)."""
    return value if isinstance(value, str) else None


def _id(obj: Any) -> str | None:
    """The ``id`` of an organization reference; numbers become text."""
    if not isinstance(obj, dict):
        return None
    value = obj.get("id")
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return np.nan
    return float(value)


def _value(obj: Any) -> tuple[float, str | None]:
    """``(amount, currency)`` of an OCDS Value object."""
    if not isinstance(obj, dict):
        return np.nan, None
    return _number(obj.get("amount")), _text(obj.get("currency"))


def _dict(parent: Any, key: str) -> dict:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def _list(parent: Any, key: str) -> list | None:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, list) else None


def _ids(values: Any) -> list[str]:
    """Related lot ids (strings or numbers)."""
    if not isinstance(values, list):
        return []
    out = []
    for v in values:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(str(int(v)) if float(v).is_integer() else repr(v))
    return out


class _Rows:
    """Row lists of the long tables, filled one release at a time."""

    def __init__(self) -> None:
        self.releases: list[tuple] = []
        self.lots: list[tuple] = []
        self.items: list[tuple] = []
        self.bids: list[tuple] = []
        self.bid_tenderers: list[tuple] = []
        self.bid_lots: list[tuple] = []
        self.awards: list[tuple] = []
        self.award_suppliers: list[tuple] = []
        self.award_items: list[tuple] = []
        self.award_lots: list[tuple] = []
        self.contracts: list[tuple] = []
        self.transactions: list[tuple] = []
        self.parties: list[tuple] = []
        self.entries = 0  # lines or package entries seen
        self.package_kind = ""

    def add(self, release: dict, line: int) -> None:
        r = len(self.releases)
        tender = release.get("tender")
        has_tender = isinstance(tender, dict)
        tender = tender if has_tender else {}
        period = _dict(tender, "tenderPeriod")
        amount, currency = _value(tender.get("value"))
        budget = _dict(_dict(release, "planning"), "budget")
        budget_amount, _ = _value(budget.get("amount"))
        n_tenderers = tender.get("numberOfTenderers")
        bids = _list(_dict(release, "bids"), "details")
        awards = _list(release, "awards")
        contracts = _list(release, "contracts")
        parties = _list(release, "parties")
        self.releases.append((
            line, release["ocid"], _text(release.get("date")), _text(tender.get("status")),
            _text(tender.get("procurementMethod")), _text(tender.get("procurementMethodDetails")),
            _text(tender.get("mainProcurementCategory")),
            # Cardinal counts a single tenderer only when the number is a JSON integer.
            float(n_tenderers) if isinstance(n_tenderers, int) and not isinstance(n_tenderers, bool) else np.nan,
            _text(period.get("startDate")), _text(period.get("endDate")), amount, currency, budget_amount,
            _id(release.get("buyer")), _id(tender.get("procuringEntity")), has_tender,
            bids is not None, awards is not None, contracts is not None, parties is not None,
        ))
        for lot in _list(tender, "lots") or ():
            if isinstance(lot, dict):
                lot_id = _id(lot)
                if lot_id is not None:
                    lot_amount, lot_currency = _value(lot.get("value"))
                    lot_period = _dict(lot, "tenderPeriod")
                    self.lots.append((r, lot_id, _text(lot.get("status")), lot_amount, lot_currency,
                                      _text(lot_period.get("startDate")), _text(lot_period.get("endDate"))))
        for item in _list(tender, "items") or ():
            if isinstance(item, dict):
                code = _id(item.get("classification"))
                if code is not None:
                    related = item.get("relatedLot")
                    self.items.append((r, related if isinstance(related, str) else None, code))
        for position, bid in enumerate(bids or ()):
            if not isinstance(bid, dict):
                continue
            b = len(self.bids)
            bid_amount, bid_currency = _value(bid.get("value"))
            tenderers = bid.get("tenderers")
            if isinstance(tenderers, dict):  # an object where a list is expected
                tenderers = [tenderers]
            n = len(tenderers) if isinstance(tenderers, list) else -1
            self.bids.append((r, position, _id(bid), _text(bid.get("status")), bid_amount, bid_currency,
                              _text(bid.get("date")), n))
            for k, tenderer in enumerate(tenderers if n > 0 else ()):
                tid = _id(tenderer)
                if tid is not None:
                    self.bid_tenderers.append((b, k, tid))
            for lot_id in _ids(bid.get("relatedLots")):
                self.bid_lots.append((b, lot_id))
        for position, award in enumerate(awards or ()):
            if not isinstance(award, dict):
                continue
            a = len(self.awards)
            award_amount, award_currency = _value(award.get("value"))
            suppliers = award.get("suppliers")
            n = len(suppliers) if isinstance(suppliers, list) else -1
            self.awards.append((r, position, _id(award), _text(award.get("status")), _text(award.get("date")),
                                award_amount, award_currency, n))
            for k, supplier in enumerate(suppliers if n > 0 else ()):
                sid = _id(supplier)
                if sid is not None:
                    self.award_suppliers.append((a, k, sid))
            for item in _list(award, "items") or ():
                code = _id(_dict(item, "classification")) if isinstance(item, dict) else None
                if code is not None and isinstance(item["classification"].get("id"), str):
                    self.award_items.append((a, code))
            for lot_id in _ids(award.get("relatedLots")):
                self.award_lots.append((a, lot_id))
        for position, contract in enumerate(contracts or ()):
            if not isinstance(contract, dict):
                continue
            c = len(self.contracts)
            c_amount, c_currency = _value(contract.get("value"))
            award_id = contract.get("awardID")
            award_id = _id({"id": award_id})
            self.contracts.append((r, position, _id(contract), award_id, _text(contract.get("status")),
                                   c_amount, c_currency, _text(contract.get("dateSigned")),
                                   _text(_dict(contract, "period").get("endDate"))))
            for tx in _list(_dict(contract, "implementation"), "transactions") or ():
                if not isinstance(tx, dict):
                    continue
                tx_amount, tx_currency = _value(tx.get("value"))
                if np.isnan(tx_amount):  # OCDS 1.0 ``amount``
                    tx_amount, tx_currency = _value(tx.get("amount"))
                payee = _id(tx.get("payee")) or _id(tx.get("receiverOrganization"))
                payer = _id(tx.get("payer")) or _id(tx.get("providerOrganization"))
                self.transactions.append((c, _id(tx), _text(tx.get("date")), tx_amount, tx_currency, payee, payer))
        for party in parties or ():
            pid = _id(party)
            if pid is None:
                continue
            roles = party.get("roles")
            roles = "|".join(sorted({x for x in roles if isinstance(x, str)})) if isinstance(roles, list) else ""
            ident = _dict(party, "identifier")
            scheme, number = _text(ident.get("scheme")), _id(ident)
            address = _dict(party, "address")
            parts = [address.get(k) for k in ("streetAddress", "locality", "region", "postalCode", "countryName")]
            contact = _dict(party, "contactPoint")
            self.parties.append((
                r, pid, _text(party.get("name")), roles,
                (f"{scheme}-{number}" if scheme else number) if number is not None else None,
                ", ".join(str(p) for p in parts if isinstance(p, (str, int)) and str(p).strip()) or None,
                _text(address.get("region")), _text(contact.get("telephone")), _text(contact.get("email")),
                _text(contact.get("name")),
            ))


_COLUMNS: dict[str, tuple[str, ...]] = {
    "releases": ("line", "ocid", "date", "tender_status", "procurement_method", "procurement_method_details",
                 "main_category", "number_of_tenderers", "tender_start", "tender_end", "value_amount",
                 "value_currency", "budget_amount", "buyer_id", "procuring_entity_id", "has_tender",
                 "has_bid_details", "has_awards", "has_contracts", "has_parties"),
    "lots": ("release", "lot_id", "status", "amount", "currency", "start", "end"),
    "items": ("release", "related_lot", "classification_id"),
    "bids": ("release", "position", "bid_id", "status", "amount", "currency", "date", "n_tenderers"),
    "bid_tenderers": ("bid", "position", "tenderer_id"),
    "bid_lots": ("bid", "lot_id"),
    "awards": ("release", "position", "award_id", "status", "date", "amount", "currency", "n_suppliers"),
    "award_suppliers": ("award", "position", "supplier_id"),
    "award_items": ("award", "classification_id"),
    "award_lots": ("award", "lot_id"),
    "contracts": ("release", "position", "contract_id", "award_id", "status", "amount", "currency",
                  "date_signed", "period_end"),
    "transactions": ("contract", "transaction_id", "date", "amount", "currency", "payee_id", "payer_id"),
    "parties": ("release", "party_id", "name", "roles", "identifier", "address", "region", "phone", "email",
                "contact_name"),
}
_DATES = {
    "releases": ("date", "tender_start", "tender_end"),
    "lots": ("start", "end"),
    "bids": ("date",),
    "awards": ("date",),
    "contracts": ("date_signed", "period_end"),
    "transactions": ("date",),
}
_INTS = {"line", "release", "position", "bid", "award", "contract", "n_tenderers", "n_suppliers"}
_BOOLS = {"has_tender", "has_bid_details", "has_awards", "has_contracts", "has_parties"}
_FLOATS = {"number_of_tenderers", "value_amount", "budget_amount", "amount"}


def _parse_dates(values: pd.Series) -> pd.Series:
    """ISO 8601 text -> UTC-naive datetime64[ns]; invalid or absent -> NaT.

    Each distinct string is parsed once: dates repeat a lot in procurement data.
    """
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    parsed = pd.to_datetime(pd.Series(uniques, dtype=object), errors="coerce", utc=True, format="ISO8601")
    table = np.append(parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT", "ns"))
    return pd.Series(table[codes], index=values.index)


def _frame(name: str, rows: list[tuple]) -> pd.DataFrame:
    columns = _COLUMNS[name]
    # Column-wise construction: no per-cell type inference by pandas.
    cols = list(zip(*rows)) if rows else [()] * len(columns)
    data: dict[str, Any] = {}
    raw: dict[str, np.ndarray] = {}
    for c, values in zip(columns, cols):
        if c in _INTS:
            data[c] = np.array(values, dtype=np.int64)
        elif c in _BOOLS:
            data[c] = np.array(values, dtype=bool)
        elif c in _FLOATS:
            data[c] = np.array(values, dtype=np.float64)
        else:
            # object with None for absent values: predictable under pandas 2 and 3.
            raw[c] = arr = np.empty(len(values), dtype=object)
            arr[:] = values
            data[c] = _parse_dates(pd.Series(arr, dtype=object)).to_numpy() if c in _DATES.get(name, ()) else arr
    frame = pd.DataFrame(data)
    if name == "releases":
        ok = (pd.Series(raw["tender_start"], dtype=object).str.match(_RFC3339, na=False).to_numpy(bool)
              & pd.Series(raw["tender_end"], dtype=object).str.match(_RFC3339, na=False).to_numpy(bool))
        frame.insert(frame.columns.get_loc("tender_end") + 1, "period_rfc3339", ok)
    return frame


# --------------------------------------------------------------------------- streaming


@dataclass
class _Bad:
    reason: str
    detail: str


class _Stream:
    """Incremental reader of one large JSON document (a package) with raw_decode.

    Only one package entry is decoded at a time, so memory stays bounded by
    the largest release, not the file (no ``ijson`` dependency needed).
    """

    def __init__(self, fh: IO[str], chunk: int = 1 << 16) -> None:
        self.fh, self.chunk = fh, chunk
        self.buf, self.pos, self.line, self.eof = "", 0, 1, False

    def fill(self) -> bool:
        if self.eof:
            return False
        # Read at least as much as is pending, so retries on a large entry stay linear.
        data = self.fh.read(max(self.chunk, len(self.buf) - self.pos))
        if not data:
            self.eof = True
            return False
        self.buf = self.buf[self.pos:] + data
        self.pos = 0
        return True

    def advance(self, end: int) -> None:
        self.line += self.buf.count("\n", self.pos, end)
        self.pos = end

    def peek(self) -> str:
        while True:
            self.advance(_WS.match(self.buf, self.pos).end())  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def expect(self, chars: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            raise ValueError(f"expected one of {chars!r} at line {self.line}, found {c or 'end of file'!r}")
        self.advance(self.pos + 1)
        return c

    def decode(self) -> Any:
        self.peek()
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                if not self.fill():
                    raise
                continue
            if end == len(self.buf) and self.fill():  # a number may continue in the next chunk
                continue
            self.advance(end)
            return obj


def _iter_package(fh: IO[str], chunk: int = 1 << 16) -> Iterator[tuple[int, str, Any]]:
    """Yield ``(line, key, entry)`` for each entry of ``releases``/``records``."""
    s = _Stream(fh, chunk)
    try:
        s.expect("{")
        if s.peek() == "}":
            return
        while True:
            key = s.decode()
            s.expect(":")
            if key in ("releases", "records") and s.peek() == "[":
                s.expect("[")
                if s.peek() == "]":
                    s.expect("]")
                else:
                    while True:
                        s.peek()  # skip whitespace so the line is the entry's first line
                        line = s.line
                        yield line, key, s.decode()
                        if s.expect(",]") == "]":
                            break
            else:
                s.decode()
            if s.expect(",}") == "}":
                return
    except ValueError as exc:  # JSONDecodeError too: the rest of the document is unreadable
        yield s.line, "error", _Bad("invalid JSON (rest of the package not read)", str(exc))


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _detect(path: Path) -> tuple[str, Any]:
    """Return ``("jsonl", None)``, ``("package", None)`` or ``("inline", package_dict)``."""
    with _open(path) as fh:
        head = fh.read(1 << 16)
    first = head.lstrip()
    if not first.startswith("{"):
        return "jsonl", None
    first_line = first.split("\n", 1)[0]
    try:
        obj = json.loads(first_line)
    except ValueError:
        m = _PACKAGE_KEY.search(head)
        o = head.find('"ocid"')
        return ("package" if m and (o < 0 or m.start() < o) else "jsonl"), None
    if isinstance(obj, dict) and "ocid" not in obj and any(
        isinstance(obj.get(k), list) for k in ("releases", "records")
    ):
        # A whole package on one line: it is in memory already, read it from the file.
        return "inline", None
    return "jsonl", None


def _entries(path: Path, fmt: str) -> Iterator[tuple[int, str, Any]]:
    """Yield ``(line, kind, entry)`` with kind ``release``, ``releases``, ``records`` or ``error``."""
    with _open(path) as fh:
        if fmt == "jsonl":
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield lineno, "release", json.loads(line)
                except ValueError as exc:
                    yield lineno, "error", _Bad("invalid JSON", str(exc))
        else:
            yield from _iter_package(fh)


# --------------------------------------------------------------------------- public readers


def _consume(stream: Iterator[tuple[int, str, Any]], rows: _Rows, bad: list, take: Any) -> None:
    """Feed package/JSONL entries to ``take``; count them on ``rows``."""
    rows.entries, rows.package_kind = 0, ""
    for line, key, entry in stream:
        rows.entries += 1
        if key == "error":
            bad.append((line, entry.reason, entry.detail[:200]))
            continue
        if key == "records":
            rows.package_kind = "record package"
            compiled = entry.get("compiledRelease") if isinstance(entry, dict) else None
            if not isinstance(compiled, dict):
                bad.append((line, "record without compiledRelease", str(entry.get("ocid", ""))[:80]
                            if isinstance(entry, dict) else type(entry).__name__))
                continue
            take(compiled, line)
        else:
            rows.package_kind = rows.package_kind or ("release package" if key == "releases" else "jsonl")
            take(entry, line)


def read_ocds_tables(
    path: str | Path,
    *,
    on_error: Literal["raise", "skip"] = "raise",
    format: Literal["auto", "jsonl", "package"] = "auto",
) -> OCDSTables:
    """Parse OCDS compiled releases into long tables (no interpretation).

    Parameters
    ----------
    path : str or Path
        JSON Lines of compiled releases (one per line), or a release package
        (``{"releases": [...]}``) or record package (``{"records":
        [{"compiledRelease": ...}]}``); ``.gz`` files are decompressed.
        Packages are streamed entry by entry.
    on_error : {"raise", "skip"}
        Malformed lines (invalid JSON, not an object, no string ``ocid``, a
        record without ``compiledRelease``) raise :class:`OCDSFormatError`
        listing every one with its line number, after the whole file is read;
        with ``"skip"`` they are skipped and listed in ``summary.malformed``.
        A repeated ``ocid`` is never an error: the first release is kept and
        the repeat is listed in ``summary.malformed``.
    format : {"auto", "jsonl", "package"}
        Input layout; ``"auto"`` looks at the start of the file.

    Returns
    -------
    OCDSTables
        With ``summary`` set (``counts`` and ``dropped`` cover the parse only;
        :func:`read_ocds` adds the mapping).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"OCDS file {path} not found")
    fmt = _detect(path) if format == "auto" else (format, None)
    kind = fmt[0]
    rows = _Rows()
    bad: list[tuple[int, str, str]] = []
    seen: set[str] = set()

    def take(release: Any, line: int) -> None:
        if not isinstance(release, dict):
            bad.append((line, "not a JSON object", type(release).__name__))
            return
        ocid = release.get("ocid")
        key = unicodedata.normalize("NFKC", ocid).strip() if isinstance(ocid, str) else ""
        if not key:
            bad.append((line, "no ocid", repr(ocid)[:80]))
            return
        # Ids are compared as the Market compares them (NFKC, no surrounding spaces).
        if key in seen:
            bad.append((line, "duplicate ocid (first release kept)", ocid))
            return
        seen.add(key)
        rows.add(release, line)

    if kind == "inline":
        with _open(path) as fh:
            for number, text in enumerate(fh, 1):
                if text.strip():
                    package, first_line = json.loads(text), number
                    break
        key = "releases" if isinstance(package.get("releases"), list) else "records"
        stream: Iterator[tuple[int, str, Any]] = ((first_line, key, e) for e in package[key])
    else:
        stream = _entries(path, "jsonl" if kind == "jsonl" else "package")
    # The parse allocates millions of long-lived tuples: cyclic GC passes over them
    # cost more than the parse itself and find nothing to free.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        _consume(stream, rows, bad, take)
        frames = {name: _frame(name, getattr(rows, name)) for name in _COLUMNS}
    finally:
        if gc_was_enabled:
            gc.enable()
    n_entries = rows.entries
    package_kind = rows.package_kind

    malformed = pd.DataFrame(bad, columns=["line", "reason", "detail"]).astype({"line": np.int64})
    errors = malformed[~malformed["reason"].str.startswith("duplicate ocid")]
    if on_error == "raise" and len(errors):
        problems = pd.DataFrame({
            "table": "ocds", "column": "line", "rule": errors["reason"].to_numpy(),
            "row": errors["line"].to_numpy(), "value": errors["detail"].to_numpy(),
        })
        raise OCDSFormatError(problems, source=str(path))

    tables = OCDSTables(**frames)
    tables.summary = OCDSSummary(
        source=str(path),
        format=package_kind or ("jsonl" if kind == "jsonl" else "release package"),
        lines=n_entries,
        releases=len(tables.releases),
        malformed=malformed,
        counts=_parse_counts(tables),
        dropped=pd.DataFrame({"table": pd.Series(dtype=object), "reason": pd.Series(dtype=object),
                              "rows": pd.Series(dtype=np.int64)}),
        missing=_missing_fields(tables),
    )
    return tables


def _parse_counts(t: OCDSTables) -> pd.DataFrame:
    rows = [
        ("releases", len(t.releases)), ("lots", len(t.lots)), ("bids", len(t.bids)), ("awards", len(t.awards)),
        ("contracts", len(t.contracts)), ("transactions", len(t.transactions)), ("parties", len(t.parties)),
    ]
    return pd.DataFrame({"table": [r[0] for r in rows], "read": np.array([r[1] for r in rows], dtype=np.int64),
                         "mapped": np.zeros(len(rows), dtype=np.int64)})


def _missing_fields(t: OCDSTables) -> pd.DataFrame:
    r = t.releases
    n = len(r)
    per_release = {
        "bids.details[].value.amount": np.bincount(
            t.bids["release"].to_numpy()[t.bids["amount"].notna().to_numpy()], minlength=n) > 0,
        "awards[].date": np.bincount(t.awards["release"].to_numpy()[t.awards["date"].notna().to_numpy()],
                                     minlength=n) > 0,
    }
    checks = {
        "tender": ~r["has_tender"].to_numpy(),
        "tender.procurementMethod": r["procurement_method"].isna().to_numpy(),
        "tender.tenderPeriod.startDate": r["tender_start"].isna().to_numpy(),
        "tender.tenderPeriod.endDate": r["tender_end"].isna().to_numpy(),
        "tender.value.amount": r["value_amount"].isna().to_numpy(),
        "buyer.id": r["buyer_id"].isna().to_numpy(),
        "bids.details": ~r["has_bid_details"].to_numpy(),
        "bids.details[].value.amount": ~per_release["bids.details[].value.amount"],
        "awards": ~r["has_awards"].to_numpy(),
        "awards[].date": ~per_release["awards[].date"],
        "contracts": ~r["has_contracts"].to_numpy(),
        "parties": ~r["has_parties"].to_numpy(),
    }
    counts = np.array([int(v.sum()) for v in checks.values()], dtype=np.int64)
    return pd.DataFrame({"field": list(checks), "releases": counts,
                         "share": counts / n if n else np.zeros(len(counts))})


def read_ocds(
    path: str | Path,
    *,
    on_error: Literal["raise", "skip"] = "raise",
    settings: Settings | dict | str | Path | None = None,
    format: Literal["auto", "jsonl", "package"] = "auto",
    return_summary: bool = False,
) -> Market | tuple[Market, OCDSSummary]:
    """Read OCDS compiled releases into a :class:`collusion.Market`.

    See the module docstring for how OCDS maps onto the canonical tables.
    The long OCDS tables stay available as ``market.ocds``
    (:class:`OCDSTables`, with the summary as ``market.ocds.summary``):
    :func:`collusion.features.cardinal_indicators` reads them, so bids without
    price, consortium bids and every status count as in Cardinal. A market
    rebuilt from its tables (e.g. saved and re-read) loses ``ocds``; the
    indicators then fall back on the canonical tables and their extra columns
    (:func:`collusion.features.ocds_tables_from_market`).

    Parameters
    ----------
    path : str or Path
        JSON Lines of compiled releases, a release package or a record package.
    on_error : {"raise", "skip"}
        What to do with malformed lines, see :func:`read_ocds_tables`.
    settings : Settings, dict, path or None
        Market settings.
    format : {"auto", "jsonl", "package"}
        Input layout.
    return_summary : bool
        Also return the :class:`OCDSSummary` (it is ``market.ocds.summary`` too).

    Returns
    -------
    Market or (Market, OCDSSummary)

    Examples
    --------
    >>> import json, tempfile, os
    >>> release = {"ocid": "ocds-1", "buyer": {"id": "B"},
    ...            "tender": {"procurementMethod": "open", "value": {"amount": 100, "currency": "USD"}},
    ...            "bids": {"details": [
    ...                {"status": "valid", "tenderers": [{"id": "A"}], "value": {"amount": 90}},
    ...                {"status": "valid", "tenderers": [{"id": "C"}]}]},
    ...            "awards": [{"status": "active", "suppliers": [{"id": "A"}]}]}
    >>> with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
    ...     _ = fh.write(json.dumps(release) + "\\n")
    >>> market, summary = read_ocds(fh.name, return_summary=True)
    >>> market.bids[["tender_id", "bidder_id", "price", "is_winner"]]
      tender_id bidder_id  price  is_winner
    0    ocds-1         A   90.0       True
    >>> summary.dropped[["table", "reason", "rows"]].values.tolist()
    [['bids', 'no positive value.amount', 1]]
    >>> os.unlink(fh.name)
    """
    tables = read_ocds_tables(path, on_error=on_error, format=format)
    frames, dropped, mapped = _map_tables(tables)
    summary = tables.summary
    assert summary is not None
    summary.dropped = dropped
    summary.counts["mapped"] = summary.counts["table"].map(mapped).fillna(0).astype(np.int64)
    market = Market.from_frames(**frames, settings=settings, name=Path(path).name)
    market.ocds = tables  # type: ignore[attr-defined]
    return (market, summary) if return_summary else market


# --------------------------------------------------------------------------- mapping


class _Dropped:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, int]] = []

    def add(self, table: str, reason: str, count: int) -> None:
        if count:
            self.rows.append((table, reason, int(count)))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["table", "reason", "rows"]).astype({"rows": np.int64})


def _norm(values: Any) -> np.ndarray:
    """Ids as the Market stores them (NFKC, stripped; empty -> None), normalising each distinct value once."""
    arr = np.asarray(values, dtype=object)
    if arr.size == 0:
        return arr
    codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    clean = normalize_id_values(pd.Index(uniques, dtype=object)).to_numpy(dtype=object)
    clean = np.where(clean == "", None, clean)
    out = np.append(clean, None)[codes]  # code -1 (missing) -> None
    return out.astype(object)


def _first_per_group(keys: np.ndarray, n: int) -> np.ndarray:
    """Row of the first occurrence of each key in ``0..n-1`` (-1 when absent)."""
    first = np.full(n, -1, dtype=np.int64)
    rows = np.arange(len(keys))[::-1]
    first[keys[::-1]] = rows
    return first


def _map_tables(t: OCDSTables) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, dict[str, int]]:
    dropped = _Dropped()
    r = t.releases
    n_rel = len(r)
    ocid = _norm(r["ocid"])

    # --- buyer: buyer.id, else the first party with role buyer.
    parties = t.parties.assign(party_id=_norm(t.parties["party_id"]))
    parties = parties[pd.notna(parties["party_id"].to_numpy(dtype=object))]
    is_buyer_party = parties["roles"].astype(str).str.contains(r"(?:^|\|)buyer(?:\||$)").to_numpy(bool)
    bp = parties[is_buyer_party]
    first = _first_per_group(bp["release"].to_numpy(), n_rel)
    party_buyer = np.where(first >= 0, _norm(bp["party_id"])[np.maximum(first, 0)], None) \
        if len(bp) else np.full(n_rel, None, dtype=object)
    buyer = _norm(r["buyer_id"])
    buyer = np.where(pd.isna(buyer), party_buyer, buyer)
    dropped.add("tenders", "buyer taken from parties (no buyer.id)", int((r["buyer_id"].isna().to_numpy()
                                                                          & pd.notna(party_buyer)).sum()))
    pe = _norm(r["procuring_entity_id"])
    agent = np.where(pd.notna(pe) & (pe != buyer), pe, None)
    # Region: the buyer party's address region in the same release.
    key_party = pd.Series(parties["region"].to_numpy(dtype=object),
                          index=pd.MultiIndex.from_arrays([parties["release"], parties["party_id"].astype(object)]))
    key_party = key_party[~key_party.index.duplicated()]
    region = key_party.reindex(pd.MultiIndex.from_arrays([np.arange(n_rel), buyer])).to_numpy(dtype=object) \
        if len(key_party) else np.full(n_rel, None, dtype=object)

    # --- tenders: one per release, or one per lot.
    lots = t.lots.assign(lot_id=_norm(t.lots["lot_id"])).drop_duplicates(["release", "lot_id"])
    dropped.add("lots", "duplicate lot id in a release", len(t.lots) - len(lots))
    has_lots = np.bincount(lots["release"].to_numpy(), minlength=n_rel) > 0
    plain = np.flatnonzero(~has_lots)
    lot_rel = lots["release"].to_numpy()
    rel_of_tender = np.concatenate([plain, lot_rel])
    lot_id = np.concatenate([np.full(len(plain), None, dtype=object), lots["lot_id"].to_numpy(dtype=object)])
    tender_id = ocid[rel_of_tender].astype(object)
    is_lot = pd.notna(lot_id)
    tender_id[is_lot] = tender_id[is_lot] + "/" + lot_id[is_lot].astype(str)
    tender_id = _norm(tender_id)
    n_t = len(tender_id)
    lot_amount = np.concatenate([np.full(len(plain), np.nan), lots["amount"].to_numpy(float)])
    estimate = np.where(is_lot, lot_amount, r["value_amount"].to_numpy(float)[rel_of_tender])
    lot_currency = np.concatenate([np.full(len(plain), None, dtype=object), lots["currency"].to_numpy(dtype=object)])
    currency = np.where(pd.notna(lot_currency), lot_currency, r["value_currency"].to_numpy(dtype=object)[rel_of_tender])
    bad_estimate = ~np.isnan(estimate) & ~(estimate > 0)
    dropped.add("tenders", "non-positive value.amount (estimate left empty)", int(bad_estimate.sum()))
    estimate = np.where(bad_estimate, np.nan, estimate)
    start = r["tender_start"].to_numpy()[rel_of_tender]
    end = r["tender_end"].to_numpy()[rel_of_tender]
    lot_start = np.concatenate([np.full(len(plain), np.datetime64("NaT"), "datetime64[ns]"),
                                lots["start"].to_numpy()])
    lot_end = np.concatenate([np.full(len(plain), np.datetime64("NaT"), "datetime64[ns]"), lots["end"].to_numpy()])
    start = np.where(~np.isnat(lot_start), lot_start, start)
    end = np.where(~np.isnat(lot_end), lot_end, end)
    status = np.where(is_lot, np.concatenate([np.full(len(plain), None, dtype=object),
                                              lots["status"].to_numpy(dtype=object)]), None)
    status = np.where(pd.isna(status), r["tender_status"].to_numpy(dtype=object)[rel_of_tender], status)
    method = r["procurement_method"].to_numpy(dtype=object)[rel_of_tender]
    procedure = pd.Series(method, dtype=object).map(lambda m: PROCUREMENT_METHODS.get(m, "other") if isinstance(
        m, str) else None).to_numpy(dtype=object)
    # Tender lookup: (release, lot or None) -> tender row.
    tender_of_rel = np.full(n_rel, -1, dtype=np.int64)
    tender_of_rel[plain] = np.arange(len(plain))
    lot_index = pd.Series(np.arange(len(plain), n_t), index=pd.MultiIndex.from_arrays(
        [lot_rel, lots["lot_id"].to_numpy(dtype=object)])) if len(lots) else None
    first_lot_of_rel = _first_per_group(lot_rel, n_rel)
    first_lot_of_rel = np.where(first_lot_of_rel >= 0, first_lot_of_rel + len(plain), -1)
    n_lots = np.bincount(lot_rel, minlength=n_rel)

    def tender_rows(release: np.ndarray, lot: np.ndarray) -> np.ndarray:
        """Tender row of (release, lot id); -1 when the lot is unknown."""
        out = tender_of_rel[release].copy()
        need = (out < 0) & pd.notna(lot)
        if lot_index is not None and need.any():
            found = lot_index.reindex(pd.MultiIndex.from_arrays([release[need], lot[need]])).to_numpy()
            out[need] = np.where(np.isnan(found), -1, found).astype(np.int64)
        return out

    # classification: first tender item (of the lot, for lots).
    items = t.items
    item_rel = items["release"].to_numpy()
    item_lot = _norm(items["related_lot"])
    item_tender = tender_rows(item_rel, item_lot)
    item_tender = np.where(item_tender < 0, tender_of_rel[item_rel], item_tender)
    ok = item_tender >= 0
    first_item = _first_per_group(item_tender[ok], n_t)
    classification = np.where(first_item >= 0, items["classification_id"].to_numpy(dtype=object)[ok][
        np.maximum(first_item, 0)], None) if ok.any() else np.full(n_t, None, dtype=object)

    # --- awards -> winners (tender row, supplier) and award dates.
    aw = t.awards
    active = (aw["status"] == "active").to_numpy(dtype=bool, na_value=False)
    a_rel = aw["release"].to_numpy()
    al = t.award_lots
    # Award coverage: its related lots, else every lot (or the plain tender) of its release.
    cov_award = [al["award"].to_numpy()]
    cov_tender = [tender_rows(a_rel[al["award"].to_numpy()], _norm(al["lot_id"]))]
    no_lots_named = np.bincount(al["award"].to_numpy(), minlength=len(aw)) == 0
    aw_idx = np.flatnonzero(no_lots_named)
    rel_tenders = pd.DataFrame({"release": rel_of_tender, "tender": np.arange(n_t)})
    whole = pd.DataFrame({"award": aw_idx, "release": a_rel[aw_idx]}).merge(rel_tenders, on="release")
    cov_award.append(whole["award"].to_numpy())
    cov_tender.append(whole["tender"].to_numpy())
    coverage = pd.DataFrame({"award": np.concatenate(cov_award), "tender": np.concatenate(cov_tender)})
    dropped.add("awards", "relatedLots not among the tender's lots", int((coverage["tender"] < 0).sum()))
    coverage = coverage[coverage["tender"] >= 0]
    act_cov = coverage[active[coverage["award"].to_numpy()]]
    award_date = aw["date"].to_numpy()[act_cov["award"].to_numpy()]
    awarded_at = pd.Series(award_date).groupby(act_cov["tender"].to_numpy()).min()
    awarded = np.full(n_t, np.datetime64("NaT"), dtype="datetime64[ns]")
    awarded[awarded_at.index.to_numpy()] = awarded_at.to_numpy()
    sup = t.award_suppliers
    winners = act_cov.merge(pd.DataFrame({"award": sup["award"].to_numpy(),
                                          "bidder_id": _norm(sup["supplier_id"])}), on="award")
    winners = winners[["tender", "bidder_id"]].drop_duplicates()

    # --- bids.
    bd = t.bids
    n_b = len(bd)
    status_b = bd["status"].to_numpy(dtype=object)
    submitted = ~bd["status"].isin(_NOT_SUBMITTED).to_numpy(bool)
    dropped.add("bids", "not submitted (status invited or withdrawn)", int((~submitted).sum()))
    dropped.add("bids", "no status (kept as a valid bid)", int(bd["status"].isna().sum()))
    bt = t.bid_tenderers
    first_t = _first_per_group(bt["bid"].to_numpy(), n_b)
    bidder = np.where(first_t >= 0, _norm(bt["tenderer_id"])[np.maximum(first_t, 0)], None) \
        if len(bt) else np.full(n_b, None, dtype=object)
    n_ids = np.bincount(bt["bid"].to_numpy(), minlength=n_b)
    multi = np.flatnonzero(n_ids > 1)
    consortium = np.full(n_b, None, dtype=object)
    if len(multi):
        members = bt[np.isin(bt["bid"].to_numpy(), multi)]
        joined = members.groupby("bid", sort=True)["tenderer_id"].agg(lambda s: "|".join(s.astype(str)))
        consortium[joined.index.to_numpy()] = joined.to_numpy(dtype=object)
    price = bd["amount"].to_numpy(float)
    has_bidder = pd.notna(bidder)
    has_price = price > 0
    dropped.add("bids", "no tenderer id", int((submitted & ~has_bidder).sum()))
    dropped.add("bids", "no positive value.amount", int((submitted & has_bidder & ~has_price).sum()))
    dropped.add("bids", "consortium (bidder_id = first tenderer)", int((submitted & (n_ids > 1)).sum()))
    b_rel = bd["release"].to_numpy()
    # Lot of a bid: its single related lot; a plain tender; or the only lot.
    bl = t.bid_lots
    n_bid_lots = np.bincount(bl["bid"].to_numpy(), minlength=n_b)
    one_lot = np.full(n_b, None, dtype=object)
    single = bl[n_bid_lots[bl["bid"].to_numpy()] == 1]
    one_lot[single["bid"].to_numpy()] = _norm(single["lot_id"])
    b_tender = tender_rows(b_rel, one_lot)
    only_lot = (b_tender < 0) & (n_lots[b_rel] == 1) & (n_bid_lots == 0)
    b_tender = np.where(only_lot, first_lot_of_rel[b_rel], b_tender)
    keep = submitted & has_bidder & has_price
    dropped.add("bids", "lot not identified (several or unknown relatedLots)", int((keep & (b_tender < 0)).sum()))
    keep &= b_tender >= 0
    bids = pd.DataFrame({
        "tender_id": tender_id[b_tender[keep]],
        "bidder_id": bidder[keep],
        "price": price[keep],
        "disqualified": status_b[keep] == "disqualified",
        "submitted_at": bd["date"].to_numpy()[keep],
        "bid_id": bd["bid_id"].to_numpy(dtype=object)[keep],
        "status": status_b[keep],
        "currency": bd["currency"].to_numpy(dtype=object)[keep],
        "consortium": consortium[keep],
        "_tender": b_tender[keep],
    })
    # One bid per (tender, bidder): keep a non-disqualified, lowest-price, first bid.
    bids = bids.sort_values(["_tender", "bidder_id", "disqualified", "price"], kind="stable")
    dup = bids.duplicated(["_tender", "bidder_id"], keep="first").to_numpy()
    dropped.add("bids", "further bids by the same tenderer (lowest valid kept)", int(dup.sum()))
    bids = bids[~dup]
    won = pd.MultiIndex.from_frame(winners.rename(columns={"tender": "_tender"}))
    bids["awarded"] = pd.MultiIndex.from_frame(bids[["_tender", "bidder_id"]]).isin(won)
    # At most one winner per tender: the lowest awarded bid (file order on ties).
    order = bids.sort_values(["_tender", "awarded", "price"], ascending=[True, False, True], kind="stable")
    first_awarded = order[order["awarded"]].drop_duplicates("_tender").index
    bids["is_winner"] = bids.index.isin(first_awarded)
    dropped.add("bids", "awarded but not the tender's winner (several awarded bidders)",
                int((bids["awarded"] & ~bids["is_winner"]).sum()))
    bids = bids.drop(columns="_tender").reset_index(drop=True)

    # --- dates of tenders in the canonical order (published <= deadline <= awarded).
    bad_period = ~np.isnat(start) & ~np.isnat(end) & (start > end)
    dropped.add("tenders", "tenderPeriod starts after it ends (both dates left empty)", int(bad_period.sum()))
    start = np.where(bad_period, np.datetime64("NaT"), start)
    end = np.where(bad_period, np.datetime64("NaT"), end)
    last = np.where(np.isnat(end), start, end)
    bad_award = ~np.isnat(last) & ~np.isnat(awarded) & (awarded < last)
    dropped.add("tenders", "award date before the tender period (awarded_at left empty)", int(bad_award.sum()))
    awarded = np.where(bad_award, np.datetime64("NaT"), awarded)

    tenders = pd.DataFrame({
        "tender_id": tender_id,
        "buyer_id": buyer[rel_of_tender],
        "agent_id": agent[rel_of_tender],
        "project_id": ocid[rel_of_tender],
        "category": r["main_category"].to_numpy(dtype=object)[rel_of_tender],
        "region": region[rel_of_tender],
        "procedure": procedure,
        "estimate": estimate,
        "published_at": start.astype("datetime64[ns]"),
        "deadline_at": end.astype("datetime64[ns]"),
        "awarded_at": awarded.astype("datetime64[ns]"),
        "ocid": ocid[rel_of_tender],
        "lot_id": lot_id,
        "status": status,
        "procurement_method": method,
        "procurement_method_details": r["procurement_method_details"].to_numpy(dtype=object)[rel_of_tender],
        "number_of_tenderers": r["number_of_tenderers"].to_numpy(float)[rel_of_tender],
        "currency": currency,
        "classification": classification,
    })
    projects = pd.DataFrame({
        "project_id": ocid,
        "buyer_id": buyer,
        "budget": np.where(r["budget_amount"].to_numpy(float) > 0, r["budget_amount"].to_numpy(float), np.nan),
    })

    # --- contracts.
    ct = t.contracts
    n_c = len(ct)
    c_rel = ct["release"].to_numpy()
    cid = ct["contract_id"].to_numpy(dtype=object)
    cid = np.where(pd.isna(cid), "#" + ct["position"].astype(str).to_numpy(dtype=object), cid)
    contract_id = _norm(ocid[c_rel].astype(object) + "/" + cid.astype(str))
    award_key = pd.Series(np.arange(len(aw)), index=pd.MultiIndex.from_arrays(
        [a_rel, aw["award_id"].to_numpy(dtype=object)]))
    award_key = award_key[~award_key.index.duplicated() & aw["award_id"].notna().to_numpy()]
    c_award_id = ct["award_id"].to_numpy(dtype=object)
    c_award = award_key.reindex(pd.MultiIndex.from_arrays([c_rel, c_award_id])).to_numpy(dtype=float) \
        if n_c and len(award_key) else np.full(n_c, np.nan)
    c_award = np.where(np.isnan(c_award) | pd.isna(c_award_id), -1, c_award).astype(np.int64)
    first_sup = _first_per_group(sup["award"].to_numpy(), len(aw))
    sup_id = _norm(sup["supplier_id"])
    award_winner = np.where(first_sup >= 0, sup_id[np.maximum(first_sup, 0)], None) if len(sup) else \
        np.full(len(aw), None, dtype=object)
    winner = np.where(c_award >= 0, award_winner[np.maximum(c_award, 0)] if len(aw) else None, None)
    amount = ct["amount"].to_numpy(float)
    award_amount = np.where(c_award >= 0, aw["amount"].to_numpy(float)[np.maximum(c_award, 0)] if len(aw)
                            else np.nan, np.nan)
    from_award = ~(amount > 0) & (award_amount > 0)
    dropped.add("contracts", "value taken from the award", int(from_award.sum()))
    amount = np.where(from_award, award_amount, amount)
    c_currency = ct["currency"].to_numpy(dtype=object)
    award_currency = aw["currency"].to_numpy(dtype=object)[np.maximum(c_award, 0)] if len(aw) else c_currency
    c_currency = np.where(from_award, award_currency, c_currency)
    # Tender of a contract: the award's first covered tender, else the release's.
    first_cov = _first_per_group(coverage["award"].to_numpy(), len(aw))
    cov_t = coverage["tender"].to_numpy()
    award_tender = np.where(first_cov >= 0, cov_t[np.maximum(first_cov, 0)], -1) if len(coverage) else \
        np.full(len(aw), -1, dtype=np.int64)
    c_tender = np.where(c_award >= 0, award_tender[np.maximum(c_award, 0)] if len(aw) else -1, -1)
    c_tender = np.where(c_tender < 0, np.where(tender_of_rel[c_rel] >= 0, tender_of_rel[c_rel],
                                               first_lot_of_rel[c_rel]), c_tender)
    n_cov = np.bincount(coverage["award"].to_numpy(), minlength=len(aw))
    dropped.add("contracts", "award covers several lots (contract put on the first)",
                int(((c_award >= 0) & (n_cov[np.maximum(c_award, 0)] > 1) & has_lots[c_rel]).sum()) if len(aw)
                else 0)
    no_winner = pd.isna(winner)
    dropped.add("contracts", "no award supplier (awardID unknown or award without suppliers)", int(no_winner.sum()))
    no_amount = ~no_winner & ~(amount > 0)
    dropped.add("contracts", "no positive value.amount (contract or award)", int(no_amount.sum()))
    dup_c = pd.Series(contract_id).duplicated().to_numpy()
    dropped.add("contracts", "duplicate contract id in a release", int((dup_c & ~no_winner & ~no_amount).sum()))
    keep_c = ~no_winner & ~no_amount & ~dup_c & (c_tender >= 0)
    contracts = pd.DataFrame({
        "contract_id": contract_id[keep_c],
        "tender_id": tender_id[c_tender[keep_c]] if keep_c.any() else np.array([], dtype=object),
        "winner_id": winner[keep_c],
        "amount": amount[keep_c],
        "signed_at": ct["date_signed"].to_numpy()[keep_c],
        "award_id": ct["award_id"].to_numpy(dtype=object)[keep_c],
        "status": ct["status"].to_numpy(dtype=object)[keep_c],
        "currency": c_currency[keep_c],
        "period_end": ct["period_end"].to_numpy()[keep_c],
    })

    # --- payments.
    tx = t.transactions
    tx_c = tx["contract"].to_numpy()
    tx_amount = tx["amount"].to_numpy(float)
    in_kept = keep_c[tx_c] if n_c else np.zeros(len(tx), dtype=bool)
    dropped.add("transactions", "contract not mapped", int((~in_kept).sum()))
    pos = tx_amount > 0
    dropped.add("transactions", "no positive value.amount", int((in_kept & ~pos).sum()))
    keep_tx = in_kept & pos
    payments = pd.DataFrame({
        "contract_id": contract_id[tx_c[keep_tx]] if keep_tx.any() else np.array([], dtype=object),
        "paid_at": tx["date"].to_numpy()[keep_tx],
        "amount": tx_amount[keep_tx],
        "payee_id": _norm(tx["payee_id"])[keep_tx],
        "transaction_id": tx["transaction_id"].to_numpy(dtype=object)[keep_tx],
        "currency": tx["currency"].to_numpy(dtype=object)[keep_tx],
        "payer_id": tx["payer_id"].to_numpy(dtype=object)[keep_tx],
    })

    # --- parties: one row per id; roles united; other fields from the first release naming it.
    party_frame = _map_parties(parties)

    frames = {
        "tenders": tenders,
        "bids": bids[["tender_id", "bidder_id", "price", "is_winner", "disqualified", "submitted_at", "bid_id",
                      "status", "currency", "consortium", "awarded"]],
        "projects": projects,
        "contracts": contracts if len(contracts) else None,
        "payments": payments if len(payments) else None,
        "parties": party_frame if len(party_frame) else None,
    }
    mapped = {
        "releases": n_rel, "lots": int(is_lot.sum()), "bids": len(bids), "awards": int(active.sum()),
        "contracts": len(contracts), "transactions": len(payments), "parties": len(party_frame),
    }
    return frames, dropped.frame(), mapped


_ROLE_KIND = (("buyer", "buyer"), ("procuringEntity", "agent"), ("tenderer", "company"), ("supplier", "company"),
              ("payee", "company"))


def _map_parties(parties: pd.DataFrame) -> pd.DataFrame:
    if not len(parties):
        return pd.DataFrame(columns=["party_id", "kind"])
    # Roles repeat for a party in every release naming it: split each distinct list once.
    pairs = parties[["party_id", "roles"]].drop_duplicates()
    roles = pairs.assign(role=pairs["roles"].fillna("").str.split("|")).explode("role")
    roles = roles[roles["role"] != ""].drop_duplicates(["party_id", "role"]).sort_values(["party_id", "role"])
    joined = roles.groupby("party_id", sort=False)["role"].agg("|".join)
    rank = {role: i for i, (role, _) in enumerate(_ROLE_KIND)}
    kinds = np.array([k for _, k in _ROLE_KIND] + ["organization"], dtype=object)
    roles["rank"] = roles["role"].map(rank).fillna(len(_ROLE_KIND)).astype(np.int64)
    best = roles.groupby("party_id", sort=False)["rank"].min()
    first = parties.drop_duplicates("party_id")
    pid = first["party_id"].astype(object)
    out = pd.DataFrame({
        "party_id": pid.to_numpy(),
        "kind": kinds[best.reindex(pid).fillna(len(_ROLE_KIND)).astype(np.int64).to_numpy()],
        "name": first["name"].to_numpy(dtype=object),
        "address": first["address"].to_numpy(dtype=object),
        "phone": first["phone"].to_numpy(dtype=object),
        "email": first["email"].to_numpy(dtype=object),
        "roles": joined.reindex(pid).to_numpy(dtype=object),
        "identifier": first["identifier"].to_numpy(dtype=object),
        "contact_name": first["contact_name"].to_numpy(dtype=object),
    })
    return out
