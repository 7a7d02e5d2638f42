"""Naive references: the analyses written the way a data scientist first writes them.

These are the yardsticks of ``benchmarks/run.py``: a pandas ``groupby().apply``
per tender for the price screens, a Python loop over tenders with a ``dict``
for co-bidding pair counts, the typed procurement graph rebuilt from the
market's tables (per-row Python normalisers, dict blocking and one rapidfuzz
call per candidate pair for entity resolution, networkx ``add_edge`` by
``add_edge``), a networkx co-bidding graph and networkx Louvain for
co-bidding communities. They compute the *same numbers* as the library (the
checks below assert it) so that the speed-up the benchmark reports compares
equal work.

Nothing here is used by the library; it is deliberately straightforward,
readable code.
"""

from __future__ import annotations

import ipaddress
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from itertools import combinations
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from rapidfuzz import fuzz

# The rules' data (word lists, patterns), not their code.
from collusion.graph._resolution import (
    _ADDRESS_ABBREVIATIONS,
    _ADDRESS_COUNTRY_RE,
    _DOMAIN_ALIASES,
    _LEGAL_FORM_RE,
    DOT_INSENSITIVE_DOMAINS,
    GENERIC_ADDRESS_WORDS,
    GENERIC_NAME_WORDS,
    PLUS_TAG_DOMAINS,
)
from collusion.graph._schema import PARTY_KIND_ALIASES

__all__ = [
    "NAIVE_SCREENS",
    "compare_graphs",
    "compare_pair_frames",
    "compare_screens",
    "membership_modularity",
    "naive_cobid_counts",
    "naive_cobid_network",
    "naive_cobid_pairs",
    "naive_communities",
    "naive_edges_graph",
    "naive_price_screens",
    "naive_typed_graph",
    "partition_modularity",
    "plain_tables",
    "resolve",
]

#: Screens computed by :func:`naive_price_screens` (the columns of
#: ``collusion.features.price_screens`` without ``discount``).
NAIVE_SCREENS: tuple[str, ...] = (
    "n_bids", "cv", "spd", "diffp", "rd", "rdnor", "rdalt", "kurt", "skew", "kstest",
)


# ----------------------------------------------------------------- price screens
def _one_tender(prices: pd.Series) -> pd.Series:
    """Textbook screens of one tender's bids (Imhof 2018; Huber & Imhof 2019)."""
    b = np.sort(prices.to_numpy(dtype=float))
    n = len(b)
    nan = float("nan")
    out = dict.fromkeys(NAIVE_SCREENS, nan)
    out["n_bids"] = n
    if n >= 2:
        const = b[-1] == b[0]
        mean = b.mean()
        out["cv"] = 0.0 if const else b.std(ddof=1) / mean
        out["spd"] = (b[-1] - b[0]) / b[0]
        out["diffp"] = (b[1] - b[0]) / b[0]
        gaps = np.diff(b)
        if not const:
            out["rdnor"] = (b[1] - b[0]) / gaps.mean()
            # KS distance to the uniform distribution on [b1, bn], the statistic of
            # scipy.stats.kstest(b, "uniform", args=(b1, bn - b1)) written out:
            # scipy's call also computes a p-value and costs more than all the
            # other screens together, which would flatter the library's speed-up.
            f = (b - b[0]) / (b[-1] - b[0])
            i = np.arange(1, n + 1)
            out["kstest"] = max((i / n - f).max(), (f - (i - 1) / n).max())
        if n >= 3:
            losing = b[1:]
            if losing[-1] > losing[0]:
                out["rd"] = (b[1] - b[0]) / losing.std(ddof=1)
                out["rdalt"] = (b[1] - b[0]) / gaps[1:].mean()
            if not const:
                out["skew"] = prices.skew()
        if n >= 4 and not const:
            out["kurt"] = prices.kurt()
    return pd.Series(out)


def naive_price_screens(tender: Any, price: Any) -> pd.DataFrame:
    """Price screens with ``groupby("tender").apply`` (one Python call per tender).

    Parameters
    ----------
    tender : array-like of int
        Tender code of each bid.
    price : array-like of float
        Bid prices.

    Returns
    -------
    pandas.DataFrame
        Indexed by tender code (tenders that have bids), columns :data:`NAIVE_SCREENS`.

    Examples
    --------
    >>> s = naive_price_screens([0, 0, 0, 0], [100.0, 110.0, 120.0, 130.0])
    >>> s[["spd", "diffp", "rdnor", "kstest"]].round(4).values.tolist()
    [[0.3, 0.1, 1.0, 0.25]]
    """
    bids = pd.DataFrame({"tender": np.asarray(tender), "price": np.asarray(price, dtype=float)})
    out = bids.groupby("tender")["price"].apply(_one_tender).unstack()
    out = out[list(NAIVE_SCREENS)].astype(float)
    out["n_bids"] = out["n_bids"].astype(np.int64)
    out.index.name = "tender"
    return out


