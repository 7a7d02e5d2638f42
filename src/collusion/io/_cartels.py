"""Labelled cartel markets: the published one-row-per-bid files, as a Market plus labels.

García Rodríguez, Rodríguez-Montequín, Ballesteros-Pérez, Love & Signor,
"Collusion detection in public procurement auctions with machine learning
algorithms", *Automation in Construction* 133 (2022) 104047, published
``DB_Collusion_<market>_processed.csv`` files with one row per bid:
``Tender``, ``Bid_value``, ``Winner``, the tender-level label
``Collusive_competitor``, the bid-level ``Collusive_competitor_original`` and
the authors' screens ``CV, SPD, DIFFP, RD, KURT, SKEW, KSTEST``, plus
market-specific columns (``Competitors`` bidder ids, ``Pre-Tender Estimate
(PTE)``, ``Date``, ``Site``...).

Mapping onto the canonical tables
---------------------------------
* ``tenders``: ``tender_id`` = ``Tender`` as text; ``estimate`` = PTE when
  present; ``published_at`` from ``Date`` (Unix seconds for Brazil and Japan;
  the Swiss file has a day index of unknown origin, mapped to days after
  1970-01-01 so that only differences are meaningful; values outside the
  datetime range — Brazil stores missing dates as ``-2**63`` — become NaT);
  ``region`` = ``Site``; ``category`` = ``Contract_type``; other per-tender
  columns (``Brazilian State``, ``Period investigation by JFTC``) are kept as
  extra columns.
* ``bids``: ``bidder_id`` = ``Competitors``. The Swiss file has no bidder
  ids: ids ``"<tender>-<k>"`` are synthesised (``k`` = position of the bid
  in its tender in file order), so every Swiss bidder is a distinct firm and
  co-bidding analyses do not apply. ``is_winner`` = ``Winner == 1``.

Rows the Market's rules reject are never dropped; they are changed
minimally and listed in ``labels.attrs["report"]``:

* the same bidder twice in one tender (Japan: 5 pairs) breaks the
  (tender, bidder) key: the later rows get ``"<id>#2"``, ``"#3"``...;
* several winners in one tender (Switzerland: 58 tenders, ties at the
  lowest price and joint awards) break "at most one winner": the lowest
  winning bid (first in file order on ties) stays the winner, the others are
  set to not winning; the published flag stays in ``labels.winner_published``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._market import Market

__all__ = ["CARTEL_MARKETS", "load_cartel_market", "read_cartel_csv", "tender_labels"]

#: Market name -> file name stem part (``DB_Collusion_<part>_processed.csv``).
CARTEL_MARKETS: dict[str, str] = {
    "brazil": "Brazil",
    "japan": "Japan",
    "switzerland": "Switzerland_GR_and_See-Gaster",
    "ticino": "Switzerland_Ticino",
    "italy": "Italy",
    "america": "America",
}
_ALIASES = {"swiss": "switzerland", "usa": "america", "us": "america"}

_SCREENS = ("CV", "SPD", "DIFFP", "RD", "KURT", "SKEW", "KSTEST")
_PTE = "Pre-Tender Estimate (PTE)"
#: Extra per-tender columns kept on the tenders table under a canonical-style name.
_EXTRA_TENDER_COLUMNS = {"Brazilian State": "state", "Period investigation by JFTC": "jftc_period"}
#: Markets whose ``Date`` is a day index rather than Unix seconds.
_DAY_INDEX_MARKETS = ("switzerland", "ticino")


def _label(value: object) -> str:
    """Integer-valued numbers as '12', not '12.0'; other values as text."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _to_datetime(values: pd.Series, *, day_index: bool) -> np.ndarray:
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    unit_ns = 86_400 * 10**9 if day_index else 10**9
    # datetime64[ns] spans about +-292 years around 1970: anything outside
    # (the int64-minimum sentinel Brazil uses for unknown dates) is missing.
    ok = np.isfinite(v) & (np.abs(v) < 9.2e18 / unit_ns)
    out = np.full(v.size, np.datetime64("NaT"), dtype="datetime64[ns]")
    out[ok] = (np.round(v[ok] * unit_ns)).astype(np.int64).astype("datetime64[ns]")
    return out


