"""Benchmark: detection quality and speed on synthetic markets, against naive references.

Usage::

    python benchmarks/run.py --sizes 10k,100k,1M [--naive-max 100k] [--out benchmarks/out]

For every market size (number of tenders) two fresh Python processes (one
for the stages one by one, one for the whole screen, so that its peak memory
is its own)

1. generate a market with planted schemes (``collusion.datasets.make_market``);
2. time each stage separately, with the peak resident memory (RSS high-water
   mark) of the process during the stage: generation, validation
   (``Market.from_frames`` on the generated frames), the whole seven-analysis
   ``screen``, graph build, each feature family (price screens, subset screens,
   price regularity, co-bidding pairs, the co-bidding projection, communities),
   each detector on its own, and one pass reading the bid columns (the
   memory-bandwidth floor);
3. score every detector against the planted truth (average precision,
   precision@k, recall at the default threshold) with
   ``collusion.datasets._evaluate.evaluate``;
4. run the naive references of ``benchmarks/naive.py`` on the same market,
   checks that they give the same numbers as the library (screens to 1e-9,
   co-bid counts exactly, the typed graph edge for edge, communities by
   modularity) and reports the speed-up per stage. The naive graph does the
   library's whole job from the market's tables (normalisation, entity
   resolution, typed edges); ``graph_edges``, outside end to end, only puts
   the library's finished edge lists into networkx. Above ``--naive-max``
   tenders the naive references run on the first ``--naive-sample`` tenders
   only (the graph: on a generated market of that many tenders) to check
   agreement, and their cost at that size is the per-bid cost measured on the
   largest whole market, scaled (the sample-based figure is kept beside it).

The parent process collects the workers' JSON and writes, in ``--out``:
``stages.csv`` (one row per size × stage × implementation), ``quality.csv``,
``comparison.csv``, ``scaling.csv`` (log–log slope of time against bids per
stage), ``results.json`` (everything plus the machine), ``tables.md`` and
``scaling.png``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

STAGE_COLUMNS = (
    "size", "n_tenders", "n_bids", "stage", "family", "impl", "seconds", "ns_per_bid",
    "peak_rss_mb", "rss_start_mb", "peak_delta_mb", "repeats", "sample_tenders", "sample_bids",
    "extrapolated", "status",
)
COMPARISON_COLUMNS = (
    "size", "n_bids", "stage", "fast_s", "naive_s", "speedup", "fast_ns_per_bid", "naive_ns_per_bid",
    "naive_extrapolated", "sample_tenders", "agree", "check",
)
#: Stages that the naive references and the library both do, compared one by one.
COMPARED_STAGES = ("screens", "cobid_pairs", "graph", "cobid_network", "communities")
#: "End to end" per side: the same job, from the market to screens, pair features, the typed graph and
#: co-bidding groups. The library's ``cobidding_communities`` builds its co-bidding network from the pair
#: table itself; the naive side builds it in ``cobid_network`` and hands it to Louvain, so that stage counts
#: on the naive side only. The library's ``cobid_network`` stage (``G.projection``) counts the pairs again from
#: the typed graph and names the vertices: a different job, compared beside end to end.
E2E_STAGES = {
    "fast": ("screens", "cobid_pairs", "graph", "communities"),
    "naive": ("screens", "cobid_pairs", "graph", "cobid_network", "communities"),
}
#: Reported beside them, outside "end to end": the naive side does only part of the library's job.
EXTRA_NAIVE_STAGES = ("graph_edges",)
#: Fast stages under this many seconds are repeated (up to 5 runs) and the minimum kept.
_REPEAT_BELOW_S = 0.25
#: Tenders of the warm-up market run (untimed) before each measured size.
_WARMUP_TENDERS = 300


# ------------------------------------------------------------------------ sizes
def parse_size(text: str) -> int:
    """``"10k"`` → 10000, ``"1M"`` → 1000000, ``"2500"`` → 2500."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmM]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"cannot read market size {text!r} (examples: 500, 10k, 1M)")
    mult = {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2).lower()]
    return int(round(float(m.group(1)) * mult))


def size_label(n: int) -> str:
    """Inverse of :func:`parse_size` for round numbers."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


# ----------------------------------------------------------------------- memory
def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            m = re.search(rf"^{field}:\s+(\d+) kB", fh.read(), re.M)
        return int(m.group(1)) / 1024.0 if m else None
    except OSError:
        return None


def _rss_mb() -> float:
    rss = _status_mb("VmRSS")
    if rss is not None:
        return rss
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _can_reset_hwm() -> bool:
    """Linux lets a process reset its RSS high-water mark (``echo 5 > clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return _status_mb("VmHWM") is not None
    except OSError:
        return False


class PeakRSS:
    """Peak RSS (MB) of this process while the block runs.

    On Linux the kernel's high-water mark ``VmHWM`` is reset at entry, so the
    peak is exact; elsewhere a thread samples RSS every 5 ms (psutil).
    """

    _exact = _can_reset_hwm()

    def __enter__(self) -> PeakRSS:
        self.start = _rss_mb()
        self.peak = self.start
        if self._exact:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")
        else:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc: Any) -> None:
        if self._exact:
            self.peak = max(self.start, _status_mb("VmHWM") or 0.0)
        else:
            self._stop.set()
            self._thread.join()
        self.peak = max(self.peak, _rss_mb())