def compare_screens(naive: pd.DataFrame, fast: pd.DataFrame, *, rtol: float = 1e-9, atol: float = 1e-9) -> dict:
    """Compare naive and library screens tender by tender.

    Tenders missing from ``naive`` (no bids) must have ``n_bids == 0`` in
    ``fast``. Values agree when both are NaN or ``|a - b| <= atol + rtol·|b|``.

    Returns
    -------
    dict
        ``ok``, ``tenders`` compared, ``values`` compared, ``mismatches``,
        ``nan_mismatches``, ``max_abs_diff`` and ``max_rel_diff`` over all screens,
        and ``worst`` (screen, tender, naive, fast) of the largest relative diff.
    """
    cols = [c for c in NAIVE_SCREENS if c in fast.columns]
    f = fast.loc[naive.index, cols].to_numpy(dtype=float)
    n = naive[cols].to_numpy(dtype=float)
    both_nan = np.isnan(f) & np.isnan(n)
    nan_mismatch = np.isnan(f) ^ np.isnan(n)
    with np.errstate(invalid="ignore"):
        diff = np.where(both_nan | nan_mismatch, 0.0, np.abs(f - n))
        rel = diff / np.maximum(np.abs(f), 1e-300)
    close = both_nan | (~nan_mismatch & (diff <= atol + rtol * np.abs(np.nan_to_num(f))))
    absent = fast.index.difference(naive.index)
    empty_ok = bool((fast.loc[absent, "n_bids"] == 0).all()) if len(absent) else True
    worst: dict[str, Any] = {}
    if rel.size:
        i, j = np.unravel_index(int(np.argmax(np.where(np.isfinite(rel), rel, 0.0))), rel.shape)
        worst = {"screen": cols[j], "tender": int(naive.index[i]), "naive": float(n[i, j]), "fast": float(f[i, j])}
    return {
        "ok": bool(close.all() and empty_ok),
        "tenders": int(len(naive)),
        "values": int(close.size),
        "mismatches": int((~close).sum()),
        "nan_mismatches": int(nan_mismatch.sum()),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "max_rel_diff": float(np.nanmax(rel)) if rel.size else 0.0,
        "worst": worst,
    }


# ------------------------------------------------------------------ co-bidding
def naive_cobid_counts(tender: Any, bidder: Any) -> dict[tuple[int, int], int]:
    """Tenders each pair of firms bid in together: a loop over tenders into a dict.

    Returns
    -------
    dict
        ``(a, b) -> count`` for unordered pairs ``a < b`` of bidder codes.

    Examples
    --------
    >>> naive_cobid_counts([0, 0, 0, 1, 1], [3, 1, 2, 1, 3])
    {(1, 2): 1, (1, 3): 2, (2, 3): 1}
    """
    bids = pd.DataFrame({"tender": np.asarray(tender), "bidder": np.asarray(bidder)})
    pairs: dict[tuple[int, int], int] = defaultdict(int)
    for _, firms in bids.groupby("tender")["bidder"]:
        for a, b in combinations(sorted(set(firms.tolist())), 2):
            pairs[(a, b)] += 1
    return dict(sorted(pairs.items()))


def naive_cobid_pairs(tender: Any, bidder: Any, winner: Any) -> pd.DataFrame:
    """The pair features of ``cobid_pairs(B, W)``: a loop over tenders into dicts, then one frame.

    Per tender, the set of bidders and of winners; per unordered pair of
    bidders ``a < b``, the tenders they met in and how many of those each won.
    Ratios and the binomial under-winning tail are then computed on the frame
    of pairs (vectorised, as anyone would).

    Examples
    --------
    >>> p = naive_cobid_pairs([0, 0, 1, 1, 2, 2, 3], [0, 1, 0, 1, 0, 2, 1], [1, 0, 1, 0, 0, 1, 1])
    >>> p[["company_a", "company_b", "n_cobids", "wins_a", "wins_b"]].values.tolist()
    [[0, 1, 2, 2, 0], [0, 2, 1, 0, 1]]
    """
    from scipy import stats

    # Plain Python containers, not a DataFrame groupby: per-group pandas overhead would make the
    # reference slower than a data scientist's loop needs to be.
    bidders_of: dict[int, set] = defaultdict(set)
    winners_of: dict[int, set] = defaultdict(set)
    for t, f, w in zip(np.asarray(tender).tolist(), np.asarray(bidder).tolist(),
                       np.asarray(winner, dtype=bool).tolist()):
        bidders_of[t].add(f)
        if w:
            winners_of[t].add(f)
    n_cobids: dict[tuple[int, int], int] = defaultdict(int)
    wins_a: dict[tuple[int, int], int] = defaultdict(int)
    wins_b: dict[tuple[int, int], int] = defaultdict(int)
    n_tenders: dict[int, int] = defaultdict(int)
    n_wins: dict[int, int] = defaultdict(int)
    for t, bidders in bidders_of.items():
        firms = sorted(bidders)
        won = winners_of.get(t, set())
        for f in firms:
            n_tenders[f] += 1
            n_wins[f] += f in won
        for a, b in combinations(firms, 2):
            n_cobids[(a, b)] += 1
            wins_a[(a, b)] += a in won
            wins_b[(a, b)] += b in won
    keys = sorted(n_cobids)
    out = pd.DataFrame(keys, columns=["company_a", "company_b"], dtype=np.int64)
    out["n_cobids"] = [n_cobids[k] for k in keys]
    out["n_a"] = out["company_a"].map(n_tenders)
    out["n_b"] = out["company_b"].map(n_tenders)
    out["jaccard"] = out["n_cobids"] / (out["n_a"] + out["n_b"] - out["n_cobids"])
    out["exclusivity_a"] = out["n_cobids"] / out["n_a"]
    out["exclusivity_b"] = out["n_cobids"] / out["n_b"]
    out["wins_a"] = [wins_a[k] for k in keys]
    out["wins_b"] = [wins_b[k] for k in keys]
    both = out["wins_a"] + out["wins_b"]
    out["win_asymmetry"] = ((out["wins_a"] - out["wins_b"]).abs() / both).where(both > 0)
    for side, firm in (("a", "company_a"), ("b", "company_b")):
        # the firm's win rate in the tenders it bid without the partner; 0 when there are none
        outside = out[f"n_{side}"] - out["n_cobids"]
        p = ((out[firm].map(n_wins) - out[f"wins_{side}"]) / outside).where(outside > 0, 0.0).clip(0.0, 1.0)
        tail = -stats.binom.logcdf(out[f"wins_{side}"], out["n_cobids"], p) / np.log(10.0)
        out[f"underwin_{side}"] = np.maximum(np.where(np.isfinite(tail), tail, 0.0), 0.0)
    return out


