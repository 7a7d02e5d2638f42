"""Entity resolution: normalisers for traces and names, and blocked fuzzy matching.

Two bids "share an IP" only if their IP strings mean the same address; two
firms are "the same firm" only if their names agree once legal forms, width
and case are ignored. This module turns raw strings into canonical keys.

Every normaliser accepts a scalar, a list/array, a :class:`pandas.Series` or a
:class:`pandas.Categorical`. It normalises the *unique* values (the categories
of a Categorical) with vectorised string operations and then recodes, so the
cost grows with the number of distinct values, not with the number of rows:
7.5M bids carry perhaps 200k distinct IPs. A scalar gives a scalar (``None``
for missing), a Categorical (or a categorical Series) gives a Categorical
whose categories are the sorted canonical values, anything else gives an
object array (a Series keeps its index).

Exact trace sharing is equality of normalised values. Fuzzy matching
(:func:`match_names`, :func:`match_addresses`) compares normalised strings
with rapidfuzz inside blocks of candidates that share a rare character n-gram
(or a prefix, or a user key), so the number of comparisons stays near-linear
in the number of distinct names.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._arrays import first_of_runs, pairs_within_runs, unique_ints

__all__ = [
    "DOT_INSENSITIVE_DOMAINS",
    "GENERIC_ADDRESS_WORDS",
    "GENERIC_NAME_WORDS",
    "PLUS_TAG_DOMAINS",
    "match_addresses",
    "match_names",
    "normalize_account",
    "normalize_address",
    "normalize_email",
    "normalize_ip",
    "normalize_mac",
    "normalize_name",
    "normalize_phone",
]

#: Mail providers that ignore dots in the local part (``j.doe`` = ``jdoe``).
DOT_INSENSITIVE_DOMAINS: frozenset[str] = frozenset({"gmail.com", "googlemail.com"})
#: Mail providers that deliver ``name+tag@`` to ``name@``.
PLUS_TAG_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "fastmail.com",
        "proton.me",
        "protonmail.com",
    }
)
_DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}

# Legal forms stripped from the end of company names, longest first so that
# 股份有限公司 is removed whole rather than leaving 股份.
_CJK_LEGAL_FORMS = (
    "股份有限公司",
    "有限责任公司",
    "有限合伙",
    "合伙企业",
    "有限公司",
    "股份公司",
    "集团",
    "公司",
)
_LATIN_LEGAL_FORMS = (
    "incorporated",
    "corporation",
    "company",
    "limited",
    "group",
    "gmbh",
    "corp",
    "llc",
    "llp",
    "ltd",
    "inc",
    "plc",
    "pty",
    "srl",
    "co",
    "ag",
    "bv",
    "lp",
    "sa",
)
# Blanks may split a CJK legal form ("有限 公司"): allow them between its characters.
_LEGAL_FORM_RE = (
    r"(?:\s*(?:"
    + "|".join(r"\s*".join(form) for form in _CJK_LEGAL_FORMS)
    + r")|\s+(?:"
    + "|".join(_LATIN_LEGAL_FORMS)
    + r"))\s*$"
)
#: Words that say what a construction firm does, not who it is. A fuzzy match
#: may differ inside them (a typo in 工程) but not in the rest of the name.
GENERIC_NAME_WORDS: tuple[str, ...] = (
    "建设", "建筑", "工程", "建工", "市政", "路桥", "公路", "桥梁", "隧道", "装饰", "装修", "园林", "绿化", "机电",
    "安装", "水利", "水电", "土木", "土石方", "设计", "咨询", "监理", "造价", "招标", "代理", "项目", "管理", "劳务",
    "环境", "环保", "科技", "实业", "发展", "投资", "贸易", "集团", "电力", "通信", "智能", "消防", "钢结构", "幕墙",
    "construction", "engineering", "building", "municipal", "decoration", "landscaping", "landscape",
    "installation", "electromechanical", "mechanical", "electrical", "water", "conservancy", "civil", "road",
    "bridge", "design", "consulting", "consultancy", "technology", "development", "investment", "management",
    "industrial", "industry", "trading", "group", "holding", "holdings", "services", "international",
)
#: Words of addresses that locate nothing by themselves.
GENERIC_ADDRESS_WORDS: tuple[str, ...] = (
    "省", "市", "区", "县", "镇", "乡", "村", "路", "街", "大街", "大道", "巷", "号", "楼", "栋", "单元", "室", "层",
    "st", "rd", "ave", "blvd", "bldg", "fl", "rm", "ste", "dist", "no",
)
_ADDRESS_COUNTRY_RE = r"^\s*(?:中华人民共和国|中国|people'?s republic of china|p\.?r\.? ?china|china)\s*"
_ADDRESS_ABBREVIATIONS = {
    "street": "st",
    "road": "rd",
    "avenue": "ave",
    "boulevard": "blvd",
    "building": "bldg",
    "floor": "fl",
    "room": "rm",
    "suite": "ste",
    "district": "dist",
    "number": "no",
}
_MOBILE_RE = r"^1[3-9]\d{9}$"


# --------------------------------------------------------------------------- helpers


def _is_scalar(values: Any) -> bool:
    return values is None or isinstance(values, (str, bytes, float, int, np.generic))


def _as_object_series(uniques: Any) -> pd.Series:
    """Unique values as an object Series of str with NaN for missing or blank.

    Object dtype keeps Python ``re`` semantics for ``.str`` methods on every
    pandas version (pandas 3's default string dtype may route regexes to
    pyarrow, which lacks look-arounds).
    """
    arr = np.asarray(uniques, dtype=object)
    if pd.api.types.infer_dtype(arr, skipna=True) not in ("string", "empty"):
        # Numbers (phones read as int, say) become text; loops over distinct values only.
        missing = pd.isna(arr)
        arr = np.array([None if m else (v if isinstance(v, str) else _number_text(v)) for v, m in zip(arr, missing)],
                       dtype=object)
    # NFKC, trimming and blank detection in Arrow's C++ kernels: these run on
    # every distinct value, so they dominate when most values are canonical.
    raw = pa.array(arr, type=pa.string(), from_pandas=True)
    text = pc.utf8_trim_whitespace(_nfkc(raw))
    text = pc.if_else(pc.equal(pc.utf8_length(text), 0), pa.scalar(None, pa.string()), text)
    # Most values come out unchanged: keep their Python strings and build new ones (Arrow's
    # to_numpy, ~0.2 µs per CJK value) only for the values that changed or became missing.
    changed = ~np.array(pc.equal(text, raw).fill_null(False), dtype=bool)
    out = arr.copy()
    out[changed] = text.filter(pa.array(changed)).to_numpy(zero_copy_only=False)
    return pd.Series(out, dtype=object)


# ASCII and CJK unified ideographs (extension A and the base block) have no compatibility
# decomposition and do not combine: text made of them only is its own NFKC form.
_NFKC_STABLE_RE = r"^[\x00-\x7f\x{3400}-\x{4dbf}\x{4e00}-\x{9fff}]*$"


def _nfkc(text: pa.Array) -> pa.Array:
    """``utf8_normalize(text, "NFKC")``, run on the values it can change only.

    Arrow's NFKC costs ~0.4 µs per CJK character (18 ms for 40k addresses, and the
    addresses are normalised twice per graph build); an ASCII test and a regex match
    find the values that are already in NFKC form much faster.
    """
    stable = pc.string_is_ascii(text)
    if pc.all(stable).as_py() is not False:  # all ASCII (or all null / empty)
        return text
    stable = pc.or_kleene(stable, pc.match_substring_regex(text, _NFKC_STABLE_RE))
    stable = np.array(stable.fill_null(True), dtype=bool)
    change = np.flatnonzero(~stable)
    if change.size == 0:
        return text
    if change.size == len(text):
        return pc.utf8_normalize(text, form="NFKC")
    done = pc.utf8_normalize(text.take(pa.array(change)), form="NFKC")
    return pc.replace_with_mask(text, pa.array(~stable), done)


def _arrow_text(s: pd.Series) -> pa.Array:
    """The values of ``s`` (str or missing) as one Arrow ``large_string`` array.

    An Arrow-backed Series hands over its buffers; an object Series is converted once.
    """
    if isinstance(s.dtype, (pd.ArrowDtype, pd.StringDtype)) and hasattr(s.array, "_pa_array"):
        return s.array._pa_array.combine_chunks().cast(pa.large_string())
    return pa.array(s.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)


def _splice(
    s: pd.Series, keep: np.ndarray, kernel: Callable[..., Any], *args: Any
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``s`` where ``keep``, ``kernel`` (run on the other values only) elsewhere.

    ``kernel`` returns canonical values or ``(canonical values, invalid flags)``;
    the result has the same form, kept values being valid.
    """
    if not keep.any():
        return kernel(s, *args)
    slow = np.flatnonzero(~keep)
    canon = s.to_numpy(dtype=object).copy()
    out = kernel(s.iloc[slow].reset_index(drop=True), *args)
    if isinstance(out, tuple):
        canon[slow] = out[0]
        invalid = np.zeros(len(s), dtype=bool)
        invalid[slow] = out[1]
        return canon, invalid
    canon[slow] = out
    return canon