def _first_per_tender(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame.groupby("tender_id", sort=False)[column].first()


def read_cartel_csv(path: str | Path, *, market_name: str | None = None) -> tuple[Market, pd.DataFrame]:
    """Read one published labelled cartel file into a Market and its labels.

    Parameters
    ----------
    path : str or Path
        A ``DB_Collusion_*_processed.csv`` file (one row per bid).
    market_name : str, optional
        Name given to the market (``Market.name``); default: derived from
        the file name (``"brazil"``, ``"japan"``, ``"switzerland"``...). It
        also decides the unit of ``Date`` (a day index for Swiss files).

    Returns
    -------
    market : collusion.Market
        Canonical ``tenders`` and ``bids`` (see the module docstring).
    labels : pandas.DataFrame
        One row per bid, aligned row for row with ``market.bids``: columns
        ``tender_id, bidder_id, price, collusive_tender`` (the tender-level
        label ``Collusive_competitor``, constant within a tender),
        ``collusive_bid`` (``Collusive_competitor_original``: a cartel firm's
        bid), ``winner_published`` (``Winner`` as published), ``source_row``
        (row in the CSV) and the published screens ``CV ... KSTEST`` when
        present. ``labels.attrs["report"]`` lists every row changed to pass
        validation (columns ``issue, rows, action, source_rows``).
        :func:`tender_labels` gives the per-tender view.

    Raises
    ------
    ValueError
        When ``Tender`` or ``Bid_value`` is missing, or per-tender columns vary within a tender.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from collusion.io import read_cartel_csv, tender_labels
    >>> raw = pd.DataFrame({"Tender": [1, 1, 2, 2], "Competitors": [7, 8, 7, 9],
    ...                     "Bid_value": [100.0, 104.0, 50.0, 55.0], "Winner": [1, 0, 0, 1],
    ...                     "Collusive_competitor": [1, 1, 0, 0],
    ...                     "Collusive_competitor_original": [1, 1, 0, 0]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "DB_Collusion_Brazil_processed.csv"
    ...     raw.to_csv(path, index=False)
    ...     market, labels = read_cartel_csv(path)
    >>> market
    Market(tenders=2, bids=4, companies=3)
    >>> tender_labels(labels)[["collusive", "n_bids", "n_collusive_bids"]]
               collusive  n_bids  n_collusive_bids
    tender_id
    1               True       2                 2
    2              False       2                 0
    """
    path = Path(path)
    raw = pd.read_csv(path)
    name = market_name or _market_from_filename(path.name)
    missing = [c for c in ("Tender", "Bid_value") if c not in raw.columns]
    if missing:
        raise ValueError(f"{path.name}: required column(s) {missing} missing (columns: {list(raw.columns)})")

    n = len(raw)
    tender = raw["Tender"].map(_label).astype(object)
    report: list[dict[str, object]] = []

    # ---------------------------------------------------------------- bidders
    if "Competitors" in raw.columns:
        bidder = raw["Competitors"].map(_label).astype(object).to_numpy()
        # Same firm twice in one tender: keep both bids, make the key unique.
        dup_rank = pd.DataFrame({"t": tender, "b": bidder}).groupby(["t", "b"], sort=False).cumcount().to_numpy()
        dup_rows = np.flatnonzero(dup_rank > 0)
        if dup_rows.size:
            bidder = bidder.copy()
            bidder[dup_rows] = [f"{b}#{r + 1}" for b, r in zip(bidder[dup_rows], dup_rank[dup_rows])]
            report.append(
                {
                    "issue": "same bidder twice in one tender (duplicate key tender_id, bidder_id)",
                    "rows": int(dup_rows.size),
                    "action": "kept; later bids of the firm renamed '<id>#2', '#3'...",
                    "source_rows": dup_rows.tolist(),
                }
            )
    else:
        position = raw.groupby("Tender", sort=False).cumcount().to_numpy() + 1
        bidder = (tender + "-" + pd.Series(position, index=raw.index).astype(str)).to_numpy(dtype=object)
        report.append(
            {
                "issue": "no bidder ids in the file",
                "rows": n,
                "action": "synthesised bidder_id '<tender>-<k>' (k = bid position in the tender)",
                "source_rows": [],
            }
        )

    # ---------------------------------------------------------------- winners
    price = pd.to_numeric(raw["Bid_value"], errors="coerce").to_numpy(dtype=np.float64)
    winner_pub = (
        pd.to_numeric(raw["Winner"], errors="coerce").fillna(0).to_numpy() == 1
        if "Winner" in raw.columns
        else np.zeros(n, dtype=bool)
    )
    is_winner = winner_pub.copy()
    win_rows = np.flatnonzero(winner_pub)
    if win_rows.size:
        w = pd.DataFrame({"t": tender.to_numpy()[win_rows], "p": price[win_rows], "row": win_rows})
        w = w.sort_values(["t", "p", "row"], kind="stable")
        extra = w.loc[w.duplicated("t", keep="first"), "row"].to_numpy()
        if extra.size:
            is_winner[extra] = False
            report.append(
                {
                    "issue": f"several winners in one tender ({w.loc[w['row'].isin(extra), 't'].nunique()} tenders)",
                    "rows": int(extra.size),
                    "action": "lowest winning bid kept as winner, others set is_winner=False "
                    "(labels.winner_published keeps the file's flag)",
                    "source_rows": np.sort(extra).tolist(),
                }
            )

    bids = pd.DataFrame({"tender_id": tender, "bidder_id": bidder, "price": price, "is_winner": is_winner})

    # ---------------------------------------------------------------- tenders
    per_bid = pd.DataFrame({"tender_id": tender})
    if _PTE in raw.columns:
        per_bid["estimate"] = pd.to_numeric(raw[_PTE], errors="coerce")
    if "Date" in raw.columns:
        per_bid["published_at"] = _to_datetime(raw["Date"], day_index=name in _DAY_INDEX_MARKETS)
    if "Site" in raw.columns:
        per_bid["region"] = raw["Site"].map(_label)
    if "Contract_type" in raw.columns:
        per_bid["category"] = raw["Contract_type"].map(_label)
    for src, dst in _EXTRA_TENDER_COLUMNS.items():
        if src in raw.columns:
            per_bid[dst] = raw[src].map(_label)
    varying = [c for c in per_bid.columns[1:] if (per_bid.groupby("tender_id")[c].nunique(dropna=False) > 1).any()]
    if varying:
        raise ValueError(f"{path.name}: per-tender column(s) {varying} vary within a tender")
    tenders = per_bid.drop_duplicates("tender_id").reset_index(drop=True)
    if "published_at" in tenders.columns:
        nat = int(tenders["published_at"].isna().sum())
        if nat:
            report.append(
                {
                    "issue": "unknown or out-of-range Date",
                    "rows": nat,
                    "action": "published_at set to NaT for these tenders",
                    "source_rows": np.flatnonzero(pd.isna(per_bid["published_at"]).to_numpy()).tolist(),
                }
            )

    market = Market.from_frames(tenders=tenders, bids=bids, name=name)

    # ---------------------------------------------------------------- labels
    lab = pd.DataFrame(
        {
            "tender_id": tender,
            "bidder_id": bidder,
            "price": price,
            "source_row": np.arange(n),
            "winner_published": winner_pub,
        }
    )
    if "Collusive_competitor" in raw.columns:
        coll = pd.to_numeric(raw["Collusive_competitor"], errors="coerce").fillna(0).to_numpy() > 0
        # Tender-level label: max per tender (it is constant in the published files).
        lab["collusive_tender"] = pd.Series(coll).groupby(tender.to_numpy()).transform("max").to_numpy(dtype=bool)
    if "Collusive_competitor_original" in raw.columns:
        lab["collusive_bid"] = pd.to_numeric(raw["Collusive_competitor_original"], errors="coerce").fillna(0).to_numpy() > 0
    for col in _SCREENS:
        if col in raw.columns:
            lab[col] = pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype=np.float64)
    # Align with market.bids: same (tender, bidder) key, canonical row order.
    key_m = market.bids["tender_id"].astype(str) + "\x1f" + market.bids["bidder_id"].astype(str)
    key_l = lab["tender_id"].astype(str) + "\x1f" + lab["bidder_id"].astype(str)
    pos = pd.Index(key_l.to_numpy()).get_indexer(key_m.to_numpy())
    labels = lab.iloc[pos].reset_index(drop=True)
    labels["tender_id"] = market.bids["tender_id"].to_numpy()
    labels["bidder_id"] = market.bids["bidder_id"].to_numpy()
    labels.attrs["report"] = pd.DataFrame(report, columns=["issue", "rows", "action", "source_rows"])
    labels.attrs["source"] = str(path)
    return market, labels