def compare_pair_frames(naive: pd.DataFrame, fast: pd.DataFrame) -> dict:
    """Every pair and every column of the naive pair frame against ``cobid_pairs``'s.

    Counts must be identical; ratios and tails equal to ``1e-9`` (abs + rel), NaN where NaN.
    """
    cols = [c for c in naive.columns if c in fast.columns]
    f = fast[cols].reset_index(drop=True)
    n = naive[cols].reset_index(drop=True)
    same_pairs = len(n) == len(f) and bool((n[["company_a", "company_b"]].to_numpy()
                                             == f[["company_a", "company_b"]].to_numpy()).all())
    differ: dict[str, int] = {}
    if same_pairs:
        for c in cols:
            x, y = n[c].to_numpy(dtype=np.float64), f[c].to_numpy(dtype=np.float64)
            close = np.isclose(x, y, rtol=1e-9, atol=1e-9) | (np.isnan(x) & np.isnan(y))
            if not close.all():
                differ[c] = int((~close).sum())
    return {
        "ok": same_pairs and not differ and len(cols) == len(naive.columns),
        "pairs": len(n),
        "columns": len(cols),
        "fast_pairs": len(f),
        "mismatches": differ,
    }


# ---------------------------------------------------------------------- graphs
# The typed procurement graph from the market's input tables, written the way
# a data scientist writes it: one plain Python function per normalisation rule
# applied row by row with ``Series.map``, entity resolution with dicts for the
# blocking and one rapidfuzz call per candidate pair, and a networkx
# MultiDiGraph filled ``add_edge`` by ``add_edge`` from ``itertuples``. The
# rules are the ones ``collusion.graph`` documents (normalize_phone,
# normalize_name, match_names...); only their word lists and patterns are
# imported, so both sides apply the same rules with independent code.

#: Node type of each lower-cased ``parties.kind`` (blanks and dashes as ``_``).
_PARTY_KIND = PARTY_KIND_ALIASES
#: Party types whose names are matched (persons and experts are not: two people
#: called 张伟 are usually two people).
NAME_TYPES: tuple[str, ...] = ("company", "buyer", "agent")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_EXTENSION = re.compile(r"(?i)\s*(?:转|分机|ext\.?|x|#).*$")
_NON_DIGIT = re.compile(r"\D")
_ONE_DIGIT_REPEATED = re.compile(r"\+?(\d)\1*")
_EMAIL = re.compile(r"^(.+)@([^@]+?)\.?$")
_QUAD = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")
_NON_WORD = re.compile(r"[\W_]+")
_BLANKS = re.compile(r"\s+")
_LEGAL_FORM = re.compile(_LEGAL_FORM_RE)
_COUNTRY = re.compile(_ADDRESS_COUNTRY_RE)
_ADDRESS_WORD = re.compile(rf"\b({'|'.join(_ADDRESS_ABBREVIATIONS)})\b")


def _text(value: Any) -> str | None:
    """Unicode NFKC and trimmed, ``None`` when missing or blank (every rule starts here)."""
    if not isinstance(value, str):
        if value is None or pd.isna(value):
            return None
        # a phone read as a float must not gain a ".0"
        value = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return unicodedata.normalize("NFKC", value).strip() or None


