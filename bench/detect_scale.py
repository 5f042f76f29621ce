"""Scale figures for ``detect``: DuckDB vs Spark local mode on the same rows, and how big the
account-level stage's tables are.

1. Builds one log of ``--rows`` rows (``bench/detect_speed.py``'s replicated simulation).
2. Scans it on embedded DuckDB, then on Spark (``--master``, default local[2]) in the same
   process; prints rows/s for each and the ratio (Spark session start reported apart).
3. For the DuckDB scan (run stage by stage, as ``scan()`` does), measures the account-level stage (scoring, campaigns, report: the
   part that stays in one process whichever engine runs the rows): the Python heap peak
   (tracemalloc) during it, the size of the per-account table and of the edge table, and
   extrapolates the per-account bytes to ``--extrapolate-rows`` rows from the account count.

    .venv/bin/python bench/detect_scale.py --rows 1000000
    .venv/bin/python bench/detect_scale.py --rows 10000000 --no-spark
    .venv/bin/python bench/detect_scale.py --rows 3000000 --no-spark --shared-infra 0.1

``--shared-infra`` lets a share of the accounts' copies keep the base log's IPs (a NAT or
proxy pool the copies share), so the edge table's growth against the account table shows.
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

from stillroom.detect import ScanConfig, _stages, scan  # noqa: E402


def duckdb_scan_measured(log: Path, threads: int) -> dict:
    """The DuckDB scan, stage by stage as ``scan()`` runs it, with the account-level ones
    (scoring, campaigns, report) measured apart."""
    import duckdb

    from stillroom.detect._engine import DuckDBEngine
    from stillroom.detect._scan import _configure

    config = ScanConfig(threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "scan.duckdb"))
        _configure(con, config, Path(tmp))
        engine = DuckDBEngine(con)
        started = time.perf_counter()
        stats = _stages.ingest(engine, [log], None)
        stats, _ = _stages.partials(engine, stats, config)
        accounts = _stages.features(engine, stats, config)
        accounts, templates = _stages.content(engine, accounts, config)
        accounts, graph = _stages.graph(engine, accounts, templates, config)
        tracemalloc.start()
        account_started = time.perf_counter()
        accounts, scored = _stages.scoring(accounts, graph, config)
        report = _stages.report(engine, accounts, graph, scored, config)
        done = time.perf_counter()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        con.close()
    return {
        "rows": stats.rows,
        "seconds": done - started,
        "accounts": len(accounts),
        "flagged": int(scored.assigned["flagged"].sum()),
        "account_table_bytes": int(accounts.memory_usage(deep=True).sum()),
        "edges_kept": len(graph.all_edges),
        "edge_table_bytes": int(graph.all_edges.memory_usage(deep=True).sum()),
        "stage_peak_bytes": int(peak),
        "stage_seconds": done - account_started,
        "campaigns": len(report["campaigns"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--extrapolate-rows", type=float, default=1e9)
    parser.add_argument(
        "--shared-infra",
        type=float,
        default=0.0,
        help="share of accounts whose replicated copies keep the base IPs (shared NAT pool)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = build_log(args.rows, Path(tmp), shared_infra=args.shared_infra)
        acct = duckdb_scan_measured(log, args.threads)
        rows, duck_s = acct["rows"], acct["seconds"]
        print(f"rows {rows:,}  accounts {acct['accounts']:,}  flagged {acct['flagged']:,}")
        print(f"duckdb: {duck_s:.1f} s = {rows / duck_s / 1e3:.1f}k rows/s")
        if not args.no_spark:
            from stillroom.detect._spark import spark_session

            t0 = time.perf_counter()
            spark = spark_session(args.master, driver_memory="2g", shuffle_partitions=4)
            start_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            on_spark = scan(log, config=ScanConfig(threads=args.threads), spark=spark)
            spark_s = time.perf_counter() - t0
            spark.stop()
            same = on_spark.report["summary"]["flagged"] == acct["flagged"]
            print(
                f"spark {args.master}: {spark_s:.1f} s = {rows / spark_s / 1e3:.1f}k rows/s "
                f"(session start {start_s:.1f} s apart); duckdb/spark speed ratio "
                f"{spark_s / duck_s:.1f}x; same flagged count: {same}"
            )
    per_account = (acct["account_table_bytes"] + acct["edge_table_bytes"]) / acct["accounts"]
    accounts_at = acct["accounts"] / acct["rows"] * args.extrapolate_rows
    print(
        f"account-level stage: {acct['stage_seconds']:.1f} s, Python heap peak "
        f"{acct['stage_peak_bytes'] / 1e6:.1f} MB; account table {acct['accounts']:,} rows "
        f"{acct['account_table_bytes'] / 1e6:.1f} MB; edge table {acct['edges_kept']:,} edges "
        f"{acct['edge_table_bytes'] / 1e6:.1f} MB; {acct['edges_kept'] / acct['accounts']:.1f} "
        "edges per account"
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
