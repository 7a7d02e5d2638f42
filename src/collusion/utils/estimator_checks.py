"""Public conformance checks for detectors (sklearn's ``check_estimator`` pattern).

Third parties writing their own detector on :class:`~collusion.detectors.BaseDetector`
can run the same checks our seven analyses pass::

    from collusion.utils.estimator_checks import check_detector
    check_detector(MyDetector(), market)

or, in pytest, ``@parametrize_with_checks([MyDetector()])``.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd

__all__ = ["check_detector", "detector_checks", "parametrize_with_checks"]


def _check_init_keyword_only(det: Any, market: Any) -> None:
    sig = inspect.signature(type(det).__init__)
    positional = [
        p.name for p in sig.parameters.values()
        if p.name != "self" and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    assert not positional, f"{type(det).__name__}.__init__ parameters must be keyword-only: {positional}"


def _check_params_round_trip(det: Any, market: Any) -> None:
    from sklearn.base import clone

    params = det.get_params()
    twin = clone(det)
    assert twin.get_params() == params, "clone() must reproduce get_params()"
    twin.set_params(**params)
    assert not hasattr(twin, "results_"), "a fresh clone must not look fitted"


def _check_unfitted_raises(det: Any, market: Any) -> None:
    from sklearn.base import clone

    from ..exceptions import NotFittedError

    try:
        clone(det).explain(1)
    except NotFittedError:
        return
    raise AssertionError("explain() before fit must raise NotFittedError")


def _check_fit_returns_self_and_schema(det: Any, market: Any) -> None:
    from sklearn.base import clone

    from ..results import RESULT_COLUMNS

    d = clone(det)
    assert d.fit(market) is d, "fit must return self"
    res = d.results_
    assert tuple(res.columns) == RESULT_COLUMNS, f"results_ columns {list(res.columns)} != RESULT_COLUMNS"
    assert len(res) > 0, "the detector scored no unit on a market that has its tables"
    assert res["finding_id"].is_unique, "finding ids must be unique"
    assert (res["detector"] == d.name).all() and (res["analysis"] == d.analysis).all()
    assert res["score_pct"].between(0, 1).all()
    assert set(d.scores_.index) == set(d.units_.index)
    assert d.flagged_.dtype == bool
    # flagged == score >= threshold, per unit kind
    thr = d.threshold_
    for kind, part in res.groupby("unit"):
        t = thr[kind] if isinstance(thr, dict) else thr
        expect = np.isfinite(part["score"]) & (part["score"] >= t)
        assert (part["flagged"].to_numpy() == expect.to_numpy()).all(), f"flagged != score >= threshold ({kind})"
    for kind, part in res.groupby("unit"):
        assert sorted(part["rank"]) == list(range(1, len(part) + 1)), "ranks must be 1..n per unit kind"
        top = part.sort_values("rank")["score"].to_numpy()
        finite = top[np.isfinite(top)]
        assert np.all(np.diff(finite) <= 1e-12), "rank 1 must be the highest score (higher = more suspicious)"
    flagged = res[res["flagged"]]
    assert flagged["evidence"].map(len).gt(0).all(), "every flagged finding needs evidence"
    for records in flagged["evidence"].head(20):
        for r in records:
            assert set(r) == {"signal", "value", "baseline", "detail", "path"}, r
    ev = d.explain(1)
    assert len(ev) > 0 and {"signal", "value", "baseline", "path"} <= set(ev.columns)


def _check_deterministic(det: Any, market: Any) -> None:
    from sklearn.base import clone

    a = clone(det).fit(market).results_
    b = clone(det).fit(market).results_
    pd.testing.assert_series_equal(
        a.set_index("finding_id")["score"].sort_index(), b.set_index("finding_id")["score"].sort_index()
    )


def _check_does_not_mutate_market(det: Any, market: Any) -> None:
    from sklearn.base import clone

    before = {name: table.copy() for name, table in market.items()}
    clone(det).fit(market)
    for name, table in market.items():
        pd.testing.assert_frame_equal(before[name], table, obj=f"market.{name}")


def _check_missing_tables(det: Any, market: Any) -> None:
    from sklearn.base import clone

    from .._market import Market
    from ..exceptions import MissingTableError

    optional = [t for t in det.required_tables if t not in ("tenders", "bids")]
    if not optional:
        return
    tables = {name: t for name, t in market.items() if name not in optional}
    bare = Market(tables, market.entities, settings=market.settings)
    try:
        clone(det).fit(bare)
    except MissingTableError as err:
        for name in optional:
            assert name in str(err), f"the error must name the missing table {name!r}: {err}"
        return
    raise AssertionError(f"fit without {optional} must raise MissingTableError")


_CHECKS: tuple[Callable[[Any, Any], None], ...] = (
    _check_init_keyword_only,
    _check_params_round_trip,
    _check_unfitted_raises,
    _check_fit_returns_self_and_schema,
    _check_deterministic,
    _check_does_not_mutate_market,
    _check_missing_tables,
)


def detector_checks() -> Iterator[Callable[[Any, Any], None]]:
    """Yield every conformance check (callables ``check(detector, market)``)."""
    yield from _CHECKS


def check_detector(detector: Any, market: Any) -> None:
    """Run every conformance check on ``detector`` with ``market``; raise on the first failure."""
    for check in _CHECKS:
        check(detector, market)


def parametrize_with_checks(detectors: Sequence[Any]) -> Any:
    """A ``pytest.mark.parametrize`` over (detector, check) pairs.

    The decorated test receives ``detector`` and ``check`` and calls
    ``check(detector, market)`` with a market of its choice.
    """
    import pytest

    pairs = [(d, c) for d in detectors for c in _CHECKS]
    ids = [f"{type(d).__name__}-{c.__name__.lstrip('_')}" for d, c in pairs]
    return pytest.mark.parametrize(("detector", "check"), pairs, ids=ids)