def norm_phone(value: Any) -> str | None:
    """``collusion.graph.normalize_phone`` for one value.

    >>> norm_phone("0086 13800138000 转 123"), norm_phone("+86 10 6275 1234"), norm_phone("00000000")
    ('13800138000', '01062751234', None)
    """
    v = _text(value)
    if v is None:
        return None
    v = _EXTENSION.sub("", v)
    plus = v.startswith("+")
    digits = _NON_DIGIT.sub("", v)
    double_zero = digits.startswith("00") and not plus
    if double_zero:
        digits = digits[2:]
    china = (plus or double_zero) and digits.startswith("86")
    if china:
        digits = digits[2:]
    foreign = (plus or double_zero) and not china
    # a domestic number longer than a mobile that ends in one carries a prefix
    if not foreign and len(digits) > 11 and _MOBILE.fullmatch(digits[-11:]):
        digits = digits[-11:]
    # +86 10 ... gets its trunk 0 back, to equal 010 ...
    if china and not _MOBILE.fullmatch(digits) and not digits.startswith("0"):
        digits = "0" + digits
    if foreign:
        digits = "+" + digits
    if _ONE_DIGIT_REPEATED.fullmatch(digits):  # 00000000, 11111111111: placeholders
        return None
    return digits or None


def norm_email(value: Any) -> str | None:
    """``collusion.graph.normalize_email`` for one value."""
    v = _text(value)
    if v is None:
        return None
    v = v.casefold()
    v = v.removeprefix("mailto:").strip("<> ")
    m = _EMAIL.match(v)
    if m is None:
        return v or None
    local, domain = m.groups()
    domain = _DOMAIN_ALIASES.get(domain, domain)
    if domain in PLUS_TAG_DOMAINS:
        local = local.split("+", 1)[0]
    if domain in DOT_INSENSITIVE_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def norm_ip(value: Any) -> str | None:
    """``collusion.graph.normalize_ip`` for one value (invalid values kept as cleaned text)."""
    v = _text(value)
    if v is None:
        return None
    v = v.lower()
    v = re.sub(r"^\[([^\]]*)\](?::\d+)?$", r"\1", v)  # [v6]:port
    v = re.sub(r"^(\d+\.\d+\.\d+\.\d+):\d+$", r"\1", v)  # v4:port
    v = re.sub(r"%.*$", "", v)  # v6 zone
    m = _QUAD.match(v)
    if m is not None:  # dotted quads may have leading zeros, which ipaddress rejects
        octets = [int(x) for x in m.groups()]
        if max(octets) > 255:
            return v
        if octets[0] == 127 or octets == [0, 0, 0, 0] or octets == [255, 255, 255, 255]:
            return None
        return ".".join(map(str, octets))
    try:
        addr = ipaddress.ip_address(v)
    except ValueError:
        return v
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return None if addr.is_loopback or addr.is_unspecified else addr.compressed


def norm_mac(value: Any) -> str | None:
    """``collusion.graph.normalize_mac`` for one value (invalid values kept as cleaned text)."""
    v = _text(value)
    if v is None:
        return None
    v = re.sub(r"[\s:\-.]", "", v.lower())
    if not re.fullmatch(r"[0-9a-f]{12}", v):
        return v or None
    if v in ("000000000000", "ffffffffffff"):
        return None
    return ":".join(v[i : i + 2] for i in range(0, 12, 2))


def norm_account(value: Any) -> str | None:
    """``collusion.graph.normalize_account`` for one value."""
    v = _text(value)
    if v is None:
        return None
    v = re.sub(r"[\s\-_./]", "", v.upper())
    return None if not v or re.fullmatch(r"0+", v) else v


def norm_token(value: Any) -> str | None:
    """Document fingerprints: width, case and blanks only."""
    v = _text(value)
    return None if v is None else (_BLANKS.sub("", v.casefold()) or None)


def _words(v: str) -> str:
    return _NON_WORD.sub(" ", v.casefold()).strip()


def norm_name(value: Any) -> str | None:
    """``collusion.graph.normalize_name`` for one value: the matching key of a name.

    >>> norm_name("北京华建（集团）股份有限公司"), norm_name("ＡＢＣ Construction Co., Ltd.")
    ('北京华建', 'abcconstruction')
    """
    v = _text(value)
    if v is None:
        return None
    v = _words(v)
    stripped = v
    for _ in range(4):  # legal forms stack: 集团股份有限公司, group co ltd
        stripped = _LEGAL_FORM.sub("", stripped)
    return _BLANKS.sub("", stripped or v) or None  # a bare legal form is kept


def norm_address(value: Any) -> str | None:
    """``collusion.graph.normalize_address`` for one value."""
    v = _text(value)
    if v is None:
        return None
    v = _COUNTRY.sub("", _words(v))
    v = _ADDRESS_WORD.sub(lambda m: _ADDRESS_ABBREVIATIONS[m.group(1)], v)
    return _BLANKS.sub("", v) or None


