"""The benchmark harness runs end to end on a tiny market, so it cannot rot.

No timing assertions: only that every stage runs, the outputs are written, and
the naive references agree with the library (screens to 1e-9, co-bid counts
exactly, the same typed graph, communities at least as modular).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_benchmark_runs_and_naive_agrees(tmp_path: Path) -> None:
    # One test (not a module fixture shared by several) so pytest-xdist runs the
    # subprocess once.
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--sizes", "500", "--out", str(tmp_path), "--quiet",
         "--timeout", "300"],
        capture_output=True, text=True, timeout=360,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]

    # outputs
    for name in ("stages.csv", "quality.csv", "comparison.csv", "scaling.csv", "results.json", "tables.md",
                 "scaling.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    summary = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert summary["machine"]["nproc"] >= 1
    assert [r["status"] for r in summary["runs"]] == ["ok"]
    assert "## Targets" in (tmp_path / "tables.md").read_text(encoding="utf-8")

    # every stage ran
    stages = pd.read_csv(tmp_path / "stages.csv")
    assert (stages["status"] == "ok").all(), stages.loc[stages["status"] != "ok", ["stage", "status"]]
    fast = set(stages.loc[stages["impl"] == "fast", "stage"])
    assert {"generate", "validate", "read_columns", "screen", "evaluate", "graph", "screens", "subset_screens",
            "cobid_pairs", "communities"} <= fast
    assert any(s.startswith("detector:") for s in fast)
    naive = set(stages.loc[stages["impl"] == "naive", "stage"])
    assert naive == {"screens", "cobid_pairs", "graph", "cobid_network", "communities"}
    assert (stages["seconds"] >= 0).all()
    measured = stages["stage"] != "risk_index"  # timed inside screen: no memory of its own
    assert (stages.loc[measured, "peak_rss_mb"] > 0).all()
    assert (stages["n_bids"] > 500).all()

    # naive and library agree
    comparison = pd.read_csv(tmp_path / "comparison.csv")
    assert set(comparison["stage"]) == {"screens", "cobid_pairs", "graph", "cobid_network", "communities",
                                        "end_to_end"}
    assert comparison["agree"].all(), comparison[["stage", "agree", "check"]]
    assert not comparison["naive_extrapolated"].any()
    checks = summary["runs"][0]["checks"]
    assert checks["screens"]["mismatches"] == 0 and checks["screens"]["tenders"] == 500
    assert checks["cobid_pairs"]["count_mismatches"] == 0 and checks["cobid_pairs"]["pairs"] > 0
    assert checks["graph"]["edges"] == checks["graph"]["library_edges"] > 0

    # quality is scored against the planted truth
    quality = pd.read_csv(tmp_path / "quality.csv")
    assert len(quality) > 0
    assert {"detector", "scheme", "average_precision", "precision_at_k", "recall_flagged"} <= set(quality.columns)
    assert quality["precision_at_k"].between(0, 1).all()


def test_naive_screens_match_library_on_degenerate_tenders() -> None:
    from collusion.features import price_screens

    naive = _load("naive")
    # one bid, two equal bids, all equal, equal losing bids, a regular tender
    codes = np.array([0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 4])
    prices = np.array([5.0, 7.0, 7.0, 3.0, 3.0, 3.0, 1.0, 2.0, 2.0, 10.0, 11.0, 13.0, 13.5, 20.0])
    check = naive.compare_screens(naive.naive_price_screens(codes, prices), price_screens(codes, prices))
    assert check["ok"], check
    assert check["nan_mismatches"] == 0


def test_size_parsing_and_scaling_fit() -> None:
    run = _load("run")
    assert [run.parse_size(s) for s in ("500", "10k", "1M", "2.5k")] == [500, 10_000, 1_000_000, 2_500]
    assert run.size_label(1_000_000) == "1M" and run.size_label(2_500) == "2500"
    bids = np.array([1e4, 1e5, 1e6])
    stages = pd.DataFrame({
        "stage": "screens", "impl": "fast", "status": "ok", "extrapolated": False,
        "n_bids": bids, "sample_bids": bids, "seconds": 2e-8 * bids ** 1.5,
    })
    slopes = run.scaling_table(stages)
    assert slopes["slope"].iloc[0] == pytest.approx(1.5)
    assert slopes["slope_top"].iloc[0] == pytest.approx(1.5)


def test_naive_doctests() -> None:
    import doctest

    result = doctest.testmod(_load("naive"))
    assert result.attempted >= 3 and result.failed == 0
