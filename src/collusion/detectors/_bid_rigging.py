"""Analysis 2 — bid rigging / collusive bidding (围标串标), at tender and group level."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._arrays import unique_ints
from .._gc import gc_paused
from .._param_validation import Interval
from .._ragged import Ragged, entity_strings, repeat_str
from ..features._bidtraces import (
    BID_TRACE_TYPES,
    hub_links,
    shared_trace_pairs,
    tender_link_counts,
    tender_trace_counts,
)
from ..features._cobidding import (
    cobid_pairs,
    cobidding_communities,
    group_ids,
    group_pair_sum,
    group_statistics,
    group_tenders,
    pair_wins,
    suspicious_cobids,
    tender_group_share,
    tender_winner,
)
from ..features._screens import price_regularity, price_screens, subset_screens
from ..features._surprisal import bh_qvalues, flag_surprisal, z_surprisal
from ..features._thresholds import robust_z
from ..results import evidence
from ._base import BaseDetector, Units
from ._frames import stack_rows

__all__ = ["BidRiggingDetector", "LINK_TYPES", "TENDER_SCREENS"]

#: Price screens scored per tender: name -> (direction, log-transform).
#: Direction +1: high values are suspicious; -1: low values are. Collusion
#: compresses bids (low CV, spread, KS distance to the uniform), opens a gap
#: between the winner and the cover bids relative to their spread (high RD)
#: and piles the covers together (high kurtosis); the most regular 3- and
#: 4-bid subsets reveal incomplete cartels (Imhof 2018; Huber & Imhof 2019;
#: Imhof, Karagök & Rutz 2018).
TENDER_SCREENS: dict[str, tuple[int, bool]] = {
    "cv": (-1, True),
    "spd": (-1, True),
    "rd": (+1, True),
    "kurt": (+1, False),
    "kstest": (-1, False),
    "cv3_min": (-1, True),
    "cv4_min": (-1, True),
}

#: Regularity flags (identical prices, arithmetic / fixed-ratio sequences).
_REGULARITY_FLAGS = ("has_identical", "is_arithmetic", "is_fixed_ratio")

#: Company links that do not depend on one bid.
LINK_TYPES: tuple[str, ...] = ("project_manager", "related_party", "registration")

#: Floor/cap of robust z-scores before surprisal (a CV of exactly 0 is
#: suspicious, not infinitely so).
_Z_CAP = 8.0
_MIN_CLASS = 30
#: Group statistics reported against their median over all groups.
_GROUP_EVIDENCE = ("cohesion", "exclusivity", "rotation_evenness", "member_win_share", "suspicious_share")


def _bid_count_classes(n_bids: np.ndarray, *, min_size: int = _MIN_CLASS) -> np.ndarray:
    """Comparable-tender classes by number of bids; small classes join the next smaller one.

    Tenders with fewer than two bids get class -1 (no screens).
    """
    n = np.asarray(n_bids, dtype=np.int64)
    cls = np.where(n >= 2, n, -1)
    values, counts = np.unique(cls[cls >= 0], return_counts=True)
    mapping = {}
    # Walk from large to small counts: a class too small to give a stable
    # median and MAD is pooled with its smaller neighbour.
    carry: list[int] = []
    for v, c in zip(values[::-1], counts[::-1]):
        carry.append(int(v))
        pooled = sum(int(counts[values == x][0]) for x in carry)
        if pooled >= min_size:
            for x in carry:
                mapping[x] = int(v) if len(carry) == 1 else min(carry)
            carry = []
    if carry:  # leftovers at the small end join the smallest formed class
        target = min(mapping.values()) if mapping else min(carry)
        for x in carry:
            mapping[x] = target
    lut = np.full(int(n.max()) + 1 if n.size else 1, -1, dtype=np.int64)
    for k, v in mapping.items():
        lut[k] = v
    return np.where(cls >= 0, lut[np.maximum(cls, 0)], -1)


def _class_z(values: np.ndarray, classes: np.ndarray | list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Robust z of ``values`` within each class, and the class median per row.

    ``classes`` is a class per row, or the row indices of each class from
    :func:`_class_rows` (computed once when several screens share the classes).
    """
    groups = _class_rows(classes) if isinstance(classes, np.ndarray) else classes
    z = np.full(values.size, np.nan)
    med = np.full(values.size, np.nan)
    for sel in groups:
        v = values[sel]
        z[sel] = robust_z(v)
        fin = v[np.isfinite(v)]
        med[sel] = np.median(fin) if fin.size else np.nan
    return z, med


def _class_rows(classes: np.ndarray) -> list[np.ndarray]:
    """Row indices of each class ``>= 0``, by ascending class, rows ascending."""
    rows = np.flatnonzero(classes >= 0)
    rows = rows[np.argsort(classes[rows], kind="stable")]
    bounds = np.flatnonzero(np.diff(classes[rows])) + 1
    return np.split(rows, bounds) if rows.size else []


