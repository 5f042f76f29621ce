"""Pacing benchmark: a provider enforcing 600 RPM with 2 s of burst, with and without --rpm.

Target: throughput >= 95% of the limit, <= 1% of requests answered 429, in both modes:
``--rpm 600`` given, and no limit given (learned from ``x-ratelimit-*`` headers). A naive
client (same concurrency, no pacing, retrying 429s after retry-after) runs in the same process
as the baseline.

    .venv/bin/python bench/harvest_pacing.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import duckdb
import openai

from stillroom.harvest import HarvestConfig, run_harvest
from stillroom.harvest.testing import FakeProvider

LIMIT_RPM, BURST_S = 600, 2.0


def steady_rpm(db: Path, skip_s: float) -> float:
    """Completions a minute after the first ``skip_s`` seconds (the provider's burst)."""
    con = duckdb.connect(str(db), read_only=True)
    first, last = con.execute("SELECT min(created_at), max(created_at) FROM answers").fetchone()
    n = con.execute(
        "SELECT count(*) FROM answers WHERE created_at > ?", [first + _td(skip_s)]
    ).fetchone()[0]
    con.close()
    span = (last - first).total_seconds() - skip_s
    return n / span * 60 if span > 0 else 0.0


def _td(seconds: float):
    from datetime import timedelta

    return timedelta(seconds=seconds)


def harvest_once(rpm: int | None, n: int, concurrency: int) -> dict:
    with FakeProvider.spawn(rpm=LIMIT_RPM, burst_seconds=BURST_S) as fake:
        db = Path(tempfile.mkdtemp()) / "pacing.duckdb"
        cfg = HarvestConfig(
            prompts=[{"prompt": f"question {i}"} for i in range(n)],
            db=db,
            base_url=fake.base_url,
            model="fake",
            policy="self-hosted",
            rpm=rpm,
            concurrency=concurrency,
            max_tokens=32,
        )
        start = time.monotonic()
        result = run_harvest(cfg, progress=False)
        elapsed = time.monotonic() - start
        stats = fake.stats()
    total, r429 = stats["total"], stats["by_status"].get("429", 0)
    return {
        "completed": result.completed,
        "rpm_overall": result.completed / elapsed * 60,
        "rpm_steady": steady_rpm(db, skip_s=BURST_S + 1),
        "requests": total,
        "pct_429": 100.0 * r429 / total,
    }


async def _naive(base_url: str, n: int, concurrency: int) -> tuple[int, int]:
    client = openai.AsyncOpenAI(api_key="x", base_url=base_url, max_retries=0)
    queue = list(range(n))
    sent = limited = 0

    async def worker() -> None:
        nonlocal sent, limited
        while queue:
            i = queue.pop()
            while True:
                sent += 1
                try:
                    await client.chat.completions.create(
                        model="fake",
                        messages=[{"role": "user", "content": f"q {i}"}],
                        max_tokens=32,
                    )
                    break
                except openai.RateLimitError as exc:
                    limited += 1
                    await asyncio.sleep(
                        float(exc.response.headers.get("retry-after-ms", 100)) / 1000
                    )

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await client.close()
    return sent, limited


def naive_once(n: int, concurrency: int) -> dict:
    with FakeProvider.spawn(rpm=LIMIT_RPM, burst_seconds=BURST_S) as fake:
        start = time.monotonic()
        sent, limited = asyncio.run(_naive(fake.base_url, n, concurrency))
        elapsed = time.monotonic() - start
    return {
        "completed": n,
        "rpm_overall": n / elapsed * 60,
        "rpm_steady": float("nan"),
        "requests": sent,
        "pct_429": 100.0 * limited / sent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each run")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    n = int(LIMIT_RPM / 60 * args.seconds + LIMIT_RPM / 60 * BURST_S)
    print(f"provider: {LIMIT_RPM} RPM, {BURST_S:.0f} s burst; {n} prompts per run, "
          f"concurrency {args.concurrency}")  # fmt: skip
    rows = {
        "harvest --rpm 600": harvest_once(LIMIT_RPM, n, args.concurrency),
        "harvest (learned)": harvest_once(None, n, args.concurrency),
        "naive retry-on-429": naive_once(n, args.concurrency),
    }
    print(
        f"{'client':<22}{'RPM overall':>12}{'RPM steady':>12}{'% of limit':>12}{'requests':>10}{'% 429':>8}"
    )
    for name, r in rows.items():
        pct = (
            100.0 * r["rpm_steady"] / LIMIT_RPM
            if r["rpm_steady"] == r["rpm_steady"]
            else 100.0 * r["rpm_overall"] / LIMIT_RPM
        )
        print(f"{name:<22}{r['rpm_overall']:>12.1f}{r['rpm_steady']:>12.1f}{pct:>11.1f}%"
              f"{r['requests']:>10}{r['pct_429']:>7.2f}%")  # fmt: skip
    base = rows["naive retry-on-429"]["pct_429"]
    for name in ("harvest --rpm 600", "harvest (learned)"):
        r = rows[name]
        ok = r["rpm_steady"] >= 0.95 * LIMIT_RPM and r["pct_429"] <= 1.0
        print(
            f"{name}: {'PASS' if ok else 'FAIL'} (>= 95% of limit, <= 1% 429); "
            f"429 rate vs naive: {r['pct_429']:.2f}% vs {base:.2f}%"
        )


if __name__ == "__main__":
    main()
