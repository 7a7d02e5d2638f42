"""Score detector results against a generated market's planted truth."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

__all__ = ["EVALUATION_COLUMNS", "evaluate", "truth_labels"]

EVALUATION_COLUMNS = (
    "detector", "unit", "scheme", "units", "positives", "found", "average_precision",
    "precision_at_k", "recall_flagged", "false_flag_rate",
)

#: detector → list of (unit kind, scheme, how to label). Contract-level funds schemes are
#: scored one at a time with the other funds schemes' contracts left out, so each AP
#: says how well that scheme is separated from honest contracts.
_FUNDS_SCHEMES = ("over_disbursement", "misdirected_payments", "early_payments", "win_low_change_high")


def _pair_keys(frame: pd.DataFrame, a: str, b: str) -> set[str]:
    return set(frame[a].astype(str) + "|" + frame[b].astype(str))


def _group_labels(members: pd.Series, planted: pd.DataFrame, key: str, item: str, prefix: str) -> np.ndarray:
    """A found group is positive when its set overlaps a planted group with Jaccard >= 0.5."""
    found = members.explode().dropna().astype(str)
    found = found[found.str.startswith(prefix)].str.slice(len(prefix)) if prefix else found
    f = pd.DataFrame({"g": found.index.to_numpy(), "item": found.to_numpy()})
    p = pd.DataFrame({"p": planted[key].astype(str).to_numpy(), "item": planted[item].astype(str).to_numpy()})
    if len(f) == 0 or len(p) == 0:
        return np.zeros(len(members), dtype=bool)
    inter = f.merge(p, on="item").groupby(["g", "p"]).size().rename("inter").reset_index()
    inter["fsize"] = inter["g"].map(f.groupby("g").size())
    inter["psize"] = inter["p"].map(p.groupby("p").size())
    inter["jaccard"] = inter["inter"] / (inter["fsize"] + inter["psize"] - inter["inter"])
    good = set(inter.loc[inter["jaccard"] >= 0.5, "g"])
    return np.array([i in good for i in members.index])


def truth_labels(results: pd.DataFrame, truth: Any) -> list[tuple[str, str, str, pd.Series, int]]:
    """Label each scored unit with the planted truth.

    Returns a list of ``(detector, unit, scheme, labels, n_planted)`` where
    ``labels`` is a boolean Series aligned to the rows of ``results`` that
    take part in that evaluation (rows of other schemes are left out).
    """
    out: list[tuple[str, str, str, pd.Series, int]] = []
    for (det, unit), part in results.groupby(["detector", "unit"], sort=True):
        key = part["entity_id"].astype(str)
        pair = key + "|" + part["other_id"].astype(str)
        if det == "buyer_winner" and unit == "pair":
            pos = _pair_keys(truth.favoured_pairs, "buyer_id", "company_id")
            # A buyer's split lots all go to one firm: a planted buyer-company scheme of its own
            # (analysis 7). Pairs whose wins include planted split lots are left out, as the funds
            # schemes are, so this AP measures favoured against honest pairs.
            split = set(truth.split_groups["tender_id"].astype(str))
            won_split = pd.Series([bool(split.intersection(ts)) for ts in part["tender_ids"].tolist()],
                                  index=part.index)
            keep = ~won_split | pair.isin(pos)
            out.append((det, unit, "favoured_pairs", pair[keep].isin(pos), len(pos)))
        elif det == "agent_bidder" and unit == "pair":
            pos = _pair_keys(truth.captured_agents, "agent_id", "company_id")
            out.append((det, unit, "captured_agents", pair.isin(pos), len(pos)))
        elif det == "expert_winner" and unit == "pair":
            pos = _pair_keys(truth.captured_experts, "expert_id", "company_id")
            out.append((det, unit, "captured_experts", pair.isin(pos), len(pos)))
        elif det == "bid_rigging" and unit == "tender":
            pos = set(truth.cartel_tenders["tender_id"].astype(str))
            out.append((det, unit, "cartel_tenders", key.isin(pos), len(pos)))
        elif det == "bid_rigging" and unit == "group":
            labels = _group_labels(part["members"], truth.cartels, "cartel_id", "company_id", "company:")
            out.append((det, unit, "cartels", pd.Series(labels, index=part.index),
                        truth.cartels["cartel_id"].nunique()))
        elif det == "winner_builder" and unit == "contract":
            pos = set(truth.licence_lending["contract_id"].astype(str))
            out.append((det, unit, "licence_lending", key.isin(pos), len(pos)))
        elif det == "winner_builder" and unit == "pair":
            pos = _pair_keys(truth.licence_lending, "winner_id", "builder_id")
            out.append((det, unit, "licence_lending_pairs", pair.isin(pos), len(pos)))
        elif det == "funds" and unit == "contract":
            sets = {s: set(getattr(truth, s)["contract_id"].astype(str)) for s in _FUNDS_SCHEMES}
            for scheme, pos in sets.items():
                others = set().union(*(v for s, v in sets.items() if s != scheme)) - pos
                keep = ~key.isin(others)
                out.append((det, unit, scheme, key[keep].isin(pos), len(pos)))
        elif det == "funds" and unit == "project":
            pos = set(truth.cost_overruns["project_id"].astype(str))
            out.append((det, unit, "cost_overruns", key.isin(pos), len(pos)))
        elif det == "lot_splitting" and unit == "group":
            labels = _group_labels(part["tender_ids"], truth.split_groups, "group_id", "tender_id", "")
            out.append((det, unit, "split_groups", pd.Series(labels, index=part.index),
                        truth.split_groups["group_id"].nunique()))
    return out


def evaluate(screening: Any, truth: Any) -> pd.DataFrame:
    """Average precision, precision@k and flag rates of every detector per planted scheme.

    Parameters
    ----------
    screening : Screening or pandas.DataFrame
        The output of :func:`collusion.screen` or any result frame.
    truth : Truth
        Ground truth returned by :func:`make_market`.

    Returns
    -------
    pandas.DataFrame
        One row per (detector, unit, scheme): ``units`` scored, ``positives``
        planted, ``found`` (planted units that were scored at all),
        ``average_precision`` (planted units never scored count as missed),
        ``precision_at_k`` (k = planted count), ``recall_flagged`` (share of
        planted units flagged) and ``false_flag_rate`` (share of other units flagged).
    """
    results = screening.results if hasattr(screening, "results") else screening
    rows = []
    for det, unit, scheme, labels, n_planted in truth_labels(results, truth):
        part = results.loc[labels.index]
        y = labels.to_numpy(dtype=bool)
        score = part["score"].to_numpy(dtype=float)
        score = np.where(np.isfinite(score), score, np.nanmin(score[np.isfinite(score)]) - 1 if np.isfinite(score).any() else 0)
        n_pos = max(int(n_planted), int(y.sum()))
        missing = n_pos - int(y.sum())
        # planted units the detector never scored rank below everything
        y_all = np.concatenate([y, np.ones(missing, dtype=bool)])
        s_all = np.concatenate([score, np.full(missing, score.min() - 1 if score.size else 0.0)])
        ap = average_precision_score(y_all, s_all) if y_all.any() and (~y_all).any() else float("nan")
        k = n_pos
        top = np.argsort(-score, kind="stable")[:k]
        flagged = part["flagged"].to_numpy(dtype=bool)
        rows.append(
            (det, unit, scheme, len(part), n_pos, int(y.sum()), ap,
             float(y[top].sum() / k) if k else float("nan"),
             float((flagged & y).sum() / n_pos) if n_pos else float("nan"),
             float((flagged & ~y).sum() / max((~y).sum(), 1)))
        )
    return pd.DataFrame(rows, columns=list(EVALUATION_COLUMNS))