def _number_text(value: Any) -> str:
    # 13800138000.0 (a phone read as float) must not gain a digit.
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _finish(values: pd.Series) -> np.ndarray:
    """Object array with ``None`` for missing or empty results."""
    out = values.to_numpy(dtype=object, copy=True)
    bad = pd.isna(out)
    if len(out):
        bad |= np.fromiter((v == "" if isinstance(v, str) else False for v in out), bool, len(out))
    out[bad] = None
    return out


def _factorize_sorted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(values, sort=True)`` for an object array of str and missing values.

    Codes (-1 for missing) and the sorted distinct values as an object array.
    pandas sorts object arrays by Python comparisons (``safe_sort``), about
    1 s per million distinct strings; this factorises by hash in first-seen
    order and sorts only the distinct values in Arrow, whose byte order of
    UTF-8 is the code point order Python compares by.
    """
    values = np.asarray(values, dtype=object)
    try:
        # Arrow hashes the UTF-8 bytes: cheaper than pandas hashing Python strings (CJK above all).
        encoded = pc.dictionary_encode(pa.array(values, type=pa.large_string(), from_pandas=True))
    except (pa.ArrowException, UnicodeError):  # not all str (or lone surrogates): pandas' own sort
        codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=True, use_na_sentinel=True)
        return codes, np.asarray(uniques, dtype=object)
    codes = encoded.indices.fill_null(-1).to_numpy()
    # The dictionary is in order of first appearance (as pd.factorize's uniques): the first
    # occurrence of value k is where the codes exceed every earlier code. Their Python strings
    # serve as the distinct values, so none is rebuilt from Arrow.
    seen = np.maximum.accumulate(codes)
    first = np.flatnonzero(codes > np.concatenate([[-1], seen[:-1]]))
    if len(first) != len(encoded.dictionary):  # pragma: no cover - Arrow's memo order changed
        raise AssertionError("dictionary_encode did not keep the order of first appearance")
    order = pc.array_sort_indices(encoded.dictionary).to_numpy()
    rank = np.full(len(order) + 1, -1, dtype=np.int64)  # the last slot maps missing (-1) to -1
    rank[order] = np.arange(len(order))
    return rank[codes], values[first[order]]


def _recode(codes: np.ndarray, normed: np.ndarray) -> pd.Categorical:
    """Categorical of canonical values from old ``codes`` and normalised categories."""
    new_codes, uniques = _factorize_sorted(normed)
    codes = np.asarray(codes)
    out = np.full(codes.shape, -1, dtype=np.int64)
    ok = codes >= 0
    out[ok] = new_codes[codes[ok]]
    return pd.Categorical.from_codes(out, categories=pd.Index(np.asarray(uniques, dtype=object)))


def _apply(values: Any, kernel: Callable[[pd.Series], np.ndarray]) -> Any:
    """Run ``kernel`` (unique strings -> canonical object array) over any input shape."""
    if _is_scalar(values):
        return kernel(_as_object_series([values]))[0]
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        cats = values.cat.categories
        normed = kernel(_as_object_series(cats)) if len(cats) else np.empty(0, dtype=object)
        return pd.Series(_recode(values.cat.codes.to_numpy(), normed), index=values.index, name=values.name)
    if isinstance(values, pd.Categorical):
        cats = values.categories
        normed = kernel(_as_object_series(cats)) if len(cats) else np.empty(0, dtype=object)
        return _recode(values.codes, normed)
    arr = np.asarray(values, dtype=object)
    codes, uniques = pd.factorize(arr.ravel(), use_na_sentinel=True)
    normed = kernel(_as_object_series(uniques)) if len(uniques) else np.empty(0, dtype=object)
    out = np.full(codes.shape, None, dtype=object)
    out[codes >= 0] = normed[codes[codes >= 0]]
    out = out.reshape(arr.shape)
    if isinstance(values, pd.Series):
        return pd.Series(out, index=values.index, name=values.name, dtype=object)
    if isinstance(values, pd.Index):
        return pd.Index(out, dtype=object, name=values.name)
    return out


def _check_errors(errors: str) -> None:
    if errors not in ("keep", "coerce", "raise"):
        raise ValueError(f"errors must be 'keep', 'coerce' or 'raise', got {errors!r}")


def _handle_invalid(values: pd.Series, canon: np.ndarray, invalid: np.ndarray, errors: str, what: str) -> np.ndarray:
    if invalid.any():
        if errors == "raise":
            bad = values[invalid].tolist()
            raise ValueError(f"{int(invalid.sum())} invalid {what} value(s), e.g. {bad[:5]}")
        if errors == "coerce":
            canon[invalid] = None
    # errors="keep": the kernel already put the cleaned text there.
    return canon


def _fast_path(pattern: str, *, exclude: Callable[[pa.Array], np.ndarray] | None = None) -> Callable[[Any], Any]:
    """Decorate a kernel so that values already in canonical form skip it.

    Most trace values in an export are already canonical (a plain mobile
    number, a lower-case e-mail); one full-match regex per value is much
    cheaper than the ten string passes of a kernel.
    """
    rx = re.compile(pattern)
    # On ASCII text Python's \d is [0-9], so RE2 (Arrow, in C++) answers the
    # same full match for ASCII values; the rest keep Python's Unicode rules.
    ascii_rx = "^(?:" + pattern.replace(r"\d", "[0-9]") + ")$"

    def fullmatch(s: pd.Series, text: pa.Array) -> np.ndarray:
        fast = np.array(pc.match_substring_regex(text, ascii_rx).fill_null(False), dtype=bool)
        other = np.flatnonzero(~np.array(pc.string_is_ascii(text).fill_null(True), dtype=bool))
        if other.size:
            fast[other] = s.iloc[other].str.fullmatch(rx).fillna(False).to_numpy(dtype=bool)
        return fast

    def decorate(kernel: Callable[..., Any]) -> Callable[..., Any]:
        def run(s: pd.Series, *args: Any) -> Any:
            text = _arrow_text(s)
            fast = fullmatch(s, text)
            if exclude is not None and fast.any():
                fast = fast & ~exclude(text)
            return _splice(s, fast, kernel, *args)

        run.__name__ = kernel.__name__
        run.__doc__ = kernel.__doc__
        return run

    return decorate


def _ip_placeholder(text: pa.Array) -> np.ndarray:
    # RE2 in Arrow, not a Python loop over every IP: the values are trimmed, so ``$`` (end of
    # text in RE2, also before a final newline in Python) means the same in both.
    found = pc.match_substring_regex(text, r"^(?:127\.|0\.0\.0\.0$|255\.255\.255\.255$)")
    return np.array(found.fill_null(False), dtype=bool)


def _email_special(text: pa.Array) -> np.ndarray:
    # Domains whose dot rules apply, or that are aliases, always take the slow path.
    # Arrow's ends_with per suffix: pandas' endswith on an object Series loops in Python.
    special = np.zeros(len(text), dtype=bool)
    for d in sorted(DOT_INSENSITIVE_DOMAINS | set(_DOMAIN_ALIASES)):
        special |= np.array(pc.ends_with(text, "@" + d).fill_null(False), dtype=bool)
    return special


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"


# --------------------------------------------------------------------------- kernels
# Each kernel maps an object Series of unique stripped NFKC strings (NaN for
# missing) to an object array of canonical strings (None for missing). Kernels
# that can tell valid from invalid input also return the invalid mask.


@_fast_path(r"1[3-9]\d{9}")
def _phone_kernel(s: pd.Series) -> np.ndarray:
    # Drop extensions: everything after 转 / 分机 / ext / x / #.
    s = s.str.replace(r"(?i)\s*(?:转|分机|ext\.?|x|#).*$", "", regex=True)
    plus = s.str.startswith("+").fillna(False).to_numpy(dtype=bool)
    digits = s.str.replace(r"\D", "", regex=True)
    # International form: "+CC..." or "00CC...".
    dd = digits.str.startswith("00").fillna(False).to_numpy(dtype=bool) & ~plus
    intl = plus | dd
    digits = digits.where(~dd, digits.str.slice(2))
    cn_intl = intl & digits.str.startswith("86").fillna(False).to_numpy(dtype=bool)
    digits = digits.where(~cn_intl, digits.str.slice(2))
    foreign = intl & ~cn_intl
    # Domestic numbers longer than a mobile that end in a mobile number carry a
    # prefix (86 without "+", trunk 0, IP-dialling 17951...): keep the mobile.
    last11 = digits.str.slice(-11)
    is_mobile_tail = last11.str.match(_MOBILE_RE).fillna(False).to_numpy(dtype=bool)
    long = (digits.str.len() > 11).fillna(False).to_numpy(dtype=bool)
    digits = digits.where(~(~foreign & long & is_mobile_tail), last11)
    # A landline written internationally (+86 10 ...) gets its trunk 0 back, so
    # it equals the domestic form (010 ...).
    mobile = digits.str.match(_MOBILE_RE).fillna(False).to_numpy(dtype=bool)
    add_trunk = cn_intl & ~mobile & ~digits.str.startswith("0").fillna(True).to_numpy(dtype=bool)
    digits = digits.where(~add_trunk, "0" + digits)
    digits = digits.where(~foreign, "+" + digits)
    # Placeholders such as 00000000 or 11111111111 identify nobody.
    placeholder = digits.str.fullmatch(r"\+?(\d)\1*").fillna(False).to_numpy(dtype=bool)
    digits = digits.where(~placeholder, None)
    return _finish(digits)


@_fast_path(r"[a-z0-9_%-]+(?:\.[a-z0-9_%-]+)*@[a-z0-9-]+(?:\.[a-z0-9-]+)+", exclude=_email_special)
def _email_kernel(
    s: pd.Series,
    dot_insensitive: frozenset[str] = DOT_INSENSITIVE_DOMAINS,
    plus_tag: frozenset[str] = PLUS_TAG_DOMAINS,
) -> np.ndarray:
    s = s.str.casefold().str.replace(r"^mailto:", "", regex=True).str.strip("<> ")
    parts = s.str.extract(r"^(.+)@([^@]+?)\.?$")  # always two columns, NaN when no match
    local, domain = parts[0], parts[1]
    valid = local.notna().to_numpy() & domain.notna().to_numpy()
    domain = domain.replace(_DOMAIN_ALIASES)
    tag = domain.isin(plus_tag).to_numpy() & valid
    local = local.where(~tag, local.str.split("+", n=1).str[0])
    dots = domain.isin(dot_insensitive).to_numpy() & valid
    local = local.where(~dots, local.str.replace(".", "", regex=False))
    out = (local + "@" + domain).where(valid, s)
    return _finish(out)


@_fast_path(rf"{_OCTET}(?:\.{_OCTET}){{3}}", exclude=_ip_placeholder)
def _ip_kernel(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    s = s.str.lower()
    # Strip an IPv6 zone, brackets and ports: "[fe80::1%eth0]:443" -> "fe80::1".
    s = s.str.replace(r"^\[([^\]]*)\](?::\d+)?$", r"\1", regex=True)
    s = s.str.replace(r"^(\d+\.\d+\.\d+\.\d+):\d+$", r"\1", regex=True)
    s = s.str.replace(r"%.*$", "", regex=True)
    n = len(s)
    canon = np.full(n, None, dtype=object)
    invalid = np.zeros(n, dtype=bool)
    missing = s.isna().to_numpy()
    # Fast path for dotted quads (also accepts leading zeros, "010.001.1.1",
    # which ipaddress rejects but exports often contain).
    quads = s.str.extract(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")
    is_quad = quads[0].notna().to_numpy()
    if is_quad.any():
        octets = quads[is_quad].astype(np.int64).to_numpy()
        ok = (octets <= 255).all(axis=1)
        text = pd.Series(octets.astype(str).tolist()).str.join(".").to_numpy(dtype=object)
        placeholder = (octets[:, 0] == 127) | (octets == 0).all(axis=1) | (octets == 255).all(axis=1)
        idx = np.flatnonzero(is_quad)
        canon[idx[ok & ~placeholder]] = text[ok & ~placeholder]
        invalid[idx[~ok]] = True
    rest = np.flatnonzero(~is_quad & ~missing)
    # Everything else (IPv6, odd forms) goes through ipaddress, one unique value at a time.
    for i, value in zip(rest, s.to_numpy(dtype=object)[rest]):
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            invalid[i] = True
            continue
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if not (addr.is_loopback or addr.is_unspecified):
            canon[i] = addr.compressed
    canon[invalid] = s.to_numpy(dtype=object)[invalid]
    return canon, invalid


@_fast_path(r"(?:[0-9a-f]{2}:){5}[0-9a-f]{2}",
            exclude=lambda text: np.array(pc.is_in(text, pa.array(["00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"],
                                                                  type=pa.large_string())).fill_null(False), dtype=bool))
def _mac_kernel(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    s = s.str.lower().str.replace(r"[\s:\-.]", "", regex=True)
    valid = s.str.fullmatch(r"[0-9a-f]{12}").fillna(False).to_numpy(dtype=bool)
    colon = s.str.replace(r"(..)(?!$)", r"\1:", regex=True)
    placeholder = s.isin(["000000000000", "ffffffffffff"]).to_numpy()
    out = colon.where(valid & ~placeholder, None).where(~(~valid & s.notna().to_numpy()), s)
    invalid = ~valid & s.notna().to_numpy()
    return _finish(out), invalid


@_fast_path(r"[0-9A-Z]*[1-9A-Z][0-9A-Z]*")
def _account_kernel(s: pd.Series) -> np.ndarray:
    s = s.str.upper().str.replace(r"[\s\-_./]", "", regex=True)
    s = s.where(~s.str.fullmatch(r"0+").fillna(False), None)
    return _finish(s)


@_fast_path(r"[0-9a-z_\-.:/+=]+")
def _token_kernel(s: pd.Series) -> np.ndarray:
    """Opaque tokens such as document fingerprints: width, case and blanks only."""
    return _finish(s.str.casefold().str.replace(r"\s+", "", regex=True))


# Text made of printable ASCII and CJK ideographs only, where Python's Unicode
# classes reduce to explicit RE2 ones: \w is [0-9A-Za-z_] or an ideograph,
# \s is a space (tabs and other blanks are not in the set), casefold is
# lower. Most names and addresses are such text and are normalised by Arrow's
# C++ kernels; the rest take the Python path with the same rules.
_SIMPLE_TEXT_RE = r"^[\x20-\x7e\x{3400}-\x{4dbf}\x{4e00}-\x{9fff}]*$"
_SIMPLE_NON_WORD_RE = r"[^0-9A-Za-z\x{3400}-\x{4dbf}\x{4e00}-\x{9fff}]+"


def _by_text_kind(
    s: pd.Series, simple: Callable[[pa.Array], pa.Array], general: Callable[[pd.Series], np.ndarray]
) -> np.ndarray:
    """Run ``simple`` (Arrow) on values of simple text and ``general`` (pandas) on the others."""
    text = _arrow_text(s)
    is_simple = np.array(pc.match_substring_regex(text, _SIMPLE_TEXT_RE).fill_null(True), dtype=bool)
    out = np.full(len(s), None, dtype=object)
    idx = np.flatnonzero(is_simple)
    if idx.size:
        done = simple(text.take(pa.array(idx)))
        done = pc.if_else(pc.equal(pc.utf8_length(done), 0), pa.scalar(None, done.type), done)
        out[idx] = done.to_numpy(zero_copy_only=False)
    idx = np.flatnonzero(~is_simple)
    if idx.size:
        out[idx] = general(s.iloc[idx].reset_index(drop=True))
    return out


def _simple_words(text: pa.Array) -> pa.Array:
    """Lower case, runs of non-word characters to one blank, trimmed (simple text)."""
    text = pc.replace_substring_regex(pc.utf8_lower(text), _SIMPLE_NON_WORD_RE, " ")
    return pc.utf8_trim_whitespace(text)


def _name_kernel(s: pd.Series) -> np.ndarray:
    return _by_text_kind(s, _name_simple, _name_general)


def _name_simple(text: pa.Array) -> pa.Array:
    words = _simple_words(text)
    stripped = words
    for _ in range(4):
        stripped = pc.replace_substring_regex(stripped, _LEGAL_FORM_RE, "")
    words = pc.if_else(pc.greater(pc.utf8_length(stripped), 0), stripped, words)
    return pc.replace_substring_regex(words, r"\s+", "")


def _name_general(s: pd.Series) -> np.ndarray:
    s = s.str.casefold().str.replace(r"[\W_]+", " ", regex=True).str.strip()
    stripped = s
    # Legal forms can stack ("集团股份有限公司", "group co ltd"): strip repeatedly.
    for _ in range(4):
        stripped = stripped.str.replace(_LEGAL_FORM_RE, "", regex=True)
    # A name that is nothing but a legal form keeps it rather than becoming empty.
    s = stripped.where(stripped.str.len() > 0, s)
    return _finish(s.str.replace(r"\s+", "", regex=True))


# Addresses the kernel leaves as they are: lower-case ASCII letters, digits and CJK ideographs
# only (NFKC, case and blank rules change none of them), no leading country, not a word that is
# abbreviated. The country and word tests are the RE2 patterns of ``_address_simple`` itself.
_CANONICAL_ADDRESS_RE = r"^[0-9a-z\x{3400}-\x{4dbf}\x{4e00}-\x{9fff}]+$"
_ADDRESS_WORD_RE = "(?:^| )(?:" + "|".join(_ADDRESS_ABBREVIATIONS) + ")(?: |$)"


def _address_kernel(s: pd.Series) -> np.ndarray:
    """Canonical addresses; values already canonical skip the kernel's string passes.

    Most addresses are canonical before normalisation, and the address trace nodes are
    normalised a second time by ``same_as`` (the kernel is not idempotent in general, so
    that pass cannot be dropped): three Arrow matches instead of a dozen passes.
    """
    text = _arrow_text(s)
    fixed = pc.and_(
        pc.match_substring_regex(text, _CANONICAL_ADDRESS_RE),
        pc.invert(pc.or_(pc.match_substring_regex(text, _ADDRESS_COUNTRY_RE),
                         pc.match_substring_regex(text, _ADDRESS_WORD_RE))),
    )
    fixed = np.array(fixed.fill_null(False), dtype=bool)
    return _splice(s, fixed, _by_text_kind, _address_simple, _address_general)


def _address_simple(text: pa.Array) -> pa.Array:
    text = pc.replace_substring_regex(_simple_words(text), _ADDRESS_COUNTRY_RE, "")
    # Python's \b between words: words are now split by single blanks, so
    # doubled blanks let each word match with its own blank on both sides.
    # Only the few addresses holding such a word pay for the ten passes.
    has_word = pc.match_substring_regex(text, _ADDRESS_WORD_RE)
    has_word = has_word.fill_null(False)
    if pc.any(has_word).as_py():
        words = pc.replace_substring(text.filter(has_word), " ", "  ")
        for word, abbreviation in _ADDRESS_ABBREVIATIONS.items():
            words = pc.replace_substring_regex(words, rf"(^| ){word}( |$)", rf"\1{abbreviation}\2")
        text = pc.replace_with_mask(text, has_word, words)
    return pc.replace_substring_regex(text, r"\s+", "")


def _address_general(s: pd.Series) -> np.ndarray:
    s = s.str.casefold().str.replace(r"[\W_]+", " ", regex=True).str.strip()
    s = s.str.replace(_ADDRESS_COUNTRY_RE, "", regex=True)
    words = "|".join(_ADDRESS_ABBREVIATIONS)
    s = s.str.replace(rf"\b({words})\b", lambda m: _ADDRESS_ABBREVIATIONS[m.group(1)], regex=True)
    return _finish(s.str.replace(r"\s+", "", regex=True))


# --------------------------------------------------------------------------- public normalisers


def normalize_phone(values: Any) -> Any:
    """Canonical phone numbers: digits only, country prefix and extensions removed.

    Rules, in order: full-width digits become ASCII (NFKC); an extension
    (``转``, ``分机``, ``ext``, ``x``, ``#`` and what follows) is dropped; every
    non-digit is dropped; an international prefix ``+86`` / ``0086`` is
    removed; a domestic number longer than 11 digits that ends in a Chinese
    mobile number (``1[3-9]`` + 9 digits) keeps those last 11 digits (this
    removes ``86`` without ``+``, a trunk ``0`` or an IP-dialling prefix); a
    landline written internationally gets its trunk ``0`` back so that
    ``+86 10 ...`` equals ``010 ...``; other countries keep ``+`` and their
    country code so they cannot collide with domestic numbers. Numbers made of
    one repeated digit are placeholders and become missing.

    Parameters
    ----------
    values : str, list, array, Series or Categorical
        Raw phone numbers.

    Returns
    -------
    Same shape as ``values`` (see the module docstring); ``None`` for missing.

    Examples
    --------
    >>> from collusion.graph import normalize_phone
    >>> normalize_phone("+86 138-0013-8000")
    '13800138000'
    >>> normalize_phone("0086 13800138000 转 123")
    '13800138000'
    >>> normalize_phone("（010）６２７５ １２３４") == normalize_phone("+86 10 6275 1234")
    True
    >>> normalize_phone("+44 20 7946 0958")
    '+442079460958'
    >>> normalize_phone(["138 0013 8000", "00000000", None]).tolist()
    ['13800138000', None, None]
    """
    return _apply(values, _phone_kernel)


def normalize_email(
    values: Any,
    *,
    dot_insensitive: Sequence[str] = DOT_INSENSITIVE_DOMAINS,
    plus_tag: Sequence[str] = PLUS_TAG_DOMAINS,
) -> Any:
    """Canonical e-mail addresses.

    The address is case-folded (NFKC first, so full-width letters fold too),
    ``mailto:`` and angle brackets are removed, ``googlemail.com`` becomes
    ``gmail.com``; for providers that deliver ``name+tag@`` to ``name@``
    (:data:`PLUS_TAG_DOMAINS`) the tag is dropped, and for providers that
    ignore dots (:data:`DOT_INSENSITIVE_DOMAINS`) dots in the local part are
    dropped. A value without ``local@domain`` is kept as its cleaned string.

    Parameters
    ----------
    values : str, list, array, Series or Categorical
        Raw e-mail addresses.
    dot_insensitive, plus_tag : collection of str
        Domains whose dot / plus-tag rules apply.

    Returns
    -------
    Same shape as ``values``; ``None`` for missing.

    Examples
    --------
    >>> from collusion.graph import normalize_email
    >>> normalize_email("J.Doe+bids@GoogleMail.com")
    'jdoe@gmail.com'
    >>> normalize_email("Zhang.Wei+x@qq.com")
    'zhang.wei+x@qq.com'
    >>> normalize_email("mailto:<Li@163.COM>")
    'li@163.com'
    """
    dots, tags = frozenset(dot_insensitive), frozenset(plus_tag)
    return _apply(values, lambda s: _email_kernel(s, dots, tags))


def normalize_ip(values: Any, *, errors: str = "keep") -> Any:
    """Canonical IPv4/IPv6 addresses.

    Dotted quads are parsed in bulk (leading zeros allowed: ``010.0.0.1`` is
    ``10.0.0.1``); other values go through :mod:`ipaddress` and come out in
    compressed form, IPv4-mapped IPv6 addresses as IPv4. Ports, brackets and
    IPv6 zones are removed. Loopback and unspecified addresses (``127.x``,
    ``0.0.0.0``, ``::``, ``::1``) and ``255.255.255.255`` are placeholders that
    say nothing about who submitted a bid and become missing.

    Parameters
    ----------
    values : str, list, array, Series or Categorical
        Raw addresses.
    errors : {"keep", "coerce", "raise"}
        What to do with values that are not IP addresses: keep the cleaned
        string (so identical junk still matches and is counted by
        :func:`~collusion.graph.build_graph`), make it missing, or raise.

    Returns
    -------
    Same shape as ``values``; ``None`` for missing.

    Examples
    --------
    >>> from collusion.graph import normalize_ip
    >>> normalize_ip(" 192.168.001.010:8080 ")
    '192.168.1.10'
    >>> normalize_ip("[2001:0DB8:0000::0001]:443")
    '2001:db8::1'
    >>> normalize_ip("::ffff:10.0.0.1")
    '10.0.0.1'
    >>> normalize_ip(["127.0.0.1", "999.1.1.1", "not an ip"]).tolist()
    [None, '999.1.1.1', 'not an ip']
    >>> normalize_ip("999.1.1.1", errors="coerce") is None
    True
    """
    _check_errors(errors)

    def kernel(s: pd.Series) -> np.ndarray:
        canon, invalid = _ip_kernel(s)
        return _handle_invalid(s, canon, invalid, errors, "IP")

    return _apply(values, kernel)


def normalize_mac(values: Any, *, errors: str = "keep") -> Any:
    """Canonical MAC addresses ``aa:bb:cc:dd:ee:ff``.

    Separators (``:``, ``-``, ``.``, blanks) are removed and the 12 hex digits
    are lower-cased and regrouped. ``00:00:00:00:00:00`` and
    ``ff:ff:ff:ff:ff:ff`` are placeholders and become missing.

    Parameters
    ----------
    values : str, list, array, Series or Categorical
        Raw MAC addresses.
    errors : {"keep", "coerce", "raise"}
        Values that are not 12 hex digits: keep the cleaned string, make it
        missing, or raise.

    Returns
    -------
    Same shape as ``values``; ``None`` for missing.

    Examples
    --------
    >>> from collusion.graph import normalize_mac
    >>> normalize_mac("00-1A-2B-3C-4D-5E")
    '00:1a:2b:3c:4d:5e'
    >>> normalize_mac("001a.2b3c.4d5e")
    '00:1a:2b:3c:4d:5e'
    >>> normalize_mac(["00:00:00:00:00:00", "xyz"]).tolist()
    [None, 'xyz']
    """
    _check_errors(errors)

    def kernel(s: pd.Series) -> np.ndarray:
        canon, invalid = _mac_kernel(s)
        return _handle_invalid(s, canon, invalid, errors, "MAC")

    return _apply(values, kernel)


def normalize_account(values: Any) -> Any:
    """Canonical bank account numbers: upper-case letters and digits only.

    Blanks, dashes, dots, slashes and underscores are removed (``6222 0212
    3456`` = ``6222-0212-3456``); IBAN letters are upper-cased; an all-zero
    account is a placeholder and becomes missing.

    Parameters
    ----------
    values : str, list, array, Series or Categorical
        Raw account numbers.

    Returns
    -------
    Same shape as ``values``; ``None`` for missing.

    Examples
    --------
    >>> from collusion.graph import normalize_account
    >>> normalize_account("6222 0212-3456 7890")
    '6222021234567890'
    >>> normalize_account("de89 3704 0044 0532 0130 00")
    'DE89370400440532013000'
    >>> normalize_account("０００００") is None
    True
    """
    return _apply(values, _account_kernel)


def normalize_name(values: Any) -> Any:
    """Canonical organisation or person names for matching.

    NFKC (full-width letters, digits and brackets become half-width),
    case-fold, punctuation to blanks, then legal-form suffixes are stripped
    repeatedly from the end (有限公司, 有限责任公司, 股份有限公司, 集团, 公司,
    Co., Ltd., LLC, Inc, GmbH, Corp, Group...), then blanks are removed. A name
    that is nothing but a legal form keeps it. The result is a matching key,
    not a display name.

    Parameters
    ----------
    values : str, list, array, Series or Categorical
        Raw names.

    Returns
    -------
    Same shape as ``values``; ``None`` for missing.

    Examples
    --------
    >>> from collusion.graph import normalize_name
    >>> normalize_name("北京华建（集团）股份有限公司")
    '北京华建'
    >>> normalize_name("ＡＢＣ Construction Co., Ltd.")
    'abcconstruction'
    >>> normalize_name("abc construction group LLC") == normalize_name("ABC-Construction")
    True
    >>> normalize_name("有限公司")
    '有限公司'
    """
    return _apply(values, _name_kernel)


def normalize_address(values: Any) -> Any:
    """Canonical postal addresses for matching.

    NFKC, case-fold, a leading country (中国, 中华人民共和国, China) is removed,
    common English words are abbreviated (street → st, road → rd, building →
    bldg, room → rm...), punctuation and blanks are removed.

    Parameters
    ----------
    values : str, list, array, Series or Categorical
        Raw addresses.

    Returns
    -------
    Same shape as ``values``; ``None`` for missing.

    Examples
    --------
    >>> from collusion.graph import normalize_address
    >>> normalize_address("中国北京市海淀区中关村大街１号")
    '北京市海淀区中关村大街1号'
    >>> normalize_address("12 Main Street, Room 5") == normalize_address("12 main st. rm 5")
    True
    """
    return _apply(values, _address_kernel)


# --------------------------------------------------------------------------- fuzzy matching


def _cross_pairs(
    a_start: np.ndarray, a_size: np.ndarray, b_start: np.ndarray, b_size: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """All position pairs between run ``a[k]`` and run ``b[k]`` for every ``k``."""
    counts = a_size * b_size
    k = np.repeat(np.arange(counts.size), counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return a_start[k] + within // b_size[k], b_start[k] + within % b_size[k]


def _codepoints(strings: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n, max_len)`` uint32 code points (0-padded, truncated) and lengths."""
    fixed = np.asarray(strings, dtype=f"<U{max_len}")
    lengths = np.char.str_len(fixed).astype(np.int64)
    return fixed.view(np.uint32).reshape(len(fixed), max_len), lengths


def _distinct_grams(
    rows: np.ndarray, grams: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct ``(row, gram)`` pairs, with gram ids and document frequencies.

    Returns ``rows`` and ``gram_id`` of the distinct pairs (sorted by row,
    then gram id), ``df``, the number of rows holding each gram, and the
    sorted distinct grams: gram ids index them, as ``np.unique`` numbers them.
    Hashing the grams first and sorting one packed integer per pair is several
    times faster than ``lexsort`` plus ``np.unique(return_inverse=True)`` on
    millions of 64-bit grams.
    """
    codes, uniques = pd.factorize(grams)
    by_value = np.argsort(uniques)
    n_grams = max(len(uniques), 1)
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[by_value] = np.arange(len(uniques))
    # Row-major keys: callers pass rows in ascending (np.nonzero) order, so the keys are
    # already sorted but for the few grams of each row, and timsort (kind="stable") sorts
    # them ~8x faster than the default sort (0.1 s vs 0.8 s for 7.7M address grams).
    pair = rows * n_grams
    pair += rank[codes]
    del codes
    pair.sort(kind="stable")  # in place: one 8-byte array per gram less at the build's peak
    pair = pair[first_of_runs(pair)]
    rows, gram_id = np.divmod(pair, n_grams)
    return rows, gram_id, np.bincount(gram_id, minlength=len(uniques)), np.asarray(uniques)[by_value]


def _ngram_keys(strings: np.ndarray, *, n_keys: int, max_block: int, max_len: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Blocking keys: each string's ``n_keys`` rarest character n-grams.

    CJK strings use bigrams (a Chinese character carries a syllable), others
    trigrams. A gram shared by two variants of one name is rare in the whole
    list, so both variants pick it: the rarest-grams rule finds duplicates
    without comparing every pair. Grams found in one string only or in more
    than ``max_block`` strings are no use as keys.
    """
    cp, lengths = _codepoints(strings, max_len)
    n_str, width = cp.shape
    cjk = (cp >= 0x2E80).any(axis=1)
    gram = np.where(cjk, 2, 3)
    n_grams = np.maximum(lengths - gram + 1, np.minimum(lengths, 1))  # a short string is one gram
    valid = np.arange(width)[None, :] < n_grams[:, None]
    trigram = ~cjk
    if valid[:, width - 1 :].any() or (valid[:, width - 2 :] & trigram[:, None]).any():
        # A gram would run past the last column: zero code points stand for the padding there.
        cp, valid = np.pad(cp, ((0, 0), (0, 2))), np.pad(valid, ((0, 0), (0, 2)))
    # Row of each gram, in the row-major order of the masked gathers below.
    rows = np.repeat(np.arange(n_str, dtype=np.int64), valid.sum(axis=1))
    # Pack up to three 21-bit code points in one int64; bigrams pack a zero third. The k-th code
    # point of every gram is the code-point matrix shifted by k columns under the same mask:
    # masked gathers, without int64 (row, col, flat index) arrays per gram (fresh pages cost).
    packed = cp[valid].astype(np.int64)
    packed <<= 42
    nxt = cp[:, 1:][valid[:, :-1]].astype(np.int64)
    nxt <<= 21
    packed |= nxt
    nxt = np.zeros(rows.size, dtype=np.int64)
    nxt[trigram[rows]] = cp[:, 2:][valid[:, :-2] & trigram[:, None]]
    packed |= nxt
    # Free the (n, width) code points and the per-gram temporaries before the dedupe allocates
    # its own: this is the peak of the 1M graph build (400k addresses, 7.7M grams).
    del cp, valid, nxt
    rows, gram_id, df, _ = _distinct_grams(rows, packed)
    del packed
    freq = df[gram_id]
    useful = (freq >= 2) & (freq <= max_block)
    rows, freq, gram_id = rows[useful], freq[useful], gram_id[useful]
    # Rarest grams first within each string, ties by gram value: one sort of
    # packed (row, freq, gram) integers when they fit in 63 bits.
    f_bits, g_bits = int(freq.max(initial=0)).bit_length(), int(gram_id.max(initial=0)).bit_length()
    if n_str.bit_length() + f_bits + g_bits <= 63:
        # Rows come ascending from _distinct_grams: nearly sorted keys, timsort's best case.
        packed_key = np.sort((rows << (f_bits + g_bits)) | (freq << g_bits) | gram_id, kind="stable")
        rows, inverse = packed_key >> (f_bits + g_bits), packed_key & ((1 << g_bits) - 1)
    else:  # pragma: no cover - more than ~2**40 distinct grams
        order = np.lexsort((gram_id, freq, rows))
        rows, inverse = rows[order], gram_id[order]
    rank = np.arange(rows.size) - np.searchsorted(rows, rows, side="left")
    take = rank < n_keys
    return rows[take], inverse[take]


def _candidate_pairs(
    strings: np.ndarray, blocking: Any, *, n_keys: int, max_block: int, prefix_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs ``(i, j)``, ``i < j``, of positions in ``strings``."""
    n = len(strings)
    if blocking is None:
        return pairs_within_runs(np.array([0]), np.array([n]))
    if isinstance(blocking, (list, tuple)):
        parts = [_candidate_pairs(strings, b, n_keys=n_keys, max_block=max_block, prefix_len=prefix_len) for b in blocking]
        left = np.concatenate([p[0] for p in parts])
        right = np.concatenate([p[1] for p in parts])
        return _unique_pairs(left, right, n)
    if blocking == "ngram":
        rows, keys = _ngram_keys(strings, n_keys=n_keys, max_block=max_block)
    else:
        if blocking == "prefix":
            key_values = pd.Series(strings, dtype=object).str.slice(0, prefix_len)
        elif callable(blocking):
            key_values = pd.Series(np.asarray(blocking(pd.Series(strings, dtype=object)), dtype=object))
            if len(key_values) != n:
                raise ValueError(f"blocking function returned {len(key_values)} keys for {n} values")
        else:
            raise ValueError(f"blocking must be 'ngram', 'prefix', None, a callable or a list of them, got {blocking!r}")
        keys, _ = pd.factorize(key_values, use_na_sentinel=True)
        rows = np.flatnonzero(keys >= 0)
        keys = keys[rows]
        counts = np.bincount(keys) if keys.size else np.zeros(0, np.int64)
        small = counts[keys] <= max_block
        rows, keys = rows[small], keys[small]
    order = np.lexsort((rows, keys))
    rows, keys = rows[order], keys[order]
    if keys.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    change = np.flatnonzero(np.diff(keys)) + 1
    starts = np.concatenate([[0], change])
    sizes = np.diff(np.concatenate([starts, [keys.size]]))
    a, b = pairs_within_runs(starts, sizes)
    return _unique_pairs(rows[a], rows[b], n)


def _unique_pairs(left: np.ndarray, right: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.minimum(left, right), np.maximum(left, right)
    code = unique_ints(lo.astype(np.int64) * n + hi)
    return code // n, code % n


def _common_grams(strings: np.ndarray, share: float, min_count: int, max_len: int = 48) -> set[str]:
    """Character bigrams of CJK strings found in many strings."""
    if len(strings) == 0:
        return set()
    cp, lengths = _codepoints(strings, max_len)
    n_str, width = cp.shape
    cjk = (cp >= 0x2E80).any(axis=1)
    c = np.concatenate([cp.astype(np.int64), np.zeros((n_str, 1), dtype=np.int64)], axis=1)
    packed = (c[:, :width] << 42) | (c[:, 1 : width + 1] << 21)
    valid = (np.arange(width)[None, :] < (lengths - 1)[:, None]) & cjk[:, None]
    rows, cols = np.nonzero(valid)
    _, _, df, grams = _distinct_grams(rows, packed[rows, cols])  # df counts strings, not occurrences
    common = grams[df >= max(min_count, share * int(cjk.sum()))]
    mask = (1 << 21) - 1
    return {
        "".join(chr(int(x)) for x in ((g >> 42) & mask, (g >> 21) & mask, g & mask) if x) for g in common.tolist()
    }


def _residue(key: str, common: set[str], vocab: re.Pattern[str] | None) -> str:
    """``key`` without the characters covered by generic words or common n-grams."""
    generic = np.zeros(len(key), dtype=bool)
    if vocab is not None:
        for m in vocab.finditer(key):
            generic[m.start() : m.end()] = True
    # Common bigrams stand for cities and trade words in CJK names; Latin
    # trigrams are too short to mean anything (pinyin syllables are all common),
    # so Latin keys rely on the word list only.
    if any(ord(ch) >= 0x2E80 for ch in key):
        for i in range(len(key) - 1):
            if key[i : i + 2] in common:
                generic[i : i + 2] = True
    return "".join(ch for ch, g in zip(key, generic) if not g)


def _core_agrees(a: str, b: str) -> bool:
    # An empty remainder (a name made of generic words only) identifies nothing.
    if not a or not b:
        return False
    if any(ord(ch) >= 0x2E80 for ch in a + b):
        return a in b or b in a
    # Latin keys have lost their blanks; inside them one pinyin name hides in
    # another (hongding in zhongding), so only a prefix counts.
    return a.startswith(b) or b.startswith(a)


def _same_core(
    keys: np.ndarray, u: np.ndarray, v: np.ndarray, vocab: Sequence[str], share: float, min_count: int
) -> np.ndarray:
    """Whether each fuzzy pair agrees on its distinctive part.

    The distinctive part (residue) of a key is what is left once generic
    words and n-grams common to many keys (trade words, cities) are removed.
    Two keys may be the same entity when one residue contains the other:
    they then differ only inside generic words (a typo in 工程) or by an
    added word, not by a different trade name (青岛建力 vs 青岛建正) or house
    number. Loops over the keys of the candidate pairs that passed the
    threshold only.
    """
    if u.size == 0:
        return np.zeros(0, dtype=bool)
    common = _common_grams(keys, share, min_count)
    pattern = re.compile("|".join(sorted((re.escape(w) for w in vocab), key=len, reverse=True))) if vocab else None
    involved = unique_ints(np.concatenate([u, v]))
    residue = {int(k): _residue(str(keys[k]), common, pattern) for k in involved}
    return np.fromiter(
        (_core_agrees(a, b) for a, b in ((residue[int(x)], residue[int(y)]) for x, y in zip(u, v))),
        dtype=bool,
        count=u.size,
    )


def _resolve_scorer(scorer: Any) -> Callable[..., float]:
    from rapidfuzz import fuzz

    if callable(scorer):
        return scorer
    if isinstance(scorer, str) and hasattr(fuzz, scorer):
        return getattr(fuzz, scorer)
    raise ValueError(f"scorer must be a rapidfuzz.fuzz function or its name, got {scorer!r}")


def _match(
    values: Any,
    normalizer: Callable[[pd.Series], np.ndarray],
    *,
    threshold: float,
    blocking: Any,
    scorer: Any,
    n_keys: int,
    max_block: int,
    prefix_len: int,
    workers: int,
    core_check: bool,
    vocab: Sequence[str],
    common_share: float,
    pairs: str,
) -> pd.DataFrame:
    from rapidfuzz import process

    if pairs not in ("all", "star"):
        raise ValueError(f"pairs must be 'all' or 'star', got {pairs!r}")
    if not 0 <= threshold <= 100:
        raise ValueError(f"threshold must be between 0 and 100, got {threshold!r}")
    if isinstance(values, pd.Series):
        ids = values.index
        raw = values
    else:
        raw = pd.Series(np.asarray(values, dtype=object), dtype=object)
        ids = pd.RangeIndex(len(raw))
    raw_obj = raw.astype(object).to_numpy() if not isinstance(raw.dtype, pd.CategoricalDtype) else np.asarray(raw, dtype=object)
    codes, uniques = pd.factorize(pd.Series(raw_obj, dtype=object), use_na_sentinel=True)
    normed = normalizer(_as_object_series(uniques)) if len(uniques) else np.empty(0, dtype=object)
    # Group rows by normalised key: rows with equal keys are exact matches.
    key_codes, keys = pd.factorize(pd.Series(normed, dtype=object), use_na_sentinel=True)
    row_key = np.full(len(raw_obj), -1, dtype=np.int64)
    ok = codes >= 0
    row_key[ok] = key_codes[codes[ok]]
    rows = np.flatnonzero(row_key >= 0)
    order = rows[np.argsort(row_key[rows], kind="stable")]
    sizes = np.bincount(row_key[rows], minlength=len(keys)).astype(np.int64)
    starts = np.cumsum(sizes) - sizes
    key_strings = np.asarray(keys, dtype=object)

    if pairs == "star":
        # Each member of a group of equal keys links to the group's first row:
        # the same clusters as all pairs, without k(k-1)/2 edges for big groups.
        grp = np.repeat(np.arange(len(sizes)), sizes)
        within = np.arange(sizes.sum()) - np.repeat(starts, sizes)
        ex_a, ex_b = order[starts[grp[within > 0]]], order[within > 0]
    else:
        ex_a, ex_b = pairs_within_runs(starts, sizes)
        ex_a, ex_b = order[ex_a], order[ex_b]
    ex_sim = np.full(ex_a.size, 100.0)

    cand_u, cand_v = _candidate_pairs(key_strings, blocking, n_keys=n_keys, max_block=max_block, prefix_len=prefix_len)
    if cand_u.size:
        sims = np.asarray(
            process.cpdist(
                key_strings[cand_u], key_strings[cand_v], scorer=_resolve_scorer(scorer), score_cutoff=threshold, workers=workers
            ),
            dtype=np.float64,
        ).round(4)
        hit = sims >= threshold
        cand_u, cand_v, sims = cand_u[hit], cand_v[hit], sims[hit]
        if core_check:
            ok = _same_core(key_strings, cand_u, cand_v, vocab, common_share, min_count=5)
            cand_u, cand_v, sims = cand_u[ok], cand_v[ok], sims[ok]
    else:
        sims = np.empty(0)
    if pairs == "star":
        fa, fb, f_sim = order[starts[cand_u]], order[starts[cand_v]], sims
    else:
        fa, fb = _cross_pairs(starts[cand_u], sizes[cand_u], starts[cand_v], sizes[cand_v])
        f_sim = np.repeat(sims, sizes[cand_u] * sizes[cand_v])
        fa, fb = order[fa], order[fb]

    a = np.concatenate([ex_a, fa])
    b = np.concatenate([ex_b, fb])
    sim = np.concatenate([ex_sim, f_sim])
    method = np.concatenate([np.zeros(ex_a.size, np.int8), np.ones(fa.size, np.int8)])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    order2 = np.lexsort((hi, lo))
    lo, hi, sim, method = lo[order2], hi[order2], sim[order2], method[order2]
    return pd.DataFrame(
        {
            "left": ids[lo],
            "right": ids[hi],
            "similarity": sim,
            "method": pd.Categorical.from_codes(method, categories=["exact", "fuzzy"]),
            "left_key": pd.Series(key_strings[row_key[lo]], dtype=object),
            "right_key": pd.Series(key_strings[row_key[hi]], dtype=object),
        }
    )


_MATCH_DOC_PARAMS = """
    threshold : float, default 90
        Minimum similarity (0-100) of two normalised keys.
    blocking : {"ngram", "prefix"}, callable, None or list, default "ngram"
        How candidates are chosen. ``"ngram"``: keys sharing one of their
        ``n_keys`` rarest character n-grams (bigrams for CJK, trigrams
        otherwise); ``"prefix"``: the first ``prefix_len`` characters; a
        callable gets the Series of distinct normalised keys and returns one
        block key per element; ``None`` compares every pair (small inputs
        only); a list takes the union of the candidates of each scheme.
    scorer : str or callable, default "ratio"
        A ``rapidfuzz.fuzz`` scorer or its name (``"ratio"``,
        ``"token_sort_ratio"``, ``"WRatio"``...).
    n_keys : int, default 4
        Rarest n-grams used as blocking keys per value.
    max_block : int, default 50
        Blocks larger than this are skipped (a key that common says nothing).
    prefix_len : int, default 4
        Prefix length of the ``"prefix"`` blocking.
    workers : int, default 1
        Threads used by rapidfuzz (``-1`` = all cores).
    core_check : bool, default True
        Keep a fuzzy pair only if the keys agree on their distinctive part:
        with generic words (``generic_words``) and, in CJK keys, character
        bigrams found in at least ``common_share`` of the CJK keys (and 5
        keys) removed, both remainders must be non-empty and one must
        contain the other (for Latin keys, start with the other). This rejects 青岛建力机电安装 vs 青岛建正机电安装
        (one character, but another trade name) and 1号 vs 2号, and keeps
        typos inside generic words and added words. Look-alike typos inside
        the trade name itself are then missed: a name alone cannot tell them
        from a different firm.
    generic_words : sequence of str
        Words that describe rather than identify (:data:`GENERIC_NAME_WORDS`,
        :data:`GENERIC_ADDRESS_WORDS`).
    common_share : float, default 0.005
        Share of CJK keys above which a bigram counts as generic (cities,
        street names in large lists).
    pairs : {"all", "star"}, default "all"
        ``"all"``: every pair of matching rows. ``"star"``: rows with equal
        keys link to the first such row only, and a fuzzy match links the
        first rows of the two keys: the same clusters with a linear number of
        pairs when many rows share a key.

    Returns
    -------
    pandas.DataFrame
        One row per matched pair, ``left < right`` in input order, sorted:
        ``left``, ``right`` (index labels of a Series input, else positions),
        ``similarity`` (100 for equal keys), ``method`` (``exact`` when the
        normalised keys are equal, else ``fuzzy``), ``left_key``,
        ``right_key`` (the normalised keys)."""


def match_names(
    names: Any,
    *,
    threshold: float = 90,
    blocking: Any = "ngram",
    scorer: Any = "ratio",
    n_keys: int = 4,
    max_block: int = 50,
    prefix_len: int = 4,
    workers: int = 1,
    core_check: bool = True,
    generic_words: Sequence[str] = GENERIC_NAME_WORDS,
    common_share: float = 0.005,
    pairs: str = "all",
) -> pd.DataFrame:
    """Pairs of names that probably denote the same organisation or person.

    Names are normalised with :func:`normalize_name`; equal keys match
    exactly, and distinct keys are compared with a rapidfuzz scorer only
    inside blocks, so the work grows near-linearly with the number of
    distinct names.

    Parameters
    ----------
    names : Series, list or array
        Raw names; a Series' index gives the ids in the result.
    """
    return _match(
        names,
        _name_kernel,
        threshold=threshold,
        blocking=blocking,
        scorer=scorer,
        n_keys=n_keys,
        max_block=max_block,
        prefix_len=prefix_len,
        workers=workers,
        core_check=core_check,
        vocab=generic_words,
        common_share=common_share,
        pairs=pairs,
    )


def match_addresses(
    addresses: Any,
    *,
    threshold: float = 90,
    blocking: Any = "ngram",
    scorer: Any = "ratio",
    n_keys: int = 4,
    max_block: int = 50,
    prefix_len: int = 4,
    workers: int = 1,
    core_check: bool = True,
    generic_words: Sequence[str] = GENERIC_ADDRESS_WORDS,
    common_share: float = 0.005,
    pairs: str = "all",
) -> pd.DataFrame:
    """Pairs of postal addresses that probably denote the same place.

    Like :func:`match_names`, with :func:`normalize_address` as normaliser.

    Parameters
    ----------
    addresses : Series, list or array
        Raw addresses; a Series' index gives the ids in the result.
    """
    return _match(
        addresses,
        _address_kernel,
        threshold=threshold,
        blocking=blocking,
        scorer=scorer,
        n_keys=n_keys,
        max_block=max_block,
        prefix_len=prefix_len,
        workers=workers,
        core_check=core_check,
        vocab=generic_words,
        common_share=common_share,
        pairs=pairs,
    )


match_names.__doc__ = (match_names.__doc__ or "") + _MATCH_DOC_PARAMS + """

    Examples
    --------
    >>> import pandas as pd
    >>> from collusion.graph import match_names
    >>> names = pd.Series(
    ...     ["北京华建工程有限公司", "北京华建工程股份有限公司", "北京华建工程建设有限公司", "上海申通物流"],
    ...     index=["C1", "C2", "C3", "C4"],
    ... )
    >>> match_names(names, threshold=80)[["left", "right", "similarity", "method"]]
      left right  similarity method
    0   C1    C2  100.000000  exact
    1   C1    C3   85.7143  fuzzy
    2   C2    C3   85.7143  fuzzy
"""
match_addresses.__doc__ = (match_addresses.__doc__ or "") + _MATCH_DOC_PARAMS + """

    Examples
    --------
    >>> from collusion.graph import match_addresses
    >>> out = match_addresses(["北京市海淀区中关村大街1号", "北京市海淀区中关村大街1号院", "上海市浦东新区"])
    >>> out[["left", "right", "method"]].values.tolist()
    [[0, 1, 'fuzzy']]
"""