def _contact(value: Any) -> tuple[str, str | None]:
    """The bids' ``contact`` column holds phones and e-mails: a value with "@" is an e-mail."""
    if isinstance(value, str) and "@" in value:
        return "email", norm_email(value)
    return "phone", norm_phone(value)


# -- entity resolution
def _is_cjk(key: str) -> bool:
    return any(ord(ch) >= 0x2E80 for ch in key)


def _grams(key: str) -> set[str]:
    """Character bigrams of CJK keys, trigrams of others (of the first 48 characters); a short key is one gram."""
    key = key[:48]
    n = 2 if _is_cjk(key) else 3
    return {key[i : i + n] for i in range(max(len(key) - n + 1, 1))}


def _candidate_pairs(keys: list[str], n_keys: int = 4, max_block: int = 50) -> set[tuple[str, str]]:
    """Keys sharing one of their ``n_keys`` rarest grams (grams in 2 to ``max_block`` keys)."""
    grams = {key: _grams(key) for key in keys}
    df = Counter(g for gs in grams.values() for g in gs)
    blocks: dict[str, list[str]] = defaultdict(list)
    for key, gs in grams.items():
        rarest = sorted((df[g], g) for g in gs if 2 <= df[g] <= max_block)[:n_keys]
        for _, g in rarest:
            blocks[g].append(key)
    return {(a, b) if a < b else (b, a) for members in blocks.values() for a, b in combinations(members, 2)}


def _common_bigrams(keys: list[str], share: float = 0.005, min_count: int = 5) -> set[str]:
    """Bigrams in at least ``share`` of the CJK keys (and ``min_count``): cities, trade words."""
    cjk = [key[:48] for key in keys if _is_cjk(key[:48])]
    df = Counter(g for key in cjk for g in {key[i : i + 2] for i in range(len(key) - 1)})
    return {g for g, n in df.items() if n >= max(min_count, share * len(cjk))}


def _residue(key: str, common: set[str], generic: re.Pattern[str]) -> str:
    """What is left of a key once generic words and common CJK bigrams are removed."""
    drop = [False] * len(key)
    for m in generic.finditer(key):
        drop[m.start() : m.end()] = [True] * (m.end() - m.start())
    if _is_cjk(key):
        for i in range(len(key) - 1):
            if key[i : i + 2] in common:
                drop[i] = drop[i + 1] = True
    return "".join(ch for ch, d in zip(key, drop) if not d)


def _same_core(a: str, b: str) -> bool:
    """Two residues name the same entity: one contains (Latin: starts with) the other."""
    if not a or not b:
        return False
    if _is_cjk(a + b):
        return a in b or b in a
    return a.startswith(b) or b.startswith(a)


def resolve(keys: Mapping[Any, str], order: Callable[[Any], Any], generic_words: Iterable[str], *,
            threshold: float = 90) -> list[tuple[Any, Any, float, str]]:
    """``same_as`` links between nodes of one type from their matching keys.

    Nodes with equal keys link to the first of them (a star); two distinct keys
    whose rapidfuzz ``ratio`` reaches ``threshold`` and whose distinctive parts
    agree link their first nodes. ``order`` sorts nodes as the graph numbers them.

    Returns
    -------
    list
        ``(node, node, similarity 0-100, "exact" | "fuzzy")``, first node first.

    Examples
    --------
    >>> keys = {"C1": "北京华建工程", "C2": "北京华建工程", "C3": "北京华建工程建设", "C4": "上海申通物流"}
    >>> resolve(keys, order=lambda node: node, generic_words=GENERIC_NAME_WORDS, threshold=80)
    [('C1', 'C2', 100.0, 'exact'), ('C1', 'C3', 85.7143, 'fuzzy')]
    """
    members: dict[str, list[Any]] = defaultdict(list)
    for node, key in keys.items():
        members[key].append(node)
    links = []
    for nodes in members.values():
        nodes.sort(key=order)
        links += [(nodes[0], other, 100.0, "exact") for other in nodes[1:]]
    distinct = list(members)
    common = _common_bigrams(distinct)
    generic = re.compile("|".join(sorted(map(re.escape, generic_words), key=len, reverse=True)))
    residue: dict[str, str] = {}
    for a, b in _candidate_pairs(distinct):
        sim = round(fuzz.ratio(a, b, score_cutoff=threshold), 4)
        if sim < threshold:
            continue
        for key in (a, b):
            if key not in residue:
                residue[key] = _residue(key, common, generic)
        if _same_core(residue[a], residue[b]):
            links.append((*sorted((members[a][0], members[b][0]), key=order), sim, "fuzzy"))
    return links


def plain_tables(market: Any) -> dict[str, pd.DataFrame]:
    """The market's tables as a data scientist loads them: ids and text as plain Python strings.

    The validated market stores them as pandas Categoricals (one code per row),
    which the library's kernels exploit; the naive code starts from values.
    """
    return {name: table.astype({c: object for c in table.columns if isinstance(table[c].dtype, pd.CategoricalDtype)})
            for name, table in market.items()}