# ----------------------------------------------------------------------- worker
class Worker:
    """Runs every stage of one market size and collects tidy records."""

    def __init__(self, n_tenders: int, *, seed: int, naive: str, naive_sample: int, verbose: bool,
                 profile: tuple[str, ...] = (), profile_dir: Path | None = None,
                 json_path: Path | None = None, detail: bool = True, part: str = "all", jobs: int = 1) -> None:
        self.n = n_tenders
        self.jobs = jobs  # screen(n_jobs=...)
        self.part = part  # "screen", "stages" or "all"
        self.json_path = json_path
        self.detail = detail
        self.profile = profile
        self.profile_dir = profile_dir
        self.profiles: list[dict[str, Any]] = []
        self.seed = seed
        self.naive = naive  # "full", "sample" or "off"
        self.naive_sample = naive_sample
        self.verbose = verbose
        self.n_bids = 0
        self.stages: list[dict[str, Any]] = []
        self.quality: list[dict[str, Any]] = []
        self.comparison: list[dict[str, Any]] = []
        self.checks: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}
        self.max_rss_mb = 0.0

    def log(self, msg: str) -> None:
        if self.verbose:
            print(f"[{size_label(self.n)}] {msg}", file=sys.stderr, flush=True)

    def stage(
        self,
        name: str,
        family: str,
        fn: Callable[[], Any],
        *,
        impl: str = "fast",
        repeat: bool | int = False,
        bids: int | None = None,
        sample_tenders: int | None = None,
        profile_reset: Callable[[], None] | None = None,
    ) -> Any:
        """Time ``fn`` under :class:`PeakRSS`; failures are recorded, not raised.

        ``repeat=True`` reruns stages under ``_REPEAT_BELOW_S`` (up to 5 runs, 1 s); an integer
        ``repeat`` runs the stage at least that many times. The minimum is kept.
        """
        gc.collect()
        self.log(f"{impl:5s} {name} ...")
        status, result = "ok", None
        times: list[float] = []
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            try:
                result = fn()
            except Exception as err:  # a stage that is not there yet must not stop the others
                status = f"error: {type(err).__name__}: {err}"[:500]
                self.log(traceback.format_exc())
            times.append(time.perf_counter() - t0)
        min_runs = 1 if isinstance(repeat, bool) else int(repeat)
        if status == "ok" and repeat:
            while len(times) < min_runs or (len(times) < 5 and sum(times) < 1.0 and min(times) < _REPEAT_BELOW_S):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
        seconds = min(times)
        nb = self.n_bids if bids is None else bids
        self.max_rss_mb = max(self.max_rss_mb, mem.peak)
        self.stages.append(
            {
                "size": self.n,
                "n_tenders": self.n,
                "n_bids": self.n_bids,
                "stage": name,
                "family": family,
                "impl": impl,
                "seconds": seconds if status == "ok" else float("nan"),
                "ns_per_bid": seconds / nb * 1e9 if status == "ok" and nb else float("nan"),
                "peak_rss_mb": round(mem.peak, 1),
                "rss_start_mb": round(mem.start, 1),
                "peak_delta_mb": round(mem.peak - mem.start, 1),
                "repeats": len(times),
                "sample_tenders": sample_tenders if sample_tenders is not None else self.n,
                "sample_bids": nb,
                "extrapolated": False,
                "status": status,
            }
        )
        self.log(f"{impl:5s} {name}: {seconds:.3f} s, peak {mem.peak:.0f} MB ({status})")
        self.save()
        if status == "ok" and impl == "fast" and name in self.profile:
            self._profile(name, fn, before=profile_reset)
        return result

    def _profile(self, name: str, fn: Callable[[], Any], *, before: Callable[[], None] | None = None) -> None:
        """Run ``fn`` again under cProfile (after the timed run) and keep the top functions."""
        import cProfile
        import io
        import pstats

        if before is not None:
            before()
        gc.collect()
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.runcall(fn)
        total = time.perf_counter() - t0
        st = pstats.Stats(prof)
        rows = []
        for (file, line, func), (cc, nc, tt, ct, _) in st.stats.items():  # type: ignore[attr-defined]
            rows.append({"function": f"{Path(file).name}:{line}({func})", "file": file, "calls": nc,
                         "tottime": tt, "cumtime": ct})
        frame = pd.DataFrame(rows)
        profiled = float(frame["tottime"].sum()) or total
        for key, col in (("cumulative", "cumtime"), ("own", "tottime")):
            top = frame.sort_values(col, ascending=False).head(25)
            for rec in top.to_dict("records"):
                self.profiles.append({"size": self.n, "stage": name, "by": key, "function": rec["function"],
                                      "calls": int(rec["calls"]), "seconds": float(rec[col]),
                                      "share": float(rec[col]) / profiled})
        if self.profile_dir is not None:
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(40)
            (self.profile_dir / f"profile_{size_label(self.n)}_{name.replace(':', '_')}.txt").write_text(
                f"profiled run: {total:.2f} s\n" + buf.getvalue(), encoding="utf-8")

    def seconds(self, name: str, impl: str = "fast") -> float:
        for rec in self.stages:
            if rec["stage"] == name and rec["impl"] == impl:
                return rec["seconds"]
        return float("nan")

    # ------------------------------------------------------------------- run
    def run(self) -> dict[str, Any]:
        from collusion import Market
        from collusion.datasets import generate_frames

        # make_market = generate_frames (unvalidated canonical frames) + Market.from_frames:
        # the two halves are timed as two stages.
        gen = self.stage("generate", "data", lambda: generate_frames(self.n, seed=self.seed), bids=1)
        if gen is None:
            return self.output()
        frames, truth = gen
        self.n_bids = len(frames["bids"])
        self.stages[-1].update(n_bids=self.n_bids, sample_bids=self.n_bids,
                               ns_per_bid=self.stages[-1]["seconds"] / max(self.n_bids, 1) * 1e9)
        market = self.stage("validate", "data", lambda: Market.from_frames(**frames))
        del frames, gen
        if market is None:
            return self.output()
        self.extra["git_commit"] = machine_info().get("git_commit")
        self.extra["screen_n_jobs"] = self.jobs
        self.extra["tables"] = {name: len(t) for name, t in market.items()}
        self.extra["entities"] = {k: int(len(v)) for k, v in market.entities.items()}

        tc = market.codes("bids", "tender_id")
        bc = market.codes("bids", "bidder_id")
        prices = market.bids["price"].to_numpy(dtype=np.float64)
        winner = market.bids["is_winner"].to_numpy(dtype=bool)
        nt, nc = market.n("tender"), market.n("company")

        # The memory-bandwidth floor: one pass reading the two bid columns.
        # It and the price screens are the two sides of a target ratio: both the minimum of at least
        # 3 runs at every size (a single 1 s run of the screens at 1M drifted between 67 and 153 ns per bid).
        self.stage("read_columns", "floor", lambda: float(prices.sum()) + float(tc.sum()), repeat=3)

        self.extra["detectors"] = [d.name for d in _detectors()]
        if self.part in ("all", "screen"):
            self._screen_part(market, truth)
            if self.part == "screen":
                return self.output()
        del truth

        # Stage by stage on a fresh graph.
        from collusion.graph import build_graph

        G = self.stage("graph", "graph", lambda: build_graph(market))
        fast = self._features(G, tc, bc, prices, winner, nt, nc)
        if G is not None and self.naive != "off":
            fast["graph"] = G  # the naive graph is checked against it edge for edge
            # graph_edges: the library's finished edge lists, added to networkx one by one
            fast["edges"] = {}
            for key in G.edge_types:
                e = G.edges(key)
                fast["edges"][key] = (e["src"].to_numpy(), e["dst"].to_numpy())
        if G is not None and self.detail:
            self._detectors(G)
        del G
        gc.collect()

        if self.naive != "off":
            self._naive(market, tc, bc, prices, winner, nt, nc, fast)
        fast.clear()
        return self.output()

    def _screen_part(self, market: Any, truth: Any) -> None:
        """The whole seven-analysis screen and its quality against the truth."""
        t_start: list[float] = []
        trail: list[dict[str, Any]] = []
        self.extra["screen_progress"] = trail

        def progress(name: str) -> None:
            # screen() calls this before each analysis: a worker stopped for
            # time or memory still tells how far the screen got, when, at what RSS.
            if not t_start:
                t_start.append(time.perf_counter())
            trail.append({"stage": name, "at_s": time.perf_counter() - t_start[0], "rss_mb": _rss_mb()})
            self.save()

        screening = self.stage(
            "screen", "screen", lambda: _screen(market, _detectors(), progress, n_jobs=self.jobs),
            # screen() caches the graph on the market: drop it so a profiled rerun builds it again
            profile_reset=lambda: market.__dict__.pop("_graph_cache", None))
        if screening is not None:
            self.extra["screen_timings"] = {k: float(v) for k, v in screening.timings.items()}
            # the risk index is only ever run inside screen; detectors too above --detail-max
            self._from_screen(screening.timings, detectors=not self.detail)
            self.extra["findings"] = screening.results.groupby(["detector", "unit"]).agg(
                units=("score", "size"), flagged=("flagged", "sum")).reset_index().to_dict("records")
            quality = self.stage("evaluate", "screen", lambda: _evaluate(screening, truth))
            if quality is not None:
                for rec in quality.to_dict("records"):
                    self.quality.append({"size": self.n, "n_bids": self.n_bids, **rec})
            del screening
        gc.collect()

    def _features(self, G: Any, tc: np.ndarray, bc: np.ndarray, prices: np.ndarray, winner: np.ndarray,
                  nt: int, nc: int) -> dict[str, Any]:
        from collusion.features import price_regularity, price_screens, subset_screens
        from collusion.features._cobidding import bid_incidence, cobid_pairs, cobidding_communities

        out: dict[str, Any] = {}
        out["screens"] = self.stage(
            "screens", "screens", lambda: price_screens(tc, prices, n_tenders=nt, assume_sorted=True), repeat=3)
        # The same screens from rows in random order: the library sorts them itself.
        perm = np.random.default_rng(self.seed).permutation(tc.size)
        tcp, pp = tc[perm], prices[perm]
        self.stage("screens_unsorted", "screens", lambda: price_screens(tcp, pp, n_tenders=nt), repeat=True)
        del perm, tcp, pp
        self.stage("subset_screens", "screens",
                   lambda: subset_screens(tc, prices, n_tenders=nt, assume_sorted=True), repeat=True)
        self.stage("price_regularity", "screens",
                   lambda: price_regularity(tc, prices, n_tenders=nt, assume_sorted=True), repeat=True)

        def pairs() -> pd.DataFrame:
            B = bid_incidence(tc, bc, n_tenders=nt, n_companies=nc)
            W = bid_incidence(tc, bc, n_tenders=nt, n_companies=nc, mask=winner)
            return cobid_pairs(B, W)

        out["pairs"] = self.stage("cobid_pairs", "cobidding", pairs, repeat=True)
        if G is not None:
            self.stage("metapath", "cobidding", lambda: G.metapath("company", "tender", "company"), repeat=True)
            out["projection"] = self.stage(
                "cobid_network", "cobidding", lambda: G.projection("company", via="tender", backend="igraph"),
                repeat=True)
        p = out["pairs"]
        if p is not None:
            a, b, w = (p[c].to_numpy() for c in ("company_a", "company_b", "jaccard"))
            out["membership"] = self.stage(
                "communities", "communities", lambda: cobidding_communities(a, b, w, nc, seed=self.seed),
                repeat=True)
        return out

    def _detectors(self, G: Any) -> None:
        for det in _detectors():
            self.stage(f"detector:{det.name}", "detector", lambda det=det: det.fit(G))

    def _from_screen(self, timings: dict[str, float], *, detectors: bool) -> None:
        """Stage seconds as ``screen`` measured them (no separate peak memory)."""
        for name, sec in timings.items():
            if name == "risk_index":
                stage, family = "risk_index", "screen"
            elif name in ("graph", "total") or not detectors:
                continue
            else:
                stage, family = f"detector:{name}", "detector"
            self.stages.append({
                "size": self.n, "n_tenders": self.n, "n_bids": self.n_bids, "stage": stage, "family": family,
                "impl": "fast", "seconds": float(sec), "ns_per_bid": float(sec) / max(self.n_bids, 1) * 1e9,
                "peak_rss_mb": float("nan"), "rss_start_mb": float("nan"), "peak_delta_mb": float("nan"),
                "repeats": 1, "sample_tenders": self.n, "sample_bids": self.n_bids, "extrapolated": False,
                "status": "ok",
            })

    # ----------------------------------------------------------------- naive
    def _naive(self, market: Any, tc: np.ndarray, bc: np.ndarray, prices: np.ndarray, winner: np.ndarray,
               nt: int, nc: int, fast: dict[str, Any]) -> None:
        import naive as nv

        from collusion.features import price_screens
        from collusion.features._cobidding import bid_incidence, cobid_pairs, cobidding_communities

        sampled = self.naive == "sample" and self.naive_sample < nt
        if sampled:
            # A sub-market: the first tenders in code order with all their bids;
            # the library recomputes its numbers on the same bids for the checks.
            keep = tc < self.naive_sample
            tc_s, bc_s, p_s, w_s = tc[keep], bc[keep], prices[keep], winner[keep]
            nt_s = self.naive_sample
            f_screens = price_screens(tc_s, p_s, n_tenders=nt_s, assume_sorted=True)
            B = bid_incidence(tc_s, bc_s, n_tenders=nt_s, n_companies=nc)
            W = bid_incidence(tc_s, bc_s, n_tenders=nt_s, n_companies=nc, mask=w_s)
            f_pairs = cobid_pairs(B, W)
        else:
            tc_s, bc_s, p_s, w_s, nt_s = tc, bc, prices, winner, nt
            f_screens, f_pairs = fast.get("screens"), fast.get("pairs")
        nb_s = int(tc_s.size)
        kw = dict(impl="naive", bids=nb_s, sample_tenders=nt_s)
        checks: dict[str, Any] = {}

        n_screens = self.stage("screens", "screens", lambda: nv.naive_price_screens(tc_s, p_s), **kw)
        if n_screens is not None and f_screens is not None:
            checks["screens"] = nv.compare_screens(n_screens, f_screens)
        del n_screens

        counts = self.stage("cobid_pairs", "cobidding", lambda: nv.naive_cobid_pairs(tc_s, bc_s, w_s), **kw)
        if counts is not None and f_pairs is not None:
            checks["cobid_pairs"] = nv.compare_pair_frames(counts, f_pairs)

        G = fast.pop("graph", None)
        if G is not None:
            if sampled:
                # A typed graph needs whole tables (parties, contracts, payments of
                # the same tenders): a whole generated market of the sample's size.
                from collusion.datasets import make_market
                from collusion.graph import build_graph

                sub, _ = make_market(nt_s, seed=self.seed)
                G, tables, entities, nb_g = build_graph(sub), nv.plain_tables(sub), sub.entities, len(sub.bids)
            else:
                tables, entities, nb_g = nv.plain_tables(market), market.entities, nb_s
            typed = self.stage("graph", "graph", lambda: nv.naive_typed_graph(tables, entities), impl="naive",
                               bids=nb_g, sample_tenders=nt_s)
            if typed is not None:
                checks["graph"] = nv.compare_graphs(typed, G)
            del typed, tables, G
            gc.collect()
        edges = fast.pop("edges", None)
        if edges is not None:
            if sampled:  # the same share of every edge type as of the bids
                frac = nb_s / self.n_bids
                edges = {k: (s[: int(round(len(s) * frac))], d[: int(round(len(d) * frac))])
                         for k, (s, d) in edges.items()}
            n_edges = sum(len(s) for s, _ in edges.values())
            typed = self.stage("graph_edges", "graph", lambda: nv.naive_edges_graph(edges), **kw)
            if typed is not None:
                checks["graph_edges"] = {"ok": typed.number_of_edges() == n_edges, "edges": typed.number_of_edges(),
                                         "library_edges": n_edges, "edge_types": len(edges)}
            del typed
        H = None
        if counts is not None:
            H = self.stage("cobid_network", "cobidding", lambda: nv.naive_cobid_network(counts), **kw)
            proj = fast.get("projection")
            if H is not None:
                check = {"ok": H.number_of_edges() == len(counts), "edges": H.number_of_edges()}
                if proj is not None and not sampled:
                    check["ok"] = check["ok"] and proj.ecount() == H.number_of_edges()
                    check["library_edges"] = proj.ecount()
                checks["cobid_network"] = check
        if H is not None:
            louvain = self.stage("communities", "communities", lambda: nv.naive_communities(H, seed=self.seed), **kw)
            membership = fast.get("membership")
            if sampled and f_pairs is not None:
                a, b, w = (f_pairs[c].to_numpy() for c in ("company_a", "company_b", "jaccard"))
                membership = cobidding_communities(a, b, w, nc, seed=self.seed)
            if louvain is not None and membership is not None:
                q_nx = nv.partition_modularity(H, louvain)
                q_lib = nv.membership_modularity(H, membership)
                n_lib = int(membership.max()) + 1 if membership.size else 0
                checks["communities"] = {
                    # Different algorithms (Leiden vs Louvain) find different partitions;
                    # the library must be at least as good by the modularity both optimise.
                    "ok": q_lib >= q_nx - 0.01,
                    "modularity_library_leiden": q_lib,
                    "modularity_networkx_louvain": q_nx,
                    "groups_library": n_lib,
                    "groups_networkx_2plus": sum(1 for c in louvain if len(c) >= 2),
                }
        self.checks = checks

        # Speed-up per stage: naive per-bid cost scaled to the whole market when sampled.
        e2e_fast = e2e_naive = 0.0
        for name in COMPARED_STAGES + EXTRA_NAIVE_STAGES:
            # graph_edges does part of the library's graph stage: compared with all of it
            f_s, n_s = self.seconds("graph" if name == "graph_edges" else name, "fast"), self.seconds(name, "naive")
            if sampled and np.isfinite(n_s):
                measured = next(r for r in self.stages if r["stage"] == name and r["impl"] == "naive")
                n_s = n_s / measured["sample_bids"] * self.n_bids
                self.stages.append(dict(measured, seconds=n_s, ns_per_bid=n_s / self.n_bids * 1e9,
                                        impl="naive_extrapolated", extrapolated=True, peak_rss_mb=float("nan"),
                                        rss_start_mb=float("nan"), peak_delta_mb=float("nan")))
            e2e_fast += f_s if name in E2E_STAGES["fast"] else 0.0
            e2e_naive += n_s if name in E2E_STAGES["naive"] else 0.0
            self._compare(name, f_s, n_s, sampled, nt_s, checks.get(name, {}))
        self._compare("end_to_end", e2e_fast, e2e_naive, sampled, nt_s,
                      {"ok": all(checks.get(s, {}).get("ok", False) for s in COMPARED_STAGES)})

    def _compare(self, name: str, f_s: float, n_s: float, sampled: bool, nt_s: int, check: dict) -> None:
        self.comparison.append(
            {
                "size": self.n,
                "n_bids": self.n_bids,
                "stage": name,
                "fast_s": f_s,
                "naive_s": n_s,
                "speedup": n_s / f_s if f_s > 0 else float("nan"),
                "fast_ns_per_bid": f_s / self.n_bids * 1e9,
                "naive_ns_per_bid": n_s / self.n_bids * 1e9,
                "naive_extrapolated": sampled,
                "sample_tenders": nt_s,
                "agree": bool(check.get("ok", False)),
                "check": json.dumps({k: v for k, v in check.items() if k != "ok"}, default=float),
            }
        )

    def save(self) -> None:
        """Write what was measured so far (a killed worker keeps its finished stages)."""
        if self.json_path is not None:
            tmp = self.json_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.output(), default=_json_default), encoding="utf-8")
            tmp.replace(self.json_path)

    def output(self) -> dict[str, Any]:
        return {
            "size": self.n,
            "n_bids": self.n_bids,
            "seed": self.seed,
            "stages": self.stages,
            "quality": self.quality,
            "comparison": self.comparison,
            "checks": self.checks,
            "extra": self.extra,
            "profiles": self.profiles,
            "max_rss_mb": self.max_rss_mb,
        }