class BidRiggingDetector(BaseDetector):
    """Bid rigging and collusive bidding (analysis 2): suspicious tenders and candidate cartels.

    **Tenders.** Every tender with bids is scored by three kinds of evidence,
    each on the surprisal scale (nats, ``-log`` of how often an ordinary
    tender of the same market shows as much):

    * *price screens* — CV, spread, relative distance, kurtosis, KS distance
      and the CV of the most regular 3- and 4-bid subsets, each as a robust
      z-score against tenders with the same number of bids, turned into a
      one-sided surprisal in the collusive direction and averaged; identical
      prices and arithmetic / fixed-ratio bid sequences add the surprisal of
      their market prevalence;
    * *shared traces* (Art. 40) — bidders of the tender sharing an IP, MAC,
      document fingerprint, bond account or contact, or linked through a
      project manager, a related party or a registered contact. A shared value
      weighs ``2 / k`` for a value used by ``k`` firms in the whole market (a
      public IP used by 60 firms is weak, one used by two is near-conclusive),
      times the surprisal of such sharing in the market, times
      ``trace_weight``;
    * *group membership* — the share of the tender's bidders that belong to
      one candidate cartel, times that group's evidence (capped at the
      surprisal of a one-in-the-market event), times ``group_weight``.

    **Groups.** A tender is *suspicious* when its price evidence is in the
    market's top ``suspicious_share``. For every pair of firms, the
    number of suspicious tenders among the tenders they bid in together is
    tested against the market rate (binomial tail); the pairs significant at
    false discovery rate ``fdr`` (Benjamini–Hochberg) form the backbone of the
    co-bidding network on which Leiden (modularity, seeded) finds groups.
    A group's score is the surprisal of its suspicious tenders (binomial
    tail over the tenders where at least two members bid) plus the
    surprisal of shared traces among members, plus the one-sided surprisals
    of cohesion, exclusivity, rotation and "members that never win against a
    partner" as robust z-scores across the groups (Wachs & Kertész 2019).

    Parameters
    ----------
    suspicious_share : float, default 0.1
        Share of tenders (with two or more bids) counted as suspicious when
        testing pairs.
    fdr : float, default 0.05
        False discovery rate of the pair backbone.
    min_cobids : int, default 2
        Pairs that bid together in fewer tenders are not tested.
    resolution : float, default 1.0
        Leiden modularity resolution.
    trace_weight : float, default 2.0
        Weight of shared-trace evidence (Art. 40 cases are near-conclusive).
    group_weight : float, default 1.0
        Weight of group-membership evidence in the tender score.
    subset_max_exact : int, default 8
        Tenders with at most this many bids use all 3-/4-bid subsets; larger
        ones the contiguous windows in price order (exact for minimum CV).
    random_state : int, default 0
        Seed of Leiden.
    contamination, fence_k, max_evidence
        See :class:`~collusion.detectors.BaseDetector`.

    Attributes
    ----------
    units_ : pandas.DataFrame
        Tender rows carry the raw screens (``cv``, ``spd``, ``rd``...,
        ``cv4_min``), their robust z-scores (``z_cv``...), regularity flags,
        trace counts per type and the evidence components; group rows the
        group statistics. The screen matrix for a supervised model is
        ``units_.loc[units_.unit == "tender", list(TENDER_SCREENS)]``.
    pairs_ : pandas.DataFrame
        Co-bidding statistics of every pair with ``min_cobids`` shared
        tenders, with the suspicious-co-bidding test (``logp``, ``logq``) and
        shared-trace counts; codes index ``market.entities["company"]``.
    membership_ : numpy.ndarray
        Group code per company (-1 = none).

    Examples
    --------
    >>> from collusion.datasets import make_market
    >>> from collusion.detectors import BidRiggingDetector
    >>> market, truth = make_market(2_000, seed=3)
    >>> det = BidRiggingDetector().fit(market)
    >>> sorted(det.results_["unit"].unique())
    ['group', 'tender']
    >>> top = det.results_.query("unit == 'tender'").head(20)
    >>> bool(top["entity_id"].isin(truth.cartel_tenders["tender_id"]).mean() > 0.5)
    True
    """

    _released_attributes: ClassVar[tuple[str, ...]] = (
        "pairs_", "trace_pairs_", "links_", "_pair_arrays", "_group_tenders", "_winner", "_group_lists",
    )
    name: ClassVar[str] = "bid_rigging"
    analysis: ClassVar[int] = 2
    unit: ClassVar[str] = "tender"
    entity_type: ClassVar[str] = "tender"
    other_type: ClassVar[str | None] = None
    required_tables: ClassVar[tuple[str, ...]] = ("tenders", "bids")

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDetector._parameter_constraints,
        "suspicious_share": [Interval(0, 0.5, closed="neither")],
        "fdr": [Interval(0, 1, closed="neither")],
        "min_cobids": [Interval(1, None, integer=True)],
        "resolution": [Interval(0, None, closed="neither")],
        "trace_weight": [Interval(0, None)],
        "group_weight": [Interval(0, None)],
        "subset_max_exact": [Interval(4, 15, integer=True)],
        "random_state": [Interval(0, None, integer=True)],
    }

    def __init__(
        self,
        *,
        suspicious_share: float = 0.1,
        fdr: float = 0.05,
        min_cobids: int = 2,
        resolution: float = 1.0,
        trace_weight: float = 2.0,
        group_weight: float = 1.0,
        subset_max_exact: int = 8,
        random_state: int = 0,
        contamination: float | None = None,
        fence_k: float = 1.5,
        max_evidence: int = 100,
    ) -> None:
        super().__init__(contamination=contamination, fence_k=fence_k, max_evidence=max_evidence)
        self.suspicious_share = suspicious_share
        self.fdr = fdr
        self.min_cobids = min_cobids
        self.resolution = resolution
        self.trace_weight = trace_weight
        self.group_weight = group_weight
        self.subset_max_exact = subset_max_exact
        self.random_state = random_state

    # ------------------------------------------------------------------ score
    def _score(self, graph: Any) -> pd.DataFrame:
        m = graph.market
        n_t, n_c = m.n("tender"), m.n("company")
        bids = m.bids
        tcode = m.codes("bids", "tender_id").astype(np.int64)
        price = bids["price"].to_numpy(dtype=np.float64)

        # --- price screens (bids are in canonical (tender, price) order)
        screens = price_screens(tcode, price, n_tenders=n_t, assume_sorted=True)
        subsets = subset_screens(
            tcode, price, n_tenders=n_t, assume_sorted=True, sizes=(3, 4), stats=("min",), screens=("cv",),
            max_exact_bids=self.subset_max_exact,
        )
        regular = price_regularity(tcode, price, n_tenders=n_t, assume_sorted=True)
        n_bids = screens["n_bids"].to_numpy()
        classes = _bid_count_classes(n_bids)
        # Tender columns as plain arrays, one frame at the end: assigning an
        # array to a frame column copies it (75 columns of 8 MB per million tenders).
        tender: dict[str, Any] = {}
        tender["n_bids"] = n_bids
        tender["bid_class"] = classes
        surprisals = []
        class_rows = _class_rows(classes)
        for col, (direction, log) in TENDER_SCREENS.items():
            raw = (screens[col] if col in screens else subsets[col]).to_numpy(dtype=np.float64)
            tender[col] = raw
            v = np.log(np.maximum(raw, 1e-12)) if log else raw
            v = np.where(np.isfinite(raw), v, np.nan)
            z, med = _class_z(v, class_rows)
            z = np.clip(z, -_Z_CAP, _Z_CAP)
            tender[f"z_{col}"] = z
            tender[f"median_{col}"] = np.exp(med) if log else med
            s = z_surprisal(direction * z)
            surprisals.append(np.where(np.isfinite(z), s, np.nan))
        S = np.column_stack(surprisals)
        has_any = np.isfinite(S).any(axis=1)
        screen_ev = np.where(has_any, np.nansum(S, axis=1) / np.maximum(np.isfinite(S).sum(axis=1), 1), 0.0)
        flag_ev = np.zeros(n_t)
        contested = n_bids >= 2
        for col in _REGULARITY_FLAGS:
            f = regular[col].to_numpy(dtype=bool)
            tender[col] = f
            flag_ev += flag_surprisal(f, within=contested)
        tender["screen_evidence"] = screen_ev
        tender["regularity_evidence"] = flag_ev
        price_ev = screen_ev + flag_ev

        # --- shared traces among bidders of one tender
        trace_pairs, spec = self._trace_pairs(graph)
        self.trace_pairs_ = trace_pairs
        counts = tender_trace_counts(trace_pairs, n_t, BID_TRACE_TYPES)
        trace_ev = np.zeros(n_t)
        for i, ttype in enumerate(BID_TRACE_TYPES):
            sel = trace_pairs["trace_type"].to_numpy() == i
            best = np.zeros(n_t)
            np.maximum.at(best, trace_pairs["tender"].to_numpy()[sel], spec[sel])
            tender[f"pairs_{ttype}"] = counts[f"pairs_{ttype}"].to_numpy()
            trace_ev += best * flag_surprisal(best > 0, within=contested)
        tender["firms_sharing"] = counts["firms_any"].to_numpy()
        B = self._incidence(graph, "bids", n_c, n_t)
        links = self._company_links(graph, n_c)
        self.links_ = links
        trace_ev *= self.trace_weight
        # Company links (legal ties, a project manager on both firms'
        # contracts, a registered contact) are weaker than traces left in the
        # bids themselves: they count with their market surprisal only.
        link_ev = np.zeros(n_t)
        for lt in LINK_TYPES:
            sel = links["link_type"].to_numpy() == lt
            lc = tender_link_counts(B, links["company_a"].to_numpy()[sel], links["company_b"].to_numpy()[sel])
            tender[f"links_{lt}"] = lc["pairs"].to_numpy()
            has = lc["pairs"].to_numpy() > 0
            link_ev += has * flag_surprisal(has, within=contested)
        tender["trace_evidence"] = trace_ev
        tender["link_evidence"] = link_ev
        base_ev = price_ev + trace_ev + link_ev

        # --- co-bidding pairs, suspicious co-bidding, groups
        W = self._incidence(graph, "wins", n_c, n_t)
        winner = tender_winner(W)
        # Pairs are tested on price evidence only: a trace two firms always
        # share would make every tender they meet in "suspicious" and the
        # test circular. Traces enter the group score separately.
        suspicious = np.zeros(n_t, dtype=bool)
        if contested.any():
            cut = np.quantile(price_ev[contested], 1.0 - self.suspicious_share)
            suspicious = contested & (price_ev > cut)
        found = cobid_pairs(B, min_cobids=self.min_cobids, flags=suspicious)
        # The pair columns are collected as arrays and become one frame at the
        # end: every column added to a frame is copied, 50 MB each at 1M tenders.
        cols = {c: found[c].to_numpy() for c in found.columns if c != "n_flagged"}
        n_flagged = found["n_flagged"].to_numpy()
        del found
        pa, pb = cols["company_a"], cols["company_b"]
        sc = suspicious_cobids(B, suspicious, pa, pb, cols["n_cobids"], n_suspicious=n_flagged)
        cols.update({c: sc[c].to_numpy() for c in sc.columns})
        del sc, n_flagged
        cols["logq"] = bh_qvalues(cols["logp"])
        backbone = cols["logq"] >= -np.log10(self.fdr)
        membership = cobidding_communities(
            pa[backbone], pb[backbone], cols["logp"][backbone], n_c, resolution=self.resolution,
            seed=self.random_state,
        )
        self.membership_ = membership
        # Who wins when members meet: only needed for pairs inside a group.
        # As row numbers (few): every gather and scatter by a mask would pass over all the pairs.
        ga = membership[pa]
        inside = np.flatnonzero((ga >= 0) & (ga == membership[pb]))
        del ga
        wins = pair_wins(B, W, pa[inside], pb[inside], cols["n_cobids"][inside])
        for col in wins.columns:
            full = np.full(pa.size, np.nan)
            full[inside] = wins[col].to_numpy(dtype=np.float64)
            cols[col] = full
        cols["shared_traces"] = self._pair_trace_flags(pa, pb, trace_pairs, links)
        pairs = pd.DataFrame(cols, copy=False)
        del cols
        self.pairs_ = pairs
        self._pair_arrays = {c: pairs[c].to_numpy() for c in
                             ("company_a", "company_b", "n_cobids", "wins_a", "wins_b", "underwin_a", "underwin_b")}
        self._pair_arrays["inside"] = inside  # the evidence's pairs within a group, found once
        self._group_tenders = {"group": np.empty(0, np.int64), "tender": np.empty(0, np.int64)}
        self._winner = winner
        tender["suspicious"] = suspicious
        tender["winner"] = winner

        groups = self._group_frame(graph, membership, B, winner, pairs, suspicious)
        self.groups_ = groups

        # --- group membership evidence for tenders: only flagged groups count,
        # each worth at most a one-in-the-market event.
        self._n_pair_tests = len(pairs)
        share = tender_group_share(membership, B)
        g = share["group"].to_numpy()
        gscore = np.zeros(n_t)
        if len(groups):
            cap = np.log(max(int(contested.sum()), 2))
            gsc = groups["score"].to_numpy()
            flagged = gsc >= self._default_threshold(gsc, "group")
            gs = np.where(flagged, np.minimum(gsc, cap), 0.0)
            gscore = np.where(g >= 0, gs[np.maximum(g, 0)], 0.0)
        tender["group"] = g
        tender["group_share"] = share["group_share"].to_numpy()
        group_ev = self.group_weight * tender["group_share"] * gscore
        tender["group_evidence"] = group_ev
        tender["price_evidence"] = price_ev
        tender["score"] = base_ev + group_ev

        has_bids = n_bids > 0
        kept = np.flatnonzero(has_bids)
        if not has_bids.all():
            tender = {c: v[kept] for c, v in tender.items()}
        tender = {"unit": repeat_str("tender", kept.size), "entity_type": repeat_str("tender", kept.size),
                  "entity_id": entity_strings(m, "tender", kept), **tender, "code": kept}
        # A tender unit's one member and one tender are itself.
        itself = Ragged.from_columns([kept], kinds=["tender"])
        frames, members, tenders = [pd.DataFrame(tender, copy=False)], [itself], [itself]
        del tender
        if len(groups):
            frames.append(groups.drop(columns=["members", "tender_ids"]))
            members.append(self._group_lists[0])
            tenders.append(self._group_lists[1])
        # Column by column: pd.concat copied the 75 tender columns block by block (a second per million tenders).
        out = stack_rows(frames) if len(frames) > 1 else frames[0]
        return Units(out, Ragged.concat(members), Ragged.concat(tenders))

    def _default_threshold(self, scores: np.ndarray, unit: str) -> float:
        """Benjamini–Hochberg cut on the surprisal scale (``p = exp(-score)``) at level ``fdr``.

        Scores are sums of surprisals, so ``exp(-score)`` reads as the chance
        that an ordinary unit shows this much evidence. Groups were selected
        out of every tested pair of firms, so their multiplicity is the number
        of pairs tested, not the number of groups.
        """
        s = np.asarray(scores, dtype=np.float64)
        s = np.sort(s[np.isfinite(s)])[::-1]
        if s.size == 0:
            return float("inf")
        m = max(getattr(self, "_n_pair_tests", s.size), s.size) if unit == "group" else s.size
        rank = np.arange(1, s.size + 1)
        # Reject the k most surprising units where exp(-s_(k)) <= k * fdr / m.
        ok = -s <= np.log(rank * self.fdr / m)
        if not ok.any():
            return float(s[0] + 1e-9)
        k = int(np.flatnonzero(ok).max())
        return float(s[k])

    # -------------------------------------------------------------- helpers
    @staticmethod
    def _incidence(graph: Any, relation: str, n_c: int, n_t: int) -> sp.csr_matrix:
        cached = graph.adjacency(relation, src_type="company", dst_type="tender", binary=True)
        # Only the slices needed: each one copies the 7.5M bids of a 1M-tender market.
        A = cached if cached.shape[0] == n_c else cached[:n_c]
        A = A if A.shape[1] == n_t else A[:, :n_t]
        # The graph caches its matrix: a copy when no slice made one already.
        return sp.csr_matrix(A, dtype=np.float64, copy=A is cached)

    @staticmethod
    def _trace_pairs(graph: Any) -> tuple[pd.DataFrame, np.ndarray]:
        """Shared bid traces from the graph's ``uses`` edges, with each value's specificity."""
        # Plain arrays, one slice per trace type: shared_trace_pairs takes
        # arrays, and a frame per type plus a concat would copy every column
        # of millions of (bid, trace) rows twice.
        parts: list[tuple[np.ndarray, ...]] = []
        n_parties_of: dict[int, np.ndarray] = {}
        n_c = graph.market.n("company")
        for i, ttype in enumerate(BID_TRACE_TYPES):
            key = ("company", "uses", ttype)
            if key not in graph.edge_types:
                continue
            e = graph.edges(key)
            n_parties = n_parties_of[i] = graph.nodes(ttype)["n_parties"].to_numpy()
            dst, src, tender = e["dst"].to_numpy(), e["src"].to_numpy(), e["tender"].to_numpy()
            keep = np.flatnonzero((tender >= 0) & (n_parties[dst] >= 2) & (src < n_c))
            if not keep.size:
                continue
            parts.append((tender[keep], src[keep], np.full(keep.size, i, dtype=np.int64), dst[keep]))
        if not parts:
            empty = shared_trace_pairs(*(np.empty(0, np.int64),) * 4)
            return empty.assign(n_firms=np.empty(0, np.int64)), np.empty(0)
        tender, company, trace_type, trace = (np.concatenate([p[j] for p in parts]).astype(np.int64, copy=False)
                                              for j in range(4))
        del parts
        pairs = shared_trace_pairs(tender, company, trace_type, trace)
        del tender, company, trace_type, trace
        k = np.zeros(len(pairs), dtype=np.int64)
        tt = pairs["trace_type"].to_numpy()
        tr = pairs["trace"].to_numpy()
        for i, n_parties in n_parties_of.items():
            sel = tt == i
            if sel.any():
                k[sel] = n_parties[tr[sel]]
        pairs["n_firms"] = k
        # Specificity of a shared value: 1 for a value exactly two firms use,
        # 2/k for a value k firms use (resource-allocation weighting, Zhou,
        # Lü & Zhang 2009): a public IP or a document template used by dozens
        # of firms says little about any two of them.
        spec = 2.0 / np.maximum(k, 2)
        return pairs, spec

    @staticmethod
    def _company_links(graph: Any, n_c: int) -> pd.DataFrame:
        """Company pairs linked by a project manager, a related party or a registered contact."""
        frames = []
        n_all = graph.n("company")

        def add(H: sp.spmatrix, kind: str) -> None:
            H = sp.csr_matrix(H)[:n_c]
            if H.nnz == 0:
                return
            links = hub_links(H)
            if len(links):
                frames.append(links.assign(link_type=kind))

        # Project managers of the contracts a firm signed or built.
        pm = []
        for rel in ("signs", "builds"):
            try:
                pm.append(graph.metapath("company", rel, "contract", "manages", "person"))
            except (KeyError, ValueError):
                continue
        if pm:
            add(sum(pm[1:], pm[0]), "project_manager")
        # Related parties: a person or firm tied to both, or a direct firm–firm relation.
        rel_mats = []
        for s in ("person", "company", "buyer", "agent", "expert"):
            try:
                a = graph.adjacency("relations", src_type=s, dst_type="company", binary=True)
                b = graph.adjacency("relations", src_type="company", dst_type=s, binary=True)
            except (KeyError, ValueError):
                continue
            m = sp.csr_matrix(a.T) + sp.csr_matrix(b)
            if s == "company":
                m = m + sp.identity(n_all, format="csr")[:, : m.shape[1]].multiply(m.sum(axis=1) > 0)
            rel_mats.append(sp.csr_matrix(m))
        try:
            same = graph.adjacency("same_as", src_type="company", dst_type="company", binary=True)
            same = sp.csr_matrix(same + same.T)
            rel_mats.append(same + sp.identity(n_all, format="csr").multiply(same.sum(axis=1) > 0))
        except (KeyError, ValueError):
            pass
        if rel_mats:
            add(sp.hstack(rel_mats, format="csr"), "related_party")
        # Registered phone / e-mail / address shared by firms (parties table).
        reg = []
        for ttype in ("phone", "email", "address"):
            key = ("company", "uses", ttype)
            if key not in graph.edge_types:
                continue
            e = graph.edges(key)
            sel = e["tender"].to_numpy() < 0
            if sel.any():
                reg.append(sp.csr_matrix(
                    (np.ones(int(sel.sum())), (e["src"].to_numpy()[sel], e["dst"].to_numpy()[sel])),
                    shape=(n_all, graph.n(ttype)),
                ))
        if reg:
            add(sp.hstack(reg, format="csr"), "registration")
        if not frames:
            return pd.DataFrame({"company_a": pd.Series([], dtype=np.int64), "company_b": pd.Series([], dtype=np.int64),
                                 "n_hubs": pd.Series([], dtype=np.int64), "link_type": pd.Series([], dtype=object)})
        return pd.concat(frames, ignore_index=True)

    @staticmethod
    def _pair_trace_flags(company_a: np.ndarray, company_b: np.ndarray, trace_pairs: pd.DataFrame,
                          links: pd.DataFrame) -> np.ndarray:
        """Per co-bidding pair ``(company_a, company_b)``: tenders where it shared a trace, plus link types."""
        n = company_a.size
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        width = np.int64(max(int(company_b.max()), 0) + 1)
        # In place: one array of keys, not four pair-sized temporaries (the codes are int32).
        key = company_a.astype(np.int64)
        key *= width
        key += company_b
        out = np.zeros(n, dtype=np.int64)
        if len(trace_pairs):
            tp = trace_pairs.drop_duplicates(["tender", "company_a", "company_b"])
            a, b = tp["company_a"].to_numpy(np.int64), tp["company_b"].to_numpy(np.int64)
            ok = b < width
            tk, cnt = np.unique(a[ok] * width + b[ok], return_counts=True)
            pos = np.searchsorted(key, tk)
            hit = (pos < n) & (key[np.minimum(pos, n - 1)] == tk)
            out[pos[hit]] += cnt[hit]
        if len(links):
            a, b = links["company_a"].to_numpy(np.int64), links["company_b"].to_numpy(np.int64)
            ok = b < width
            lk = unique_ints(a[ok] * width + b[ok])
            pos = np.searchsorted(key, lk)
            hit = (pos < n) & (key[np.minimum(pos, n - 1)] == lk)
            out[pos[hit]] += 1
        return out

    def _group_frame(
        self,
        graph: Any,
        membership: np.ndarray,
        B: sp.csr_matrix,
        winner: np.ndarray,
        pairs: pd.DataFrame,
        suspicious: np.ndarray,
    ) -> pd.DataFrame:
        m = graph.market
        n_groups = int(membership.max()) + 1 if membership.size and membership.max() >= 0 else 0
        if n_groups == 0:
            return pd.DataFrame()
        time = self._tender_time(m)
        st = group_statistics(membership, B, winner, pairs, time=time, inside=self._pair_arrays["inside"])
        gt = group_tenders(membership, B)
        self._group_tenders = {"group": gt["group"].to_numpy(), "tender": gt["tender"].to_numpy()}
        g, t = gt["group"].to_numpy(), gt["tender"].to_numpy()
        n_sus = np.bincount(g, weights=suspicious[t].astype(np.float64), minlength=n_groups)
        contested = np.asarray(B.sum(axis=0)).ravel() >= 2
        q = float(suspicious[contested].mean()) if contested.any() else 0.0
        from scipy import stats

        n_gt = st["n_tenders"].to_numpy()
        sus_ev = -stats.binom.logsf(n_sus - 1, n_gt, q) if 0 < q < 1 else np.zeros(n_groups)
        sus_ev = np.nan_to_num(np.maximum(sus_ev, 0.0), posinf=700.0)
        size = st["n_members"].to_numpy()
        n_pairs = size * (size - 1) / 2
        has_trace = pairs["shared_traces"].to_numpy() > 0
        # Only the pairs inside a group (found in _score) can count.
        inside = self._pair_arrays["inside"]
        traced = group_pair_sum(membership, pairs["company_a"].to_numpy()[inside],
                                pairs["company_b"].to_numpy()[inside], has_trace[inside], n_groups=n_groups)
        st["suspicious_tenders"] = n_sus
        st["suspicious_share"] = np.where(n_gt > 0, n_sus / np.maximum(n_gt, 1), np.nan)
        st["traced_pair_share"] = traced / n_pairs
        # Trace evidence: surprisal of the share of member pairs with shared
        # traces, relative to all co-bidding pairs of the market.
        base = float(has_trace.mean()) if len(pairs) else 0.0
        trace_ev = np.where(traced > 0, -stats.binom.logsf(traced - 1, n_pairs, max(base, 1e-9)), 0.0)
        trace_ev = np.nan_to_num(np.maximum(trace_ev, 0.0), posinf=700.0)
        st["suspicion_evidence"] = sus_ev
        st["trace_evidence"] = trace_ev
        structural = []
        for col in ("cohesion", "exclusivity", "rotation_evenness", "member_win_share", "underwin_max"):
            v = st[col].to_numpy(dtype=np.float64)
            z = robust_z(v) if np.isfinite(v).sum() >= 5 else np.zeros(v.size)
            st[f"z_{col}"] = z
            structural.append(z_surprisal(np.clip(z, -_Z_CAP, _Z_CAP)))
        st["structure_evidence"] = np.mean(structural, axis=0)
        st["score"] = sus_ev + self.trace_weight * trace_ev + st["structure_evidence"].to_numpy()

        comp_ids = m.entities["company"].to_numpy(dtype=object)
        order = np.argsort(membership, kind="stable")
        mem_sorted = membership[order]
        start = np.searchsorted(mem_sorted, np.arange(n_groups))
        stop = np.searchsorted(mem_sorted, np.arange(n_groups), side="right")
        members = [[f"company:{c}" for c in sorted(comp_ids[order[s:e]])] for s, e in zip(start, stop)]
        tids = m.entities["tender"].to_numpy(dtype=object)
        t_start = np.searchsorted(g, np.arange(n_groups))
        t_stop = np.searchsorted(g, np.arange(n_groups), side="right")
        tender_ids = [list(tids[t[s:e]]) for s, e in zip(t_start, t_stop)]
        # The same lists as codes, for the result frame.
        self._group_lists = (Ragged.from_pairs(membership[membership >= 0], np.flatnonzero(membership >= 0),
                                               n_groups, kind="company"),
                             Ragged.from_pairs(g, t, n_groups, kind="tender"))
        st.insert(0, "entity_id", group_ids(members))
        st.insert(0, "entity_type", "group")
        st.insert(0, "unit", "group")
        st["members"] = pd.Series(members, index=st.index, dtype=object)
        st["tender_ids"] = pd.Series(tender_ids, index=st.index, dtype=object)
        st["code"] = np.arange(n_groups)
        return st.reset_index(drop=True)

    @staticmethod
    def _tender_time(m: Any) -> np.ndarray:
        """Award, deadline or publication date per tender (int64 ns; missing last)."""
        out = np.full(m.n("tender"), np.iinfo(np.int64).max, dtype=np.int64)
        for col in ("published_at", "deadline_at", "awarded_at"):
            v = m.tenders[col].to_numpy(dtype="datetime64[ns]")
            ok = ~np.isnat(v)
            out[ok] = v[ok].astype(np.int64)
        return out

    # ------------------------------------------------------------ evidence
    def _evidence(self, graph: Any, units: pd.DataFrame) -> list[list[dict[str, Any]]]:
        # Tender evidence is built column-wise: one pass per kind of record
        # over all tenders asked for (tens of thousands at 1M tenders), then
        # the records are regrouped per tender. Groups are few; they get a
        # loop of array lookups.
        ctx = _EvidenceContext(self, graph)
        kind = units["unit"].to_numpy(dtype=object)
        code = units["code"].to_numpy(dtype=np.int64)
        records: list[list[dict[str, Any]]] = [[] for _ in range(len(units))]
        is_t = np.flatnonzero(kind == "tender")
        is_g = np.flatnonzero(kind == "group")
        with gc_paused():  # also outside fit (explain): see collusion._gc
            if is_t.size:
                for i, recs in zip(is_t, ctx.tender_records(code[is_t], units.iloc[is_t])):
                    records[i] = recs
            if is_g.size:
                cols = {c: units[c].to_numpy()[is_g] for c in (*_GROUP_EVIDENCE, "rotation_evenness")}
                for j, i in enumerate(is_g):
                    records[i] = ctx.group_records(int(code[i]), {c: v[j] for c, v in cols.items()})
        return records