def naive_typed_graph(tables: Mapping[str, pd.DataFrame], entities: Mapping[str, Iterable[str]], *,
                      threshold: float = 90) -> nx.MultiDiGraph:
    """The typed procurement graph of ``collusion.graph.build_graph``, from the input tables.

    Parameters
    ----------
    tables : mapping
        Table name -> DataFrame (:func:`plain_tables` of a market).
    entities : mapping
        Entity type -> ids of the market's namespace (``market.entities``). The
        graph numbers these nodes first and parties found only in the parties
        table after them; which node of a group of equal names is the centre
        of its ``same_as`` star follows that order.
    threshold : float, default 90
        rapidfuzz ``ratio`` a fuzzy ``same_as`` link needs (names and addresses).

    Returns
    -------
    networkx.MultiDiGraph
        Nodes ``(type, id)`` (trace nodes: ``(type, normalised value)``); every
        edge has its ``relation`` and the attributes of the library's edge tables.
    """
    G = nx.MultiDiGraph()
    get = tables.get

    tenders, projects = get("tenders"), get("projects")
    for t in tenders.itertuples(index=False):
        if isinstance(t.buyer_id, str):
            G.add_edge(("buyer", t.buyer_id), ("tender", t.tender_id), relation="organizes")
        if isinstance(t.agent_id, str):
            G.add_edge(("agent", t.agent_id), ("tender", t.tender_id), relation="handles")
        if isinstance(t.project_id, str):
            G.add_edge(("tender", t.tender_id), ("project", t.project_id), relation="part_of")
    if projects is not None:
        for p in projects.itertuples(index=False):
            if isinstance(p.buyer_id, str):
                G.add_edge(("buyer", p.buyer_id), ("project", p.project_id), relation="owns")

    bids = get("bids")
    bids = bids.assign(
        rank=bids.groupby("tender_id")["price"].rank(method="min").astype(int),  # ties share the lower rank
        ip=bids["ip"].map(norm_ip),
        mac=bids["mac"].map(norm_mac),
        doc_fingerprint=bids["doc_fingerprint"].map(norm_token),
        bond_account=bids["bond_account"].map(norm_account),
        contact=bids["contact"].map(_contact),  # (trace type, value)
    )
    for b in bids.itertuples(index=False):
        firm, tender = ("company", b.bidder_id), ("tender", b.tender_id)
        G.add_edge(firm, tender, relation="bids", price=b.price, rank=b.rank, is_winner=b.is_winner,
                   disqualified=b.disqualified)
        if b.is_winner:
            G.add_edge(firm, tender, relation="wins", price=b.price)
        for trace_type, value, source in (("ip", b.ip, "bids.ip"), ("mac", b.mac, "bids.mac"),
                                          ("doc_fingerprint", b.doc_fingerprint, "bids.doc_fingerprint"),
                                          ("account", b.bond_account, "bids.bond_account"),
                                          (*b.contact, "bids.contact")):
            if isinstance(value, str):  # map() results are str or missing
                G.add_edge(firm, (trace_type, value), relation="uses", source=source, tender=b.tender_id)

    evaluations = get("evaluations")
    if evaluations is not None:
        panel = Counter()
        for e in evaluations.itertuples(index=False):
            G.add_edge(("expert", e.expert_id), ("company", e.bidder_id), relation="scores", score=e.score,
                       tender=e.tender_id)
            panel[(e.expert_id, e.tender_id)] += 1
        for (expert, tender), n in panel.items():
            G.add_edge(("expert", expert), ("tender", tender), relation="evaluates", n_scores=n)

    contracts = get("contracts")
    if contracts is not None:
        for c in contracts.itertuples(index=False):
            contract = ("contract", c.contract_id)
            G.add_edge(("tender", c.tender_id), contract, relation="awarded", amount=c.amount, signed_at=c.signed_at)
            G.add_edge(("company", c.winner_id), contract, relation="signs", amount=c.amount)
            if isinstance(c.builder_id, str):
                G.add_edge(("company", c.builder_id), contract, relation="builds")
            if isinstance(c.project_manager_id, str):
                G.add_edge(("person", c.project_manager_id), contract, relation="manages")

    payments = get("payments")
    if payments is not None:
        payments = payments.assign(payee_account=payments["payee_account"].map(norm_account))
        for p in payments.itertuples(index=False):
            if isinstance(p.payee_id, str):
                G.add_edge(("contract", p.contract_id), ("company", p.payee_id), relation="paid", amount=p.amount,
                           paid_at=p.paid_at)
                if isinstance(p.payee_account, str):
                    G.add_edge(("company", p.payee_id), ("account", p.payee_account), relation="uses",
                               source="payments.payee_account", tender=None)

    # Parties: the node type of each party from its kind; relation endpoints the
    # parties table does not type are persons (source) and companies (target).
    parties, relations = get("parties"), get("relations")
    party_type: dict[str, str] = {}
    if parties is not None:
        for p in parties.itertuples(index=False):
            kind = re.sub(r"[\s\-]+", "_", str(p.kind).strip().casefold())
            if kind in _PARTY_KIND:
                party_type[p.party_id] = _PARTY_KIND[kind]
    if relations is not None:
        for column, default in (("src_id", "person"), ("dst_id", "company")):
            for party in relations[column]:
                party_type.setdefault(party, default)
        for r in relations.itertuples(index=False):
            G.add_edge((party_type[r.src_id], r.src_id), (party_type[r.dst_id], r.dst_id), relation="relations",
                       kind=r.kind, source="relations")
    names: dict[str, dict[str, str]] = defaultdict(dict)  # node type -> party -> name key
    if parties is not None:
        parties = parties.assign(address=parties["address"].map(norm_address), phone=parties["phone"].map(norm_phone),
                                 email=parties["email"].map(norm_email), name=parties["name"].map(norm_name))
        for p in parties.itertuples(index=False):
            if p.party_id not in party_type:
                continue
            node = (party_type[p.party_id], p.party_id)
            if isinstance(p.legal_rep, str):
                G.add_edge(("person", p.legal_rep), node, relation="relations", kind="legal_rep",
                           source="parties.legal_rep")
            for trace_type, value in (("address", p.address), ("phone", p.phone), ("email", p.email)):
                if isinstance(value, str):
                    G.add_edge(node, (trace_type, value), relation="uses", source=f"parties.{trace_type}", tender=None)
            if isinstance(p.name, str):
                names[node[0]][p.party_id] = p.name

    # Entity resolution: parties of one type with equal or similar names, and
    # similar addresses (distinct address nodes differ, so only fuzzy links).
    for node_type in NAME_TYPES:
        known = set(entities[node_type])

        def order(party: str, known: set = known) -> tuple[bool, str]:  # market ids first, then by id
            return party not in known, party

        for a, b, sim, method in resolve(names[node_type], order, GENERIC_NAME_WORDS, threshold=threshold):
            G.add_edge((node_type, a), (node_type, b), relation="same_as", weight=sim / 100,
                       method=f"name_{method}")
    addresses = {value: value for kind, value in G.nodes if kind == "address"}
    for a, b, sim, _ in resolve(addresses, lambda value: value, GENERIC_ADDRESS_WORDS, threshold=threshold):
        G.add_edge(("address", a), ("address", b), relation="same_as", weight=sim / 100, method="address_fuzzy")
    return G