def _detectors() -> list[Any]:
    """The seven default analyses; while some are missing, those that exist."""
    from collusion._screen import default_detectors

    try:
        return default_detectors()
    except AttributeError:
        import collusion.detectors as d

        classes = [getattr(d, name) for name in d.__all__]
        return [c() for c in classes
                if isinstance(c, type) and issubclass(c, d.BaseDetector) and c is not d.BaseDetector]


def _screen(market: Any, detectors: list[Any], progress: Callable[[str], None] | None = None, *,
            n_jobs: int = 1) -> Any:
    from collusion._screen import screen

    return screen(market, detectors=detectors, progress=progress, n_jobs=n_jobs)


def _evaluate(screening: Any, truth: Any) -> pd.DataFrame:
    from collusion.datasets._evaluate import evaluate

    return evaluate(screening, truth)


# ----------------------------------------------------------------------- parent
def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # pragma: no cover
        pass
    try:
        cpu = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        m = re.search(r"model name\s*:\s*(.+)", cpu)
        info["cpu"] = m.group(1).strip() if m else platform.processor()
    except OSError:  # pragma: no cover
        info["cpu"] = platform.processor()
    try:
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        info["git_commit"] = None
    return info


def _previous_runs(path: Path, *, exclude: list[int]) -> list[dict[str, Any]]:
    """Per-size run records rebuilt from an earlier ``results.json`` (for ``--keep``)."""
    if not path.exists():
        return []
    old = json.loads(path.read_text(encoding="utf-8"))
    runs = []
    for run in old.get("runs", []):
        n = int(run["size"])
        if n in exclude:
            continue
        rec = dict(run)
        for key in ("stages", "quality", "comparison"):
            rec[key] = [r for r in old.get(key, []) if int(r["size"]) == n]
        rec["profiles"] = []
        runs.append(rec)
    return runs


