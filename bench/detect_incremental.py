"""Incremental ``detect`` scans: ten daily folds into a state store vs one rescan of the days.

1. Simulates a 14-day log (``--scale``) and splits its first ``--days`` days into one Parquet
   file per UTC day, with late rows: a ``--late-share`` of each day's rows (picked by a hash,
   so spread over the day) arrive in the next day's file and a fifth of that share in the
   file after it (the last file keeps its own day's rows).
2. Scans each day's file with ``state=`` (the file's rows and the kept rows of the days they
   touch make the partials, folded into the store; the window merged from the store and
   scored), timing each scan and its partials stage.
3. In the same process, the baseline: one scan of all the days' files (what a daily rescan of
   the window costs on the last day).  Prints both, the ratio, the state store's size beside
   the logs' (and beside the rows-store it replaced: 15.0 MB for 97,926 rows at scale 1, 10
   days), the partial tables' row counts, whether rows, accounts, per-account requests, flags
   and campaigns agree, and the rows a replace-the-day fold (the code before late rows were
   kept) would have kept of the same files, counted from the files.

    .venv/bin/python bench/detect_incremental.py --scale 1 --days 10 --late-share 0.05
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS_STORE_MB, ROWS_STORE_ROWS = 15.0, 97_926  # migrations 1-2 kept rows: measured before 3
sys.path.insert(0, str(ROOT))


def split_by_day(log: Path, out: Path, days: int, late_share: float = 0.0) -> list[Path]:
    """One file per UTC day; ``late_share`` of a day's rows in the next file, a fifth of
    that in the one after."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    first = con.execute(f"SELECT min(CAST(timestamp AS DATE)) FROM '{log}'").fetchone()[0]
    pick = "hash(account_id || CAST(timestamp AS VARCHAR) || prompt) % 100000"
    one, two = int(late_share * 100000), int(late_share * 1.2 * 100000)
    shift = f"CASE WHEN {pick} < {one} THEN 1 WHEN {pick} < {two} THEN 2 ELSE 0 END"
    day = f"datediff('day', DATE '{first}', CAST(timestamp AS DATE))"
    con.execute(
        f"CREATE TABLE split AS SELECT *, least({day} + {shift}, {days - 1}) AS file_no "
        f"FROM '{log}' WHERE {day} < {days}"
    )
    files = []
    for i in range(days):
        path = out / f"{first + timedelta(days=i)}.parquet"
        con.execute(
            f"COPY (SELECT * EXCLUDE (file_no) FROM split WHERE file_no = {i}) "
            f"TO '{path}' (FORMAT parquet)"
        )
        files.append(path)
    return files


def files_scalar(files: list[Path], select: str) -> int:
    """``select`` over the files' rows, read as ``rows`` (``file``: each row's file, named
    by its day), in UTC."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    names = ", ".join(f"'{f}'" for f in files)
    rows = f"rows AS (SELECT *, filename AS file FROM read_parquet([{names}], filename = true))"
    return con.execute(f"WITH {rows} {select}").fetchone()[0]


def replace_day_rows(files: list[Path]) -> int:
    """Rows a fold that replaced each day it saw keeps: each day's rows in its last file."""
    return files_scalar(
        files,
        "SELECT sum(n) FROM (SELECT arg_max(n, file) AS n FROM (SELECT file, "
        "CAST(timestamp AS DATE) AS day, count(*) AS n FROM rows GROUP BY ALL) GROUP BY day)",
    )