def _plain(value: Any) -> Any:
    """A hashable, comparable attribute value: numpy scalars as Python, NaN and NaT as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _library_edges(G: Any):
    """``(edge type, src id, dst id, attributes)`` of every edge of a ``ProcurementGraph``, ids as labels."""
    tender_ids = G.nodes("tender")["id"].to_numpy(dtype=object)
    for key in G.edge_types:
        src_type, _, dst_type = key
        e = G.edges(key)
        src = G.nodes(src_type)["id"].to_numpy(dtype=object)[e["src"].to_numpy()]
        dst = G.nodes(dst_type)["id"].to_numpy(dtype=object)[e["dst"].to_numpy()]
        columns = [c for c in e.columns if c not in ("src", "dst")]
        values = []
        for c in columns:
            col = e[c]
            if c == "tender":  # a tender code, -1 for none
                codes = col.to_numpy()
                values.append([tender_ids[i] if i >= 0 else None for i in codes.tolist()])
            elif isinstance(col.dtype, pd.CategoricalDtype):
                values.append(col.astype(object).tolist())
            else:
                values.append(col.tolist())  # datetimes as Timestamps
        for s, d, *attrs in zip(src.tolist(), dst.tolist(), *values):
            yield key, s, d, dict(zip(columns, attrs))


def _naive_edges(H: nx.MultiDiGraph):
    for (s_type, s), (d_type, d), data in H.edges(data=True):
        attrs = {k: v for k, v in data.items() if k != "relation"}
        yield (s_type, data["relation"], d_type), s, d, attrs


def compare_graphs(H: nx.MultiDiGraph, G: Any, *, weight_atol: float = 1e-6, examples: int = 3) -> dict:
    """Per edge type, whether the naive graph's edge multiset equals the library's.

    An edge is ``(src id, dst id, attributes)``, node codes mapped to ids (trace
    nodes: their normalised value). Multisets are compared by count and by the
    sum of the edges' hashes mod 2**64 (one pass, constant memory per type);
    the types that differ are then compared edge by edge to report what differs.
    ``same_as`` weights are compared to ``weight_atol``: the library rounds
    similarities computed in float32.

    Returns
    -------
    dict
        ``ok``, ``edges`` (naive), ``library_edges``, ``edge_types``,
        ``mismatched_types`` (type -> missing / extra counts and examples) and
        ``same_as`` (links per type, ``max_weight_diff``).
    """
    mask = (1 << 64) - 1

    def fingerprints(edges):
        out: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        weights: dict[tuple, float] = {}
        for key, s, d, attrs in edges:
            if key[1] == "same_as":
                weights[(key, s, d, attrs["method"])] = float(attrs["weight"])
                attrs = {"method": attrs["method"]}
            fp = out[key]
            fp[0] += 1
            fp[1] = (fp[1] + hash((s, d, tuple(sorted((k, _plain(v)) for k, v in attrs.items()))))) & mask
        return dict(out), weights

    def multiset(edges, key):
        return Counter((s, d, tuple(sorted((k, _plain(v)) for k, v in attrs.items() if k != "weight")))
                       for k, s, d, attrs in edges if k == key)

    naive_fp, naive_w = fingerprints(_naive_edges(H))
    lib_fp, lib_w = fingerprints(_library_edges(G))
    # the library lists an edge type only when it has edges
    differ = sorted(k for k in set(naive_fp) | set(lib_fp) if naive_fp.get(k) != lib_fp.get(k))
    mismatched = {}
    for key in differ:
        a, b = multiset(_naive_edges(H), key), multiset(_library_edges(G), key)
        mismatched["|".join(key)] = {
            "missing_in_naive": sum((b - a).values()), "extra_in_naive": sum((a - b).values()),
            "examples_missing": [repr(x) for x in list(b - a)[:examples]],
            "examples_extra": [repr(x) for x in list(a - b)[:examples]],
        }
    diffs = [abs(w - lib_w[k]) for k, w in naive_w.items() if k in lib_w]
    max_diff = max(diffs, default=0.0)
    same_as = {"|".join(k): fp[0] for k, fp in lib_fp.items() if k[1] == "same_as"}
    return {
        "ok": not differ and max_diff <= weight_atol,
        "edges": H.number_of_edges(),
        "library_edges": sum(fp[0] for fp in lib_fp.values()),
        "edge_types": len(lib_fp),
        "mismatched_types": mismatched,
        "same_as": {"links": same_as, "max_weight_diff": max_diff},
    }


def naive_edges_graph(edges: Mapping[tuple[str, str, str], tuple[Any, Any]]) -> nx.MultiDiGraph:
    """The library's finished edge lists put into networkx, one ``add_edge`` per edge.

    Only the graph-building part of the job: the edge lists are the output of
    ``collusion.graph.build_graph`` (normalised, entity-resolved). Kept as the
    ``graph_edges`` stage of the benchmark, beside the whole job of
    :func:`naive_typed_graph`.

    Parameters
    ----------
    edges : mapping
        ``(src type, relation, dst type) -> (src codes, dst codes)``; nodes
        become ``(type, code)`` tuples and every edge keeps its ``relation``.

    Examples
    --------
    >>> g = naive_edges_graph({("company", "bids", "tender"): ([0, 1], [5, 5])})
    >>> sorted(g.edges(data="relation"))
    [(('company', 0), ('tender', 5), 'bids'), (('company', 1), ('tender', 5), 'bids')]
    """
    G = nx.MultiDiGraph()
    for (src_type, rel, dst_type), (src, dst) in edges.items():
        for s, d in zip(np.asarray(src).tolist(), np.asarray(dst).tolist()):
            G.add_edge((src_type, s), (dst_type, d), relation=rel)
    return G


def naive_cobid_network(pairs: pd.DataFrame) -> nx.Graph:
    """Co-bidding network weighted by Jaccard overlap, one ``add_edge`` per pair.

    ``pairs`` is :func:`naive_cobid_pairs`'s frame (its ``jaccard`` =
    ``n_ab / (n_a + n_b - n_ab)``, the weight ``cobidding_communities`` gets).
    """
    H = nx.Graph()
    for a, b, w, n in zip(pairs["company_a"].tolist(), pairs["company_b"].tolist(), pairs["jaccard"].tolist(),
                          pairs["n_cobids"].tolist()):
        H.add_edge(a, b, weight=w, cobids=n)
    return H


def naive_communities(H: nx.Graph, *, seed: int = 0) -> list[set]:
    """Louvain communities of the co-bidding network (networkx)."""
    return nx.community.louvain_communities(H, weight="weight", seed=seed)


def membership_modularity(H: nx.Graph, membership: Any) -> float:
    """Weighted modularity on ``H`` of a membership array (``-1`` = singleton).

    Lets the library's Leiden groups and networkx Louvain be compared on the
    same graph with the same formula.
    """
    membership = np.asarray(membership)
    groups: dict[int, set] = defaultdict(set)
    for node in H.nodes:
        g = int(membership[node])
        groups[g if g >= 0 else -1 - int(node)].add(node)
    return float(nx.community.modularity(H, list(groups.values()), weight="weight"))


def partition_modularity(H: nx.Graph, communities: Iterable[set]) -> float:
    """Weighted modularity on ``H`` of a list of node sets."""
    return float(nx.community.modularity(H, list(communities), weight="weight"))
