"""Entity resolution: trace normalisers and blocked fuzzy matching."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collusion.graph import (
    match_addresses,
    match_names,
    normalize_account,
    normalize_address,
    normalize_email,
    normalize_ip,
    normalize_mac,
    normalize_name,
    normalize_phone,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+86 138-0013-8000", "13800138000"),
        ("0086 138 0013 8000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("013800138000", "13800138000"),  # trunk 0 before a mobile
        ("17951 13800138000", "13800138000"),  # IP-dialling prefix
        ("１３８００１３８０００", "13800138000"),  # full-width digits
        ("138 0013 8000 ext. 12", "13800138000"),
        ("010-62751234", "01062751234"),
        ("+86 10 6275 1234", "01062751234"),
        ("(010) 6275-1234 转 8001", "01062751234"),
        ("+1 (415) 555-0100", "+14155550100"),
        ("00000000", None),
        ("", None),
        ("  ", None),
        (None, None),
        (13800138000, "13800138000"),
        (13800138000.0, "13800138000"),
    ],
)
def test_normalize_phone(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("J.Doe+bids@GoogleMail.com", "jdoe@gmail.com"),
        ("jdoe@gmail.com.", "jdoe@gmail.com"),
        ("Li.Ming+x@outlook.com", "li.ming@outlook.com"),  # plus tag only
        ("zhang.wei+x@qq.com", "zhang.wei+x@qq.com"),  # qq keeps both
        ("ＬＩ＠１６３．ＣＯＭ", "li@163.com"),
        ("mailto:<Li@163.com>", "li@163.com"),
        ("not-an-email", "not-an-email"),
        (None, None),
    ],
)
def test_normalize_email(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("192.168.1.10", "192.168.1.10"),
        (" 192.168.001.010 ", "192.168.1.10"),
        ("192.168.1.10:8080", "192.168.1.10"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("127.0.0.1", None),
        ("0.0.0.0", None),
        ("::1", None),
        ("256.1.1.1", "256.1.1.1"),  # invalid, kept
        ("Not An IP", "not an ip"),
    ],
)
def test_normalize_ip(raw, expected):
    assert normalize_ip(raw) == expected


def test_normalize_ip_errors():
    assert normalize_ip("256.1.1.1", errors="coerce") is None
    with pytest.raises(ValueError, match="invalid IP"):
        normalize_ip(["1.2.3.4", "x.y"], errors="raise")
    with pytest.raises(ValueError, match="errors must be"):
        normalize_ip("1.2.3.4", errors="ignore")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("00-1A-2B-3C-4D-5E", "00:1a:2b:3c:4d:5e"),
        ("001A.2B3C.4D5E", "00:1a:2b:3c:4d:5e"),
        ("00 1a 2b 3c 4d 5e", "00:1a:2b:3c:4d:5e"),
        ("00:00:00:00:00:00", None),
        ("FF-FF-FF-FF-FF-FF", None),
        ("12:34", "1234"),  # invalid, kept cleaned
    ],
)
def test_normalize_mac(raw, expected):
    assert normalize_mac(raw) == expected
    assert normalize_mac("12:34", errors="coerce") is None


def test_normalize_account_and_address():
    assert normalize_account("6222-0212 3456/7890") == normalize_account("6222021234567890")
    assert normalize_account("0000 0000") is None
    assert normalize_address("中华人民共和国 北京市海淀区中关村大街１号") == "北京市海淀区中关村大街1号"
    assert normalize_address("Room 5, 12 Main Road") == normalize_address("rm 5 12 main rd.")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("北京华建工程有限公司", "北京华建工程股份有限公司"),
        ("北京华建工程有限责任公司", "北京华建工程"),
        ("华建（集团）有限公司", "华建集团"),
        ("华建建设工程(南京)有限公司", "华建建设工程（南京）有限公司"),
        ("Huajian Construction Co., Ltd.", "HUAJIAN CONSTRUCTION COMPANY LIMITED"),
        ("Huajian Construction Group Co Ltd", "huajian construction"),
        ("ＡＢＣ　Ｌｔｄ", "abc ltd."),
        ("ABC GmbH", "A.B.C."),
    ],
)
def test_normalize_name_equal(a, b):
    assert normalize_name(a) == normalize_name(b)


def test_normalize_name_keeps_distinctions():
    assert normalize_name("中建一局") != normalize_name("中建二局")
    assert normalize_name("华建工程南京分公司") != normalize_name("华建工程")  # a branch is not the firm
    assert normalize_name("Co") == "co"  # nothing but a legal form: kept


def test_shapes_and_categorical_recoding():
    raw = pd.Series(pd.Categorical(["+86 13800138000", "13800138000", None, "010-62751234"]), index=list("abcd"))
    out = normalize_phone(raw)
    assert isinstance(out.dtype, pd.CategoricalDtype)
    assert list(out.index) == list("abcd")
    # Two raw spellings collapse into one category.
    assert list(out.cat.categories) == ["01062751234", "13800138000"]
    assert out.cat.codes.tolist() == [1, 1, -1, 0]
    cat = normalize_ip(pd.Categorical(["1.2.3.4", "001.2.3.4"]))
    assert isinstance(cat, pd.Categorical) and len(cat.categories) == 1
    arr = normalize_email(np.array(["A@B.com", None], dtype=object))
    assert isinstance(arr, np.ndarray) and arr.tolist() == ["a@b.com", None]
    plain = normalize_mac(pd.Series(["00-1A-2B-3C-4D-5E"], index=[7]))
    assert plain.index.tolist() == [7] and plain.iloc[0] == "00:1a:2b:3c:4d:5e"
    assert normalize_name([]).tolist() == []


def test_normalisation_is_idempotent():
    samples = {
        normalize_phone: ["+86 10 6275 1234", "+44 20 7946 0958", "138 0013 8000"],
        normalize_email: ["J.Doe+x@gmail.com", "a@b.com"],
        normalize_ip: ["010.0.0.1", "2001:DB8::1"],
        normalize_mac: ["00-1A-2B-3C-4D-5E"],
        normalize_name: ["华建（集团）股份有限公司", "ABC Construction Co., Ltd."],
        normalize_address: ["中国北京市海淀区中关村大街１号", "12 Main Street"],
    }
    for func, values in samples.items():
        once = func(values)
        assert func(once).tolist() == once.tolist(), func.__name__


# --------------------------------------------------------------------------- fuzzy matching

_CITIES = ["北京", "上海", "南京", "杭州", "成都", "武汉", "西安", "广州", "深圳", "天津"]
# Trade names draw on 1,500 characters, as real ones do; with a tiny alphabet
# distinct firms would differ by one character and no threshold could tell.
_CORE = np.array(list("华建中通宏达兴盛鑫源博远恒泰安联创新瑞丰永信金鼎海川东方嘉禾天成") + [chr(c) for c in range(0x5400, 0x59DC)])
_INDUSTRY = ["建设工程", "建筑工程", "市政工程", "路桥工程", "水利水电", "装饰工程", "园林绿化", "机电安装"]
_FORMS = ["有限公司", "有限责任公司", "股份有限公司", "集团有限公司"]
_TYPO = {"建": "健", "华": "化", "达": "大", "源": "元", "成": "诚", "兴": "星", "泰": "太", "程": "呈",
         "利": "莉", "园": "圆", "机": "几", "电": "店"}


def _base_names(rng: np.random.Generator, n: int) -> list[str]:
    """Distinct firms: distinct after normalisation, 2-3 character trade names."""
    m = 2 * n
    core = ["".join(rng.choice(_CORE, size=k)) for k in rng.integers(2, 4, size=m)]
    city = np.where(rng.random(m) < 0.4, np.array(_CITIES)[rng.integers(len(_CITIES), size=m)], "")
    industry = np.array(_INDUSTRY)[rng.integers(len(_INDUSTRY), size=m)]
    forms = np.array(_FORMS)[rng.integers(len(_FORMS), size=m)]
    names = pd.Series([c + k + i + f for c, k, i, f in zip(city, core, industry, forms)])
    keep = ~pd.Series(normalize_name(names)).duplicated().to_numpy()
    return sorted(names[keep].tolist()[:n])


def _variant(rng: np.random.Generator, name: str) -> str:
    kind = rng.integers(4)
    if kind == 0:  # another legal form
        for form in sorted(_FORMS, key=len, reverse=True):
            if name.endswith(form):
                return name[: -len(form)] + _FORMS[(_FORMS.index(form) + 1) % len(_FORMS)]
    if kind == 1:  # full width and brackets
        return name[:2] + "（" + name[2:4] + "）" + name[4:]
    if kind == 2:  # spaces and punctuation
        return name[:3] + " · " + name[3:]
    # one look-alike character
    form = max((f for f in _FORMS if name.endswith(f)), key=len)
    spots = [i for i, c in enumerate(name[: -len(form)]) if c in _TYPO]
    i = spots[rng.integers(len(spots))]
    return name[:i] + _TYPO[name[i]] + name[i + 1 :]


def _planted(seed: int, n: int = 2000, n_dup: int = 200) -> tuple[pd.Series, set[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    base = _base_names(rng, n)
    dup_of = rng.choice(n, size=n_dup, replace=False)
    variants = [_variant(rng, base[i]) for i in dup_of]
    names = pd.Series(base + variants)
    truth = {(int(i), n + k) for k, i in enumerate(dup_of)}
    return names, truth


def _precision_recall(pairs: pd.DataFrame, truth: set[tuple[int, int]]) -> tuple[float, float]:
    found = set(zip(pairs["left"].tolist(), pairs["right"].tolist()))
    tp = len(found & truth)
    return tp / max(len(found), 1), tp / len(truth)


def test_match_names_finds_planted_duplicates(global_random_seed):
    names, truth = _planted(global_random_seed)
    pairs = match_names(names, threshold=85)
    precision, recall = _precision_recall(pairs, truth)
    # Legal-form, width and punctuation variants are exact after normalisation;
    # look-alike characters in names of 6-10 characters score 83-90.
    assert recall >= 0.85, (precision, recall)
    assert precision >= 0.8, (precision, recall)
    exact = pairs[pairs["method"] == "exact"]
    assert (exact["similarity"] == 100).all()
    assert (pairs["left"] < pairs["right"]).all()
    assert pairs["similarity"].between(85, 100).all()


def test_blocking_loses_little_against_all_pairs():
    names, _ = _planted(3, n=600, n_dup=60)
    full = match_names(names, threshold=85, blocking=None)
    blocked = match_names(names, threshold=85)
    key = lambda f: set(zip(f["left"], f["right"]))  # noqa: E731
    assert key(blocked) <= key(full)
    assert len(key(blocked)) >= 0.95 * len(key(full))
    prefix = match_names(names, threshold=85, blocking="prefix", prefix_len=2)
    assert key(prefix) <= key(full)
    both = match_names(names, threshold=85, blocking=["ngram", "prefix"])
    assert key(both) == key(blocked) | key(prefix)


def test_match_names_ids_threshold_and_errors():
    names = pd.Series(["华建工程有限公司", "华建工程股份有限公司", "恒泰路桥", None, "华健工程有限公司"],
                      index=["c1", "c2", "c3", "c4", "c5"])
    strict = match_names(names, threshold=100)
    assert strict[["left", "right"]].values.tolist() == [["c1", "c2"]]
    loose = match_names(names, threshold=70, blocking=None, core_check=False)
    assert {("c1", "c5"), ("c2", "c5")} <= set(zip(loose["left"], loose["right"]))
    # 华建 vs 华健 is another trade name: the core check rejects it.
    checked = match_names(names, threshold=70, blocking=None)
    assert set(zip(checked["left"], checked["right"])) == {("c1", "c2")}
    assert list(loose.columns) == ["left", "right", "similarity", "method", "left_key", "right_key"]
    keyed = match_names(names, threshold=70, blocking=lambda s: s.str.slice(0, 1), core_check=False)
    assert set(zip(keyed["left"], keyed["right"])) == set(zip(loose["left"], loose["right"]))
    with pytest.raises(ValueError, match="threshold"):
        match_names(names, threshold=120)
    with pytest.raises(ValueError, match="blocking"):
        match_names(names, blocking="soundex")
    assert len(match_names(pd.Series([], dtype=object))) == 0


def test_match_addresses():
    addresses = ["北京市海淀区中关村大街1号", "中国北京市海淀区中关村大街１号", "北京市海淀区中关村大街1号院",
                 "上海市浦东新区世纪大道100号"]
    pairs = match_addresses(addresses, threshold=90)
    assert set(zip(pairs["left"], pairs["right"], pairs["method"])) == {
        (0, 1, "exact"), (0, 2, "fuzzy"), (1, 2, "fuzzy")}


def test_core_check_separates_trade_names_from_typos():
    names = ["青岛建力机电安装工程有限公司", "青岛建正机电安装工程有限公司",  # two firms, one character apart
             "安嘉市政工程股份有限公司", "安嘉市政功程股份有限公司",  # a typo inside a generic word
             "Tianlong Building Engineering Co., Ltd.", "Tianrong Building Engineering Co., Ltd.",
             "Huike Engineering Co., Ltd.", "Huike Engineering Group Co., Ltd.",
             "建设工程有限公司", "建筑工程有限公司"]  # nothing but generic words
    unchecked = match_names(names, threshold=80, blocking=None, core_check=False)
    assert {(0, 1), (2, 3), (4, 5)} <= set(zip(unchecked["left"], unchecked["right"]))
    checked = match_names(names, threshold=80, blocking=None)
    assert set(zip(checked["left"], checked["right"])) == {(2, 3), (6, 7)}
    addresses = ["北京市海淀区中关村大街1号", "北京市海淀区中关村大街2号", "北京市海淀区中关村大街1号院"]
    assert set(zip(*match_addresses(addresses, threshold=80)[["left", "right"]].T.values)) == {(0, 2)}


def test_star_pairs_link_each_cluster_linearly():
    names = pd.Series(["华建工程有限公司"] * 4 + ["华建工程建设有限公司", "恒泰路桥"], index=list("abcdef"))
    full = match_names(names, threshold=80)
    star = match_names(names, threshold=80, pairs="star")
    assert len(full) == 6 + 4 and len(star) == 3 + 1
    assert set(zip(star["left"], star["right"])) == {("a", "b"), ("a", "c"), ("a", "d"), ("a", "e")}
    with pytest.raises(ValueError, match="pairs must be"):
        match_names(names, pairs="some")


def _ngram_keys_reference(strings, n_keys, max_block, max_len=48):
    # The lexsort / np.unique formulation the fast path replaced.
    from collusion.graph._resolution import _codepoints

    cp, lengths = _codepoints(strings, max_len)
    n_str, width = cp.shape
    cjk = (cp >= 0x2E80).any(axis=1)
    gram = np.where(cjk, 2, 3)
    c = np.concatenate([cp.astype(np.int64), np.zeros((n_str, 2), dtype=np.int64)], axis=1)
    packed = (c[:, :width] << 42) | (c[:, 1 : width + 1] << 21) | np.where(gram[:, None] == 3, c[:, 2 : width + 2], 0)
    n_grams = np.maximum(lengths - gram + 1, np.minimum(lengths, 1))
    rows, cols = np.nonzero(np.arange(width)[None, :] < n_grams[:, None])
    keys = packed[rows, cols]
    order = np.lexsort((keys, rows))
    rows, keys = rows[order], keys[order]
    first = np.ones(rows.size, dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (keys[1:] != keys[:-1])
    rows, keys = rows[first], keys[first]
    _, inverse, df = np.unique(keys, return_inverse=True, return_counts=True)
    freq = df[inverse]
    useful = (freq >= 2) & (freq <= max_block)
    rows, keys, freq, inverse = rows[useful], keys[useful], freq[useful], inverse[useful]
    order = np.lexsort((keys, freq, rows))
    rows, inverse = rows[order], inverse[order]
    rank = np.arange(rows.size) - np.searchsorted(rows, rows, side="left")
    return rows[rank < n_keys], inverse[rank < n_keys]


@pytest.mark.parametrize("n_keys, max_block", [(4, 50), (2, 5), (10, 1000)])
def test_ngram_keys_match_the_sort_based_reference(global_random_seed, n_keys, max_block):
    from collusion.graph._resolution import _ngram_keys

    names, _ = _planted(global_random_seed, n=800, n_dup=80)
    keys = normalize_name(names).astype(str).tolist() + ["ab", "a", "abcabc", "tianlong building", "华建"]
    strings = np.asarray(keys, dtype=object)
    got = _ngram_keys(strings, n_keys=n_keys, max_block=max_block)
    want = _ngram_keys_reference(strings, n_keys, max_block)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize(
    "values",
    [
        ["b", "a", None, "b", "é", "z", "", "a\x00", "a", np.nan, "😀", "\uffff"],
        [],
        [None, None],
        [1, "a", None],  # not all str: pandas' own sort
        ["\ud800", "a"],  # a lone surrogate has no UTF-8
    ],
)
def test_factorize_sorted_equals_pandas(values):
    from collusion.graph._resolution import _factorize_sorted

    values = np.asarray(values, dtype=object)
    codes, uniques = _factorize_sorted(values)
    want_codes, want_uniques = pd.factorize(pd.Series(values, dtype=object), sort=True, use_na_sentinel=True)
    assert codes.tolist() == want_codes.tolist()
    assert uniques.tolist() == list(want_uniques)


def _random_text(seed, pieces, n):
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(pieces, size=rng.integers(0, 8))) for _ in range(n)] + [None, ""]


def test_arrow_name_and_address_kernels_follow_python_rules(global_random_seed):
    # Simple text (ASCII, ideographs) goes through Arrow; it must give what the
    # Python rules give, and other text must still take the Python path.
    from collusion.graph import _resolution as r

    pieces = list("abcXYZ019 _-.,'()#\t") + list("中国北京市路号公司有限股份集团") + [
        " street ", " road ", " co ", " ltd", " group", "china ", "people's republic of china ", "p.r. china",
        "中华人民共和国", "有限 公司", " Street", "ß", "Ａ", "٣", "\u00a0", "é", "\x1c", "  "]
    s = r._as_object_series(_random_text(global_random_seed, pieces, 5000))
    for kernel, python_rules in ((r._name_kernel, r._name_general), (r._address_kernel, r._address_general)):
        assert kernel(s).tolist() == python_rules(s).tolist()


def test_fast_path_full_match_follows_python_rules(global_random_seed):
    import re

    from collusion.graph import _resolution as r

    pieces = list("0123456789abcdefAZ.:@_-%+=/ \n") + ["٣", "１", "é", "1380013800", "192.168.", "gmail.com"]
    s = r._as_object_series(_random_text(global_random_seed, pieces, 5000) + ["13800138000", "13800138000\n", "٣٣"])
    patterns = [r"1[3-9]\d{9}", rf"{r._OCTET}(?:\.{r._OCTET}){{3}}", r"[0-9a-z_\-.:/+=]+",
                r"[a-z0-9_%-]+(?:\.[a-z0-9_%-]+)*@[a-z0-9-]+(?:\.[a-z0-9-]+)+"]
    for pattern in patterns:
        out = r._fast_path(pattern)(lambda sub: np.full(len(sub), "SLOW", dtype=object))(s)
        want = s.str.fullmatch(re.compile(pattern)).fillna(False).to_numpy(dtype=bool)
        np.testing.assert_array_equal(out != "SLOW", want)
