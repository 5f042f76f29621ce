"""Speed and memory of ``stillroom.detect.scan`` end to end, against a pandas baseline in the same process.

Builds a log of ``--rows`` rows by simulating one small log (``stillroom.detect.simulate``, scale 1) and
replicating it in DuckDB with account ids, IPs, payment/org ids and times shifted per copy
(each row of a copy also gets up to 10 minutes of jitter, so copies are not in lockstep);
fast, and the content stays realistic.  Then:

1. times ``stillroom.detect.scan`` end to end on it (ingest, features, content, graph, campaigns,
   report) and records the process's peak RSS;
2. times a plain pandas baseline on the same file: read it, then a per-account groupby of the
   same basic features (requests, active hours and days, logprob use, reasoning and grading
   prompt rates by regex, distinct IPs and /24s).

Prints rows/s, peak RSS (and each stage's own peak), per-stage seconds and the ratio of
baseline to scan time.  Run:

    .venv/bin/python bench/detect_speed.py --rows 1000000 --threads 2
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import duckdb
import pandas as pd

from stillroom.detect import ScanConfig, scan
from stillroom.detect._lexicon import GRADING_REGEX, REASONING_REGEX
from stillroom.detect.simulator import simulate


def build_log(rows: int, workdir: Path, seed: int = 11, shared_infra: float = 0.0) -> Path:
    """A parquet log of about ``rows`` rows: one simulated log replicated with shifted ids.

    ``shared_infra``: the share of the base log's accounts whose copies all keep the base
    IPs (a shared NAT / proxy pool), so the copies share infrastructure; 0 shares nothing."""
    base = simulate(workdir / "base.parquet", seed=seed, scale=1.0).traffic_path
    out = workdir / f"traffic_{rows}.parquet"
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    n_base = con.execute("SELECT count(*) FROM read_parquet(?)", [str(base)]).fetchone()[0]
    copies = max(1, math.ceil(rows / n_base))
    con.execute(
        f"""
        COPY (
          SELECT * REPLACE (
            account_id || '_' || c AS account_id,
            CASE WHEN c = 0 OR hash(account_id) % 1000 < {int(shared_infra * 1000)} THEN ip ELSE
              ((split_part(ip, '.', 1)::INT + c) % 223 + 1)::VARCHAR || '.' ||
              split_part(ip, '.', 2) || '.' || split_part(ip, '.', 3) || '.' ||
              split_part(ip, '.', 4) END AS ip,
            CASE WHEN payment_id IS NULL THEN NULL ELSE payment_id || '_' || c END AS payment_id,
            CASE WHEN org_id IS NULL THEN NULL ELSE org_id || '_' || c END AS org_id,
            "timestamp" + to_seconds(c * 7919 + CASE WHEN c = 0 THEN 0
              ELSE hash(request_id, c) % 600 END) AS "timestamp"
          )
          FROM read_parquet('{base}') CROSS JOIN range({copies}) AS t(c)
          LIMIT {rows}
        ) TO '{out}' (FORMAT parquet)
        """
    )
    return out


def pandas_baseline(path: Path) -> float:
    """Seconds for pandas to read the log and compute basic per-account features."""
    start = time.perf_counter()
    df = pd.read_parquet(path)
    df["hour"] = pd.to_datetime(df["timestamp"], utc=True).dt.floor("h")
    df["day"] = df["hour"].dt.floor("D")
    df["lp"] = df["top_logprobs"].fillna(0) > 0
    warnings.filterwarnings("ignore", message="This pattern is interpreted")
    df["reasoning"] = df["prompt"].str.contains(REASONING_REGEX, case=False, regex=True)
    df["grading"] = df["prompt"].str.contains(GRADING_REGEX, case=False, regex=True)
    df["ip24"] = df["ip"].str.rsplit(".", n=1).str[0]
    df.groupby("account_id").agg(
        requests=("prompt", "size"),
        active_hours=("hour", "nunique"),
        active_days=("day", "nunique"),
        logprob_rate=("lp", "mean"),
        reasoning_rate=("reasoning", "mean"),
        grading_rate=("grading", "mean"),
        distinct_ips=("ip", "nunique"),
        distinct_subnets=("ip24", "nunique"),
    )
    return time.perf_counter() - start


def cli_timings(log: Path, workdir: Path, threads: int, memory_limit: str) -> None:
    """``stillroom detect scan`` end to end in a child process, then again with ``--html``."""
    rows = duckdb.execute("SELECT count(*) FROM read_parquet(?)", [str(log)]).fetchone()[0]
    exe = Path(sys.executable).with_name("stillroom")
    base = [str(exe), "detect", "scan", str(log), "--out", str(workdir / "r.json")]
    base += ["--threads", str(threads), "--memory-limit", memory_limit]
    seconds = {}
    for name, extra in (("json", []), ("json+html", ["--html", str(workdir / "r.html")])):
        start = time.perf_counter()
        done = subprocess.run(base + extra, capture_output=True, text=True, check=True)
        seconds[name] = time.perf_counter() - start
        print(f"cli {name}: {seconds[name]:.1f} s = {rows / seconds[name]:,.0f} rows/s")
        print("  " + " | ".join(line for line in done.stderr.splitlines() if ": " in line))
    print(f"cli: the HTML report adds {seconds['json+html'] - seconds['json']:.1f} s")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class StageMemory:
    """A ``progress=`` callback for :func:`scan`: each stage's peak RSS and its RSS at the end.

    On Linux the peak is reset between stages (``/proc/self/clear_refs``), so each stage's
    peak is its own (and ``getrusage``'s peak forgets what came before a reset, so
    ``self.peak`` keeps the largest); elsewhere it is the process's peak so far."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.peak = peak_rss_mb()
        self._reset_peak()

    @staticmethod
    def _status_mb(field: str) -> float | None:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    @staticmethod
    def _reset_peak() -> None:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")

    def __call__(self, stage: str, seconds: float) -> None:
        peak = self._status_mb("VmHWM") or peak_rss_mb()
        now = self._status_mb("VmRSS")
        self.peak = max(self.peak, peak)
        now_text = f", {now:,.0f} MB after" if now is not None else ""
        self.lines.append(f"{stage} {seconds:.1f} s: peak {peak:,.0f} MB{now_text}")
        self._reset_peak()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="3GB")
    parser.add_argument("--no-baseline", action="store_true", help="skip the pandas baseline")
    parser.add_argument(
        "--cli",
        action="store_true",
        help="time `stillroom detect scan` as a fresh process (start-up included), without and "
        "with --html, instead of the in-process scan",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="detect-speed-") as tmp:
        t0 = time.perf_counter()
        # Built in a child process so this process's peak RSS is the scan's alone.
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            log = pool.apply(build_log, (args.rows, Path(tmp)))
        print(f"built {log.name} in {time.perf_counter() - t0:.1f} s")
        if args.cli:
            cli_timings(log, Path(tmp), args.threads, args.memory_limit)
            return
        rss_before = peak_rss_mb()
        config = ScanConfig(threads=args.threads, memory_limit=args.memory_limit)
        memory = StageMemory()
        start = time.perf_counter()
        result = scan([log], config=config, progress=memory)
        elapsed = time.perf_counter() - start
        summary = result.report["summary"]
        rss_scan = max(peak_rss_mb(), memory.peak)
        print(
            f"scan: {summary['rows']:,} rows, {summary['accounts']:,} accounts, "
            f"{summary['flagged']:,} flagged in {summary['campaigns']} campaigns"
        )
        print(
            f"scan: {elapsed:.1f} s end to end = {summary['rows'] / elapsed:,.0f} rows/s "
            f"on {args.threads} threads"
        )
        print(f"scan: stages {summary['stage_seconds']}")
        print(f"scan: peak RSS {rss_scan:,.0f} MB (before scan {rss_before:,.0f} MB)")
        print("scan: RSS per stage: " + " | ".join(memory.lines))
        if not args.no_baseline:
            baseline = pandas_baseline(log)
            print(
                f"pandas baseline (read + per-account groupby of basic features, no content, "
                f"no graph): {baseline:.1f} s"
            )
            print(
                f"ratio baseline/scan: {baseline / elapsed:.2f}x "
                f"(> 1 means the full scan beats plain pandas features alone)"
            )


if __name__ == "__main__":
    main()
