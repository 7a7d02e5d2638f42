"""The console command end to end in a subprocess, including bad input."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd


def _run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collusion", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_help_explains_tables() -> None:
    out = _run("--help")
    assert out.returncode == 0 and "tenders" in out.stdout and "bond_account" in out.stdout


def test_demo_prints_all_analyses_and_writes_results(tmp_path) -> None:
    out = _run("demo", "--tenders", "600", "--out", str(tmp_path / "res.parquet"), "--quiet")
    assert out.returncode == 0, out.stderr
    for k in range(1, 8):
        assert f"== Analysis {k}:" in out.stdout
    assert "average_precision" in out.stdout
    res = pd.read_parquet(tmp_path / "res.parquet")
    assert res["analysis"].nunique() == 7
    assert (tmp_path / "res.jsonl").exists() and (tmp_path / "res.risk.parquet").exists()


def test_screen_and_validate_a_folder(tmp_path) -> None:
    from collusion.datasets import make_market

    market, _ = make_market(400, seed=4)
    market.to_folder(tmp_path / "tables", format="csv")
    out = _run("validate", str(tmp_path / "tables"))
    assert out.returncode == 0, out.stderr
    assert "unusable" in out.stdout
    out = _run("screen", str(tmp_path / "tables"), "--out", str(tmp_path / "r.parquet"), "--json", "--quiet")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "r.parquet").exists() and (tmp_path / "r.jsonl").exists()


def test_bad_input_exit_codes(tmp_path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    pd.DataFrame({"tender_id": ["T1"]}).to_csv(folder / "tenders.csv", index=False)
    pd.DataFrame({"tender_id": ["T1", "T2"], "bidder_id": ["a", "b"], "price": ["-3", "x"]}).to_csv(
        folder / "bids.csv", index=False
    )
    out = _run("validate", str(folder))
    assert out.returncode == 1
    assert "bids.price" in out.stderr and "unknown tender_id" in out.stderr
    out = _run("screen", str(tmp_path / "nope"))
    assert out.returncode == 2 and "not a folder" in out.stderr
