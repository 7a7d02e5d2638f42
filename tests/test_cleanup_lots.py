"""Lot keys number rows densely in lexicographic order, whatever the path (packed or renumbered)."""

import numpy as np
import pytest

from collusion.features._lots import _lex_codes


@pytest.mark.parametrize("high", [5, 2**40])  # 2**40: three columns overflow the radix, the key is renumbered
def test_lex_codes_match_unique_rows(high: int) -> None:
    rng = np.random.default_rng(0)
    cols = [rng.integers(-3, high, 500) for _ in range(3)]
    cols[1][::7] = cols[1][0]  # repeated rows
    cols[0][::7], cols[2][::7] = cols[0][0], cols[2][0]
    expected = np.unique(np.stack(cols, axis=1), axis=0, return_inverse=True)[1].ravel()
    assert _lex_codes(cols).tolist() == expected.tolist()
