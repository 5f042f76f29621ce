"""Overhead benchmark: completions a second end to end into DuckDB on a zero-latency server.

Target: >= 1,000 completions/s. Printed beside a plain asyncio + openai loop (the SDK's
aiohttp client, ``chat.completions.create``, one JSONL line per answer) run in the same
process against the same server, and the ratio between them. A third row is harvest with
``reuse_request=False`` (the SDK's ``client.post`` for every request, as before the reused
request). The server is the fake provider in a child process (no limits, no latency), so
client and server share the cores.

    .venv/bin/python bench/harvest_overhead.py [--n 5000] [--concurrency 64] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import openai

from stillroom.harvest import HarvestConfig, run_harvest
from stillroom.harvest.testing import FakeProvider


def reference_loop_ms() -> float:
    """A machine-speed yardstick printed beside the figures: best of 5 ``sum(range(10**6))``."""
    import timeit

    return min(timeit.repeat("sum(range(10**6))", number=5, repeat=5)) / 5 * 1000


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(fn, server_pid: int) -> tuple[float, float, float]:
    """(completions/s, client CPU ms per 1,000 completions, server CPU ms per 1,000)."""
    cpu0, srv0 = time.process_time(), cpu_of(server_pid)
    rate, n = fn()
    cpu1, srv1 = time.process_time(), cpu_of(server_pid)
    return rate, (cpu1 - cpu0) / n * 1e6, (srv1 - srv0) / n * 1e6


async def plain_loop(base_url: str, n: int, concurrency: int, out: Path) -> float:
    """The baseline: what a user writes without harvest."""
    client = openai.AsyncOpenAI(
        api_key="x", base_url=base_url, max_retries=0, http_client=openai.DefaultAioHttpClient()
    )
    sem = asyncio.Semaphore(concurrency)
    with out.open("w") as fh:

        async def one(i: int) -> None:
            async with sem:
                resp = await client.chat.completions.create(
                    model="fake",
                    messages=[{"role": "user", "content": f"question {i}"}],
                    max_tokens=64,
                )
                fh.write(resp.model_dump_json() + "\n")

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        elapsed = time.perf_counter() - start
    await client.close()
    return n / elapsed


def harvest_run(base_url: str, n: int, concurrency: int, db: Path, reuse: bool = True) -> float:
    cfg = HarvestConfig(
        prompts=[{"prompt": f"question {i}"} for i in range(n)],
        db=db,
        base_url=base_url,
        model="fake",
        policy="self-hosted",
        concurrency=concurrency,
        max_tokens=64,
        reuse_request=reuse,
    )
    start = time.perf_counter()
    result = run_harvest(cfg, progress=False)
    elapsed = time.perf_counter() - start
    assert result.completed == n, result
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    runs: dict[str, list[tuple[float, float, float]]] = {"plain": [], "harvest": [], "post": []}
    n, c = args.n, args.concurrency
    with FakeProvider.spawn(rate_headers=False) as fake:
        pid = fake.proc.pid  # type: ignore[union-attr]
        # one short warm-up run of each client: imports and first connections are not overhead
        asyncio.run(plain_loop(fake.base_url, 200, c, tmp / "warm.jsonl"))
        harvest_run(fake.base_url, 200, c, tmp / "warm.duckdb")
        for i in range(args.repeat):
            runs["plain"].append(measured(
                lambda i=i: (asyncio.run(plain_loop(fake.base_url, n, c, tmp / f"p{i}.jsonl")), n), pid
            ))  # fmt: skip
            runs["harvest"].append(measured(
                lambda i=i: (harvest_run(fake.base_url, n, c, tmp / f"h{i}.duckdb"), n), pid
            ))  # fmt: skip
            runs["post"].append(measured(
                lambda i=i: (harvest_run(fake.base_url, n, c, tmp / f"s{i}.duckdb", False), n), pid
            ))  # fmt: skip
    print(f"{n} prompts, concurrency {c}, {os.cpu_count()} cores, server in a child process, "
          f"{args.repeat} runs each, interleaved; load average {os.getloadavg()[0]:.1f}; "
          f"sum(range(10**6)) takes {reference_loop_ms():.0f} ms here")  # fmt: skip
    names = {
        "plain": "plain asyncio + openai -> JSONL",
        "harvest": "harvest -> DuckDB",
        "post": "harvest, client.post each request",
    }
    print(
        f"{'client':<34}{'completions/s (runs)':>24}{'median':>8}{'client CPU ms/1k':>18}{'server CPU ms/1k':>18}"
    )
    med = {}
    for key, rows in runs.items():
        rates = [r[0] for r in rows]
        med[key] = statistics.median(rates)
        cpu = statistics.median(r[1] for r in rows)
        srv = statistics.median(r[2] for r in rows)
        print(
            f"{names[key]:<34}{', '.join(f'{r:.0f}' for r in rates):>24}{med[key]:>8.0f}{cpu:>18.0f}{srv:>18.0f}"
        )
    verdict = "PASS" if med["harvest"] >= 1000 else "FAIL"
    print(
        f"ratio harvest / plain: {med['harvest'] / med['plain']:.2f}; target >= 1,000/s: {verdict}"
    )


if __name__ == "__main__":
    main()
