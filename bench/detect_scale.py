"""Scale figures for ``detect``: DuckDB vs Spark local mode on the same rows, and how big the
account-level stage's tables are.

1. Builds one log of ``--rows`` rows (``bench/detect_speed.py``'s replicated simulation).
2. Scans it on embedded DuckDB, then on Spark (``--master``, default local[2]) in the same
   process; prints rows/s for each and the ratio (Spark session start reported apart).
3. For the DuckDB scan, measures the account-level stage (scoring, campaigns, report: the
   part that stays in one process whichever engine runs the rows): the Python heap peak
   (tracemalloc) during it, the size of the per-account table and of the edge table, and
   extrapolates the per-account bytes to ``--extrapolate-rows`` rows from the account count.

    .venv/bin/python bench/detect_scale.py --rows 1000000
    .venv/bin/python bench/detect_scale.py --rows 10000000 --no-spark
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from detect_speed import build_log  # noqa: E402

from detect import ScanConfig, _stages, scan  # noqa: E402


def account_level_stage(log: Path, threads: int) -> dict:
    """Run the row-level stages on DuckDB, then measure the account-level ones."""
    import duckdb

    from detect._engine import DuckDBEngine

    config = ScanConfig(threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "scan.duckdb"))
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET threads = {threads}")
        engine = DuckDBEngine(con)
        stats = _stages.ingest(engine, [log], None)
        accounts = _stages.features(engine, stats, config)
        accounts, templates = _stages.content(engine, accounts, config)
        accounts, graph = _stages.graph(engine, accounts, templates, config)
        tracemalloc.start()
        started = time.perf_counter()
        accounts, scored = _stages.scoring(accounts, graph, config)
        report = _stages.report(engine, accounts, graph, scored, config)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        con.close()
    return {
        "rows": stats.rows,
        "accounts": len(accounts),
        "account_table_bytes": int(accounts.memory_usage(deep=True).sum()),
        "edges_kept": len(graph.all_edges),
        "edge_table_bytes": int(graph.all_edges.memory_usage(deep=True).sum()),
        "stage_peak_bytes": int(peak),
        "stage_seconds": seconds,
        "campaigns": len(report["campaigns"]),
    }


def timed_scan(log: Path, threads: int, spark=None) -> tuple[float, dict]:
    started = time.perf_counter()
    result = scan(log, config=ScanConfig(threads=threads), spark=spark, progress=None)
    return time.perf_counter() - started, result.report["summary"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--extrapolate-rows", type=float, default=1e9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = build_log(args.rows, Path(tmp))
        duck_s, summary = timed_scan(log, args.threads)
        rows = summary["rows"]
        print(f"rows {rows:,}  accounts {summary['accounts']:,}  flagged {summary['flagged']:,}")
        print(f"duckdb: {duck_s:.1f} s = {rows / duck_s / 1e3:.1f}k rows/s")
        if not args.no_spark:
            from detect._spark import spark_session

            t0 = time.perf_counter()
            spark = spark_session(args.master, driver_memory="2g", shuffle_partitions=4)
            start_s = time.perf_counter() - t0
            spark_s, spark_summary = timed_scan(log, args.threads, spark=spark)
            spark.stop()
            same = spark_summary["flagged"] == summary["flagged"]
            print(
                f"spark {args.master}: {spark_s:.1f} s = {rows / spark_s / 1e3:.1f}k rows/s "
                f"(session start {start_s:.1f} s apart); duckdb/spark speed ratio "
                f"{spark_s / duck_s:.1f}x; same flagged count: {same}"
            )
        acct = account_level_stage(log, args.threads)
    per_account = (acct["account_table_bytes"] + acct["edge_table_bytes"]) / acct["accounts"]
    accounts_at = acct["accounts"] / acct["rows"] * args.extrapolate_rows
    print(
        f"account-level stage: {acct['stage_seconds']:.1f} s, Python heap peak "
        f"{acct['stage_peak_bytes'] / 1e6:.1f} MB; account table {acct['accounts']:,} rows "
        f"{acct['account_table_bytes'] / 1e6:.1f} MB; edge table {acct['edges_kept']:,} edges "
        f"{acct['edge_table_bytes'] / 1e6:.1f} MB"
    )
    print(
        f"extrapolated to {args.extrapolate_rows:,.0f} rows at this log's "
        f"{acct['rows'] / acct['accounts']:.0f} rows/account: {accounts_at:,.0f} accounts, "
        f"tables {per_account * accounts_at / 1e9:.2f} GB, stage peak "
        f"{acct['stage_peak_bytes'] / acct['accounts'] * accounts_at / 1e9:.2f} GB "
        "(linear in accounts; real providers have far more rows per account)"
    )


if __name__ == "__main__":
    main()
