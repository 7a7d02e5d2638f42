"""Affinity between a context entity and a company: who wins too often where.

Three analyses ask the same question about a different *context* entity X:
does company C win the tenders that X organises (a buyer, analysis 1), runs
(a procurement agent, analysis 5) or evaluates (an expert on the panel,
analysis 6) far more often than C's own strength predicts, and are those wins
of the irregular kind? This module is their one shared kernel.

Co-occurrence as sparse products
--------------------------------
The context relation is a 0/1 matrix ``E`` (X × tender), the bids a 0/1
matrix ``B`` (tender × bid). Every signal is a sum over the rows of the
product ``E @ B`` — the *triples* (X, tender, bid) — with a per-bid weight
(1 for bids, ``is_winner`` for wins, the win probability for the expectation,
``is_winner * flag`` for irregular wins...), grouped by (X, company). These
are counts and sums, so partial results over disjoint sets of tenders add up.

The null model
--------------
Firms are not equal: an efficient firm wins often everywhere. The chance that
C wins tender t is taken from a conditional-logit (Luce) model with one
strength ``r`` per firm, ``p = r_C / sum of r over the bidders of t``, fitted
by the minorisation–maximisation algorithm of Hunter (2004) with a Gamma
prior that shrinks firms with few bids towards the average strength. For a
pair (X, C) the strength of C is re-estimated *without X's tenders* (one MM
step from the global fit, which is exact for the counts and first-order for
the exposure), so a supplier that only wins at its favouring buyer is judged
by its record elsewhere. ``baseline="uniform"`` uses ``p = 1 / n_bids``
instead (every bidder equally likely), which ignores firm strength: on
generated 20k-tender markets the excess-win tail alone ranks favoured
suppliers about twice as well with the strength baseline (average precision
0.53 against 0.26), because strong firms that win everywhere stop looking
like favourites.

Wins above expectation are scored by the tail of the binomial with the same
mean as the Poisson-binomial of the per-tender probabilities (the binomial
is the most spread distribution with that mean, so the tail is conservative;
Hoeffding 1956), reported as ``-log10 p`` ("surprise"). Single-bid tenders
are left out of this test (the only bidder wins for sure) and counted as an
irregularity instead, with non-open procedures and short bidding periods:
for each flag the share of C's wins at X that carry it is tested against X's
rate for its other suppliers, shrunk towards the market rate, so a buyer that
legitimately runs many negotiated procedures does not make all its suppliers
suspicious while one supplier that gets all of them does.

Experts add two statistics: the presence effect (hypergeometric tail of C's
wins among the evaluated tenders where X sat, given C's wins and evaluated
tenders overall) and the score bias (X's score for C minus the mean of the
rest of the panel, compared with X's bias for other firms by a pooled
two-sample t-test).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import special, stats

from .._arrays import (
    first_of_runs,
    group_keys,
    group_numbers,
    unique_ints,
    varies_within,
)
from ._surprisal import binom_surprisal, chi2_logsf

__all__ = [
    "LINK_KINDS",
    "binomial_surprise",
    "context_links",
    "cooccurrence",
    "empirical_surprise",
    "exclusive_trace_uses",
    "firm_strength",
    "fisher_surprise",
    "flag_wins_given",
    "hypergeom_surprise",
    "pair_affinity",
    "score_bias",
]

_LN10 = np.log(10.0)
#: Surprises are capped here (p below 1e-300 underflows double precision).
MAX_SURPRISE = 300.0


# --------------------------------------------------------------------- tails
def binomial_surprise(k: Any, n: Any, p: Any) -> np.ndarray:
    """``-log10 P(K >= k)`` for ``K ~ Binomial(n, p)``, elementwise.

    Zero when ``k <= 0``; capped at 300. ``p`` is clipped to ``[1e-12, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> binomial_surprise(np.array([0, 5, 5]), np.array([5, 5, 5]), np.array([0.5, 0.5, 1.0])).round(3).tolist()
    [0.0, 1.505, 0.0]
    """
    # the base-10 view of features._surprisal.binom_surprisal (natural log)
    k, n, p = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (k, n, p)))
    out = np.zeros(k.shape)
    live = (k > 0) & (n > 0)
    if live.any():
        with np.errstate(divide="ignore"):
            out[live] = binom_surprisal(k[live], n[live], p[live]) / _LN10
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=MAX_SURPRISE), 0.0, MAX_SURPRISE)


def hypergeom_surprise(k: Any, total: Any, successes: Any, draws: Any) -> np.ndarray:
    """``-log10 P(K >= k)`` for ``K ~ Hypergeometric(total, successes, draws)`` (one-sided Fisher test).

    Examples
    --------
    >>> import numpy as np
    >>> float(hypergeom_surprise(3, 10, 3, 3).round(3))  # all 3 wins fell among 3 of 10 tenders
    2.079
    """
    k = np.asarray(k, dtype=np.float64)
    total, successes, draws = (np.asarray(a, dtype=np.float64) for a in (total, successes, draws))
    k, total, successes, draws = np.broadcast_arrays(k, total, successes, draws)
    out = np.zeros(k.shape)
    live = (k > 0) & (total > 0)
    if live.any():
        # scipy's hypergeom.logsf loops in Python per element; sf is a vectorised ufunc.
        with np.errstate(divide="ignore"):
            out[live] = -np.log10(stats.hypergeom.sf(k[live] - 1, total[live], successes[live], draws[live]))
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=MAX_SURPRISE), 0.0, MAX_SURPRISE)


def fisher_surprise(*surprises: Any) -> np.ndarray:
    """Combine independent one-sided tests (given as ``-log10 p``) by Fisher's method.

    ``-2 sum(ln p)`` follows a chi-square with ``2m`` degrees of freedom under
    the null; the result is ``-log10`` of its upper tail, so it is again a
    surprise on the same scale (a test with ``p = 1`` adds nothing but still
    counts towards the degrees of freedom, as it should).

    Examples
    --------
    >>> import numpy as np
    >>> fisher_surprise(np.array([2.0, 0.0]), np.array([2.0, 0.0])).round(3).tolist()
    [2.991, 0.0]
    """
    if not surprises:
        raise ValueError("fisher_surprise needs at least one surprise array")
    arrays = np.broadcast_arrays(*(np.asarray(s, dtype=np.float64) for s in surprises))
    stat = 2.0 * _LN10 * np.sum([np.clip(np.nan_to_num(a), 0.0, None) for a in arrays], axis=0)
    out = -chi2_logsf(stat, 2.0 * len(arrays)) / _LN10
    return np.clip(np.nan_to_num(out, posinf=MAX_SURPRISE), 0.0, MAX_SURPRISE) + 0.0  # no -0.0


def empirical_surprise(values: Any) -> np.ndarray:
    """``-log10`` of the share of values at least as large: each value's market-calibrated tail.

    Where a nominal null model is too optimistic for a market (honest firms
    do win more at home than their overall record says), the empirical
    upper-tail probability of a statistic among all units of the market is
    a calibrated p-value that needs no model. Ties share the largest tail
    (conservative); NaN is no evidence (surprise 0) and not part of the
    population.

    Examples
    --------
    >>> import numpy as np
    >>> empirical_surprise(np.array([5.0, 1.0, 1.0, 0.0, np.nan])).round(3).tolist()
    [0.602, 0.125, 0.125, 0.0, 0.0]
    """
    x = np.asarray(values, dtype=np.float64)
    out = np.zeros(x.shape)
    ok = ~np.isnan(x)
    n = int(ok.sum())
    if n == 0:
        return out
    # Number of values >= x: n minus the number strictly below (NaN is not in the population).
    below = np.searchsorted(np.sort(x[ok]), x[ok], side="left")
    out[ok] = np.log10(n / (n - below))
    return out + 0.0


def exclusive_trace_uses(
    trace: np.ndarray, company: np.ndarray, tender: np.ndarray, tender_context: np.ndarray
) -> np.ndarray:
    """Mark bid-trace uses whose value several firms used, only ever in the tenders of one context.

    A document fingerprint or contact that bids of *different* firms carry,
    and that never appears outside the tenders of one agent (or buyer), is
    that party's own: it prepared those bids. A firm's own fingerprint is
    used across every context it bids in, a widespread template across
    many, so neither is marked.

    Parameters
    ----------
    trace : array of int
        Global code of the trace value of each use (unique across trace types).
    company, tender : array of int
        Bidder and tender code of each use.
    tender_context : array of int
        Context code of every tender (-1 for tenders without one).

    Returns
    -------
    numpy.ndarray of bool
        One flag per use.

    Examples
    --------
    >>> import numpy as np
    >>> ctx = np.array([0, 0, 1])                       # tenders 0, 1 run by agent 0; tender 2 by agent 1
    >>> exclusive_trace_uses(np.array([7, 7, 8, 8]), np.array([1, 2, 1, 3]),
    ...                      np.array([0, 1, 0, 2]), ctx).tolist()
    [True, True, False, False]
    """
    trace = np.asarray(trace, dtype=np.int64)
    company = np.asarray(company, dtype=np.int64)
    one_context = _one_context_uses(trace, tender, tender_context)
    if trace.size == 0:
        return one_context
    # "Several firms" per value, by a min/max scatter like "one context" (37M uses: 1.3 s
    # for both, against 6 s for deduplicating the pairs).
    return varies_within(trace, company, int(trace.max()) + 1)[trace] & one_context


def _one_context_uses(trace: np.ndarray, tender: np.ndarray, tender_context: np.ndarray) -> np.ndarray:
    """The "one context" half of :func:`exclusive_trace_uses`: uses of a value seen only in
    the tenders of one context, themselves in a tender with a context.

    Callers whose uses are already only of values several firms used
    (:func:`collusion.detectors._affinity._bid_trace_uses`) need only this half.
    """
    trace = np.asarray(trace, dtype=np.int64)
    ctx = np.asarray(tender_context, dtype=np.int64)[np.asarray(tender, dtype=np.int64)]
    if trace.size == 0:
        return np.zeros(0, dtype=bool)
    # Global trace codes are already small integers: the value is the scatter key.
    return ~varies_within(trace, ctx, int(trace.max()) + 1)[trace] & (ctx >= 0)


# ------------------------------------------------------------- co-occurrence
def cooccurrence(
    context: np.ndarray, context_tender: np.ndarray, bid_tender: np.ndarray, *, n_tenders: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the sparse product ``E @ B``: every (context, bid) with the bid in a tender of the context.

    Parameters
    ----------
    context, context_tender : array of int
        The context relation as code pairs (X organises / runs / evaluates
        tender); duplicate pairs are counted once.
    bid_tender : array of int
        Tender code of every bid.
    n_tenders : int
        Number of tender codes.

    Returns
    -------
    x, bid : numpy.ndarray
        Context code and bid row of every triple, ordered by (x, bid).

    Examples
    --------
    >>> import numpy as np
    >>> x, b = cooccurrence(np.array([0, 1, 1]), np.array([0, 0, 1]), np.array([0, 0, 1]), n_tenders=2)
    >>> x.tolist(), b.tolist()
    ([0, 0, 1, 1, 1], [0, 1, 0, 1, 2])
    """
    context = np.asarray(context, dtype=np.int64)
    context_tender = np.asarray(context_tender, dtype=np.int64)
    ok = (context >= 0) & (context_tender >= 0)
    context, context_tender = context[ok], context_tender[ok]
    if context.size:
        # One row per distinct (X, tender): the product is 0/1.
        n_x = int(context.max()) + 1
        key = unique_ints(context_tender * n_x + context)
        context, context_tender = key % n_x, key // n_x
    x, bid = _context_bids(context, context_tender, np.asarray(bid_tender, dtype=np.int64), n_tenders=n_tenders)
    order = np.lexsort((bid, x))
    return x[order], bid[order]


def _context_bids(
    context: np.ndarray, context_tender: np.ndarray, bid_tender: np.ndarray, *, n_tenders: int
) -> tuple[np.ndarray, np.ndarray]:
    """The (context, bid) rows of ``E @ B`` in no particular order, for distinct valid (X, tender) pairs.

    Each (X, tender) pair is expanded into the bids of its tender by a repeat over
    the tenders' bid ranges: no sparse product and no sort of the rows (callers
    order them by the key they need, once).
    """
    if context_tender.size and np.bincount(context_tender, minlength=n_tenders).max() == 1:
        # One context per tender (buyers, agents): the product is a relabelling of the bids.
        of_tender = np.full(n_tenders, -1, dtype=np.int64)
        of_tender[context_tender] = context
        x = of_tender[bid_tender]
        bid = np.flatnonzero(x >= 0)
        return x[bid], bid
    size, bid = _bids_of_tenders(context_tender, bid_tender, n_tenders=n_tenders)
    return np.repeat(context, size), bid


def _bids_of_tenders(
    tenders: np.ndarray, bid_tender: np.ndarray, *, n_tenders: int, missing: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The number of bids of each listed tender, and their bid rows concatenated in list order.

    A repeat over the tenders' ranges in the tender-ordered bids: no sort unless
    the bids are not in tender order already, and then one stable argsort (a
    tender's bids stay in row order). ``missing=True`` lets ``bid_tender`` hold
    -1 (a bid without a tender, in no tender's range); it costs a shifted copy
    of the codes, so callers whose codes are all valid do not ask for it.
    """
    by_tender = None
    if bid_tender.size and np.any(bid_tender[1:] < bid_tender[:-1]):
        by_tender = np.argsort(bid_tender, kind="stable")
    if missing:  # bids without a tender sort first: tender t's bids start after them
        bounds = np.zeros(n_tenders + 2, dtype=np.int64)
        np.cumsum(np.bincount(bid_tender.astype(np.int64) + 1, minlength=n_tenders + 1), out=bounds[1:])
        start = bounds[1:]
    else:
        start = np.zeros(n_tenders + 1, dtype=np.int64)
        np.cumsum(np.bincount(bid_tender, minlength=n_tenders), out=start[1:])
    size = start[tenders + 1] - start[tenders]
    # Position of each row in the tender-ordered bids: its range start plus its rank in the range.
    bid = np.repeat(start[tenders] - (np.cumsum(size) - size), size)
    bid += np.arange(bid.size, dtype=np.int64)
    if by_tender is not None:
        bid = by_tender[bid]
    return size, bid


def _pair_rows(
    context: np.ndarray, bid: np.ndarray, bid_company: np.ndarray, *, n_companies: int, n_bids: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group (context, bid) rows by pair ``context * n_companies + company``, ordered by (pair, bid).

    Returns the sorted distinct pair keys, each row's pair number and each row's
    bid. Pair key and bid are packed into one int64 and sorted by value (numpy's
    SIMD sort of plain integers): one sort orders the rows and groups them, and
    within a pair the rows stay in bid order whatever order they came in, so
    per-pair sums add in the same order. Keys too large to pack fall back to a
    lexsort.
    """
    key = bid_company[bid].astype(np.int64, copy=False)
    key += context * n_companies
    bits = max(n_bids - 1, 1).bit_length()
    if key.size and int(key.max()) < 1 << (63 - bits):
        key <<= bits  # packed in place and sorted in place: no copies of ten million rows
        key |= bid
        key.sort()
        bid = key & ((1 << bits) - 1)
        key >>= bits
    elif key.size:
        order = np.lexsort((bid, key))
        key, bid = key[order], bid[order]
    start = first_of_runs(key)
    pair = group_numbers(start)
    return key[start], pair, bid


# ------------------------------------------------------------------- strength
def firm_strength(
    bid_tender: np.ndarray,
    bid_company: np.ndarray,
    is_winner: np.ndarray,
    *,
    n_tenders: int,
    n_companies: int,
    prior: float = 1.0,
    max_iter: int = 200,
    tol: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray]:
    """Strength of every firm in a conditional-logit (Luce) model of who wins a tender.

    ``P(C wins t) = r_C / S_t`` with ``S_t`` the sum of the strengths of the
    bidders of ``t``. The MAP estimate under a Gamma(prior + 1, prior) prior
    (mode 1) is the fixed point of the MM update (Hunter 2004)::

        r_C = (wins_C + prior) / (sum over C's tenders of 1 / S_t + prior)

    iterated for all firms at once. Only tenders with a winner and at least
    two bidders inform the fit.

    Parameters
    ----------
    bid_tender, bid_company : array of int
        Tender and company code of every bid.
    is_winner : array of bool
        Winning bids.
    n_tenders, n_companies : int
        Numbers of codes.
    prior : float, default 1.0
        Pseudo-count pulling firms with little data towards strength 1.
    max_iter, tol : int, float
        Stop after ``max_iter`` MM steps or when one MM step moves no
        strength by more than ``tol`` (relative). Steps are accelerated by
        SQUAREM; at ``1e-4`` strengths are within 5e-5 of the fixed point at
        a million tenders (25 steps; plain MM took 64 and stopped 7e-4 away).

    Returns
    -------
    strength : numpy.ndarray
        ``r`` per company (1 for firms without informative bids).
    tender_total : numpy.ndarray
        ``S_t`` per tender (0 for tenders without bids).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([0, 0, 1, 1, 2, 2])
    >>> c = np.array([0, 1, 0, 1, 0, 1])
    >>> w = np.array([True, False, True, False, False, True])
    >>> r, s = firm_strength(t, c, w, n_tenders=3, n_companies=2)
    >>> bool(r[0] > 1 > r[1]), np.allclose(s, r.sum())
    (True, True)
    """
    t = np.asarray(bid_tender, dtype=np.int64)
    c = np.asarray(bid_company, dtype=np.int64)
    w = np.asarray(is_winner, dtype=bool)
    n_bids = np.bincount(t, minlength=n_tenders)
    awarded = np.bincount(t[w], minlength=n_tenders) > 0
    inf = awarded[t] & (n_bids[t] > 1)
    ti, ci = t[inf], c[inf]
    wins = np.bincount(ci[w[inf]], minlength=n_companies).astype(np.float64)
    # The informative bids as a tender x firm incidence in both orientations: each MM
    # step is then two sparse mat-vecs (1.5x faster than gather + weighted bincount).
    # Built from indptr/indices in bid order (scipy would sort each row by firm code): the
    # sums, and so the step where the fit stops, must not depend on how firms are labelled.
    if ti.size and np.any(ti[1:] < ti[:-1]):
        order = np.argsort(ti, kind="stable")
        ti, ci = ti[order], ci[order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(ti, minlength=n_tenders))])
    inc = sp.csr_matrix((np.ones(ti.size), ci, indptr), shape=(n_tenders, n_companies))
    inc_t = inc.T.tocsr()
    del ti, ci

    def mm_step(r: np.ndarray) -> np.ndarray:  # one vectorised MM step over all firms
        s = inc @ r
        with np.errstate(divide="ignore"):
            inv = np.where(s > 0, 1.0 / s, 0.0)  # tenders without informative bids weigh nothing
        return (wins + prior) / (inc_t @ inv + prior)

    # SQUAREM (Varadhan & Roland 2008, scheme S3): two MM steps give the direction and
    # curvature of the path to the fixed point, and one extrapolated jump replaces many
    # small steps. MM alone converges linearly and slowly (64 steps at 1M tenders to
    # tol 1e-4, still 7e-4 from the fixed point); accelerated, 25 steps reach 5e-5.
    # A jump that leaves the positive orthant falls back to the plain second step.
    r = np.ones(n_companies)
    steps = 0
    while steps < max_iter and r.size:
        r1 = mm_step(r)
        steps += 1
        if np.max(np.abs(r1 - r) / r) < tol:
            r = r1
            break
        r2 = mm_step(r1)
        steps += 1
        d1, d2 = r1 - r, r2 - 2.0 * r1 + r
        # Sums of sorted squares: the step length must not depend on how firms are labelled.
        curv = float(np.sort(d2 * d2).sum())
        alpha = min(-np.sqrt(float(np.sort(d1 * d1).sum()) / curv), -1.0) if curv > 0 else -1.0
        jump = r - 2.0 * alpha * d1 + alpha * alpha * d2
        r = jump if np.all(jump > 0) else r2
    return r, np.bincount(t, weights=r[c], minlength=n_tenders)


# -------------------------------------------------------------------- kernel
def pair_affinity(
    context: np.ndarray,
    context_tender: np.ndarray,
    bid_tender: np.ndarray,
    bid_company: np.ndarray,
    is_winner: np.ndarray,
    *,
    n_tenders: int,
    n_companies: int,
    flags: Mapping[str, np.ndarray] | None = None,
    bid_flags: Mapping[str, np.ndarray] | None = None,
    value: np.ndarray | None = None,
    baseline: str = "strength",
    strength_prior: float = 1.0,
    flag_prior: float = 10.0,
    min_tenders: int = 1,
    strength: tuple[np.ndarray, np.ndarray] | None = None,
    return_triples: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Wins of every company in the tenders of every context entity, against expectation.

    Parameters
    ----------
    context, context_tender : array of int
        The context relation as (X code, tender code) pairs: buyer organises,
        agent runs, expert sits on the panel of the tender.
    bid_tender, bid_company, is_winner : arrays
        The bids that make up the market to compare against (for experts:
        the evaluated bids).
    n_tenders, n_companies : int
        Numbers of tender and company codes.
    flags : mapping of str to bool array (per tender), optional
        Irregularities of a tender (``non_open``, ``short_period``,
        ``single_bid``...). An ``irregular`` flag (any of them) is added.
    value : float array (per tender), optional
        Awarded value of each tender, for value shares (NaN counts as 0).
    baseline : {"strength", "uniform"}
        Win probability model: leave-X-out firm strength, or ``1 / n_bids``.
    strength_prior : float
        Prior pseudo-count of :func:`firm_strength` and of the leave-out step.
    flag_prior : float
        Weight (in tenders) of the market rate in the baseline of each flag:
        the baseline is X's rate among its other suppliers' wins, shrunk
        towards the market rate by this many pseudo-wins.
    bid_flags : mapping of str to bool array (per bid), optional
        Marks on individual bids (e.g. ``prepared``: the bid carries a trace
        found only in the context's tenders). Tested per pair as the number
        of C's bids at X with the mark against the market rate of marked
        bids in the tenders of any context.
    min_tenders : int, default 1
        Return only the pairs where C bid in at least this many awarded
        tenders of X. The totals of X and C (``context_tenders``,
        ``company_*``, the flag baselines and ``hhi``) still count every
        pair; only the per-pair statistics are skipped, which is most of the
        work when most pairs meet once (two thirds of the expert pairs).
    strength : tuple of arrays, optional
        ``(r, S)`` of :func:`firm_strength` on these very bids with
        ``strength_prior``, when the caller already has it (the buyer and
        agent analyses share one fit).
    return_triples : bool
        Also return the triples (one row per bid of C in an awarded tender
        of X): ``pair`` (row of the result), ``tender``, ``bid`` (row in the
        bid arrays), ``is_winner`` and ``p`` (win probability under the
        null; 1 for single-bid tenders), ordered by (pair, bid). Detectors
        use them for evidence.

    Returns
    -------
    pandas.DataFrame
        One row per (context, company) with at least one bid of the company
        in an awarded tender of the context, sorted by (context, company):

        ``context, company`` codes; ``tenders`` and ``wins`` (all awarded
        tenders of X where C bid, and C's wins there); ``contested`` and
        ``contested_wins`` (the same without single-bid tenders);
        ``expected`` (expected contested wins), ``ratio``
        (``contested_wins / expected``), ``win_rate``, ``baseline_rate``
        (``expected / contested``), ``excess`` (binomial surprise of the
        contested wins), ``strength`` (C's leave-X-out strength);
        ``company_tenders``, ``company_wins`` (C's totals over all contexts)
        and ``context_tenders`` (awarded tenders of X); for each flag
        ``<flag>_wins``, ``<flag>_baseline`` (expected share of C's wins
        with the flag), ``<flag>_surprise``; with ``value``: ``value``
        (awarded to C at X), ``value_share``, ``expected_value_share`` and
        ``hhi`` (Herfindahl index of X's suppliers), ``value_z`` and
        ``value_surprise`` (value-weighted excess of the contested wins); for
        each bid flag ``<flag>_bids``, ``<flag>_baseline`` and
        ``<flag>_surprise``.

    Examples
    --------
    >>> import numpy as np
    >>> # Buyer 0 runs tenders 0-3, buyer 1 runs 4-7; firm 0 wins all of buyer 0's
    >>> # tenders but only half of buyer 1's, so judged by its record at buyer 1
    >>> # (strength 1.0 against firm 1's global 0.6) it was expected to win 2.5.
    >>> bt = np.repeat(np.arange(8), 2)
    >>> bc = np.tile([0, 1], 8)
    >>> bw = np.array([1, 0] * 4 + [0, 1, 1, 0] * 2, dtype=bool)
    >>> out = pair_affinity(np.array([0] * 4 + [1] * 4), np.arange(8), bt, bc, bw, n_tenders=8, n_companies=2)
    >>> out[["context", "company", "wins", "expected"]].round(2).to_dict("list")
    {'context': [0, 0, 1, 1], 'company': [0, 1, 0, 1], 'wins': [4, 0, 2, 2], 'expected': [2.5, 1.67, 2.94, 0.77]}
    """
    if baseline not in ("strength", "uniform"):
        raise ValueError(f"baseline must be 'strength' or 'uniform', got {baseline!r}")
    bt = np.asarray(bid_tender, dtype=np.int64)
    bc = np.asarray(bid_company, dtype=np.int64)
    bw = np.asarray(is_winner, dtype=bool)
    ctx = np.asarray(context, dtype=np.int64)
    ctt = np.asarray(context_tender, dtype=np.int64)
    if not (bt.shape == bc.shape == bw.shape):
        raise ValueError("bid_tender, bid_company and is_winner must have the same length")
    if ctx.shape != ctt.shape:
        raise ValueError("context and context_tender must have the same length")

    n_bids = np.bincount(bt, minlength=n_tenders)
    awarded = np.bincount(bt[bw], minlength=n_tenders) > 0
    contested = awarded & (n_bids > 1)
    # Context incidence restricted to awarded tenders, one row per (X, tender).
    keep = (ctx >= 0) & (ctt >= 0)
    ctx, ctt = ctx[keep], ctt[keep]
    if ctx.size:
        n_ctx = int(ctx.max()) + 1
        key = ctt * n_ctx + ctx
        if np.any(key[1:] <= key[:-1]):  # callers usually pass distinct pairs by (tender, X) already
            _, first = np.unique(key, return_index=True)
            ctx, ctt = ctx[first], ctt[first]
        del key
    ctx_aw = awarded[ctt]

    # Strength model (global) and the per-bid probability under it.
    if baseline == "strength":
        r, s_t = strength if strength is not None else firm_strength(
            bt, bc, bw, n_tenders=n_tenders, n_companies=n_companies, prior=strength_prior)
    else:
        r, s_t = np.ones(n_companies), n_bids.astype(np.float64)
    bid_inf = contested[bt]
    company_tenders = np.bincount(bc[awarded[bt]], minlength=n_companies)
    company_wins = np.bincount(bc[bw], minlength=n_companies)
    company_cwins = np.bincount(bc[bw & bid_inf], minlength=n_companies).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_s = np.where(bid_inf, 1.0 / s_t[bt], 0.0)
    company_exposure = np.bincount(bc, weights=inv_s, minlength=n_companies)

    # Triples (X, bid) of the product E @ B, awarded tenders only, ordered by (pair, bid).
    x, b = _context_bids(ctx[ctx_aw], ctt[ctx_aw], bt, n_tenders=n_tenders)
    uniq, pair, b = _pair_rows(x, b, bc, n_companies=n_companies, n_bids=bt.size)
    del x
    w = bw[b]  # tenders and contestedness are gathered after the support filter
    px = uniq // n_companies  # the context of every pair (its company only after the support filter)
    n_pairs = uniq.size

    tenders = np.bincount(pair, minlength=n_pairs)
    n_x = int(ctx.max()) + 1 if ctx.size else 0  # context codes (every pair's X among them)
    v = None
    if value is not None:
        v = np.nan_to_num(np.asarray(value, dtype=np.float64), nan=0.0)
        if v.shape != (n_tenders,):
            raise ValueError(f"value must be one number per tender (length {n_tenders}), got {v.shape}")
        # Herfindahl index of X's suppliers, over every supplier (before the support filter).
        ctx_value = np.bincount(ctx[ctx_aw], weights=v[ctt[ctx_aw]], minlength=n_x)
        won = np.bincount(pair[w], weights=v[bt[b[w]]], minlength=n_pairs)
        # Only suppliers awarded some value add to the index (a zero share adds exactly 0):
        # most pairs before the support filter never won (10M expert pairs at 1M tenders).
        has = np.flatnonzero(won)
        hx = px[has]
        with np.errstate(divide="ignore", invalid="ignore"):
            share_all = np.where(ctx_value[hx] > 0, won[has] / ctx_value[hx], 0.0)
        hhi_x = np.bincount(hx, weights=share_all**2, minlength=n_x)
        del won, share_all, has, hx
    if min_tenders > 1 and n_pairs:
        # Drop the pairs below the support first: every statistic below is per pair.
        kept = tenders >= min_tenders
        sel = kept[pair]
        remap = group_numbers(kept)
        b, w = b[sel], w[sel]
        pair = remap[pair[sel]]
        uniq, px, tenders = uniq[kept], px[kept], tenders[kept]
        n_pairs = uniq.size
        del sel, remap, kept
    pc = uniq % n_companies
    t, inf = bt[b], bid_inf[b]

    def pair_sum(weights: np.ndarray) -> np.ndarray:
        return np.bincount(pair, weights=np.asarray(weights, dtype=np.float64), minlength=n_pairs)

    wins = pair_sum(w)
    cont = pair_sum(inf)
    cwins = pair_sum(w & inf)
    if baseline == "strength":
        # Leave-X-out strength: C's wins and exposure outside X's tenders (one MM step).
        exposure_x = pair_sum(inv_s[b])
        r_out = (company_cwins[pc] - cwins + strength_prior) / (
            np.maximum(company_exposure[pc] - exposure_x, 0.0) + strength_prior
        )
        rt = r_out[pair]
        p = np.where(inf, rt / np.maximum(s_t[t] - r[pc][pair] + rt, 1e-12), 0.0)
    else:
        r_out = np.ones(n_pairs)
        p = np.where(inf, 1.0 / np.maximum(n_bids[t], 1), 0.0)
    expected = pair_sum(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        base_rate = np.where(cont > 0, expected / cont, np.nan)
        out = pd.DataFrame(  # copy=False: no consolidation copy of millions of rows
            {
                "context": px,
                "company": pc,
                "tenders": tenders.astype(np.int64),
                "wins": wins.astype(np.int64),
                "contested": cont.astype(np.int64),
                "contested_wins": cwins.astype(np.int64),
                "expected": expected,
                "ratio": np.where(expected > 0, cwins / expected, np.nan),
                "win_rate": np.where(cont > 0, cwins / cont, np.nan),
                "baseline_rate": base_rate,
                "excess": binomial_surprise(cwins, cont, np.nan_to_num(base_rate)),
                "strength": r_out,
                "company_tenders": company_tenders[pc],
                "company_wins": company_wins[pc],
            },
            copy=False,
        )
    ctx_tenders = np.bincount(ctx[ctx_aw], minlength=n_x)
    out["context_tenders"] = ctx_tenders[px]

    # Irregular wins: C's share of flagged wins at X vs X's other suppliers and the market.
    flags = dict(flags or {})
    if flags:
        flags = {k: np.asarray(v, dtype=bool) for k, v in flags.items()}
        flags["irregular"] = np.logical_or.reduce(list(flags.values()))
    if flags:
        # Loop invariants, and the wins only: a flag counts nothing on a losing bid, and sums
        # of ones are exact whichever zeros are left out.
        ctx_of, tender_of = ctx[ctx_aw], ctt[ctx_aw]
        others = np.maximum(ctx_tenders[px] - wins, 0.0)  # one winner per awarded tender
        won_rows = np.flatnonzero(w)
        won_pair, won_tender = pair[won_rows], t[won_rows]
        del won_rows
    for name, f in flags.items():
        if f.shape != (n_tenders,):
            raise ValueError(f"flag {name!r} must be one boolean per tender (length {n_tenders}), got {f.shape}")
        market_rate = (f & awarded).sum() / max(awarded.sum(), 1)
        ctx_flag = np.bincount(ctx_of, weights=f[tender_of], minlength=n_x)
        fw = np.bincount(won_pair, weights=f[won_tender], minlength=n_pairs)
        others_flag = np.maximum(ctx_flag[px] - fw, 0.0)
        q = (others_flag + flag_prior * market_rate) / (others + flag_prior)
        out[f"{name}_wins"] = fw.astype(np.int64)
        out[f"{name}_baseline"] = q
        out[f"{name}_surprise"] = binomial_surprise(fw, wins, q)

    for name, f in dict(bid_flags or {}).items():
        f = np.asarray(f, dtype=bool)
        if f.shape != bt.shape:
            raise ValueError(f"bid flag {name!r} must be one boolean per bid (length {bt.size}), got {f.shape}")
        covered = np.zeros(n_tenders, dtype=bool)
        covered[ctt[ctx_aw]] = True
        in_ctx = covered[bt]
        rate = (f & in_ctx).sum() / max(in_ctx.sum(), 1)
        fb = pair_sum(f[b])
        out[f"{name}_bids"] = fb.astype(np.int64)
        out[f"{name}_baseline"] = rate
        out[f"{name}_surprise"] = binomial_surprise(fb, tenders, rate)

    if v is not None:
        vt = v[t]  # gathered once for the four sums
        vxc = pair_sum(w * vt)
        # Expected value: single-bid tenders are won for sure, the rest with probability p.
        ev = pair_sum(np.where(inf, p, w) * vt)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(ctx_value[px] > 0, vxc / ctx_value[px], np.nan)
            out["value"] = vxc
            out["value_share"] = share
            out["expected_value_share"] = np.where(ctx_value[px] > 0, ev / ctx_value[px], np.nan)
        out["hhi"] = hhi_x[px]
        # Value-weighted excess of the contested wins: normal approximation of
        # the weighted Poisson-binomial sum (value is heavy-tailed, so this
        # weighs large contracts the way a buyer's budget does).
        dv = pair_sum(np.where(inf, (w - p) * vt, 0.0))
        vv = pair_sum(np.where(inf, p * (1.0 - p) * vt ** 2, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(vv > 0, dv / np.sqrt(vv), 0.0)
        out["value_z"] = z
        # log of the normal upper tail as scipy's norm.logsf computes it, without its per-call checks
        out["value_surprise"] = np.clip(-special.log_ndtr(-z) / _LN10, 0.0, MAX_SURPRISE)
    if return_triples:
        triples = pd.DataFrame({"pair": pair, "tender": t, "bid": b, "is_winner": w, "p": np.where(inf, p, 1.0)},
                               copy=False)
        return out, triples
    return out


# --------------------------------------------------- flags given a stratum
def flag_wins_given(
    context: np.ndarray,
    company: np.ndarray,
    flag: np.ndarray,
    stratum: np.ndarray,
    *,
    n_companies: int,
    prior: float = 10.0,
) -> pd.DataFrame:
    """Flagged wins of each (context, company) beyond what each win's stratum explains.

    Some irregularities follow from the kind of tender: a direct award has
    one bidder and a negotiated procedure a short deadline by design, so a
    firm that wins the non-open tenders of a lot split, or a buyer's direct
    awards, carries those flags without anything more being wrong. This test
    asks whether C's wins at X carry a flag more often than wins *of the same
    stratum* (e.g. procedure) do: the expected number is the sum over C's
    wins of the flag rate of X's other wins in that stratum, shrunk towards
    the market rate of the stratum by ``prior`` pseudo-wins; the surprise is
    the binomial tail with that mean (conservative for the Poisson-binomial,
    as in :func:`pair_affinity`).

    Parameters
    ----------
    context, company : array of int
        Context (X) and winning company (C) of every win (one row per
        winning bid of an awarded tender; negative codes are skipped).
    flag : array of bool
        The irregularity of each win's tender.
    stratum : array of int
        Stratum of each win's tender (e.g. procedure code; use one code for
        unknown).
    n_companies : int
        Number of company codes.
    prior : float, default 10.0
        Weight (in wins) of the market rate of the stratum in X's rate.

    Returns
    -------
    pandas.DataFrame
        One row per (context, company) with a win, sorted: ``context``,
        ``company``, ``wins``, ``flagged`` (wins with the flag),
        ``expected`` (flagged wins the strata predict) and ``surprise``
        (``-log10`` of the binomial tail).

    Examples
    --------
    >>> import numpy as np
    >>> # Direct awards (stratum 1) are single-bid, open tenders (stratum 0) rarely.
    >>> # Firm 0 wins buyer 0's direct awards; firm 1 wins buyer 1's open tenders with one bid.
    >>> x = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2])
    >>> c = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 3, 4, 5, 6, 7])
    >>> f = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1], dtype=bool)
    >>> s = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    >>> out = flag_wins_given(x, c, f, s, n_companies=8)
    >>> out.loc[out["context"] < 2, ["company", "flagged", "surprise"]].round(2).values.tolist()
    [[0.0, 4.0, 0.0], [1.0, 3.0, 0.82]]
    """
    return _flags_given(context, company, {"flag": flag}, stratum, n_companies=n_companies, prior=prior)["flag"]


def _flags_given(
    context: np.ndarray,
    company: np.ndarray,
    flags: Mapping[str, np.ndarray],
    stratum: np.ndarray,
    *,
    n_companies: int,
    prior: float = 10.0,
) -> dict[str, pd.DataFrame]:
    """:func:`flag_wins_given` of several flags of the same wins, by name.

    The wins are grouped by (X, stratum) and (X, C, stratum) once for all the
    flags: the grouping is most of the work, the flags only change the sums.
    """
    x = np.asarray(context, dtype=np.int64)
    c = np.asarray(company, dtype=np.int64)
    s = np.asarray(stratum, dtype=np.int64)
    fs = {name: np.asarray(f, dtype=bool) for name, f in flags.items()}
    if not (x.shape == c.shape == s.shape and all(f.shape == x.shape for f in fs.values())):
        raise ValueError("context, company, flag and stratum must have the same length")
    ok = (x >= 0) & (c >= 0)
    x, c, s = x[ok], c[ok], s[ok]
    if s.size:  # dense stratum codes in the order of the codes (a handful of procedures)
        s = s - s.min()
        s = group_numbers(np.bincount(s) > 0)[s]
    n_s = int(s.max()) + 1 if s.size else 0
    # X's wins per stratum, and C's share of them.
    _, xs = group_keys(x * max(n_s, 1) + s)
    xs_n = np.bincount(xs)
    _, pcs = group_keys((x * n_companies + c) * max(n_s, 1) + s)
    first = np.full(int(pcs.max()) + 1 if pcs.size else 0, pcs.size, dtype=np.int64)
    np.minimum.at(first, pcs, np.arange(pcs.size, dtype=np.int64))  # each group's first row
    pcs_n = np.bincount(pcs)
    xs_of = xs[first]
    others = xs_n[xs_of] - pcs_n
    uniq, pair = group_keys(x[first] * n_companies + c[first])
    wins = np.bincount(pair, weights=pcs_n, minlength=uniq.size)
    out: dict[str, pd.DataFrame] = {}
    for name, f in fs.items():
        f = f[ok].astype(np.float64)
        market = np.bincount(s, weights=f, minlength=n_s) / np.maximum(np.bincount(s, minlength=n_s), 1)
        xs_f, pcs_f = np.bincount(xs, weights=f), np.bincount(pcs, weights=f)
        rate = (xs_f[xs_of] - pcs_f + prior * market[s[first]]) / (others + prior)
        flagged = np.bincount(pair, weights=pcs_f, minlength=uniq.size)
        expected = np.bincount(pair, weights=pcs_n * rate, minlength=uniq.size)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(wins > 0, expected / wins, 0.0)
        out[name] = pd.DataFrame({
            "context": uniq // n_companies,
            "company": uniq % n_companies,
            "wins": wins.astype(np.int64),
            "flagged": flagged.astype(np.int64),
            "expected": expected,
            "surprise": binomial_surprise(flagged, wins, q),
        })
    return out


# ---------------------------------------------------------------- score bias
def score_bias(
    eval_tender: np.ndarray,
    eval_expert: np.ndarray,
    eval_company: np.ndarray,
    score: np.ndarray,
    *,
    n_experts: int,
    n_companies: int,
    pairs: np.ndarray | None = None,
) -> pd.DataFrame:
    """How much each expert scores each firm above the rest of the panel.

    For every score of expert X for firm C in tender t, the *bias* is X's
    score minus the mean score the other experts of the panel gave C in t
    (scores of a firm by a panel of one are skipped). Per (X, C) the mean
    bias is compared with X's mean bias for all other firms by a pooled
    two-sample t-test, so an expert who is generous with everyone is not
    suspicious while one who is generous with one firm is.

    Parameters
    ----------
    eval_tender, eval_expert, eval_company : array of int
        Codes of each individual score.
    score : array of float
        The scores.
    n_experts, n_companies : int
        Numbers of codes.
    pairs : array of int, optional
        Sorted distinct keys ``expert * n_companies + company`` of the pairs
        to test; by default every pair with a bias. The expert's bias for
        the other firms still counts all of its scores.

    Returns
    -------
    pandas.DataFrame
        One row per (expert, company) with at least one bias (or per key of
        ``pairs``, with ``scored`` 0 where there is none), sorted:
        ``expert, company, scored`` (number of biases), ``bias`` (mean),
        ``other_bias`` (X's mean bias for other firms), ``bias_sd`` (pooled
        standard deviation), ``bias_t`` (t statistic) and ``bias_surprise``
        (``-log10`` one-sided p of the t-test, 0 when it cannot be computed).

    Examples
    --------
    >>> import numpy as np
    >>> # 3 experts score firms 0 and 1 in 4 tenders; expert 0 adds 10 points for firm 0.
    >>> rng = np.random.default_rng(0)
    >>> t = np.repeat(np.arange(4), 6); e = np.tile(np.repeat([0, 1, 2], 2), 4); c = np.tile([0, 1], 12)
    >>> s = 70 + rng.normal(0, 1, 24) + 10 * ((e == 0) & (c == 0))
    >>> out = score_bias(t, e, c, s, n_experts=3, n_companies=2)
    >>> bool(out.loc[0, "bias_t"] > 5), out.loc[0, ["expert", "company", "scored"]].tolist()
    (True, [0, 0, 4])
    """
    t = np.asarray(eval_tender, dtype=np.int64)
    e = np.asarray(eval_expert, dtype=np.int64)
    c = np.asarray(eval_company, dtype=np.int64)
    s = np.asarray(score, dtype=np.float64)
    ok = np.isfinite(s) & (t >= 0) & (e >= 0) & (c >= 0)
    if not ok.all():  # usually every score is usable: no copies of tens of millions of rows
        t, e, c, s = t[ok], e[ok], c[ok], s[ok]
    # Panel totals per (tender, company); any code order will do. Scores usually come
    # grouped by (tender, company): then the groups are the runs, found without hashing.
    tc = t * n_companies + c
    if np.all(tc[1:] >= tc[:-1]):
        tc = group_numbers(first_of_runs(tc))
    else:
        tc = pd.factorize(tc)[0]
    total = np.bincount(tc, weights=s)
    count = np.bincount(tc)
    keep = (count > 1)[tc]
    # s - (total - s) / (m - 1) with m the panel size, in place and with per-panel terms
    # gathered once: tens of millions of scores at a million tenders.
    rest = total[tc]
    rest -= s
    rest /= np.maximum(count - 1, 1)[tc]
    np.subtract(s, rest, out=rest)
    if keep.all():
        d = rest
    else:
        d = rest[keep]
        e, c = e[keep], c[keep]
    del rest
    del t, tc, total, count, keep
    n_e = np.bincount(e, minlength=n_experts).astype(np.float64)
    s1_e = np.bincount(e, weights=d, minlength=n_experts)
    s2_e = np.bincount(e, weights=d * d, minlength=n_experts)
    key = e * n_companies + c
    if pairs is None:
        uniq, pair = group_keys(key)
    else:
        uniq = np.asarray(pairs, dtype=np.int64)
        pair = pd.Index(uniq).get_indexer(key)  # a hash lookup; -1 = a pair not asked for
        hit = pair >= 0
        pair, d = pair[hit], d[hit]
    del key, e, c
    pe, pc = uniq // n_companies, uniq % n_companies
    n = np.bincount(pair, minlength=uniq.size).astype(np.float64)
    s1 = np.bincount(pair, weights=d, minlength=uniq.size)
    s2 = np.bincount(pair, weights=d * d, minlength=uniq.size)
    n_o = n_e[pe] - n
    s1_o, s2_o = s1_e[pe] - s1, s2_e[pe] - s2
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n > 0, s1 / n, np.nan)
        mean_o = np.where(n_o > 0, s1_o / n_o, np.nan)
        # Pooled within-group sum of squares; clipped at 0 against rounding.
        ss = np.maximum(s2 - s1 * mean, 0.0) + np.maximum(s2_o - np.where(n_o > 0, s1_o * mean_o, 0.0), 0.0)
        df = n + n_o - 2
        sd = np.sqrt(np.where(df > 0, ss / df, np.nan))
        se = sd * np.sqrt(1.0 / n + 1.0 / n_o)
        tstat = np.where((n_o > 0) & (df > 0) & (se > 0), (mean - mean_o) / se, np.nan)
        live = np.isfinite(tstat)
        sur = np.zeros(n.size)
        sur[live] = -stats.t.logsf(tstat[live], df[live]) / _LN10
    return pd.DataFrame(
        {
            "expert": pe,
            "company": pc,
            "scored": n.astype(np.int64),
            "bias": mean,
            "other_bias": mean_o,
            "bias_sd": sd,
            "bias_t": tstat,
            "bias_surprise": np.clip(np.nan_to_num(sur, posinf=MAX_SURPRISE), 0.0, MAX_SURPRISE),
        },
        copy=False,
    )


# -------------------------------------------------------------- direct links
#: Link kinds of :func:`context_links`, from the most to the least direct.
LINK_KINDS: tuple[str, ...] = ("relation", "relation_via_person", "bid_trace", "party_trace")


def _party_edges(graph: Any, relation: str, src_type: str, dst_type: str) -> pd.DataFrame:
    try:
        frame = graph.edges((src_type, relation, dst_type))
    except (KeyError, ValueError):  # the pair of types is not in the registry
        return pd.DataFrame({"src": np.empty(0, np.int64), "dst": np.empty(0, np.int64)})
    return frame


def _relation_ends(graph: Any, a: str, b: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Declared relations between node types ``a`` and ``b`` in either direction: (code of a, code of b, kind)."""
    ends: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for src_type, dst_type in ((a, b), (b, a)):
        f = _party_edges(graph, "relations", src_type, dst_type)
        if not len(f):
            continue
        s, d = f["src"].to_numpy(np.int64), f["dst"].to_numpy(np.int64)
        kind = f["kind"].astype(str).to_numpy()
        ends.append((s, d, kind) if src_type == a else (d, s, kind))
    if not ends:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, dtype=object)
    return tuple(np.concatenate([e[i] for e in ends]) for i in range(3))  # type: ignore[return-value]