def _record(signal: str, value: float, baseline: float, detail: str, path: list[str]) -> dict[str, Any]:
    """An :func:`~collusion.results.evidence` record from arguments already of the right types.

    Tender evidence builds a quarter of a million records at a million
    tenders; ``evidence`` re-converting every field and path item cost a
    fifth of a second of it. Callers pass ``str``, ``float`` (from
    ``ndarray.tolist``) and lists of ``str`` only.
    """
    return {"signal": signal, "value": value, "baseline": baseline, "detail": detail, "path": path}


class _EvidenceContext:
    """Arrays shared by the evidence records of one ``fit`` (built once per call)."""

    def __init__(self, det: BidRiggingDetector, graph: Any) -> None:
        self.det = det
        self.graph = graph
        m = graph.market
        self.comp_ids = m.entities["company"].to_numpy(dtype=object)
        self.tender_ids = m.entities["tender"].to_numpy(dtype=object)
        tp = det.trace_pairs_
        self.tp = {c: tp[c].to_numpy() for c in tp.columns}
        self.tp_tender = self.tp["tender"] if len(tp) else np.empty(0, np.int64)
        self.values: dict[int, np.ndarray] = {}
        groups = det.groups_
        self.group_id = groups["entity_id"].to_numpy(dtype=object) if len(groups) else np.empty(0, object)
        self.group_members = groups["members"].to_numpy(dtype=object) if len(groups) else np.empty(0, object)
        self.group_score = groups["score"].to_numpy(dtype=np.float64) if len(groups) else np.empty(0)
        self.group_medians = {c: float(np.nanmedian(groups[c].to_numpy(dtype=np.float64)))
                              for c in _GROUP_EVIDENCE} if len(groups) else {}
        # Members of each group (ascending codes), one slice per group.
        mem = det.membership_
        in_group = np.flatnonzero(mem >= 0)
        self.member_rows = in_group[np.argsort(mem[in_group], kind="stable")]
        self.member_ptr = np.searchsorted(mem[self.member_rows], np.arange(len(self.group_id) + 1))
        # Pairs (co-bidding and trace-sharing) whose two firms are in one
        # group, sorted by group, so each group's rows are one slice.
        self.internal = {}
        for name, arrays in (("pairs", det._pair_arrays), ("traces", self.tp)):
            if not len(arrays.get("company_a", ())):
                self.internal[name] = (np.empty(0, np.int64), np.empty(0, np.int64))
                continue
            rows = arrays.get("inside")
            if rows is None:
                ga, gb = mem[arrays["company_a"]], mem[arrays["company_b"]]
                rows = np.flatnonzero((ga == gb) & (ga >= 0))
            g = mem[arrays["company_a"][rows]]
            order = np.argsort(g, kind="stable")
            self.internal[name] = (g[order], rows[order])

    def _inside(self, name: str, g: int) -> np.ndarray:
        keys, rows = self.internal[name]
        return rows[np.searchsorted(keys, g):np.searchsorted(keys, g, side="right")]

    def _values(self, ttype_code: int) -> np.ndarray:
        if ttype_code not in self.values:
            self.values[ttype_code] = self.graph.index(BID_TRACE_TYPES[ttype_code]).to_numpy()
        return self.values[ttype_code]

    def trace_records(self, rows: np.ndarray, contexts: Any) -> list[dict[str, Any]]:
        """One record per trace-pair row; ``contexts`` is one string or one per row."""
        tp, comp = self.tp, self.comp_ids
        rows = np.asarray(rows, dtype=np.int64)
        if not rows.size:
            return []
        kinds = tp["trace_type"][rows]
        traces = tp["trace"][rows]
        values = np.empty(rows.size, dtype=object)
        for k in np.unique(kinds):
            sel = kinds == k
            values[sel] = self._values(int(k))[traces[sel]]
        if isinstance(contexts, str):
            contexts = [contexts] * rows.size
        return [
            _record(
                f"shared_{ttype}", 1.0, 0.0,
                f"{a} and {b} used the same {ttype} {value} {context} (a value {n_firms} firms use in the market)",
                [f"company:{a}", "uses", f"{ttype}:{value}", "uses", f"company:{b}"],
            )
            for ttype, value, a, b, n_firms, context in zip(
                [BID_TRACE_TYPES[k] for k in kinds.tolist()], [str(v) for v in values],
                comp[tp["company_a"][rows]], comp[tp["company_b"][rows]], tp["n_firms"][rows].tolist(), contexts,
            )
        ]

    def tender_records(self, codes: np.ndarray, units: pd.DataFrame) -> list[list[dict[str, Any]]]:
        """Evidence of the tenders ``codes`` (rows of ``units``), kind by kind, in record order."""
        n = codes.size
        col = {c: units[c].to_numpy() for c in units.columns if c.startswith(("z_", "median_", "links_"))}
        for c in (*TENDER_SCREENS, *_REGULARITY_FLAGS, "bid_class", "group", "group_share", "group_evidence"):
            col[c] = units[c].to_numpy()
        tids = self.tender_ids[codes]
        tlabel = [f"tender:{t}" for t in tids]
        # (row, record) lists of each kind of record, in the order a tender lists them.
        owner: list[np.ndarray] = []
        recs: list[dict[str, Any]] = []

        def add(rows: np.ndarray, new: list[dict[str, Any]]) -> None:
            owner.append(rows)
            recs.extend(new)

        cls = col["bid_class"]
        for name, (direction, _) in TENDER_SCREENS.items():
            z = col[f"z_{name}"].astype(np.float64)
            with np.errstate(invalid="ignore"):
                rows = np.flatnonzero(np.isfinite(z) & (direction * z >= 2.0))
            raw, med = col[name][rows].astype(np.float64), col[f"median_{name}"][rows].astype(np.float64)
            add(rows, [
                _record(name, v, m, f"{name} {v:.4g} vs median {m:.4g} of comparable tenders "
                                    f"({int(c)}+ bids; robust z {zz:+.1f})", [tlabel[r]])
                for r, v, m, c, zz in zip(rows.tolist(), raw.tolist(), med.tolist(), cls[rows].tolist(),
                                          z[rows].tolist())
            ])
        for name in _REGULARITY_FLAGS:
            rows = np.flatnonzero(col[name].astype(bool))
            text = f"{name.replace('_', ' ')} among the bids"
            add(rows, [_record(name, 1.0, 0.0, text, [tlabel[r]]) for r in rows.tolist()])
        # Up to ten shared traces per tender, in trace-pair order.
        lo = np.searchsorted(self.tp_tender, codes)
        cnt = np.minimum(np.searchsorted(self.tp_tender, codes, side="right") - lo, 10)
        rows = np.repeat(np.arange(n), cnt)
        tp_rows = np.repeat(lo - (np.cumsum(cnt) - cnt), cnt) + np.arange(int(cnt.sum()))
        add(rows, self.trace_records(tp_rows, [f"in {t}" for t in tids[rows]]))
        for lt in LINK_TYPES:
            if f"links_{lt}" not in col:
                continue
            k = col[f"links_{lt}"].astype(np.float64)
            with np.errstate(invalid="ignore"):
                rows = np.flatnonzero(k > 0)
            text = lt.replace("_", " ")
            add(rows, [_record(f"linked_{lt}", v, 0.0, f"{int(v)} pair(s) of bidders linked by {text}", [tlabel[r]])
                       for r, v in zip(rows.tolist(), k[rows].tolist())])
        g = col["group"].astype(np.float64)
        with np.errstate(invalid="ignore"):
            rows = np.flatnonzero((g >= 0) & (col["group_evidence"].astype(np.float64) > 0))
        share = col["group_share"][rows].astype(np.float64).tolist()
        new = []
        for r, gg, sh in zip(rows.tolist(), g[rows].astype(np.int64).tolist(), share):
            gid, members = self.group_id[gg], self.group_members[gg]
            new.append(_record(
                "group_share", sh, 0.0,
                f"{sh:.0%} of the bidders belong to candidate cartel {gid} (group score {self.group_score[gg]:.1f})",
                [tlabel[r], "bids", members[0]] if members else [tlabel[r]],
            ))
        add(rows, new)
        # Regroup: a stable sort by tender keeps each tender's records in kind order.
        owner_all = np.concatenate(owner)
        order = np.argsort(owner_all, kind="stable")
        bounds = np.searchsorted(owner_all[order], np.arange(n + 1))
        recs_sorted = [recs[i] for i in order.tolist()]
        return [recs_sorted[bounds[j]:bounds[j + 1]] for j in range(n)]

    def group_records(self, g: int, row: dict[str, Any]) -> list[dict[str, Any]]:
        det = self.det
        comp = self.comp_ids
        recs = []
        for col in _GROUP_EVIDENCE:
            base = self.group_medians[col]
            recs.append(evidence(col, row[col], base, detail=f"{col.replace('_', ' ')} {row[col]:.2f} "
                                                             f"vs {base:.2f} (median over groups)"))
        mem = self.member_rows[self.member_ptr[g]:self.member_ptr[g + 1]]
        gt = det._group_tenders
        lo, hi = np.searchsorted(gt["group"], g), np.searchsorted(gt["group"], g, side="right")
        t = gt["tender"][lo:hi]
        win = det._winner[t]
        # Wins of each member among the group's tenders, from the sorted
        # winners (a count over every company of the market per group would
        # cost more than the whole group).
        won = np.sort(win[win >= 0])
        counts = np.searchsorted(won, mem, side="right") - np.searchsorted(won, mem)
        table = ", ".join(f"{comp[c]} {k}" for c, k in zip(mem, counts.tolist()))
        outsiders = int(won.size - counts.sum())
        recs.append(evidence(
            "rotation", row["rotation_evenness"], 0.0,
            detail=f"wins in the {t.size} tenders where members meet: {table}; outsiders {outsiders}",
            path=[f"company:{comp[c]}" for c in mem[:1]],
        ))
        p = det._pair_arrays
        inside = self._inside("pairs", g)
        for side, other, wins, under in (("company_a", "company_b", "wins_a", "underwin_a"),
                                         ("company_b", "company_a", "wins_b", "underwin_b")):
            sel = inside[p[under][inside] >= 2]
            for r in sel[np.argsort(-p[under][sel], kind="stable")][:3]:
                x, y = comp[int(p[side][r])], comp[int(p[other][r])]
                recs.append(evidence(
                    "never_wins_against_partner", float(p[under][r]), 0.0,
                    detail=f"{x} won {int(p[wins][r])} of the {int(p['n_cobids'][r])} tenders shared with {y} "
                           f"although it wins elsewhere (-log10 p = {p[under][r]:.1f})",
                    path=[f"company:{x}", "bids", "tender", "bids", f"company:{y}"],
                ))
        tp = self.tp
        if len(self.tp_tender):
            sel = self._inside("traces", g)
            key = tp["trace_type"][sel] * np.int64(10**9) + tp["trace"][sel]
            _, first = np.unique(key, return_index=True)
            recs.extend(self.trace_records(sel[np.sort(first)][:5], "in tenders where both bid"))
        return recs