def late_rows(files: list[Path]) -> int:
    """Rows in another day's file."""
    file_day = "CAST(regexp_extract(file, '(\\d{4}-\\d{2}-\\d{2})', 1) AS DATE)"
    return files_scalar(
        files, f"SELECT count(*) FROM rows WHERE CAST(timestamp AS DATE) <> {file_day}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--late-share", type=float, default=0.05)
    parser.add_argument("--late-days", type=int, default=2)
    args = parser.parse_args()

    from stillroom.detect import scan, simulate

    with tempfile.TemporaryDirectory(prefix="detect-incremental-") as tmp:
        root = Path(tmp)
        sim = simulate(root / "all.parquet", seed=args.seed, scale=args.scale)
        files = split_by_day(sim.traffic_path, root, args.days, args.late_share)
        state = root / "state.duckdb"
        daily = []
        for path in files:
            started = time.perf_counter()
            result = scan([path], state=state, window_days=args.days, late_days=args.late_days)
            daily.append((time.perf_counter() - started, result))
        started = time.perf_counter()
        once = scan(files)
        once_s = time.perf_counter() - started
        last_s, last = daily[-1]
        flags = {a["account_id"] for a in last.report["accounts"] if a["flagged"]}
        flags_once = {a["account_id"] for a in once.report["accounts"] if a["flagged"]}
        camps = {frozenset(c["accounts"]) for c in last.report["campaigns"]}
        camps_once = {frozenset(c["accounts"]) for c in once.report["campaigns"]}
        logs_mb = sum(f.stat().st_size for f in files) / 1e6
        rows = once.report["summary"]["rows"]
        state_mb = state.stat().st_size / 1e6
        print(f"{rows:,} rows in {len(files)} days, logs {logs_mb:.1f} MB")
        print(
            f"state store after {len(files)} folds: {state_mb:.1f} MB = {state_mb / logs_mb:.2f}x "
            f"the logs (the rows-store it replaced: {ROWS_STORE_MB} MB for {ROWS_STORE_ROWS:,} "
            f"rows, {ROWS_STORE_MB / logs_mb:.2f}x)"
        )
        print(f"state tables (rows): {partial_rows(state)}")
        print(f"state store compacted (COPY FROM DATABASE): {compacted_mb(state, root):.1f} MB")
        seconds = ", ".join(f"{s:.1f}" for s, _ in daily)
        print(f"daily scans (fold the day + merge and score the window), s: {seconds}")
        parts = ", ".join(
            f"{r.report['summary']['stage_seconds']['partials']:.2f}" for _, r in daily
        )
        print(f"  of which partials + fold + window read, s: {parts}")
        print(f"last day: incremental {last_s:.1f} s, stages {stages(last)}")
        print(
            f"baseline, one scan of the {len(files)} days' logs: {once_s:.1f} s, stages {stages(once)}"
        )
        print(f"ratio incremental / rescan on the last day: {last_s / once_s:.2f}")
        print(
            f"flags equal: {flags == flags_once} ({len(flags)} flagged), "
            f"campaigns equal: {camps == camps_once} ({len(camps)})"
        )
        requests = {a["account_id"]: a["requests"] for a in last.report["accounts"]}
        requests_once = {a["account_id"]: a["requests"] for a in once.report["accounts"]}
        late = late_rows(files)
        print(
            f"late rows in the files: {late:,}; rows kept by the folds: "
            f"{last.report['summary']['rows']:,} of {rows:,}, accounts {len(requests)} of "
            f"{len(requests_once)}, per-account requests equal: {requests == requests_once}"
        )
        print(
            f"a replace-the-day fold of the same files would keep {replace_day_rows(files):,} rows"
        )


def stages(result) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in result.report["summary"]["stage_seconds"].items())


def compacted_mb(state: Path, root: Path) -> float:
    """The store rewritten into a fresh file: its size without the free blocks of old folds."""
    import duckdb

    copy = root / "compacted.duckdb"
    con = duckdb.connect()
    con.execute(f"ATTACH '{state}' AS s (READ_ONLY)")
    con.execute(f"ATTACH '{copy}' AS c")
    con.execute("COPY FROM DATABASE s TO c")
    con.close()
    return copy.stat().st_size / 1e6


def partial_rows(state: Path) -> str:
    import duckdb

    from stillroom.detect._partials import PARTIALS

    con = duckdb.connect(str(state), read_only=True)
    counts = {
        n: con.execute(f"SELECT count(*) FROM {n}").fetchone()[0]
        for n in (*PARTIALS, "recent_rows")
    }
    con.close()
    return ", ".join(f"{n.removeprefix('part_')} {c:,}" for n, c in counts.items())


if __name__ == "__main__":
    main()
