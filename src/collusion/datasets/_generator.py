"""The seeded, vectorised synthetic tender-market generator.

The market is built in stages, each a function of numpy arrays:

1. entities: regions, categories, buyers, agents, companies (active in a few
   (region, category) *cells*), experts, persons;
2. projects and tenders (lots share a project; lot-splitting groups are laid
   out here because they shape projects and estimates);
3. schemes assigned to disjoint sets of tenders, each contributing *forced
   bidders* (cartel members, a favoured supplier...) and possibly a *forced
   winner*;
4. bidders: forced bidders first, then distinct firms drawn from the cell's
   pool weighted by firm size (oversample, drop duplicates, keep the first k);
5. prices, disqualifications, expert panels and scores, winners;
6. traces; contracts, changes, payments, projects; parties and relations.

There is no Python loop per bid, tender or pair: groups are contiguous
segments of flat arrays and group operations use ``np.repeat``, ``cumsum``,
``bincount`` and ``ufunc.reduceat``. The few Python loops run over a handful of
columns or over the (few) duplicated party names.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._settings import Settings
from ._config import MarketConfig
from ._names import (
    CATEGORIES,
    REGIONS,
    account_strings,
    address_strings,
    agent_names,
    buyer_names,
    company_names,
    email_strings,
    fingerprint_strings,
    id_strings,
    ip_strings,
    mac_strings,
    name_variants,
    person_names,
    phone_strings,
)
from ._truth import Truth

__all__ = ["generate_frames", "make_market"]

DAY = 86_400
_NONE, _CARTEL, _FAVOURED, _AGENT, _LENDING, _SPLIT, _WLCH = range(7)
_PROCEDURES = ("open", "selective", "invited", "negotiated", "direct")
_OPEN, _SELECTIVE, _INVITED, _NEGOTIATED, _DIRECT = range(5)
_CHANGE_KINDS = ("design_change", "quantity_increase", "price_adjustment", "scope_reduction")
_PARTY_KINDS = ("agent", "buyer", "company", "expert", "person")
_RELATION_KINDS = ("employee", "legal_rep", "shareholder")
_N_TEMPLATES = 5


# ------------------------------------------------------------------ helpers
def _ptr(counts: np.ndarray) -> np.ndarray:
    """Segment offsets: group g occupies ``[ptr[g], ptr[g + 1])``."""
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _expand(counts: np.ndarray) -> np.ndarray:
    """Group index of every row of a segmented array."""
    return np.repeat(np.arange(len(counts)), counts)


def _within(counts: np.ndarray) -> np.ndarray:
    """Position of every row inside its group."""
    ptr = _ptr(counts)
    return np.arange(ptr[-1]) - np.repeat(ptr[:-1], counts)


def _uniform_int(rng: np.random.Generator, low: np.ndarray | int, high: np.ndarray | int, size: int) -> np.ndarray:
    """Integers in ``[low, high]`` (inclusive, elementwise)."""
    low = np.asarray(low)
    return (low + np.floor(rng.random(size) * (np.asarray(high) - low + 1))).astype(np.int64)


def _segment_first(mask: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Row of the first True per group (rows sorted by group), -1 where none."""
    rows = np.flatnonzero(mask)
    out = np.full(n_groups, -1, dtype=np.int64)
    g = group[rows]
    first = np.r_[True, g[1:] != g[:-1]] if len(g) else np.zeros(0, dtype=bool)
    out[g[first]] = rows[first]
    return out


def _unique_ints(a: np.ndarray) -> np.ndarray:
    """Sorted unique integers (sort-based: numpy 2.4's hash ``np.unique`` is slower here)."""
    s = np.sort(a)
    return s[np.r_[True, s[1:] != s[:-1]]] if len(s) else s


class _Pools:
    """Weighted member pools (e.g. the firms active in each cell), drawn vectorised.

    Each member gets slots in proportion to its weight (at least one; about
    ``resolution`` slots for an average member), pools are concatenated, and a
    draw is one uniform slot of the pool: O(1) per draw, a single gather, where
    a cumulative-weight ``searchsorted`` over all pools costs ~20 cache misses.
    Weights are thereby rounded, which a synthetic market does not mind.
    """

    def __init__(self, pool: np.ndarray, member: np.ndarray, weight: np.ndarray, n_pools: int,
                 resolution: int = 8) -> None:
        order = np.lexsort((member, pool))
        pool, member = pool[order], member[order]
        weight = np.asarray(weight, dtype=float)[order]
        self.size = np.bincount(pool, minlength=n_pools)
        mean = weight.mean() if len(weight) else 1.0
        slots = np.maximum(1, np.rint(weight / mean * resolution)).astype(np.int64)
        n_slots = np.bincount(pool, weights=slots, minlength=n_pools).astype(np.int64)
        self.slot_ptr = _ptr(n_slots)
        self.n_slots = n_slots
        self.slots = np.repeat(member, slots)

    def draw(self, rng: np.random.Generator, pools: np.ndarray) -> np.ndarray:
        """One weighted draw from each requested (non-empty) pool."""
        pools = np.asarray(pools, dtype=np.int64)
        idx = self.slot_ptr[pools] + (rng.random(len(pools)) * self.n_slots[pools]).astype(np.int64)
        return self.slots[idx]


