"""Supervised bid-rigging mode: the library's own screens into a scikit-learn classifier.

Where a competition authority has labelled past cartel tenders, the screens
are features and a classifier learns how collusion shows in *that* market
(Huber & Imhof 2019: ~84% of Swiss tenders correctly classified; Huber, Imhof &
Ishii 2022: 88–93% in Japan). Features are computed from the bids alone with
:mod:`collusion.features` — never from precomputed columns of a data file.

Models are saved with ``skops`` (no pickle of arbitrary code): loading only
accepts the scikit-learn types the classifier is made of.

Examples
--------
>>> from collusion.datasets import make_market
>>> from collusion.supervised import ScreenClassifier, tender_features
>>> market, truth = make_market(3_000, seed=0)
>>> y = tender_features(market).index.isin(truth.cartel_tenders["tender_id"])
>>> clf = ScreenClassifier(random_state=0).fit(market, y)
>>> proba = clf.predict_proba(market)
>>> proba.shape == (len(y),) and bool(proba[y].mean() > proba[~y].mean())
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from threadpoolctl import threadpool_limits

from ._market import Market
from ._param_validation import Interval, Options, validate_params
from .exceptions import MissingDependencyError, NotFittedError
from .features import market_price_screens, subset_screens

__all__ = ["ScreenClassifier", "cross_validate", "load_model", "tender_features", "transfer"]

#: Whole-tender screens used as features (scale-free, so they transfer across currencies).
_SCREENS = ("cv", "spd", "diffp", "rd", "rdnor", "rdalt", "kurt", "skew", "kstest")


def tender_features(market: Market, *, subsets: bool = True) -> pd.DataFrame:
    """Per-tender feature matrix: screens, subset screens, bid count and value.

    Parameters
    ----------
    market : Market
        Any market with bids.
    subsets : bool
        Add the 3- and 4-bid subset screens (incomplete cartels).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``tender_id`` in market order; only tenders with at least
        one bid. Undefined screens are NaN (the classifier handles them).
    """
    screens = market_price_screens(market)
    feats = screens[list(_SCREENS)].copy()
    feats["n_bids"] = screens["n_bids"].astype(float)
    codes = market.codes("bids", "tender_id")
    prices = market.bids["price"].to_numpy(dtype=np.float64)
    # log of the mean bid: value matters (cartels target some contract sizes) but the
    # log keeps the feature comparable across currencies up to a shift.
    total = np.bincount(codes, weights=prices, minlength=market.n("tender"))
    with np.errstate(divide="ignore", invalid="ignore"):
        feats["log_value"] = np.log(total / screens["n_bids"].to_numpy())
    if subsets:
        sub = subset_screens(codes, prices, n_tenders=market.n("tender"), assume_sorted=True,
                             stats=("mean", "min", "max"), screens=("cv", "spd", "diffp", "rd"))
        sub = sub[[c for c in sub.columns if not c.startswith("exact")]]
        sub.index = feats.index
        feats = feats.join(sub)
    return feats[feats["n_bids"] > 0]


class ScreenClassifier(ClassifierMixin, BaseEstimator):
    """Gradient-boosted trees (or a random forest) on the tender features.

    Parameters
    ----------
    model : {"hgb", "forest"}
        ``HistGradientBoostingClassifier`` (handles NaN screens natively) or
        a ``RandomForestClassifier`` on median-imputed features.
    subsets : bool
        Use subset screens as features too.
    random_state : int
        Seed of the model.
    n_threads : int
        OpenMP/BLAS threads used while fitting and predicting (default 1).
        Gradient boosting on a few thousand tenders is fastest on one thread;
        on a busy machine more threads oversubscribe the cores (measured: 72 s
        vs 2 s on the Japanese market with 2 loaded cores).

    Attributes
    ----------
    estimator_ : sklearn estimator
        The fitted model.
    feature_names_ : list of str
        Features in the order the model expects.
    """

    _parameter_constraints = {
        "model": [Options(frozenset({"hgb", "forest"}))],
        "subsets": [bool],
        "random_state": [Interval(0, None, integer=True)],
        "n_threads": [Interval(1, None, integer=True)],
    }

    def __init__(self, *, model: str = "hgb", subsets: bool = True, random_state: int = 0, n_threads: int = 1) -> None:
        self.model = model
        self.subsets = subsets
        self.random_state = random_state
        self.n_threads = n_threads

    def _make(self) -> Any:
        if self.model == "hgb":
            return HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, max_leaf_nodes=15,
                                                  l2_regularization=1.0, random_state=self.random_state)
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline

        return make_pipeline(SimpleImputer(strategy="median"),
                             RandomForestClassifier(n_estimators=400, min_samples_leaf=2, n_jobs=1,
                                                    random_state=self.random_state))

    def _matrix(self, X: Market | pd.DataFrame) -> pd.DataFrame:
        feats = tender_features(X, subsets=self.subsets) if isinstance(X, Market) else X
        if hasattr(self, "feature_names_"):
            missing = [c for c in self.feature_names_ if c not in feats.columns]
            if missing:
                raise ValueError(f"features {missing} are missing from the input")
            feats = feats[self.feature_names_]
        return feats

    def fit(self, X: Market | pd.DataFrame, y: Sequence[bool] | np.ndarray) -> ScreenClassifier:
        """Fit on a market (or a feature frame from :func:`tender_features`) and tender labels."""
        validate_params(type(self).__name__, self.get_params(), self._parameter_constraints)
        feats = self._matrix(X)
        y = np.asarray(y, dtype=bool)
        if len(y) != len(feats):
            raise ValueError(f"got {len(y)} labels for {len(feats)} tenders with bids")
        self.feature_names_ = list(feats.columns)
        self.classes_ = np.array([False, True])
        with threadpool_limits(self.n_threads):
            self.estimator_ = self._make().fit(feats.to_numpy(dtype=np.float64), y)
        return self

    def predict_proba(self, X: Market | pd.DataFrame) -> np.ndarray:
        """Probability that each tender is collusive (one value per tender)."""
        if not hasattr(self, "estimator_"):
            raise NotFittedError("ScreenClassifier is not fitted yet")
        feats = self._matrix(X)
        with threadpool_limits(self.n_threads):
            return self.estimator_.predict_proba(feats.to_numpy(dtype=np.float64))[:, 1]

    def predict(self, X: Market | pd.DataFrame) -> np.ndarray:
        """Collusive (True) when the probability is at least 0.5."""
        return self.predict_proba(X) >= 0.5

    def save(self, path: str | Path) -> None:
        """Save with skops (a safe format: no arbitrary code runs on load)."""
        sio = _skops()
        sio.dump(self, str(path))


def _skops() -> Any:
    try:
        import skops.io as sio
    except ImportError as err:  # pragma: no cover - skops is a dependency
        raise MissingDependencyError("saving models needs skops: pip install skops") from err
    return sio


def load_model(path: str | Path) -> ScreenClassifier:
    """Load a :class:`ScreenClassifier` saved with :meth:`ScreenClassifier.save`.

    Only types on skops' trusted list and this module's own class are
    accepted; anything else in the file raises instead of executing.
    """
    sio = _skops()
    trusted = [t for t in sio.get_untrusted_types(file=str(path))
               if t.startswith(("sklearn.", "collusion.supervised.", "numpy."))]
    model = sio.load(str(path), trusted=trusted)
    if not isinstance(model, ScreenClassifier):
        raise TypeError(f"{path} does not hold a ScreenClassifier")
    return model


def _metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    pred = proba >= 0.5
    return {
        "roc_auc": float(roc_auc_score(y, proba)) if 0 < y.sum() < len(y) else float("nan"),
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
    }


def cross_validate(
    market: Market,
    labels: Sequence[bool] | np.ndarray,
    *,
    n_splits: int = 5,
    groups: Sequence[Any] | None = None,
    classifier: ScreenClassifier | None = None,
    random_state: int = 0,
) -> pd.DataFrame:
    """Tender-grouped, stratified k-fold cross-validation of the screen classifier.

    Each tender is one sample, so all bids of a tender stay in one fold; pass
    ``groups`` (e.g. the site or the year) to keep related tenders together too.

    Returns
    -------
    pandas.DataFrame
        One row per fold and a final ``"pooled"`` row with metrics over all
        out-of-fold predictions: ``roc_auc, accuracy, balanced_accuracy``.
    """
    clf = classifier if classifier is not None else ScreenClassifier(random_state=random_state)
    feats = tender_features(market, subsets=clf.subsets)
    y = np.asarray(labels, dtype=bool)
    if len(y) != len(feats):
        raise ValueError(f"got {len(y)} labels for {len(feats)} tenders with bids")
    g = np.arange(len(y)) if groups is None else np.asarray(groups)
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    oof = np.full(len(y), np.nan)
    rows = []
    for fold, (train, test) in enumerate(cv.split(feats, y, g)):
        model = clone(clf).fit(feats.iloc[train], y[train])
        oof[test] = model.predict_proba(feats.iloc[test])
        rows.append({"fold": str(fold), **_metrics(y[test], oof[test])})
    rows.append({"fold": "pooled", **_metrics(y, oof)})
    return pd.DataFrame(rows)


def transfer(
    train: Sequence[tuple[Market, np.ndarray]],
    test: tuple[Market, np.ndarray],
    *,
    classifier: ScreenClassifier | None = None,
) -> dict[str, float]:
    """Train on some markets, test on another (cross-market transfer).

    Only scale-free screens and the bid count are used (``log_value`` depends on
    the currency), so nothing about the test market's prices leaks in.
    """
    clf = classifier if classifier is not None else ScreenClassifier()
    parts, ys = [], []
    for market, y in train:
        parts.append(tender_features(market, subsets=clf.subsets).drop(columns=["log_value"]))
        ys.append(np.asarray(y, dtype=bool))
    X = pd.concat(parts, ignore_index=True)
    model = clone(clf).fit(X, np.concatenate(ys))
    test_X = tender_features(test[0], subsets=clf.subsets).drop(columns=["log_value"])
    return _metrics(np.asarray(test[1], dtype=bool), model.predict_proba(test_X))
