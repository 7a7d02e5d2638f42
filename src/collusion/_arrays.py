"""Small array kernels the whole package shares."""

from __future__ import annotations

import numpy as np

__all__ = ["unique_ints"]


def unique_ints(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer array.

    ``np.unique`` on integers takes a hash-table path in numpy 2.3+ that is
    about 20× slower than sorting when most values are distinct (3.7 s vs
    0.18 s for three million int64 keys, numpy 2.4), and the pair, key and
    code arrays this package deduplicates are exactly that.

    Examples
    --------
    >>> unique_ints(np.array([5, 1, 5, 3])).tolist()
    [1, 3, 5]
    """
    y = np.sort(np.asarray(x).ravel())
    if y.size == 0:
        return y
    keep = np.empty(y.size, dtype=bool)
    keep[0] = True
    np.not_equal(y[1:], y[:-1], out=keep[1:])
    return y[keep]