def tender_labels(labels: pd.DataFrame) -> pd.DataFrame:
    """Per-tender view of :func:`read_cartel_csv` labels.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``tender_id`` (the order of ``market.tenders``):
        ``collusive`` (tender label), ``n_bids``, ``n_collusive_bids`` and
        the published screens ``CV ... KSTEST``.
    """
    g = labels.groupby("tender_id", sort=True, observed=True)
    out = pd.DataFrame({"n_bids": g.size()})
    if "collusive_tender" in labels.columns:
        out.insert(0, "collusive", g["collusive_tender"].max().astype(bool))
    if "collusive_bid" in labels.columns:
        out["n_collusive_bids"] = g["collusive_bid"].sum().astype(np.int64)
    for col in _SCREENS:
        if col in labels.columns:
            out[col] = g[col].first()
    out.index = pd.Index(out.index.astype(str).to_numpy(dtype=object), name="tender_id")
    return out


def _market_from_filename(filename: str) -> str:
    for name, part in sorted(CARTEL_MARKETS.items(), key=lambda kv: -len(kv[1])):
        if f"DB_Collusion_{part}_" in filename:
            return name
    return Path(filename).stem


def _candidate_dirs() -> list[Path]:
    out: list[Path] = []
    env = os.environ.get("COLLUSION_CARTEL_DATA")
    if env:
        out.append(Path(env))
    for base in (Path.cwd(), *Path(__file__).resolve().parents):
        out += [base / "shared" / "data" / "cartels", base / ".." / "shared" / "data" / "cartels"]
    seen: list[Path] = []
    for p in out:
        if p not in seen:
            seen.append(p)
    return seen