def _tree_rss_gb(pid: int) -> float:
    """Resident memory of a process and its children (GB)."""
    try:
        import psutil

        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs) / 2**30
    except Exception:  # psutil missing or the process just ended
        return 0.0


def _supervise(cmd: list[str], *, timeout: float, max_rss_gb: float) -> str:
    """Run a worker; stop it (by its own pid) past ``timeout`` seconds or ``max_rss_gb`` of RSS.

    The memory guard keeps a too-large size from starving a shared machine; the
    worker writes its JSON after every stage, so what it measured is kept.
    """
    proc = subprocess.Popen(cmd)
    t0 = time.perf_counter()
    peak = 0.0
    while True:
        try:
            rc = proc.wait(timeout=0.5)
            return "ok" if rc == 0 else f"worker exited with {rc}"
        except subprocess.TimeoutExpired:
            pass
        peak = max(peak, _tree_rss_gb(proc.pid))
        reason = None
        if time.perf_counter() - t0 > timeout:
            reason = f"timeout after {timeout:.0f} s"
        elif peak > max_rss_gb:
            reason = f"stopped: RSS {peak:.1f} GB above --max-rss-gb {max_rss_gb}"
        if reason:
            proc.kill()
            proc.wait()
            return reason


def _run_part(n: int, part: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    naive = "off" if args.no_naive else ("full" if n <= args.naive_max else "sample")
    path = out / f"worker_{size_label(n)}_{part}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(n), "--part", part, "--seed",
           str(args.seed), "--naive-mode", naive, "--naive-sample", str(args.naive_sample), "--json", str(path),
           "--profile", args.profile, "--detail-max", str(args.detail_max), "--jobs", str(args.jobs)]
    if args.quiet:
        cmd.append("--quiet")
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    t0 = time.perf_counter()
    status = _supervise(cmd, timeout=args.timeout, max_rss_gb=args.max_rss_gb)
    wall = time.perf_counter() - t0
    if path.exists():
        res = json.loads(path.read_text(encoding="utf-8"))
        path.unlink()
    else:
        res = {"size": n, "stages": [], "quality": [], "comparison": [], "checks": {}, "extra": {}}
    res["status"] = status
    res["wall_s"] = wall
    # other work on the machine slows every stage: keep the load next to the figures
    res["loadavg_before"] = load_before
    res["loadavg_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    return res


def run_size(n: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One size in two fresh subprocesses, each with a clean memory high-water mark.

    The stage-by-stage part (graph, features, detectors, naive references) runs
    first; the whole ``screen`` runs in its own process so that its peak memory
    is the screen's and nothing else's, and so that a size too large for the
    machine still reports its other stages.
    """
    stages = _run_part(n, "stages", args, out)
    screen = _run_part(n, "screen", args, out)
    seen = {(r["stage"], r["impl"]) for r in stages["stages"]}
    merged = dict(stages)
    # generation, validation and the floor ran in both processes: keep the first
    merged["stages"] = stages["stages"] + [r for r in screen["stages"] if (r["stage"], r["impl"]) not in seen]
    merged["quality"] = screen["quality"]
    merged["extra"] = {**stages.get("extra", {}), **screen.get("extra", {})}
    merged["profiles"] = stages.get("profiles", []) + screen.get("profiles", [])
    merged["n_bids"] = stages.get("n_bids") or screen.get("n_bids", 0)
    merged["max_rss_mb"] = max(stages.get("max_rss_mb", 0.0), screen.get("max_rss_mb", 0.0))
    merged["status"] = ("ok" if stages["status"] == screen["status"] == "ok"
                        else f"stages: {stages['status']}; screen: {screen['status']}")
    merged["wall_s"] = stages["wall_s"] + screen["wall_s"]
    merged["loadavg_before"] = stages["loadavg_before"]
    merged["loadavg_after"] = screen["loadavg_after"]
    return merged


def rebase_extrapolation(comparison: pd.DataFrame) -> pd.DataFrame:
    """Extrapolate naive costs from the largest size where the naive code ran on the whole market.

    A sub-market of the first tenders of a large market is not a small market:
    its co-bidding network is sparse and oddly shaped, so the sample's per-bid
    cost can be far off. The per-bid cost measured on a whole smaller market
    scaled linearly to the large one is a lower bound for code that grows at
    least linearly (dict loops, Louvain), so the speed-up it gives is
    conservative. The sample-based figure is kept in ``naive_s_sample``.
    """
    out = comparison.copy()
    if "naive_s_sample" not in out.columns:  # idempotent: tables rewritten from results.json keep the sample
        out["naive_s_sample"] = np.where(out["naive_extrapolated"].astype(bool), out["naive_s"], np.nan)
        out["naive_basis"] = np.where(out["naive_extrapolated"].astype(bool), "sample", "measured")
    else:
        sample = out["naive_extrapolated"].astype(bool) & out["naive_s_sample"].notna()
        out.loc[sample, "naive_s"] = out.loc[sample, "naive_s_sample"]
        out.loc[sample, "naive_basis"] = "sample"
    full = out[~out["naive_extrapolated"].astype(bool)]
    for size in out.loc[out["naive_extrapolated"].astype(bool), "size"].unique():
        ref = full[full["size"] < size]
        if ref.empty:
            continue
        ref_size = int(ref["size"].max())
        ref = ref[ref["size"] == ref_size].set_index("stage")
        rows = (out["size"] == size) & (out["stage"] != "end_to_end")
        compared = rows & out["stage"].isin(E2E_STAGES["naive"])
        for i in out.index[rows]:
            stage = out.at[i, "stage"]
            if stage not in ref.index:
                continue
            out.at[i, "naive_s"] = ref.at[stage, "naive_ns_per_bid"] * out.at[i, "n_bids"] / 1e9
            out.at[i, "naive_basis"] = f"per bid at {size_label(ref_size)}"
        e2e = (out["size"] == size) & (out["stage"] == "end_to_end")
        out.loc[e2e, "naive_s"] = out.loc[compared, "naive_s"].sum()
        out.loc[e2e, "naive_basis"] = f"per bid at {size_label(ref_size)}"
    out["naive_ns_per_bid"] = out["naive_s"] / out["n_bids"] * 1e9
    out["speedup"] = out["naive_s"] / out["fast_s"]
    return out


def scaling_table(stages: pd.DataFrame) -> pd.DataFrame:
    """Log–log slope of seconds against bids per (stage, impl): 1 = linear."""
    rows = []
    ok = stages[(stages["status"] == "ok") & (stages["seconds"] > 0) & ~stages["extrapolated"]]
    for (stage, impl), part in ok.groupby(["stage", "impl"], sort=False):
        part = part[part["sample_bids"] == part["n_bids"]].sort_values("n_bids")
        if part["n_bids"].nunique() < 2:
            continue
        x, y = np.log10(part["n_bids"].to_numpy(float)), np.log10(part["seconds"].to_numpy(float))
        slope = float(np.polyfit(x, y, 1)[0])
        # the slope between the two largest sizes says most about large markets
        top = float((y[-1] - y[-2]) / (x[-1] - x[-2]))
        rows.append({"stage": stage, "impl": impl, "sizes": len(part), "slope": slope, "slope_top": top,
                     "seconds_largest": float(part["seconds"].iloc[-1]), "bids_largest": int(part["n_bids"].iloc[-1])})
    return pd.DataFrame(rows, columns=["stage", "impl", "sizes", "slope", "slope_top", "seconds_largest",
                                       "bids_largest"])


def plot_scaling(stages: pd.DataFrame, slopes: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    show = ["read_columns", "generate", "validate", "graph", "screens", "subset_screens", "cobid_pairs",
            "communities", "screen"]
    ok = stages[(stages["status"] == "ok") & (stages["seconds"] > 0) & (stages["sample_bids"] == stages["n_bids"])]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, impl_set, title in ((axes[0], ("fast",), "library stages"),
                                (axes[1], ("fast", "naive"), "library vs naive (compared stages)")):
        names = show if impl_set == ("fast",) else list(COMPARED_STAGES)
        for k, name in enumerate(names):
            color = f"C{k % 10}"  # one colour per stage: library solid, naive dashed
            for impl in impl_set:
                part = ok[(ok["stage"] == name) & (ok["impl"] == impl)].sort_values("n_bids")
                if part.empty:
                    continue
                s = slopes[(slopes["stage"] == name) & (slopes["impl"] == impl)]
                label = f"{name}" + (f" [{impl}]" if len(impl_set) > 1 else "")
                if len(s):
                    label += f" (slope {s['slope'].iloc[0]:.2f})"
                ax.plot(part["n_bids"], part["seconds"], marker="o", ls="-" if impl == "fast" else "--", label=label,
                        color=color)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("bids")
        ax.set_ylabel("seconds")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(x: Any, digits: int = 3) -> str:
    if isinstance(x, (float, np.floating)):
        if not np.isfinite(x):
            return "–"
        if abs(x) >= 100:
            return f"{x:,.0f}"
        return f"{x:.{digits}g}"
    return str(x)


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table (no tabulate dependency)."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines)


def targets(stages: pd.DataFrame, comparison: pd.DataFrame, slopes: pd.DataFrame,
            analyses: dict[int, int] | None = None, runs: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """The benchmark targets, met or missed, with the numbers.

    ``analyses`` maps size → number of analyses the screen ran (the target is
    about all seven).
    """
    analyses = analyses or {}
    # sizes >= 1M whose screen was stopped (time or memory guard): (size, status, progress trail)
    stopped = [(int(r["size"]), str(r.get("status")), (r.get("extra") or {}).get("screen_progress") or [])
               for r in (runs or []) if int(r["size"]) >= 1_000_000 and "screen: " in str(r.get("status"))
               and "screen: ok" not in str(r.get("status"))]
    rows = []
    ok = stages[(stages["status"] == "ok") & (stages["impl"] == "fast")]
    scr = ok[ok["stage"] == "screen"].sort_values("n_tenders")
    big = scr[scr["n_tenders"] >= 1_000_000]
    if len(big):
        r = big.iloc[0]
        k = analyses.get(int(r["size"]), 7)
        rows.append(("screen of 1M tenders < 60 s", f"{r['seconds']:.1f} s ({int(r['n_bids']):,} bids, "
                     f"{k} of 7 analyses)", bool(r["seconds"] < 60) if k == 7 else "not all analyses"))
        rows.append(("peak memory of that screen < 8 GB", f"{r['peak_rss_mb'] / 1024:.2f} GB", r["peak_rss_mb"] < 8192))
    elif stopped:
        n, status, trail = stopped[-1]
        last = trail[-1] if trail else {}
        where = (f"; it had reached {last['stage']} after {last['at_s']:.0f} s, at {last['rss_mb'] / 1024:.1f} GB RSS"
                 if last else "")
        rows.append((f"screen of {size_label(n)} tenders < 60 s", f"did not finish: {status}{where}", "missed"))
        rows.append(("peak memory of that screen < 8 GB", f"> {status.split('RSS ')[-1].split(' ')[0]} GB"
                     if "RSS" in status else "unknown", "missed" if "RSS" in status else "not run"))
    elif len(scr):
        r = scr.iloc[-1]
        rows.append(("screen of 1M tenders < 60 s", f"not run (largest: {size_label(int(r['n_tenders']))}, "
                     f"{r['seconds']:.1f} s)", "not run"))
    s = slopes[(slopes["stage"] == "screen") & (slopes["impl"] == "fast")]
    if len(s):
        rows.append(("screen cost linear in bids (log–log slope ≤ 1.15)",
                     f"slope {s['slope'].iloc[0]:.2f} overall, {s['slope_top'].iloc[0]:.2f} between the two "
                     "largest sizes", bool(s["slope_top"].iloc[0] <= 1.15)))
    both = ok[ok["stage"].isin(["screens", "read_columns"])].groupby("n_tenders")["stage"].nunique()
    if (both == 2).any():
        n_max = both[both == 2].index.max()
        at = ok[ok["n_tenders"] == n_max].drop_duplicates("stage").set_index("stage")
        if "screens" in at.index and "read_columns" in at.index:
            ratio = at.loc["screens", "ns_per_bid"] / at.loc["read_columns", "ns_per_bid"]
            rows.append(("price screens within 100× of one read of the bid columns",
                         f"{at.loc['screens', 'ns_per_bid']:.1f} ns/bid vs {at.loc['read_columns', 'ns_per_bid']:.2f}"
                         f" ns/bid = {ratio:.0f}× (at {size_label(int(n_max))})", bool(ratio <= 100)))
    e2e = comparison[comparison["stage"] == "end_to_end"].sort_values("size")
    if len(e2e):
        # Judged where both sides ran on the whole market; larger sizes, where the naive cost is
        # only extrapolated, are shown beside it.
        measured = e2e[e2e["naive_basis"] == "measured"]
        r = measured.iloc[-1] if len(measured) else e2e.iloc[-1]
        how = r["naive_basis"] if r["naive_basis"] == "measured" else f"naive extrapolated from its {r['naive_basis']}"
        text = f"{r['speedup']:.0f}× at {size_label(int(r['size']))} ({how}; agree: {r['agree']})"
        for _, x in e2e[e2e["size"] > r["size"]].iterrows():
            text += f"; {x['speedup']:.0f}× at {size_label(int(x['size']))} with the naive cost extrapolated from its {x['naive_basis']}"
            if "naive_s_sample" in x and np.isfinite(x["naive_s_sample"]):
                text += f" ({x['naive_s_sample'] / x['fast_s']:.0f}× from the naive run on a sample of that market)"
        rows.append(("≥ 100× faster than the naive reference end to end", text, bool(r["speedup"] >= 100)))
    frame = pd.DataFrame(rows, columns=["target", "measured", "met"])
    frame["met"] = [m if isinstance(m, str) else ("met" if m else "missed") for m in frame["met"]]
    return frame


def write_outputs(results: list[dict[str, Any]], out: Path, info: dict[str, Any], args: argparse.Namespace) -> dict:
    stages = pd.DataFrame([r for res in results for r in res["stages"]], columns=list(STAGE_COLUMNS))
    quality = pd.DataFrame([r for res in results for r in res["quality"]])
    comparison = pd.DataFrame([r for res in results for r in res["comparison"]])
    comparison = comparison.reindex(columns=list(COMPARISON_COLUMNS) + [
        c for c in ("naive_s_sample", "naive_basis") if c in comparison.columns])
    stages["extrapolated"] = stages["extrapolated"].astype(bool)
    comparison = rebase_extrapolation(comparison)
    slopes = scaling_table(stages)
    analyses = {int(r["size"]): len((r.get("extra") or {}).get("detectors", [])) for r in results}
    tgt = targets(stages, comparison, slopes, analyses, results)
    stages.to_csv(out / "stages.csv", index=False)
    quality.to_csv(out / "quality.csv", index=False)
    comparison.to_csv(out / "comparison.csv", index=False)
    slopes.to_csv(out / "scaling.csv", index=False)
    profiles = pd.DataFrame([r for res in results for r in res.get("profiles", [])])
    if len(profiles):
        profiles.to_csv(out / "profile.csv", index=False)
    summary = {
        "machine": info,
        "arguments": {k: v for k, v in vars(args).items() if k not in ("worker", "json")},
        "runs": [{k: res.get(k) for k in ("size", "n_bids", "status", "wall_s", "max_rss_mb", "loadavg_before",
                                                   "loadavg_after", "checks", "extra")}
                 for res in results],
        "stages": stages.to_dict("records"),
        "quality": quality.to_dict("records"),
        "comparison": comparison.to_dict("records"),
        "scaling": slopes.to_dict("records"),
        "targets": tgt.to_dict("records"),
    }
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=_json_default), encoding="utf-8")
    try:
        plot_scaling(stages, slopes, out / "scaling.png")
    except Exception as err:  # the tables matter more than the picture
        print(f"plot failed: {err}", file=sys.stderr)
    (out / "tables.md").write_text(tables_markdown(stages, quality, comparison, slopes, tgt, info, results),
                                   encoding="utf-8")
    return summary


def _json_default(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return str(v)


def _load(r: dict[str, Any]) -> str:
    before, after = r.get("loadavg_before"), r.get("loadavg_after")
    if not before or not after:
        return "unknown"
    return f"{before[0]:.1f} before, {after[0]:.1f} after"


def tables_markdown(stages: pd.DataFrame, quality: pd.DataFrame, comparison: pd.DataFrame, slopes: pd.DataFrame,
                    tgt: pd.DataFrame, info: dict[str, Any], results: list[dict[str, Any]]) -> str:
    parts = [
        "# Benchmark results",
        "",
        f"Machine: {info.get('nproc')} cores ({info.get('cpu')}), {info.get('memory_gb')} GB RAM, "
        f"Python {info.get('python')}, numpy {info.get('numpy')}, pandas {info.get('pandas')}, "
        f"tables written at commit {info.get('git_commit')}.",
        "",
        "Runs: " + ", ".join(
            f"{size_label(int(r['size']))} tenders / {r.get('n_bids', 0):,} bids"
            f"{' at ' + str((r.get('extra') or {}).get('git_commit')) if (r.get('extra') or {}).get('git_commit') else ''}"
            f": {r['status']} "
            f"({r.get('wall_s', 0):.0f} s wall, load average {_load(r)})" for r in results),
        "",
        "## Targets",
        "",
        markdown(tgt) if len(tgt) else "(no target measurable)",
        "",
    ]
    fast = stages[stages["impl"] == "fast"]
    if len(fast):
        sec = fast.pivot_table(index="stage", columns="size", values="seconds", sort=False)
        nspb = fast.pivot_table(index="stage", columns="size", values="ns_per_bid", sort=False)
        mem = fast.pivot_table(index="stage", columns="size", values="peak_rss_mb", sort=False)
        tab = pd.DataFrame(index=sec.index)
        tab.insert(0, "family", fast.drop_duplicates("stage").set_index("stage")["family"])
        for size in sec.columns:
            lab = size_label(int(size))
            tab[f"s @{lab}"] = sec[size]
            tab[f"ns/bid @{lab}"] = nspb[size]
            tab[f"peak MB @{lab}"] = mem[size]
        sl = slopes[slopes["impl"] == "fast"].set_index("stage")
        tab["slope"] = sl["slope"].reindex(tab.index)
        parts += ["## Library stages (seconds, ns per bid, peak RSS of the process during the stage)", "",
                  markdown(tab.reset_index()), ""]
        errors = stages[stages["status"] != "ok"]
        if len(errors):
            parts += ["Stages that failed:", "", markdown(errors[["size", "stage", "impl", "status"]]), ""]
    if len(comparison):
        cmp = comparison[["size", "stage", "fast_s", "naive_s", "speedup", "fast_ns_per_bid", "naive_ns_per_bid",
                          "naive_basis", "naive_s_sample", "agree"]].copy()
        cmp["size"] = cmp["size"].map(lambda n: size_label(int(n)))
        parts += ["## Library vs naive reference", "",
                  "Naive (`benchmarks/naive.py`), stage by stage: `screens` = `groupby(\"tender\").apply` of a "
                  "function computing the ten screens of one tender; `cobid_pairs` = a Python loop over tenders "
                  "counting `itertools.combinations` of their bidders and each side's wins in dicts, then the "
                  "13 columns of `cobid_pairs(B, W)` on the frame of pairs; `graph` = the whole job of "
                  "`build_graph` from the market's tables (ids and text as plain strings): every trace, name and "
                  "address normalised by a plain Python function per row (`Series.map`), entity resolution with "
                  "dicts for n-gram blocking and one rapidfuzz `ratio` call per candidate pair, then a networkx "
                  "`MultiDiGraph` filled `add_edge` by `add_edge` from `itertuples`, checked edge for edge "
                  "(attributes and `same_as` links included) against the library's graph; `cobid_network` = a "
                  "networkx `Graph`, one `add_edge` per co-bidding pair with its Jaccard weight; `communities` = "
                  "networkx Louvain on it. Library: `price_screens`, `bid_incidence` + `cobid_pairs(B, W)`, "
                  "`build_graph`, the igraph projection of the typed graph, `cobidding_communities` (its own "
                  "network from the pair table, then NetworKit's Leiden). End to end = the same job on each side: "
                  "screens, cobid_pairs, graph and communities for the library; the same plus cobid_network "
                  "(the network Louvain runs on) for the naive code. The library's projection counts the pairs "
                  "again from the typed graph, a job the naive pipeline never does: it is compared beside end "
                  "to end. `graph_edges` (not in end to "
                  "end) only adds the library's finished, normalised and resolved edge lists to networkx one "
                  "`add_edge` at a time, against the library's whole `build_graph`. "
                  "`naive_basis`: `measured` on the whole market, or the per-bid cost measured on the whole "
                  "market of a smaller size scaled linearly (a lower bound for the naive code); `naive_s_sample`: "
                  "the naive code's per-bid cost on a sub-market of the first tenders of the large market (the "
                  "graph: on a whole generated market of that many tenders), scaled (it ran there to check "
                  "agreement).", "",
                  markdown(cmp), ""]
        checks = [(size_label(int(r["size"])), k, json.dumps(v, default=_json_default))
                  for r in results for k, v in (r.get("checks") or {}).items()]
        if checks:
            parts += ["Agreement checks:", "",
                      markdown(pd.DataFrame(checks, columns=["size", "stage", "check"])), ""]
    if len(quality):
        q = quality.copy()
        q["size"] = q["size"].map(lambda n: size_label(int(n)))
        cols = ["size", "detector", "unit", "scheme", "units", "positives", "found", "average_precision",
                "precision_at_k", "recall_flagged", "false_flag_rate"]
        parts += ["## Detection quality against the planted truth", "",
                  markdown(q[[c for c in cols if c in q.columns]]), ""]
    if len(slopes):
        parts += ["## Scaling (log–log slope of seconds against bids; 1 = linear)", "", markdown(slopes), ""]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10k,100k", help="market sizes in tenders, e.g. 10k,100k,1M")
    p.add_argument("--naive-max", type=parse_size, default=100_000,
                   help="run the naive references on the whole market up to this many tenders (default 100k)")
    p.add_argument("--naive-sample", type=parse_size, default=20_000,
                   help="above --naive-max, run them on this many tenders and extrapolate per bid (default 20k)")
    p.add_argument("--no-naive", action="store_true", help="skip the naive references")
    p.add_argument("--out", type=Path, default=HERE / "out", help="output folder (default benchmarks/out)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per market size (default 3600)")
    p.add_argument("--max-rss-gb", type=float, default=16.0,
                   help="stop a size whose worker's resident memory passes this (default 16 GB)")
    p.add_argument("--detail-max", type=parse_size, default=1_000_000,
                   help="above this many tenders, per-detector times come from the screen's own timings "
                        "instead of a second fit of each detector (default 1M: always fit separately)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--jobs", type=int, default=1, help="threads of the whole screen (screen's n_jobs, default 1)")
    p.add_argument("--keep", action="store_true",
                   help="keep the sizes already in <out>/results.json that --sizes does not re-run "
                        "(add 1M to an earlier 10k,100k run)")
    p.add_argument("--profile", default="",
                   help="comma-separated library stages (e.g. graph,screen) to rerun under cProfile after timing; "
                        "writes profile_<size>_<stage>.txt and profile.csv")
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    p.add_argument("--naive-mode", default="full", choices=("full", "sample", "off"), help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--part", default="all", choices=("all", "stages", "screen"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker is not None:
        if args.worker >= 10 * _WARMUP_TENDERS:
            # Pay imports and first-call costs (igraph alone takes seconds to
            # import) on a small market, so stage times measure the work.
            Worker(_WARMUP_TENDERS, seed=args.seed, naive="off" if args.naive_mode == "off" else "full",
                   naive_sample=args.naive_sample, verbose=False, part=args.part).run()
            # The warm-up screen finds no co-bidding group, so Leiden never runs and NetworKit (about
            # 1 s to import, it loads matplotlib) would be imported inside the timed screen.
            import networkit  # noqa: F401
            gc.collect()
        w = Worker(args.worker, seed=args.seed, naive=args.naive_mode, naive_sample=args.naive_sample,
                   verbose=not args.quiet, profile=tuple(x for x in args.profile.split(",") if x),
                   profile_dir=args.json.parent if args.json is not None else None, json_path=args.json,
                   detail=args.worker <= args.detail_max, part=args.part, jobs=args.jobs)
        try:
            res = w.run()
        finally:
            w.save()
        return 0 if all(s["status"] == "ok" for s in res["stages"]) else 1

    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    results = _previous_runs(out / "results.json", exclude=sizes) if args.keep else []
    if not sizes and results:  # --sizes "" --keep: only rewrite the tables
        write_outputs(results, out, info, args)
    for n in sizes:
        print(f"market of {size_label(n)} tenders ...", file=sys.stderr, flush=True)
        results.append(run_size(n, args, out))
        # write after every size so a later timeout keeps what was measured
        results.sort(key=lambda r: int(r["size"]))
        write_outputs(results, out, info, args)
    print((out / "tables.md").read_text(encoding="utf-8"))
    failed = [r["size"] for r in results if r["status"] != "ok"]
    bad_checks = [(r["size"], k) for r in results for k, v in (r.get("checks") or {}).items() if not v.get("ok")]
    if bad_checks:
        print(f"naive and library disagree: {bad_checks}", file=sys.stderr)
    return 1 if failed or bad_checks else 0


if __name__ == "__main__":
    sys.exit(main())
