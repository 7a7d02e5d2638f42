"""The Arrow text helpers of entity resolution give what the plain Arrow/pandas passes give."""

import unicodedata

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from collusion.graph import _resolution as res

# ASCII, CJK (base block, extension A, compatibility ideographs), full-width forms,
# combining marks, Hangul jamo, blanks of several kinds, ligatures.
_POOL = [chr(c) for c in range(0x20, 0x7F)] + list("\t\n") + [
    "\u4e00", "\u9fa5", "\u9fff", "\u3400", "\u4db5", "\uf900", "\U0002f800", "\uff11", "\uff21", "\u3000",
    "\u00a0", "\u0301", "\u212b", "\u1100", "\u1161", "\ud55c", "\ufb01", "\u00e9", "\u2460", "\u5efe",
]


def _values(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    out = ["".join(rng.choice(_POOL, size=rng.integers(0, 7))) for _ in range(n)]
    return out + [None, "", "   ", "北京市海淀区", "ＡＢＣ１２３"]


def _reference(values: list) -> pd.Series:
    """The former implementation: NFKC of every value, trim, blank -> missing, object Series."""
    text = pc.utf8_trim_whitespace(pc.utf8_normalize(pa.array(values, type=pa.string()), form="NFKC"))
    text = pc.if_else(pc.equal(pc.utf8_length(text), 0), pa.scalar(None, pa.string()), text)
    return pd.Series(text.to_numpy(zero_copy_only=False), dtype=object)


def test_nfkc_equals_arrow_nfkc_on_mixed_text():
    values = _values(5000, 0)
    text = pa.array(values, type=pa.string())
    assert res._nfkc(text).equals(pc.utf8_normalize(text, form="NFKC"))
    assert sum(v is not None and unicodedata.normalize("NFKC", v) != v for v in values) > 100


def test_nfkc_all_ascii_and_all_changing():
    ascii_only = pa.array(["abc", None, "", "x y"], type=pa.string())
    assert res._nfkc(ascii_only).equals(ascii_only)
    wide = pa.array(["ＡＢＣ", "１２３"], type=pa.string())
    assert res._nfkc(wide).to_pylist() == ["ABC", "123"]


def test_as_object_series_matches_reference():
    for seed in (1, 2):
        values = _values(3000, seed)
        got = res._as_object_series(values)
        pd.testing.assert_series_equal(got, _reference(values))
        assert all(v is None or type(v) is str for v in got)


def test_as_object_series_numbers_and_nan():
    got = res._as_object_series([13800138000.0, np.nan, 7, " ８ "])
    assert got.tolist() == ["13800138000", None, "7", "8"]


def test_arrow_text_object_and_arrow_backed():
    values = ["a", None, "北京", ""]
    expected = pa.array(values, type=pa.large_string())
    assert res._arrow_text(pd.Series(values, dtype=object)).equals(expected)
    assert res._arrow_text(pd.Series(values, dtype="str")).equals(expected)
    assert res._arrow_text(pd.Series(values, dtype=pd.ArrowDtype(pa.string()))).equals(expected)


def test_splice_keeps_values_and_merges_invalid_flags():
    s = pd.Series(["keep", "x", "keep2", "y"], dtype=object)
    keep = np.array([True, False, True, False])
    out = res._splice(s, keep, lambda sub: sub.str.upper().to_numpy(dtype=object))
    assert out.tolist() == ["keep", "X", "keep2", "Y"]
    canon, invalid = res._splice(s, keep, lambda sub: (sub.to_numpy(dtype=object), np.array([True, False])))
    assert canon.tolist() == s.tolist() and invalid.tolist() == [False, True, False, False]
    canon, invalid = res._splice(s, np.ones(4, dtype=bool), lambda sub: (sub.to_numpy(dtype=object),
                                                                      np.zeros(len(sub), dtype=bool)))
    assert canon.tolist() == s.tolist() and not invalid.any()


def test_factorize_sorted_matches_pandas_sorted_factorize():
    values = np.array(_values(4000, 3) * 2 + [np.nan, None, "b", "a", "b"], dtype=object)
    codes, uniques = res._factorize_sorted(values)
    ref_codes, ref_uniques = pd.factorize(pd.Series(values, dtype=object), sort=True, use_na_sentinel=True)
    assert codes.dtype == np.int64
    assert codes.tolist() == ref_codes.tolist()
    assert uniques.dtype == object and uniques.tolist() == list(ref_uniques)


def test_factorize_sorted_empty_missing_and_not_text():
    for values in ([], [None, None], [np.nan]):
        codes, uniques = res._factorize_sorted(np.array(values, dtype=object))
        assert codes.tolist() == [-1] * len(values) and uniques.tolist() == []
    codes, uniques = res._factorize_sorted(np.array([3, 1, 3, None], dtype=object))
    assert codes.tolist() == [1, 0, 1, -1] and uniques.tolist() == [1, 3]