def _pick_unique(rng: np.random.Generator, pools: _Pools, requests: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Draw one member per request from its pool, never a ``used`` one, all distinct.

    ``used`` is updated. Requests whose pool is exhausted fall back to any
    unused member (drawn uniformly).
    """
    out = np.full(len(requests), -1, dtype=np.int64)
    pending = np.arange(len(requests))
    for _ in range(30):
        if not pending.size:
            break
        cand = pools.draw(rng, requests[pending])
        ok = ~used[cand]
        order = np.argsort(cand, kind="stable")
        first = np.ones(len(cand), dtype=bool)
        first[order[1:]] = cand[order[1:]] != cand[order[:-1]]
        ok &= first
        out[pending[ok]] = cand[ok]
        used[cand[ok]] = True
        pending = pending[~ok]
    if pending.size:
        free = np.flatnonzero(~used)
        take = rng.choice(free, size=min(len(pending), len(free)), replace=False)
        out[pending[: len(take)]] = take
        used[take] = True
    return out


def _fill_distinct(
    rng: np.random.Generator,
    pools: _Pools,
    pool_of_group: np.ndarray,
    k: np.ndarray,
    forced_group: np.ndarray,
    forced_member: np.ndarray,
    n_members: int,
    *,
    extra: float = 0.3,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill each group with distinct members: forced ones first, then pool draws.

    Group g gets its forced members (rows of ``forced_*`` sorted by group, in
    their given order), then members drawn from ``pools[pool_of_group[g]]``
    until it has ``max(k[g], n_forced[g])`` distinct members (fewer when the
    pool is too small). Returns ``(group, member)`` in group-major order.
    """
    n_groups = len(k)
    n_forced = np.bincount(forced_group, minlength=n_groups)
    target = np.maximum(k, n_forced)
    need = target - n_forced
    slots = n_forced + need + np.ceil(extra * need).astype(np.int64) + (need > 0)
    ptr = _ptr(slots)
    group = _expand(slots)
    pos = np.arange(ptr[-1]) - ptr[group]
    is_forced = pos < n_forced[group]
    member = np.empty(ptr[-1], dtype=np.int64)
    member[is_forced] = forced_member
    member[~is_forced] = pools.draw(rng, pool_of_group[group[~is_forced]])
    # Sort (group, member, position) keys; a repeated (group, member) is a
    # duplicate draw, and the earliest position (forced rows come first) is kept.
    width = int(slots.max(initial=1))
    key = np.sort((group.astype(np.int64) * n_members + member) * width + pos)
    pair = key // width
    dup_sorted = np.r_[False, pair[1:] == pair[:-1]]
    drop = key[dup_sorted]
    keep = np.ones(len(member), dtype=bool)
    keep[ptr[drop // width // n_members] + drop % width] = False
    kept_before = np.concatenate([[0], np.cumsum(keep)])
    rank = kept_before[1:] - 1 - kept_before[ptr[:-1]][group]
    keep &= rank < target[group]
    return group[keep], member[keep]


def _n_units(rate: float, n: int) -> int:
    """Units to plant: ``rate * n`` rounded, at least one when the rate is positive."""
    if rate <= 0 or n <= 0:
        return 0
    return int(min(n, max(1, round(rate * n))))


def _seconds_to_datetime(secs: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
    out = np.asarray(secs, dtype=np.int64).astype("datetime64[s]").astype("datetime64[ns]")
    if missing is not None:
        out[missing] = np.datetime64("NaT")
    return out


def _categorical(codes: np.ndarray, dtype: pd.CategoricalDtype) -> pd.Categorical:
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int64), dtype=dtype)


def _factorize(values: np.ndarray, missing: np.ndarray | None = None) -> pd.Categorical:
    """Categorical of free text (names, addresses) with object categories, via ``pd.factorize``."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    if missing is not None:
        codes = np.where(missing, -1, codes)
    return pd.Categorical.from_codes(codes, dtype=_cat_dtype(uniques))


def _cat_dtype(values: np.ndarray | list[str] | tuple[str, ...]) -> pd.CategoricalDtype:
    return pd.CategoricalDtype(pd.Index(np.asarray(values, dtype=object), dtype=object))


class _World:
    """A bag of arrays shared by the generation stages (codes, not strings)."""

    def __getattr__(self, name: str) -> Any:  # pragma: no cover - a typo in a stage
        raise AttributeError(f"generator state has no {name!r}")


# ----------------------------------------------------------------- stage 1
def _entities(w: _World, rng: np.random.Generator, n: int, cfg: MarketConfig) -> None:
    R = int(min(cfg.n_regions, len(REGIONS), max(2, n // cfg.tenders_per_region)))
    C = int(min(cfg.n_categories, len(CATEGORIES)))
    w.R, w.C, w.n_cells = R, C, R * C
    w.nb = int(max(R, round(n * cfg.buyers_per_tender)))
    w.na = int(max(R, round(n * cfg.agents_per_tender)))
    w.nc = int(max(3 * w.n_cells, 40, round(n * cfg.companies_per_tender)))
    w.ne = int(max(8 * R, round(n * cfg.experts_per_tender)))

    # Companies: a primary cell (the first n_cells firms cover every cell), maybe a
    # second region and 1-3 categories. Firm size drives how often it bids.
    nc = w.nc
    cell0 = np.where(np.arange(nc) < w.n_cells, np.arange(nc), rng.integers(w.n_cells, size=nc))
    reg = np.stack([cell0 // C, (cell0 // C + 1 + rng.integers(max(R - 1, 1), size=nc)) % R], axis=1)
    reg[rng.random(nc) >= 0.3, 1] = -1
    cats = np.stack([cell0 % C] + [(cell0 % C + 1 + rng.integers(max(C - 1, 1), size=nc)) % C for _ in range(2)], 1)
    n_cats = rng.choice([1, 2, 3], size=nc, p=[0.4, 0.4, 0.2])
    cats[n_cats < 2, 1] = -1
    cats[n_cats < 3, 2] = -1
    comp = np.repeat(np.arange(nc), 6)
    r = np.repeat(reg, 3, axis=1).ravel()
    c = np.tile(cats, (1, 2)).ravel()
    ok = (r >= 0) & (c >= 0)
    cell_key = _unique_ints((r[ok] * C + c[ok]).astype(np.int64) * nc + comp[ok])
    w.comp_region = reg[:, 0]
    w.comp_size = rng.lognormal(0.0, 0.8, size=nc)
    w.comp_discount = np.clip(rng.normal(cfg.discount_mean, cfg.discount_firm_sd, size=nc), 0.02, 0.25)
    w.comp_quality = rng.normal(0.0, 1.0, size=nc)
    m_cell, m_comp = cell_key // nc, cell_key % nc
    w.cell_pools = _Pools(m_cell, m_comp, w.comp_size[m_comp], w.n_cells)
    reg_key = _unique_ints((m_cell // C) * nc + m_comp)
    w.region_pools = _Pools(reg_key // nc, reg_key % nc, w.comp_size[reg_key % nc], R)
    w.global_pool = _Pools(np.zeros(nc, dtype=np.int64), np.arange(nc), w.comp_size, 1)

    # Buyers: a region, a main category, a size, local champion firms and a usual agent.
    nb = w.nb
    w.buyer_region = np.where(np.arange(nb) < R, np.arange(nb) % R, rng.integers(R, size=nb))
    w.buyer_cat = rng.integers(C, size=nb)
    w.buyer_size = rng.lognormal(0.0, 1.0, size=nb)
    k = cfg.champions_per_buyer
    w.champions = w.cell_pools.draw(rng, np.repeat(w.buyer_region * C + w.buyer_cat, k)).reshape(nb, k)
    w.agent_region = np.where(np.arange(w.na) < R, np.arange(w.na) % R, rng.integers(R, size=w.na))
    w.agent_pools = _Pools(w.agent_region, np.arange(w.na), np.ones(w.na), R)
    w.buyer_agent = w.agent_pools.draw(rng, w.buyer_region)
    w.expert_region = np.arange(w.ne) % R
    rng.shuffle(w.expert_region)
    w.expert_pools = _Pools(w.expert_region, np.arange(w.ne), np.ones(w.ne), R)
    w.expert_severity = rng.normal(0.0, 2.0, size=w.ne)


# ----------------------------------------------------------------- stage 2
def _tenders(w: _World, rng: np.random.Generator, n: int, cfg: MarketConfig, settings: Settings) -> None:
    C = w.C
    w.cat_threshold = np.array([settings.threshold_for(CATEGORIES[i]) for i in range(C)])
    span_days = int(cfg.years * 365)
    buyer_p = w.buyer_size / w.buyer_size.sum()

    # Lot-splitting groups: 2-6 tenders of one buyer and cell within <= 60 days,
    # each estimate just below the threshold (the sum is therefore above it).
    target = max(_n_units(cfg.split_tender_rate, n), 2 * (cfg.split_tender_rate > 0))
    sizes = rng.integers(2, 7, size=target // 2 + 1)
    cs = np.cumsum(sizes)
    n_groups = int(np.searchsorted(cs, target)) + 1 if target >= 2 else 0
    sizes = sizes[:n_groups].copy()
    if n_groups:
        sizes[-1] = target - (cs[n_groups - 2] if n_groups > 1 else 0)
        if sizes[-1] < 2:  # a group of one is no split: drop it
            sizes = sizes[:-1]
    n_groups, n_split = len(sizes), int(sizes.sum())
    g_buyer = rng.choice(w.nb, size=n_groups, p=buyer_p)
    g_cat = np.where(rng.random(n_groups) < 0.6, w.buyer_cat[g_buyer], rng.integers(C, size=n_groups))
    g_start = rng.integers(0, span_days - 70, size=n_groups)
    g_window = rng.integers(7, 61, size=n_groups)
    g_shared = rng.random(n_groups) < cfg.split_shared_project_rate
    s_group = _expand(sizes)
    s_lot = _within(sizes)
    s_offset = np.where(s_lot == 0, 0, np.floor(rng.random(n_split) * (g_window[s_group] + 1))).astype(np.int64)

    # Honest projects: 1 lot mostly, else 2-6 lots.
    n_h = n - n_split
    p_lots = np.array([1 - cfg.multi_lot_share] + [cfg.multi_lot_share * q for q in (0.4, 0.25, 0.15, 0.12, 0.08)])
    mean_lots = float((np.arange(1, 7) * p_lots).sum())
    lots = rng.choice(np.arange(1, 7), size=int(n_h / mean_lots * 1.3) + 10, p=p_lots)
    cs = np.cumsum(lots)
    n_hp = int(np.searchsorted(cs, n_h)) + 1 if n_h > 0 else 0
    lots = lots[:n_hp].copy()
    if n_hp:
        lots[-1] = n_h - (cs[n_hp - 2] if n_hp > 1 else 0)
    h_buyer = rng.choice(w.nb, size=n_hp, p=buyer_p)
    h_cat = np.where(rng.random(n_hp) < 0.6, w.buyer_cat[h_buyer], rng.integers(C, size=n_hp))
    h_start = rng.integers(0, span_days - 130, size=n_hp)
    h_scale = rng.lognormal(np.log(cfg.estimate_median), cfg.estimate_sigma * 0.9, size=n_hp)
    h_proj = _expand(lots)
    h_lot = _within(lots)
    h_offset = np.where((h_lot == 0) | (rng.random(n_h) < 0.6), 0, rng.integers(1, 121, size=n_h))
    h_tcat = np.where(rng.random(n_h) < 0.9, h_cat[h_proj], rng.integers(C, size=n_h))
    h_est = h_scale[h_proj] * rng.lognormal(0.0, 0.4 * cfg.estimate_sigma, size=n_h)

    # Projects: honest ones, then one per shared split group, then one per unshared split tender.
    s_proj = np.where(g_shared[s_group], n_hp + np.cumsum(g_shared)[s_group] - 1, -1)
    n_sp = int(g_shared.sum())
    own = s_proj < 0
    s_proj[own] = n_hp + n_sp + np.arange(int(own.sum()))
    n_proj = n_hp + n_sp + int(own.sum())

    buyer = np.concatenate([h_buyer[h_proj], g_buyer[s_group]])
    cat = np.concatenate([h_tcat, g_cat[s_group]])
    est = np.concatenate([h_est, w.cat_threshold[g_cat[s_group]] * rng.uniform(0.80, 0.99, size=n_split)])
    day = np.concatenate([h_start[h_proj] + h_offset, g_start[s_group] + s_offset])
    proj = np.concatenate([h_proj, s_proj])
    group = np.concatenate([np.full(n_h, -1), s_group])
    has_agent = rng.random(n_proj) < cfg.agent_share
    usual = rng.random(n_proj) < 0.8
    proj_buyer = np.zeros(n_proj, dtype=np.int64)
    proj_buyer[proj] = buyer
    p_agent = np.where(usual, w.buyer_agent[proj_buyer], w.agent_pools.draw(rng, w.buyer_region[proj_buyer]))
    p_agent = np.where(has_agent, p_agent, -1)
    secs = (np.datetime64(cfg.start, "s").astype(np.int64) + day * DAY + 9 * 3600
            + rng.integers(0, 8 * 60, size=n) * 60)

    # Tender codes follow publication time; project codes follow their first tender.
    order = np.lexsort((rng.random(n), secs))
    w.t_buyer, w.t_cat, w.t_est, w.t_pub = buyer[order], cat[order], np.round(est[order], 2), secs[order]
    w.t_region = w.buyer_region[w.t_buyer]
    w.t_cell = w.t_region * C + w.t_cat
    w.t_group = group[order]
    old_proj = proj[order]
    first = np.full(n_proj, n, dtype=np.int64)
    np.minimum.at(first, old_proj, np.arange(n))
    recode = np.empty(n_proj, dtype=np.int64)
    recode[np.argsort(first, kind="stable")] = np.arange(n_proj)
    w.t_proj = recode[old_proj]
    w.t_agent = p_agent[old_proj]
    w.n_proj = n_proj
    w.proj_buyer = np.empty(n_proj, dtype=np.int64)
    w.proj_buyer[w.t_proj] = w.t_buyer
    w.t_threshold = w.cat_threshold[w.t_cat]
    proj_total = np.bincount(w.t_proj, weights=w.t_est, minlength=n_proj)
    w.t_proj_total = proj_total[w.t_proj]
    w.n_split_groups = n_groups


def _honest_procedure(rng: np.random.Generator, above: np.ndarray) -> np.ndarray:
    """Lawful procedures: open above the threshold (a little noise), a mix below it."""
    n = len(above)
    below = rng.choice(5, size=n, p=[0.70, 0.03, 0.15, 0.07, 0.05])
    nonopen = rng.choice([_SELECTIVE, _INVITED, _NEGOTIATED], size=n, p=[0.3, 0.5, 0.2])
    return np.where(above, np.where(rng.random(n) < 0.97, _OPEN, nonopen), below)


def _bid_counts(rng: np.random.Generator, proc: np.ndarray, cfg: MarketConfig) -> np.ndarray:
    n = len(proc)
    u = rng.random(n)
    m = max(cfg.open_bids_mean - 3.0, 0.1)
    many = 3 + rng.negative_binomial(4, 4 / (4 + m), size=n)
    k_open = np.where(u < cfg.single_bid_share, 1, np.where(u < cfg.single_bid_share + cfg.two_bid_share, 2, many))
    k = np.select(
        [proc == _OPEN, proc == _SELECTIVE, proc == _INVITED, proc == _NEGOTIATED],
        [k_open, rng.integers(4, 10, size=n), rng.integers(3, 8, size=n), rng.integers(1, 4, size=n)],
        default=1,
    )
    return np.clip(k, 1, cfg.max_bids)


# ----------------------------------------------------------------- stage 3
def _schemes(w: _World, rng: np.random.Generator, n: int, cfg: MarketConfig) -> None:
    C = w.C
    scheme = np.zeros(n, dtype=np.int8)
    scheme[w.t_group >= 0] = _SPLIT
    used = np.zeros(w.nc, dtype=bool)  # firms already given a scheme role
    fw_flag = np.zeros(n, dtype=bool)
    f_t: list[np.ndarray] = []
    f_c: list[np.ndarray] = []
    f_o: list[np.ndarray] = []
    k_override = np.full(n, -1, dtype=np.int64)
    proc = _honest_procedure(rng, w.t_proj_total >= w.t_threshold)
    period = np.where(rng.random(n) < 0.95, rng.uniform(20, 40, size=n), rng.uniform(10, 19.5, size=n))
    period = np.where(proc == _OPEN, period, rng.uniform(7, 25, size=n))

    # --- 2. cartels
    w.cartel_ptr = np.zeros(1, dtype=np.int64)
    w.cartel_members = np.zeros(0, dtype=np.int64)
    w.comp_cartel = np.full(w.nc, -1, dtype=np.int64)
    w.t_cartel = np.full(n, -1, dtype=np.int64)
    target = _n_units(cfg.cartel_tender_rate, n)
    n_cart = int(max(1, round(target / cfg.cartel_tenders_mean))) if target > 0 else 0
    # At most ~30% of firms join cartels, and cartels need free tenders in cells with enough firms.
    n_cart = min(n_cart, int(0.3 * w.nc / ((cfg.cartel_size_min + cfg.cartel_size_max) / 2)))
    free = np.flatnonzero(scheme == _NONE)
    free_per_cell = np.bincount(w.t_cell[free], minlength=w.n_cells).astype(float)
    free_per_cell[w.cell_pools.size < cfg.cartel_size_min + 1] = 0
    if free_per_cell.sum() == 0:
        n_cart = 0
    if n_cart:
        cart_cell = rng.choice(w.n_cells, size=n_cart, p=free_per_cell / free_per_cell.sum())
        cart_n = rng.multinomial(target, np.full(n_cart, 1 / n_cart))
        size = rng.integers(cfg.cartel_size_min, cfg.cartel_size_max + 1, size=n_cart)
        size = np.minimum(size, np.maximum(w.cell_pools.size[cart_cell] - 1, 2))
        members = _pick_unique(rng, w.cell_pools, np.repeat(cart_cell, size), used)
        w.cartel_ptr, w.cartel_members = _ptr(size), members
        w.comp_cartel[members] = _expand(size)
        # Each cell's free tenders in random order; its cartels take consecutive chunks.
        order = np.lexsort((rng.random(len(free)), w.t_cell[free]))
        sorted_t = free[order]
        cell_start = np.searchsorted(w.t_cell[sorted_t], np.arange(w.n_cells))
        by_cell = np.lexsort((np.arange(n_cart), cart_cell))
        cum = np.cumsum(cart_n[by_cell])
        cell_cum_start = np.zeros(n_cart, dtype=np.int64)
        first_of_cell = np.r_[True, cart_cell[by_cell][1:] != cart_cell[by_cell][:-1]]
        base = np.maximum.accumulate(np.where(first_of_cell, cum - cart_n[by_cell], 0))
        cell_cum_start[by_cell] = cum - cart_n[by_cell] - base
        avail = free_per_cell.astype(np.int64)[cart_cell]
        take = np.clip(avail - cell_cum_start, 0, cart_n)
        c_of = _expand(take)
        rank = cell_cum_start[c_of] + _within(take)
        ct = sorted_t[cell_start[cart_cell[c_of]] + rank]
        o = np.lexsort((ct, c_of))  # by cartel, then date: the rotation order
        ct, c_of = ct[o], c_of[o]
        kth = _within(np.bincount(c_of, minlength=n_cart))
        start = rng.integers(0, 1 << 30, size=n_cart)
        wslot = (kth + start[c_of]) % size[c_of]
        nslot = (wslot + 1) % size[c_of]
        rows = _expand(size[c_of])
        slot = _within(size[c_of])
        inc = (slot == wslot[rows]) | (slot == nslot[rows]) | (rng.random(len(rows)) < cfg.cartel_participation)
        rows, slot = rows[inc], slot[inc]
        f_t.append(ct[rows])
        f_c.append(members[w.cartel_ptr[c_of[rows]] + slot])
        f_o.append(np.where(slot == wslot[rows], 0, 1 + slot))
        scheme[ct] = _CARTEL
        fw_flag[ct] = True
        w.t_cartel[ct] = c_of
        n_part = np.bincount(rows, minlength=len(ct))
        n_out = np.where(rng.random(len(ct)) < cfg.cartel_outsider_rate, rng.integers(1, 4, size=len(ct)), 0)
        k_override[ct] = n_part + n_out
        proc[ct] = _OPEN
        period[ct] = rng.uniform(20, 40, size=len(ct))

    # --- 1. favoured suppliers
    tenders_per_buyer = np.bincount(w.t_buyer, minlength=w.nb)
    eligible = np.flatnonzero(tenders_per_buyer >= 4)
    n_fav = min(_n_units(cfg.favoured_buyer_rate, w.nb), len(eligible), int(0.1 * w.nc))
    w.fav_buyers = np.sort(rng.choice(eligible, size=n_fav, replace=False))
    w.fav_company = _pick_unique(rng, w.cell_pools, w.buyer_region[w.fav_buyers] * C + w.buyer_cat[w.fav_buyers], used)
    fav_of_buyer = np.full(w.nb, -1, dtype=np.int64)
    fav_of_buyer[w.fav_buyers] = w.fav_company
    ft = np.flatnonzero((fav_of_buyer[w.t_buyer] >= 0) & (scheme == _NONE) & (rng.random(n) < cfg.favoured_win_share))
    scheme[ft] = _FAVOURED
    fw_flag[ft] = True
    f_t.append(ft)
    f_c.append(fav_of_buyer[w.t_buyer[ft]])
    f_o.append(np.zeros(len(ft), dtype=np.int64))
    below = w.t_est[ft] < w.t_threshold[ft]
    nonopen = below & (rng.random(len(ft)) < cfg.favoured_non_open_rate)
    proc[ft] = np.where(nonopen, rng.choice([_INVITED, _NEGOTIATED, _DIRECT], size=len(ft), p=[0.3, 0.35, 0.35]),
                        np.where(below, proc[ft], _OPEN))
    period[ft] = np.where(rng.random(len(ft)) < cfg.favoured_short_period_rate, rng.uniform(5, 15, size=len(ft)),
                          np.where(proc[ft] == _OPEN, rng.uniform(20, 40, size=len(ft)), rng.uniform(7, 25, len(ft))))
    k_override[ft] = np.where(rng.random(len(ft)) < cfg.favoured_single_bid_rate, 1, -1)

    # --- 5. captured agents
    tenders_per_agent = np.bincount(w.t_agent[w.t_agent >= 0], minlength=w.na)
    eligible = np.flatnonzero(tenders_per_agent >= 4)
    n_cap = min(_n_units(cfg.captured_agent_rate, w.na), len(eligible), int(0.05 * w.nc))
    w.cap_agents = np.sort(rng.choice(eligible, size=n_cap, replace=False))
    w.cap_agent_company = _pick_unique(rng, w.region_pools, w.agent_region[w.cap_agents], used)
    comp_of_agent = np.full(w.na + 1, -1, dtype=np.int64)  # index -1 = no agent
    comp_of_agent[w.cap_agents] = w.cap_agent_company
    at = np.flatnonzero((comp_of_agent[w.t_agent] >= 0) & (scheme == _NONE)
                        & (rng.random(n) < cfg.captured_agent_win_share))
    scheme[at] = _AGENT
    fw_flag[at] = True
    f_t.append(at)
    f_c.append(comp_of_agent[w.t_agent[at]])
    f_o.append(np.zeros(len(at), dtype=np.int64))
    w.t_prepared = np.zeros(n, dtype=bool)
    w.t_prepared[at] = rng.random(len(at)) < cfg.agent_prepared_rate

    # --- 6. captured experts (they act at evaluation; here: who and which firm)
    n_ce = min(_n_units(cfg.captured_expert_rate, w.ne), int(0.1 * w.nc))
    w.cap_experts = np.sort(rng.choice(w.ne, size=n_ce, replace=False))
    w.cap_expert_company = _pick_unique(rng, w.region_pools, w.expert_region[w.cap_experts], used)

    # --- 3. licence lending: a few hub winners, the builder often a losing bidder
    w.t_builder = np.full(n, -1, dtype=np.int64)
    free = np.flatnonzero(scheme == _NONE)
    n_lend = min(_n_units(cfg.licence_lending_rate, n), len(free))
    lt = np.sort(rng.choice(free, size=n_lend, replace=False))
    n_hubs = min(max(1, int(round(n_lend / cfg.lending_contracts_per_hub))), int(0.05 * w.nc)) if n_lend else 0
    n_lend = n_lend if n_hubs else 0
    lt = lt[:n_lend]
    hubs = _pick_unique(rng, w.global_pool, np.zeros(n_hubs, dtype=np.int64), used)
    zipf = 1.0 / np.arange(1, n_hubs + 1)
    hub = hubs[rng.choice(n_hubs, size=n_lend, p=zipf / zipf.sum())] if n_hubs else np.zeros(0, dtype=np.int64)
    builder = w.cell_pools.draw(rng, w.t_cell[lt])
    for _ in range(10):
        same = builder == hub
        if not same.any():
            break
        builder[same] = w.cell_pools.draw(rng, w.t_cell[lt[same]])
    builder = np.where(builder == hub, (builder + 1) % w.nc, builder)
    w.t_builder[lt] = builder
    scheme[lt] = _LENDING
    fw_flag[lt] = True
    bids_too = rng.random(n_lend) < cfg.lending_builder_bids_rate
    f_t += [lt, lt[bids_too]]
    f_c += [hub, builder[bids_too]]
    f_o += [np.zeros(n_lend, dtype=np.int64), np.ones(int(bids_too.sum()), dtype=np.int64)]

    # --- 4. win low, change high: the (honest) first bidder wins 20-35% below the estimate
    free = np.flatnonzero(scheme == _NONE)
    n_w = min(_n_units(cfg.win_low_change_high_rate, n), len(free))
    wt = rng.choice(free, size=n_w, replace=False)
    scheme[wt] = _WLCH
    fw_flag[wt] = True
    k_override[wt] = np.maximum(_bid_counts(rng, proc[wt], cfg), 2)

    # --- 7. lot splitting: non-open procedures, one or two recurring winners per group
    st = np.flatnonzero(scheme == _SPLIT)
    if len(st):
        g = w.t_group[st]
        gcell = np.zeros(w.n_split_groups, dtype=np.int64)
        gcell[g] = w.t_cell[st]
        winners = w.cell_pools.draw(rng, np.repeat(gcell, 2)).reshape(-1, 2)
        two = rng.random(w.n_split_groups) < 0.3
        lot_rank = np.empty(len(st), dtype=np.int64)
        o = np.lexsort((st, g))
        lot_rank[o] = _within(np.bincount(g, minlength=w.n_split_groups))
        f_t.append(st)
        f_c.append(winners[g, np.where(two[g], lot_rank % 2, 0)])
        f_o.append(np.zeros(len(st), dtype=np.int64))
        fw_flag[st] = True
        proc[st] = rng.choice([_INVITED, _NEGOTIATED, _DIRECT], size=len(st), p=[0.4, 0.3, 0.3])
        period[st] = rng.uniform(7, 25, size=len(st))

    # --- honest home advantage: a buyer's local champions bid in its main cell
    ht = np.flatnonzero((scheme == _NONE) & (w.t_cat == w.buyer_cat[w.t_buyer]))
    for j in range(w.champions.shape[1]):  # a handful of champion slots
        bid = rng.random(len(ht)) < cfg.champion_bid_rate
        f_t.append(ht[bid])
        f_c.append(w.champions[w.t_buyer[ht[bid]], j])
        f_o.append(np.full(int(bid.sum()), 1 + j, dtype=np.int64))

    ft_all, fc_all, fo_all = np.concatenate(f_t), np.concatenate(f_c), np.concatenate(f_o)
    o = np.lexsort((fo_all, ft_all))
    w.f_t, w.f_c = ft_all[o], fc_all[o]
    k = _bid_counts(rng, proc, cfg)
    w.t_k = np.where(k_override >= 0, k_override, k)
    w.t_scheme, w.t_fw, w.t_proc = scheme, fw_flag, proc
    w.t_deadline = w.t_pub + (period * DAY).astype(np.int64)


# ----------------------------------------------------------------- stage 4-5
def _bids(w: _World, rng: np.random.Generator, n: int, cfg: MarketConfig) -> None:
    bt, bc = _fill_distinct(rng, w.cell_pools, w.t_cell, w.t_k, w.f_t, w.f_c, w.nc)
    nbid = np.bincount(bt, minlength=n)
    ptr = _ptr(nbid)
    pos = np.arange(len(bt)) - ptr[bt]
    nB = len(bt)
    is_fw = w.t_fw[bt] & (pos == 0)
    cot = w.t_cartel[bt]
    member = (cot >= 0) & (w.comp_cartel[bc] == cot)
    cover = member & ~is_fw
    outsider = (cot >= 0) & ~member
    disq = (rng.random(nB) < cfg.disqualified_rate) & ~is_fw

    # Honest prices: firm efficiency, a tender-wide shock, bid noise, home advantage.
    champ = np.zeros(nB, dtype=bool)
    for j in range(w.champions.shape[1]):
        champ |= w.champions[w.t_buyer[bt], j] == bc
    shock = rng.normal(0.0, cfg.tender_shock_sd, size=n)
    r = 1 - w.comp_discount[bc] - cfg.home_discount * champ - shock[bt] + rng.normal(0.0, cfg.bid_noise_sd, nB)
    r = np.where(r > 0.995, 0.995 - rng.uniform(0, 0.03, nB), np.maximum(r, 0.55))
    # Cartels: the designated winner bids close to the estimate, covers 1-5% above,
    # outsiders (if any) end up above the winner too.
    cartel_fw = is_fw & (cot >= 0)
    rw = np.where(cartel_fw, 1 - rng.uniform(0.015, 0.06, nB), r)
    r = np.where(cartel_fw, rw, r)
    rw_t = np.ones(n)
    rw_t[bt[cartel_fw]] = rw[cartel_fw]
    rwb = rw_t[bt]
    gmax = np.minimum(0.05, 0.999 / rwb - 1)
    r = np.where(cover, rwb * (1 + gmax * rng.uniform(0.2, 1.0, nB)), r)
    r = np.where(outsider & (r <= rwb * 1.005), np.minimum(rwb * (1 + rng.uniform(0.005, 0.06, nB)), 0.999), r)
    # Win low, change high: a deep discount at award.
    wl = is_fw & (w.t_scheme[bt] == _WLCH)
    r = np.where(wl, rng.uniform(0.65, 0.80, nB), r)
    # Any forced winner must be the lowest valid bid: undercut the others if needed.
    others = np.where(is_fw | disq, np.inf, r)
    other_min = np.minimum.reduceat(others, ptr[:-1]) if nB else np.zeros(0)
    om = other_min[bt]
    r = np.where(is_fw & (r >= om), om * (1 - rng.uniform(0.002, 0.02, nB)), r)
    price = np.round(w.t_est[bt] * r, 2)

    w.bt, w.bc, w.bptr, w.b_pos, w.nbid = bt, bc, ptr, pos, nbid
    w.b_fw, w.b_cover, w.b_disq, w.b_price, w.b_ratio = is_fw, cover, disq, price, r
    w.b_champ = champ


def _evaluate(w: _World, rng: np.random.Generator, n: int, cfg: MarketConfig) -> None:
    bt, bc, nB = w.bt, w.bc, len(w.bt)
    valid = ~w.b_disq
    n_valid = np.bincount(bt[valid], minlength=n)
    # Panels sit on tenders with at least two valid bids; the share of all tenders is as configured.
    elig = n_valid >= 2
    p = min(1.0, cfg.evaluated_share / max(elig.mean(), 1e-9))
    evaluated = elig & (rng.random(n) < p)
    et = np.flatnonzero(evaluated)
    size = np.clip(cfg.panel_size + rng.choice([-2, -1, 0, 0, 0, 0, 0, 0, 1, 2], size=len(et)), 3, 7)
    k = np.zeros(n, dtype=np.int64)
    k[et] = size
    pt, pe = _fill_distinct(rng, w.expert_pools, w.t_region, k, np.zeros(0, np.int64), np.zeros(0, np.int64), w.ne)
    pptr = _ptr(np.bincount(pt, minlength=n))

    # Captured experts get onto panels where their company bids.
    exp_of_comp = np.full(w.nc, -1, dtype=np.int64)
    exp_of_comp[w.cap_expert_company] = w.cap_experts
    comp_of_exp = np.full(w.ne, -1, dtype=np.int64)
    comp_of_exp[w.cap_experts] = w.cap_expert_company
    e = exp_of_comp[bc]
    cand = valid & evaluated[bt] & (e >= 0)
    cand &= w.expert_region[np.maximum(e, 0)] == w.t_region[bt]
    first = _segment_first(cand, bt, n)
    ct = np.flatnonzero(first >= 0)
    ce = exp_of_comp[bc[first[ct]]]
    sits = rng.random(len(ct)) < cfg.captured_expert_sit_rate
    ct, ce = ct[sits], ce[sits]
    psize = np.diff(pptr)
    on_panel = np.zeros(len(ct), dtype=bool)
    for j in range(7):  # panel slots
        inside = j < psize[ct]
        on_panel[inside] |= pe[pptr[ct[inside]] + j] == ce[inside]
    ct, ce = ct[~on_panel], ce[~on_panel]
    pe[pptr[ct]] = ce

    # Scores: every panel member scores every valid bid of the tender.
    # Rows come out in the canonical (tender, bidder, expert) order: bids sorted by
    # bidder within the tender, each repeated over its panel sorted by expert.
    pe = (np.sort(pt.astype(np.int64) * w.ne + pe) % w.ne).astype(np.int64)
    vb = np.flatnonzero(valid & evaluated[bt])
    vb = vb[np.argsort(bt[vb].astype(np.int64) * w.nc + bc[vb], kind="stable")]
    reps = psize[bt[vb]]
    row_bid = np.repeat(vb, reps).astype(np.int32)
    row_t = bt[row_bid].astype(np.int32)
    row_e = pe[pptr[row_t] + _within(reps)].astype(np.int32)
    row_c = bc[row_bid]
    min_price = np.full(n, np.inf)
    np.minimum.at(min_price, bt[vb], w.b_price[vb])
    # Bid quality: the firm's skill plus this proposal's own merit, seen by every expert.
    merit = 48 + 4 * w.comp_quality[bc] + rng.normal(0.0, 2.0, size=nB)
    tech = merit[row_bid] + w.expert_severity[row_e] + rng.normal(0.0, 3.0, size=len(row_bid))
    biased = comp_of_exp[row_e] == row_c
    tech += cfg.captured_expert_bias * biased
    w.cap_expert_sat = np.bincount(row_e[biased], minlength=w.ne)[w.cap_experts] > 0
    # Technical part out of 75, price part out of 25 (the lowest valid price gets 25).
    score = np.clip(tech, 0, 75) + 25 * min_price[row_t] / w.b_price[row_bid]
    mean = np.full(nB, -np.inf)
    mean[vb] = np.bincount(row_bid, weights=score, minlength=nB)[vb] / _panel_size(pt, n)[bt[vb]]
    # Forced winners of evaluated tenders: the other bids' proposals were weak
    # (cover bids are written to lose), so their scores are lower.
    fw_rows = np.flatnonzero(w.b_fw & evaluated[bt])
    if len(fw_rows):
        others = np.where(w.b_fw, -np.inf, mean)
        omax = np.maximum.reduceat(others, w.bptr[:-1])
        deficit = np.zeros(n)
        ft = bt[fw_rows]
        deficit[ft] = np.maximum(0.0, omax[ft] - mean[fw_rows] + rng.uniform(0.5, 3.0, len(ft)))
        lower = (deficit[row_t] > 0) & ~w.b_fw[row_bid]
        score = np.where(lower, score - deficit[row_t], score)
        mean[vb] = np.bincount(row_bid, weights=score, minlength=nB)[vb] / _panel_size(pt, n)[bt[vb]]
    score = np.clip(score, 0, 100)

    # Winners: forced, else best mean score (evaluated) or lowest valid price.
    price_key = np.where(valid, w.b_price, np.inf)
    best_price = np.minimum.reduceat(price_key, w.bptr[:-1])
    best_score = np.maximum.reduceat(mean, w.bptr[:-1])
    win_cand = np.where(evaluated[bt], (mean == best_score[bt]) & valid, (price_key == best_price[bt]) & valid)
    win_row = _segment_first(win_cand, bt, n)
    fw_row = np.flatnonzero(w.b_fw)
    win_row[bt[fw_row]] = fw_row
    is_winner = np.zeros(nB, dtype=bool)
    is_winner[win_row[win_row >= 0]] = True
    w.t_win_row = win_row
    w.b_winner = is_winner
    w.t_evaluated = evaluated
    w.ev_t, w.ev_e, w.ev_b, w.ev_score = row_t, row_e, row_c, np.round(score, 2)
    w.panel_t, w.panel_e = pt, pe


def _panel_size(pt: np.ndarray, n: int) -> np.ndarray:
    """Panel size per tender (0 where no panel)."""
    return np.maximum(np.bincount(pt, minlength=n), 1)


# ----------------------------------------------------------------- stage 6
def _traces(w: _World, rng: np.random.Generator, n: int, cfg: MarketConfig) -> None:
    nc, na, nB = w.nc, w.na, len(w.bt)
    bt, bc = w.bt, w.bc
    w.n_ip = rng.choice([1, 2, 3], size=nc, p=[0.5, 0.35, 0.15])
    w.ip_ptr = _ptr(w.n_ip)
    w.n_mac = rng.choice([1, 2], size=nc, p=[0.7, 0.3])
    w.mac_ptr = _ptr(w.n_mac)
    n_public = 2 * w.R
    honest = ~w.b_cover & (w.t_scheme[bt] != _AGENT)
    ip = w.ip_ptr[bc] + (rng.random(nB) * w.n_ip[bc]).astype(np.int64)
    public = honest & (rng.random(nB) < cfg.public_ip_rate)
    ip[public] = w.ip_ptr[-1] + 2 * w.t_region[bt[public]] + rng.integers(2, size=int(public.sum()))
    mac = w.mac_ptr[bc] + (rng.random(nB) * w.n_mac[bc]).astype(np.int64)
    doc = bc.copy()
    template = honest & (rng.random(nB) < cfg.shared_template_rate)
    doc[template] = nc + rng.integers(_N_TEMPLATES, size=int(template.sum()))
    acct = bc.copy()
    contact = w.comp_phone[bc]
    cols = [ip, mac, doc, acct, contact]
    for col in cols:
        col[rng.random(nB) < cfg.missing_trace_rate] = -1

    # Cartel covers copy traces of the designated winner's bid (one person prepared both).
    submitted = w.t_deadline[bt] - (rng.uniform(0.02, 0.95, nB) * (w.t_deadline - w.t_pub)[bt]).astype(np.int64)
    share = w.b_cover & (rng.random(nB) < cfg.cartel_trace_rate)
    rows = np.flatnonzero(share)
    src = w.bptr[bt[rows]]  # the forced winner is the first bid of its tender
    pick = rng.random((len(rows), len(cols))) < 0.5
    pick[~pick.any(axis=1), 0] = True
    for j, col in enumerate(cols):
        col[rows[pick[:, j]]] = col[src[pick[:, j]]]
    lag = rng.integers(-20 * 60, 20 * 60, size=len(rows))
    submitted[rows] = np.minimum(submitted[src] + lag, w.t_deadline[bt[rows]] - 60)
    # Captured agents prepare several bids: the agent's fingerprint or phone in them.
    prep = w.t_prepared[bt] & (w.b_pos < 1 + rng.integers(1, 3, size=nB))
    rows = np.flatnonzero(prep)
    agent = w.t_agent[bt[rows]]
    use_doc = rng.random(len(rows)) < 0.6
    use_phone = ~use_doc | (rng.random(len(rows)) < 0.4)
    doc[rows[use_doc]] = nc + _N_TEMPLATES + agent[use_doc]
    contact[rows[use_phone]] = w.agent_phone[agent[use_phone]]
    w.b_ip, w.b_mac, w.b_doc, w.b_acct, w.b_contact = ip, mac, doc, acct, contact
    w.b_submitted = np.maximum(submitted, w.t_pub[bt] + 60)


# ----------------------------------------------------------------- stage 7
def _contracts(w: _World, rng: np.random.Generator, n: int, cfg: MarketConfig) -> None:
    awarded = w.t_win_row >= 0
    w.t_awarded = np.where(awarded, w.t_deadline + rng.integers(1, 31, size=n) * DAY + rng.integers(0, 8 * 3600, n),
                           0)
    kt = np.flatnonzero(awarded)
    nk = len(kt)
    wrow = w.t_win_row[kt]
    winner = w.bc[wrow]
    amount = w.b_price[wrow]
    builder = np.where(w.t_builder[kt] >= 0, w.t_builder[kt], winner)
    signed = w.t_awarded[kt] + rng.integers(3, 31, size=nk) * DAY
    completed = signed + rng.integers(90, 901, size=nk) * DAY
    pm = w.emp_ptr[builder] + (rng.random(nk) * w.n_emp[builder]).astype(np.int64)

    # Changes: honest 0-2 small orders; win-low-change-high contracts get 2-4 approved
    # orders that lift the price back above the estimate.
    wlch = w.t_scheme[kt] == _WLCH
    n_ch = np.where(wlch, 0, rng.choice([0, 1, 2], size=nk, p=[0.55, 0.30, 0.15]))
    ck = _expand(n_ch)
    delta = amount[ck] * rng.uniform(-0.03, 0.08, size=len(ck))
    kind = np.where(delta < 0, 3, rng.integers(0, 3, size=len(ck)))
    approved = rng.random(len(ck)) < cfg.change_approved_rate
    wk = np.flatnonzero(wlch)
    n_w = rng.integers(2, 5, size=len(wk))
    wck = np.repeat(wk, n_w)
    gap = (w.t_est[kt[wk]] - amount[wk]) + w.t_est[kt[wk]] * rng.uniform(0.0, 0.1, size=len(wk))
    share = rng.uniform(0.5, 1.5, size=len(wck))
    share /= np.bincount(_expand(n_w), weights=share, minlength=len(wk))[_expand(n_w)]
    ck = np.concatenate([ck, wck])
    delta = np.round(np.concatenate([delta, np.repeat(gap, n_w) * share]), 2)
    kind = np.concatenate([kind, rng.integers(0, 2, size=len(wck))])
    approved = np.concatenate([approved, np.ones(len(wck), dtype=bool)])
    changed = signed[ck] + (rng.uniform(0.1, 0.9, size=len(ck)) * (completed - signed)[ck]).astype(np.int64)
    o = np.lexsort((delta, changed, ck))  # canonical order: contract, date, delta
    ck, delta, kind, approved, changed = ck[o], delta[o], kind[o], approved[o], changed[o]
    base = amount + np.bincount(ck, weights=delta * approved, minlength=nk)
    final_amount = np.round(base * (1 + rng.normal(0.0, 0.005, size=nk)), 2)

    # Payments: 3-6 installments after signing for 90-100% of contract + approved changes.
    over = np.zeros(nk, dtype=bool)
    over[rng.choice(nk, size=_n_units(cfg.over_disbursement_rate, nk), replace=False)] = True
    misdirected = np.zeros(nk, dtype=bool)
    misdirected[rng.choice(nk, size=_n_units(cfg.misdirected_payment_rate, nk), replace=False)] = True
    early = np.zeros(nk, dtype=bool)
    early[rng.choice(nk, size=_n_units(cfg.early_payment_rate, nk), replace=False)] = True
    total = base * np.where(over, rng.uniform(1.10, 1.40, size=nk), rng.uniform(0.90, 1.00, size=nk))
    n_pay = rng.integers(3, 7, size=nk)
    pk = _expand(n_pay)
    ppos = _within(n_pay)
    wts = rng.uniform(0.5, 1.5, size=len(pk))
    wsum = np.bincount(pk, weights=wts, minlength=nk)
    cum = np.cumsum(wts) - np.repeat(np.cumsum(wsum) - wsum, n_pay)
    frac = cum / wsum[pk]
    pay_amount = np.round(total[pk] * wts / wsum[pk], 2)
    start = signed + 10 * DAY
    paid = start[pk] + (frac * (completed + 60 * DAY - start)[pk]).astype(np.int64)
    first = ppos == 0
    paid = np.where(first & early[pk], signed[pk] - rng.integers(1, 61, size=len(pk)) * DAY, paid)
    payee = builder[pk].copy()
    mis_pos = rng.integers(0, n_pay)  # which installment goes astray
    astray = misdirected[pk] & (ppos == mis_pos[pk])
    other = rng.integers(0, w.nc, size=len(pk))
    for _ in range(5):
        clash = astray & ((other == winner[pk]) | (other == builder[pk]))
        if not clash.any():
            break
        other[clash] = rng.integers(0, w.nc, size=int(clash.sum()))
    payee = np.where(astray, other, payee)
    misdirected = np.zeros(nk, dtype=bool)
    misdirected[pk[astray & (payee != winner[pk]) & (payee != builder[pk])]] = True

    w.k_t, w.k_winner, w.k_amount, w.k_builder, w.k_pm = kt, winner, amount, builder, pm
    w.k_signed, w.k_completed, w.k_final = signed, completed, final_amount
    w.ch_k, w.ch_delta, w.ch_kind, w.ch_approved, w.ch_at = ck, delta, kind, approved, changed
    w.pay_k, w.pay_amount, w.pay_at, w.pay_payee = pk, pay_amount, paid, payee
    w.k_over, w.k_misdirected, w.k_early, w.k_wlch = over, misdirected, early, wlch
    w.k_lending = w.t_builder[kt] >= 0

    # Projects: budget ~ sum of the lots' estimates; honest chains shrink from
    # investment estimate to budget; overruns grow along the chain.
    npj = w.n_proj
    budget = np.bincount(w.t_proj, weights=w.t_est, minlength=npj) * rng.uniform(1.0, 1.05, size=npj)
    overrun = np.zeros(npj, dtype=bool)
    overrun[rng.choice(npj, size=_n_units(cfg.cost_overrun_rate, npj), replace=False)] = True
    prelim = np.where(overrun, budget / rng.uniform(1.05, 1.2, npj), budget * rng.uniform(1.0, 1.08, npj))
    invest = np.where(overrun, prelim / rng.uniform(1.05, 1.2, npj), prelim * rng.uniform(1.0, 1.1, npj))
    has_contract = np.bincount(w.t_proj[kt], minlength=npj) > 0
    final = np.where(overrun, budget * rng.uniform(1.15, 1.40, npj), budget * rng.uniform(0.92, 1.04, npj))
    final = np.where(has_contract | overrun, final, np.nan)
    w.pj_budget, w.pj_prelim, w.pj_invest, w.pj_final = (np.round(x, 2) for x in (budget, prelim, invest, final))
    w.pj_overrun = overrun


# ----------------------------------------------------------------- parties
def _people(w: _World, rng: np.random.Generator, cfg: MarketConfig) -> None:
    """Person ids, employees, duplicates and the party-level phone index (before traces)."""
    nc, nb, na, ne = w.nc, w.nb, w.na, w.ne
    w.n_dup = _n_units(cfg.duplicate_party_rate, nc)
    w.dup_of = np.sort(rng.choice(nc, size=w.n_dup, replace=False))
    # Persons: company legal reps, employees, buyer reps, agent reps, extra shareholders, cartel shareholders.
    w.n_emp = rng.integers(1, 4, size=nc)
    n_emp_total = int(w.n_emp.sum())
    w.emp_ptr = nc + _ptr(w.n_emp)[:-1]
    w.n_extra = int(round(0.2 * nc))
    n_cart = len(w.cartel_ptr) - 1
    w.cartel_sh = rng.random(n_cart) < cfg.cartel_shareholder_rate
    w.n_cart_sh = int(w.cartel_sh.sum())
    w.p_buyer_rep = nc + n_emp_total
    w.p_agent_rep = w.p_buyer_rep + nb
    w.p_extra = w.p_agent_rep + na
    w.p_cart = w.p_extra + w.n_extra
    w.np_ = w.p_cart + w.n_cart_sh
    # Party index layout (sorted ids): A agents, B buyers, C companies (+ duplicates), E experts, P persons.
    w.q_agent, w.q_buyer, w.q_comp = 0, na, na + nb
    w.q_expert = w.q_comp + nc + w.n_dup
    w.q_person = w.q_expert + ne
    w.n_party = w.q_person + w.np_
    phone = np.arange(w.n_party)  # index into the phone table: own number by default
    # Captured agents and experts share contacts with their company.
    comp_party = w.q_comp + w.cap_agent_company
    share_phone = rng.random(len(w.cap_agents)) < 0.7
    phone[w.q_agent + w.cap_agents[share_phone]] = comp_party[share_phone]
    w.agent_share_addr = rng.random(len(w.cap_agents)) < np.where(share_phone, 0.5, 1.0)
    w.agent_share_email = rng.random(len(w.cap_agents)) < 0.4
    e_phone = rng.random(len(w.cap_experts)) < 0.6
    phone[w.q_expert + w.cap_experts[e_phone]] = w.q_comp + w.cap_expert_company[e_phone]
    w.expert_share_addr = ~e_phone | (rng.random(len(w.cap_experts)) < 0.6)
    dup_phone = rng.random(w.n_dup) < 0.5
    phone[w.q_comp + nc + np.flatnonzero(dup_phone)] = w.q_comp + w.dup_of[dup_phone]
    w.party_phone = phone
    w.comp_phone = phone[w.q_comp + np.arange(nc)]
    w.agent_phone = phone[w.q_agent + np.arange(na)]


def _parties(w: _World, rng: np.random.Generator, cfg: MarketConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    nc, nb, na, ne, n_dup = w.nc, w.nb, w.na, w.ne, w.n_dup
    n_party = w.n_party
    start = np.datetime64(cfg.start, "s").astype(np.int64)
    kind = np.repeat(np.arange(5), [na, nb, nc + n_dup, ne, w.np_])
    region = np.concatenate([w.agent_region, w.buyer_region, w.comp_region, w.comp_region[w.dup_of],
                             w.expert_region, rng.integers(w.R, size=w.np_)])
    cnames, handles = company_names(rng, w.comp_region)
    names = np.concatenate([
        agent_names(rng, w.agent_region), buyer_names(rng, w.buyer_region), cnames,
        name_variants(rng, cnames[w.dup_of]), person_names(rng, ne + w.np_),
    ])
    address = address_strings(rng, region)
    # Shared addresses: duplicates (mostly), captured agents and experts.
    dup_rows = w.q_comp + nc + np.arange(n_dup)
    same = rng.random(n_dup) < 0.7
    address[dup_rows[same]] = address[w.q_comp + w.dup_of[same]]
    a_rows = w.q_agent + w.cap_agents[w.agent_share_addr]
    address[a_rows] = address[w.q_comp + w.cap_agent_company[w.agent_share_addr]]
    e_rows = w.q_expert + w.cap_experts[w.expert_share_addr]
    address[e_rows] = address[w.q_comp + w.cap_expert_company[w.expert_share_addr]]
    address = np.where((kind == 4) & (rng.random(n_party) < 0.5), "", address)
    # E-mails: index-based, so unique; persons have none, experts some.
    handle = np.concatenate([np.full(na, "agency"), np.full(nb, "office"), handles, handles[w.dup_of],
                             np.full(ne + w.np_, "expert")])
    email_idx = np.arange(n_party)
    email_idx[w.q_agent + w.cap_agents[w.agent_share_email]] = w.q_comp + w.cap_agent_company[w.agent_share_email]
    has_email = (kind < 3) | ((kind == 3) & (rng.random(n_party) < 0.5))
    email_table = email_strings(rng, handle, np.arange(n_party))
    legal_rep = np.full(n_party, -1, dtype=np.int64)
    legal_rep[w.q_comp:w.q_comp + nc] = np.arange(nc)
    legal_rep[w.q_comp + nc:w.q_expert] = w.dup_of
    legal_rep[w.q_buyer:w.q_buyer + nb] = w.p_buyer_rep + np.arange(nb)
    legal_rep[w.q_agent:w.q_agent + na] = w.p_agent_rep + np.arange(na)
    day = np.select([kind == 0, kind == 1, kind == 2], [rng.integers(-8000, -1500, n_party),
                    rng.integers(-15000, -4000, n_party), rng.integers(-9500, -200, n_party)], 0)
    day[dup_rows] = np.minimum(day[w.q_comp + w.dup_of] + rng.integers(200, 3000, n_dup), 700)
    registered = _seconds_to_datetime(start + day * DAY, missing=kind >= 3)

    ids = np.concatenate([id_strings("A", na), id_strings("B", nb), id_strings("C", nc + n_dup),
                          id_strings("E", ne), id_strings("P", w.np_)])
    w.party_dtype = _cat_dtype(ids)
    w.person_ids = id_strings("P", w.np_)
    w.person_dtype = _cat_dtype(w.person_ids)
    parties = pd.DataFrame({
        "party_id": _categorical(np.arange(n_party), w.party_dtype),
        "kind": _categorical(kind, _cat_dtype(_PARTY_KINDS)),
        "name": _factorize(names),
        "legal_rep": _categorical(legal_rep, w.person_dtype),
        "address": _factorize(address, missing=address == ""),
        "phone": _categorical(w.party_phone, w.phone_dtype),
        "email": _categorical(np.where(has_email, email_idx, -1), _cat_dtype(email_table)),
        "registered_at": registered,
    })

    # Relations (person -> organisation): legal reps, shareholders, employees.
    src = [legal_rep[legal_rep >= 0]]
    dst = [np.flatnonzero(legal_rep >= 0)]
    rel = [np.full(len(dst[0]), 1)]
    holds = rng.random(nc) < 0.7
    src.append(np.flatnonzero(holds))
    dst.append(w.q_comp + np.flatnonzero(holds))
    emp_owner = _expand(w.n_emp)
    src.append(nc + np.arange(len(emp_owner)))
    dst.append(w.q_comp + emp_owner)
    extra = w.p_extra + np.arange(w.n_extra)
    second = rng.random(w.n_extra) < 0.1  # honest cross-holdings
    src += [extra, extra[second]]
    dst += [w.q_comp + rng.integers(nc, size=w.n_extra), w.q_comp + rng.integers(nc, size=int(second.sum()))]
    cs = np.flatnonzero(w.cartel_sh)
    size = np.diff(w.cartel_ptr)[cs]
    src.append(np.repeat(w.p_cart + np.arange(len(cs)), size))
    dst.append(w.q_comp + w.cartel_members[np.repeat(w.cartel_ptr[cs], size) + _within(size)])
    rel += [np.full(len(s), 2) for s in (src[1],)] + [np.zeros(len(src[2]), dtype=np.int64)]
    rel += [np.full(len(s), 2) for s in src[3:]]
    src_a = w.q_person + np.concatenate(src)
    dst_a = np.concatenate(dst)
    rel_a = np.concatenate(rel)
    key = _unique_ints((src_a.astype(np.int64) * n_party + dst_a) * 3 + rel_a)
    rel_a = key % 3
    dst_a = (key // 3) % n_party
    src_a = (key // 3) // n_party
    relations = pd.DataFrame({
        "src_id": _categorical(src_a, w.party_dtype),
        "dst_id": _categorical(dst_a, w.party_dtype),
        "kind": _categorical(rel_a, _cat_dtype(_RELATION_KINDS)),
    })
    return parties, relations


# ----------------------------------------------------------------- assemble
def generate_frames(
    n_tenders: int = 10_000,
    *,
    seed: int = 0,
    config: MarketConfig | None = None,
    settings: Settings | None = None,
) -> tuple[dict[str, pd.DataFrame], Truth]:
    """Generate the nine canonical tables (unvalidated) and the truth.

    Same arguments as :func:`make_market`; use that function unless you need
    the raw frames (e.g. to corrupt them when testing validation).
    """
    if int(n_tenders) != n_tenders or n_tenders < 50:
        raise ValueError(f"n_tenders must be an integer >= 50, got {n_tenders!r}")
    n = int(n_tenders)
    cfg = config if config is not None else MarketConfig()
    settings = settings if settings is not None else Settings()
    rng = np.random.default_rng(seed)
    w = _World()
    _entities(w, rng, n, cfg)
    _tenders(w, rng, n, cfg, settings)
    _schemes(w, rng, n, cfg)
    _people(w, rng, cfg)
    _bids(w, rng, n, cfg)
    _evaluate(w, rng, n, cfg)
    _traces(w, rng, n, cfg)
    _contracts(w, rng, n, cfg)

    nc, na = w.nc, w.na
    w.phone_dtype = _cat_dtype(phone_strings(np.arange(w.n_party)))
    parties, relations = _parties(w, rng, cfg)
    tender_ids = id_strings("T", n)
    company_ids = parties["party_id"].cat.categories.to_numpy()[w.q_comp:w.q_comp + nc]
    contract_ids = id_strings("K", len(w.k_t))
    project_ids = id_strings("J", w.n_proj)
    buyer_ids = parties["party_id"].cat.categories.to_numpy()[w.q_buyer:w.q_buyer + w.nb]
    agent_ids = parties["party_id"].cat.categories.to_numpy()[w.q_agent:w.q_agent + na]
    expert_ids = parties["party_id"].cat.categories.to_numpy()[w.q_expert:w.q_expert + w.ne]
    dt = {k: _cat_dtype(v) for k, v in (("tender", tender_ids), ("company", company_ids), ("contract", contract_ids),
                                        ("project", project_ids), ("buyer", buyer_ids), ("agent", agent_ids),
                                        ("expert", expert_ids))}

    awarded = w.t_win_row >= 0
    tenders = pd.DataFrame({
        "tender_id": _categorical(np.arange(n), dt["tender"]),
        "buyer_id": _categorical(w.t_buyer, dt["buyer"]),
        "agent_id": _categorical(w.t_agent, dt["agent"]),
        "project_id": _categorical(w.t_proj, dt["project"]),
        "category": _categorical(w.t_cat, _cat_dtype(CATEGORIES[: w.C])),
        "region": _categorical(w.t_region, _cat_dtype([p for p, _ in REGIONS[: w.R]])),
        "procedure": _categorical(w.t_proc, _cat_dtype(_PROCEDURES)),
        "estimate": w.t_est,
        "published_at": _seconds_to_datetime(w.t_pub),
        "deadline_at": _seconds_to_datetime(w.t_deadline),
        "awarded_at": _seconds_to_datetime(w.t_awarded, missing=~awarded),
    })
    n_ip = int(w.ip_ptr[-1]) + 2 * w.R
    o = _bid_order(w)
    bids = pd.DataFrame({
        "tender_id": _categorical(w.bt[o], dt["tender"]),
        "bidder_id": _categorical(w.bc[o], dt["company"]),
        "price": w.b_price[o],
        "is_winner": w.b_winner[o],
        "disqualified": w.b_disq[o],
        "submitted_at": _seconds_to_datetime(w.b_submitted[o]),
        "ip": _categorical(w.b_ip[o], _cat_dtype(ip_strings(np.arange(n_ip)))),
        "mac": _categorical(w.b_mac[o], _cat_dtype(mac_strings(np.arange(int(w.mac_ptr[-1]))))),
        "doc_fingerprint": _categorical(w.b_doc[o],
                                        _cat_dtype(fingerprint_strings(np.arange(nc + _N_TEMPLATES + na)))),
        "bond_account": _categorical(w.b_acct[o], account_dtype := _cat_dtype(account_strings(np.arange(nc)))),
        "contact": _categorical(w.b_contact[o], w.phone_dtype),
    })
    evaluations = pd.DataFrame({
        "tender_id": _categorical(w.ev_t, dt["tender"]),
        "expert_id": _categorical(w.ev_e, dt["expert"]),
        "bidder_id": _categorical(w.ev_b, dt["company"]),
        "score": w.ev_score,
    })
    contracts = pd.DataFrame({
        "contract_id": _categorical(np.arange(len(w.k_t)), dt["contract"]),
        "tender_id": _categorical(w.k_t, dt["tender"]),
        "winner_id": _categorical(w.k_winner, dt["company"]),
        "amount": w.k_amount,
        "signed_at": _seconds_to_datetime(w.k_signed),
        "builder_id": _categorical(w.k_builder, dt["company"]),
        "project_manager_id": _categorical(w.k_pm, w.person_dtype),
        "final_amount": w.k_final,
        "completed_at": _seconds_to_datetime(w.k_completed),
    })
    changes = pd.DataFrame({
        "contract_id": _categorical(w.ch_k, dt["contract"]),
        "changed_at": _seconds_to_datetime(w.ch_at),
        "amount_delta": w.ch_delta,
        "kind": _categorical(w.ch_kind, _cat_dtype(_CHANGE_KINDS)),
        "approved": w.ch_approved,
    })
    payments = pd.DataFrame({
        "contract_id": _categorical(w.pay_k, dt["contract"]),
        "paid_at": _seconds_to_datetime(w.pay_at),
        "amount": w.pay_amount,
        "payee_id": _categorical(w.pay_payee, dt["company"]),
        "payee_account": _categorical(w.pay_payee, account_dtype),
    })
    projects = pd.DataFrame({
        "project_id": _categorical(np.arange(w.n_proj), dt["project"]),
        "buyer_id": _categorical(w.proj_buyer, dt["buyer"]),
        "investment_estimate": w.pj_invest,
        "preliminary_estimate": w.pj_prelim,
        "budget": w.pj_budget,
        "final_account": w.pj_final,
    })
    frames = dict(tenders=tenders, bids=bids, evaluations=evaluations, contracts=contracts, changes=changes,
                  payments=payments, projects=projects, parties=parties, relations=relations)
    return frames, _truth(w, tender_ids, company_ids, contract_ids, project_ids, buyer_ids, agent_ids, expert_ids,
                          parties["party_id"].cat.categories.to_numpy())


def _bid_order(w: _World) -> np.ndarray:
    """Permutation putting bids in the canonical (tender, price, bidder) order.

    Bids are already grouped by tender, so a float key ``tender + price share``
    sorts them in one pass; the (rare) runs of equal prices within a tender are
    then ordered by bidder.
    """
    key = w.bt + w.b_price / (2.5 * w.t_est[w.bt])  # prices stay below the estimate: the share is < 0.5
    order = np.argsort(key)
    t, p = w.bt[order], w.b_price[order]
    tie = (t[1:] == t[:-1]) & (p[1:] == p[:-1])
    if tie.any():
        in_run = np.r_[tie, False] | np.r_[False, tie]
        run = np.cumsum(np.r_[True, ~tie])  # run id of equal (tender, price)
        idx = np.flatnonzero(in_run)
        order[idx] = order[idx][np.lexsort((w.bc[order[idx]], run[idx]))]
    return order


def _truth(w: _World, tender_ids: np.ndarray, company_ids: np.ndarray, contract_ids: np.ndarray,
           project_ids: np.ndarray, buyer_ids: np.ndarray, agent_ids: np.ndarray, expert_ids: np.ndarray,
           party_ids: np.ndarray) -> Truth:
    n_cart = len(w.cartel_ptr) - 1
    cartel_ids = id_strings("G", n_cart)
    size = np.diff(w.cartel_ptr)
    ct = np.flatnonzero(w.t_cartel >= 0)
    # Only what left a mark in the data is truth: cartels that rigged a tender,
    # pairs whose company won a rigged tender, experts who sat where their company bid.
    active = (np.bincount(w.t_cartel[ct], minlength=n_cart) > 0)[_expand(size)]
    fav = np.bincount(w.t_buyer[w.t_scheme == _FAVOURED], minlength=w.nb)[w.fav_buyers] > 0
    cap = np.bincount(w.t_agent[w.t_scheme == _AGENT], minlength=w.na)[w.cap_agents] > 0
    sat = w.cap_expert_sat
    st = np.flatnonzero(w.t_group >= 0)
    group_ids = id_strings("S", w.n_split_groups)
    kid = contract_ids
    lend = np.flatnonzero(w.k_lending)
    return Truth.from_dict({
        "cartels": {"cartel_id": cartel_ids[_expand(size)][active], "company_id": company_ids[w.cartel_members][active]},
        "cartel_tenders": {"tender_id": tender_ids[ct], "cartel_id": cartel_ids[w.t_cartel[ct]]},
        "favoured_pairs": {"buyer_id": buyer_ids[w.fav_buyers[fav]], "company_id": company_ids[w.fav_company[fav]]},
        "captured_agents": {"agent_id": agent_ids[w.cap_agents[cap]], "company_id": company_ids[w.cap_agent_company[cap]]},
        "captured_experts": {"expert_id": expert_ids[w.cap_experts[sat]],
                             "company_id": company_ids[w.cap_expert_company[sat]]},
        "licence_lending": {"contract_id": kid[lend], "winner_id": company_ids[w.k_winner[lend]],
                            "builder_id": company_ids[w.k_builder[lend]]},
        "over_disbursement": {"contract_id": kid[w.k_over]},
        "misdirected_payments": {"contract_id": kid[w.k_misdirected]},
        "early_payments": {"contract_id": kid[w.k_early]},
        "win_low_change_high": {"contract_id": kid[w.k_wlch]},
        "cost_overruns": {"project_id": project_ids[w.pj_overrun]},
        "split_groups": {"group_id": group_ids[w.t_group[st]], "tender_id": tender_ids[st]},
        "duplicate_parties": {"party_id": party_ids[w.q_comp + w.nc + np.arange(w.n_dup)],
                              "duplicate_of": party_ids[w.q_comp + w.dup_of]},
    })


def make_market(
    n_tenders: int = 10_000,
    *,
    seed: int = 0,
    config: MarketConfig | None = None,
    settings: Settings | None = None,
    **rate_overrides: Any,
) -> tuple[Any, Truth]:
    """Generate a synthetic procurement market with planted schemes and their truth.

    Parameters
    ----------
    n_tenders : int
        Number of tenders; every other table scales with it (about 7.5 bids
        per tender).
    seed : int
        Seed of ``np.random.default_rng``: the same seed gives identical tables
        and truth, different seeds differ.
    config : MarketConfig, optional
        All knobs; defaults to ``MarketConfig()``.
    settings : Settings, optional
        Jurisdiction settings (the open-tender threshold shapes procedures and
        lot splitting); attached to the market.
    **rate_overrides
        Fields of ``config`` to override, e.g. ``cartel_tender_rate=0.1``.

    Returns
    -------
    market : collusion.Market
        The validated market with all nine tables.
    truth : Truth
        The planted schemes as tables of ids.

    Examples
    --------
    >>> from collusion.datasets import make_market
    >>> market, truth = make_market(2_000, seed=1)
    >>> len(market.tenders)
    2000
    >>> int(market.bids.groupby("tender_id", observed=True)["is_winner"].sum().max())
    1
    >>> set(truth.cartel_tenders["tender_id"]) <= set(market.entities["tender"])
    True
    """
    from .._market import Market

    cfg = (config if config is not None else MarketConfig()).replace(**rate_overrides)
    settings = settings if settings is not None else Settings()
    frames, truth = generate_frames(n_tenders, seed=seed, config=cfg, settings=settings)
    market = Market.from_frames(**frames, settings=settings, name=f"synthetic(n_tenders={n_tenders}, seed={seed})")
    return market, truth
