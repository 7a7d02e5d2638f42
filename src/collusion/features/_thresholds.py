"""Data-driven thresholds and robust standardisation.

Detectors never hard-code a cut-off on a raw signal: they standardise signals
against the market itself (medians and MADs are robust to the very outliers we
look for) and flag scores beyond a robust fence or a contamination quantile.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["contamination_threshold", "percentile_rank", "robust_fence", "robust_z"]

#: MAD of a standard normal; makes robust z-scores comparable to ordinary ones.
_MAD_SCALE = 1.4826


def robust_z(values: np.ndarray | pd.Series, *, reference: np.ndarray | None = None) -> np.ndarray:
    """Robust z-score: ``(x - median) / (1.4826 * MAD)``, NaN-aware.

    When the MAD is zero (more than half the values equal) the mean absolute
    deviation is used instead, and 1.0 if that is zero too, so the result is
    always finite where ``x`` is.

    Parameters
    ----------
    values : array-like
        Values to standardise.
    reference : array-like, optional
        Values defining median and spread (default: ``values``).

    Examples
    --------
    >>> import numpy as np
    >>> robust_z(np.array([1.0, 2.0, 3.0, 4.0, 100.0])).round(2).tolist()
    [-1.35, -0.67, 0.0, 0.67, 65.43]
    """
    x = np.asarray(values, dtype=np.float64)
    ref = x if reference is None else np.asarray(reference, dtype=np.float64)
    ref = ref[np.isfinite(ref)]
    if ref.size == 0:
        return np.full_like(x, np.nan)
    med = np.median(ref)
    mad = _MAD_SCALE * np.median(np.abs(ref - med))
    if mad <= 0:
        mad = np.mean(np.abs(ref - med)) * 1.2533  # mean abs deviation of a normal → sigma
    if mad <= 0:
        mad = 1.0
    return (x - med) / mad


def robust_fence(scores: np.ndarray | pd.Series, *, k: float = 1.5) -> float:
    """Upper Tukey fence ``Q3 + k * IQR`` of the finite scores.

    Examples
    --------
    >>> import numpy as np
    >>> robust_fence(np.arange(1.0, 101.0))
    149.5
    """
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return float("inf")
    q1, q3 = np.percentile(s, [25, 75])
    return float(q3 + k * (q3 - q1))


def contamination_threshold(scores: np.ndarray | pd.Series, contamination: float) -> float:
    """Score above which the top ``contamination`` share of finite scores lies.

    Examples
    --------
    >>> import numpy as np
    >>> contamination_threshold(np.arange(100.0), 0.1)
    89.1
    """
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return float("inf")
    return float(np.quantile(s, 1.0 - contamination))


def percentile_rank(scores: np.ndarray | pd.Series) -> np.ndarray:
    """Share of the other finite scores strictly below each score, in [0, 1].

    Ties take the *lowest* rank: when most units score exactly 0 (nothing
    suspicious), they all get percentile 0, not the share of units at or below
    0 — otherwise a quiet majority would look like the top of the market.
    NaN scores get percentile 0: a unit that could not be scored is not suspicious.

    Examples
    --------
    >>> import numpy as np
    >>> percentile_rank(np.array([3.0, 1.0, 2.0, np.nan])).tolist()
    [1.0, 0.0, 0.5, 0.0]
    >>> percentile_rank(np.array([0.0, 0.0, 0.0, 5.0])).tolist()
    [0.0, 0.0, 0.0, 1.0]
    """
    s = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(s)
    out = np.zeros_like(s)
    n = int(finite.sum())
    if n == 1:
        out[finite] = 1.0
    elif n > 1:
        ranks = pd.Series(s[finite]).rank(method="min").to_numpy()
        out[finite] = (ranks - 1) / (n - 1)
    return out