def context_links(graph: Any, context_type: str) -> pd.DataFrame:
    """Direct ties between context parties (buyer, agent, expert) and companies.

    Four kinds of tie, read from the graph's ``uses`` and ``relations``
    edges (trace values are already normalised by the graph builder):

    ``party_trace``
        X's party record (phone, e-mail, address) and C's party record share
        a value.
    ``bid_trace``
        A bid of C carries a value of X's party record (C's bid gives X's
        phone or e-mail as contact: the agent prepared the bid).
    ``relation``
        A declared relation (employee, shareholder, legal representative...)
        joins X and C directly, in either direction.
    ``relation_via_person``
        One person is related to both X and C (e.g. X's legal representative
        is a shareholder of C, or the expert and the firm share a legal rep).

    Parameters
    ----------
    graph : ProcurementGraph
        The graph (:func:`collusion.graph.build_graph`).
    context_type : {"buyer", "agent", "expert"}
        Node type of the context entity.

    Returns
    -------
    pandas.DataFrame
        One row per distinct tie, sorted: ``context``, ``company`` (codes),
        ``link`` (one of :data:`LINK_KINDS`), ``via`` (the trace or person
        node as ``"type:id"``, or the relation kind), ``n_bids`` (bids of C
        carrying the trace, for ``bid_trace``; else 0), ``tender`` (code of
        the first such bid's tender, else -1) and ``path`` (alternating
        nodes and relations through the graph). Only contexts and companies that
        are market entities (codes below ``market.n(type)``) are kept.

    Examples
    --------
    >>> import pandas as pd
    >>> from collusion import Market
    >>> from collusion.graph import build_graph
    >>> tenders = pd.DataFrame({"tender_id": ["T1"], "agent_id": ["A1"]})
    >>> bids = pd.DataFrame({"tender_id": ["T1", "T1"], "bidder_id": ["C1", "C2"], "price": [1.0, 2.0],
    ...                      "is_winner": [True, False], "contact": ["138 0013 8000", None]})
    >>> parties = pd.DataFrame({"party_id": ["A1"], "kind": ["agent"], "phone": ["+86 13800138000"]})
    >>> G = build_graph(Market.from_frames(tenders=tenders, bids=bids, parties=parties))
    >>> context_links(G, "agent")[["context", "company", "link", "path"]].values.tolist()
    [[0, 0, 'bid_trace', ['agent:A1', 'uses', 'phone:13800138000', 'uses', 'company:C1']]]
    """
    from ..graph._schema import TRACE_NODE_TYPES

    if context_type not in ("buyer", "agent", "expert"):
        raise ValueError(f"context_type must be 'buyer', 'agent' or 'expert', got {context_type!r}")
    market = graph.market
    n_ctx = market.n(context_type) if market is not None else graph.n(context_type)
    n_comp = market.n("company") if market is not None else graph.n("company")
    parts: list[pd.DataFrame] = []

    # Shared trace values: X's party record against C's party record and bids.
    for ttype in TRACE_NODE_TYPES:
        ex = _party_edges(graph, "uses", context_type, ttype)
        if not len(ex):
            continue
        ec = _party_edges(graph, "uses", "company", ttype)
        if not len(ec):
            continue
        ex = ex.loc[ex["src"].to_numpy() < n_ctx, ["src", "dst"]].drop_duplicates()
        if not len(ex):
            continue
        # Only companies' uses of values some context uses, picked by a lookup table before
        # any copy: companies' bids carry tens of millions of uses at 1M tenders.
        dst_c = ec["dst"].to_numpy()
        used = np.zeros(int(max(dst_c.max(initial=-1), ex["dst"].max()) + 1), dtype=bool)
        used[ex["dst"].to_numpy()] = True
        keep = (ec["src"].to_numpy() < n_comp) & used[dst_c]
        ec = ec.loc[keep, ["src", "dst", "source", "tender"]]
        joined = ex.merge(ec, on="dst", suffixes=("_x", "_c"))
        if not len(joined):
            continue
        from_bid = joined["source"].astype(str).str.startswith("bids.").to_numpy()
        parts.append(pd.DataFrame({
            "context": joined["src_x"].to_numpy(np.int64),
            "company": joined["src_c"].to_numpy(np.int64),
            "link": np.where(from_bid, "bid_trace", "party_trace"),
            "via": [f"{ttype}:{v}" for v in graph.ids(ttype, joined["dst"].to_numpy())],
            "tender": np.where(from_bid, joined["tender"].to_numpy(np.int64), -1),
        }))

    # Declared relations, direct or through one person, read per pair of node types: the
    # polymorphic "relations" table would label all of its rows with their types first.
    direct = _relation_ends(graph, context_type, "company")
    keep = (direct[0] < n_ctx) & (direct[1] < n_comp)
    if keep.any():
        parts.append(pd.DataFrame({
            "context": direct[0][keep], "company": direct[1][keep], "link": "relation",
            "via": direct[2][keep], "tender": -1,
        }))
    xp = _relation_ends(graph, context_type, "person")
    pc = _relation_ends(graph, "person", "company")
    xp = pd.DataFrame({"context": xp[0], "person": xp[1]})[xp[0] < n_ctx]
    pc = pd.DataFrame({"person": pc[0], "company": pc[1]})[pc[1] < n_comp]
    via = xp.merge(pc, on="person")
    if len(via):
        parts.append(pd.DataFrame({
            "context": via["context"].to_numpy(np.int64),
            "company": via["company"].to_numpy(np.int64),
            "link": "relation_via_person",
            "via": [f"person:{p}" for p in graph.ids("person", via["person"].to_numpy())],
            "tender": -1,
        }))

    cols = ["context", "company", "link", "via", "n_bids", "tender", "path"]
    if not parts:
        return pd.DataFrame({c: pd.Series([], dtype=np.int64 if c in ("context", "company", "n_bids", "tender")
                                          else object) for c in cols})
    raw = pd.concat(parts, ignore_index=True)
    # One row per distinct tie; a contact repeated on many bids is one tie seen on n_bids bids.
    raw["is_bid"] = (raw["tender"].to_numpy() >= 0).astype(np.int64)
    raw["first"] = np.where(raw["tender"].to_numpy() >= 0, raw["tender"].to_numpy(), np.iinfo(np.int64).max)
    out = (raw.groupby(["context", "company", "link", "via"], sort=True, observed=True)
              .agg(n_bids=("is_bid", "sum"), tender=("first", "min")).reset_index())
    out["tender"] = np.where(out["n_bids"].to_numpy() > 0, out["tender"].to_numpy(), -1)
    x_lab = f"{context_type}:" + pd.Series(graph.ids(context_type, out["context"].to_numpy()), dtype=object).astype(str)
    c_lab = "company:" + pd.Series(graph.ids("company", out["company"].to_numpy()), dtype=object).astype(str)
    link = out["link"].to_numpy()
    via = out["via"].astype(str).to_numpy()
    mid = np.where(link == "relation", "", via)
    rel = np.where(np.isin(link, ["relation", "relation_via_person"]), "relations", "uses").tolist()
    out["path"] = pd.Series(
        [[a, r, c] if not m else [a, r, m, r, c] for a, r, m, c in zip(x_lab, rel, mid.tolist(), c_lab)],
        index=out.index, dtype=object,
    )
    return out[cols]