def load_cartel_market(name: str, directory: str | Path | None = None) -> tuple[Market, pd.DataFrame]:
    """Load a labelled cartel market by name.

    Parameters
    ----------
    name : str
        ``"brazil"``, ``"japan"``, ``"switzerland"`` (alias ``"swiss"``), or
        another published market whose file you have (``"ticino"``,
        ``"italy"``, ``"america"``).
    directory : str or Path, optional
        Folder with the CSV files. Default: ``$COLLUSION_CARTEL_DATA``, then
        ``shared/data/cartels`` or ``../shared/data/cartels`` next to the
        working directory or any parent of the installed package.

    Returns
    -------
    market, labels
        As :func:`read_cartel_csv`.

    Raises
    ------
    FileNotFoundError
        Naming the folders searched.
    """
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in CARTEL_MARKETS:
        raise ValueError(f"unknown cartel market {name!r}; known: {sorted(CARTEL_MARKETS)}")
    filename = f"DB_Collusion_{CARTEL_MARKETS[key]}_processed.csv"
    dirs = [Path(directory)] if directory is not None else _candidate_dirs()
    for d in dirs:
        if (d / filename).is_file():
            return read_cartel_csv(d / filename, market_name=key)
    raise FileNotFoundError(f"{filename} not found in {[str(d) for d in dirs[:6]]}{' ...' if len(dirs) > 6 else ''}")
