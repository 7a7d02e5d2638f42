"""The ``collusion`` command line: ``demo``, ``screen DIR``, ``validate DIR``.

Exit codes: 0 success, 1 input invalid (validation problems printed), 2 usage
error (bad arguments, missing folder or tables).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

__all__ = ["main"]

_TABLES_HELP = textwrap.dedent(
    """\
    Input tables (one file per table in DIR, <table>.csv or <table>.parquet;
    only tenders and bids are required, every analysis says what it misses):
      tenders      tender_id, buyer_id, agent_id, project_id, category, region,
                   procedure (open/selective/invited/negotiated/direct), estimate,
                   published_at, deadline_at, awarded_at
      bids         tender_id, bidder_id, price, is_winner, disqualified, submitted_at,
                   ip, mac, doc_fingerprint, bond_account, contact
      evaluations  tender_id, expert_id, bidder_id, score
      contracts    contract_id, tender_id, winner_id, amount, signed_at, builder_id,
                   project_manager_id, final_amount, completed_at
      changes      contract_id, changed_at, amount_delta, kind, approved
      payments     contract_id, paid_at, amount, payee_id, payee_account
      projects     project_id, buyer_id, investment_estimate, preliminary_estimate,
                   budget, final_account
      parties      party_id, kind, name, legal_rep, address, phone, email, registered_at
      relations    src_id, dst_id, kind
    A settings.json in DIR sets thresholds (e.g. {"open_tender_threshold": 4000000}).
    """
)


class _Progress:
    """A tqdm bar over named stages; silent when stderr is not a terminal."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="stage", file=sys.stderr, leave=False)

    def __call__(self, stage: str) -> None:
        if self.bar is not None:
            self.bar.set_description(stage)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _print_findings(screening: Any, n: int, out: Any) -> None:
    from .results import evidence_frame

    top = screening.top(n, per_detector=True)
    for name, frame in top.groupby("analysis", sort=True):
        det = frame["detector"].iloc[0]
        fitted = screening.detectors[det]
        thr = fitted.threshold_
        n_flag = int(fitted.flagged_.sum())
        print(f"\n== Analysis {name}: {det}  ({n_flag} flagged of {len(fitted.scores_)} units)", file=out)
        for _, row in frame.iterrows():
            who = f"{row.entity_type}:{row.entity_id}"
            if isinstance(row.other_id, str):
                who += f" & {row.other_type}:{row.other_id}"
            elif row.unit == "group":
                who = f"group of {len(row.members)}: " + ", ".join(row.members[:4]) + (" ..." if len(row.members) > 4 else "")
            mark = "FLAG" if row.flagged else "    "
            print(f"  #{row['rank']:<3} {mark} score={row.score:8.3f} pct={row.score_pct:.3f}  {row.unit}: {who}", file=out)
            ev = evidence_frame(pd.DataFrame([row])) if len(row.evidence) else fitted.explain(row.finding_id)
            for _, e in ev.head(4).iterrows():
                base = "" if pd.isna(e.baseline) else f" (baseline {e.baseline:.4g})"
                detail = f" — {e.detail}" if e.detail else ""
                print(f"        · {e.signal} = {e.value:.4g}{base}{detail}", file=out)
        if isinstance(thr, dict):
            thr = ", ".join(f"{k}: {v:.3g}" for k, v in thr.items())
        print(f"  threshold: {thr}", file=out)


def _write(screening: Any, out: Path, json_lines: bool) -> list[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    if out.suffix == ".jsonl":
        screening.to_jsonl(out)
        written.append(out)
    else:
        screening.to_parquet(out)
        written += [out, out.with_suffix(".risk.parquet")]
        if json_lines:
            screening.to_jsonl(out.with_suffix(".jsonl"))
            written.append(out.with_suffix(".jsonl"))
    return written


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._screen import default_detectors, screen
    from .datasets import evaluate, make_market

    print(f"Generating a synthetic market with {args.tenders:,} tenders (seed {args.seed}) ...")
    market, truth = make_market(args.tenders, seed=args.seed)
    print(market)
    print("\nPlanted schemes (ground truth):")
    print(truth.counts().to_string(index=False))
    prog = _Progress(len(default_detectors()) + 2, sys.stderr.isatty() and not args.quiet)
    screening = screen(market, progress=prog, n_jobs=args.jobs)
    prog.close()
    _print_findings(screening, args.top, sys.stdout)
    print("\nRisk index (top entities):")
    print(screening.risk.head(args.top)[["entity_type", "entity_id", "score", "level"]].to_string(index=False))
    print("\nDetection quality against the planted truth:")
    print(evaluate(screening, truth).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    written = _write(screening, Path(args.out), json_lines=True)
    print(f"\nWrote {', '.join(str(p) for p in written)}")
    print("Timings (s): " + ", ".join(f"{k}={v:.2f}" for k, v in screening.timings.items()))
    return 0


def _load(folder: str) -> Any:
    from ._market import Market

    return Market.from_folder(folder)


def _cmd_screen(args: argparse.Namespace) -> int:
    from ._screen import default_detectors, screen

    market = _load(args.dir)
    print(market)
    prog = _Progress(len(default_detectors()) + 2, sys.stderr.isatty() and not args.quiet)
    screening = screen(market, progress=prog, n_jobs=args.jobs)
    prog.close()
    for _, row in screening.skipped.iterrows():
        print(f"skipped {row.detector}: {row.reason}")
    _print_findings(screening, args.top, sys.stdout)
    written = _write(screening, Path(args.out), json_lines=args.json)
    print(f"\nWrote {', '.join(str(p) for p in written)}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    market = _load(args.dir)
    print(market)
    print("\nRows kept but unusable for some analysis:")
    print(market.report().to_string(index=False))
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="collusion",
        description="Find bid rigging, collusion and corruption risk in public construction procurement.",
        epilog=_TABLES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="generate a synthetic market with planted schemes, screen it, write results",
                       epilog=_TABLES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--tenders", type=int, default=5_000, help="number of tenders (default 5000)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--top", type=int, default=3, help="findings shown per analysis")
    d.add_argument("--out", default="collusion-demo/results.parquet", help="result file (.parquet or .jsonl)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.add_argument("--jobs", type=int, default=1, help="analyses run at the same time, in threads (default 1)")
    d.set_defaults(func=_cmd_demo)
    s = sub.add_parser("screen", help="screen a folder of tables and write ranked findings",
                       epilog=_TABLES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("dir", help="folder with tenders.csv|parquet, bids.csv|parquet, ...")
    s.add_argument("--out", default="results.parquet", help="result file (.parquet or .jsonl)")
    s.add_argument("--json", action="store_true", help="also write JSON Lines beside the Parquet file")
    s.add_argument("--top", type=int, default=3)
    s.add_argument("--quiet", action="store_true")
    s.add_argument("--jobs", type=int, default=1, help="analyses run at the same time, in threads (default 1)")
    s.set_defaults(func=_cmd_screen)
    v = sub.add_parser("validate", help="check a folder of tables and report problems",
                       epilog=_TABLES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("dir")
    v.set_defaults(func=_cmd_validate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``collusion`` console command."""
    from .exceptions import MissingTableError, ValidationError

    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ValidationError as err:
        print(f"collusion: invalid input\n{err}", file=sys.stderr)
        return 1
    except (FileNotFoundError, MissingTableError, ValueError) as err:
        print(f"collusion: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
