"""Batch benchmark: a 50k-prompt batch prepared and ingested end to end into DuckDB.

Target: >= 20,000 results/s ingested. Three figures, each beside a plain json-module loop
run in the same process on the same data:

1. **JSONL writing**: ``split_requests`` (harvest's request lines, sha256 per file) vs a
   loop of ``json.dumps({"custom_id", "method", "url", "body"})`` per prompt;
2. **result ingest**: ``read_results`` + ``ingest_results`` (the sync path's parser and
   row builder, ``Store.write_batch`` into DuckDB) vs a loop of ``json.loads`` per output
   line picking the same fields into tuples (parsing only: no DuckDB, no row objects);
3. **end to end**: ``harvest run --mode batch`` against the fake Batch API over loopback
   (upload, create, poll, download, ingest), wall time and rows/s.

Prompts come from ``--corpora``/instructions.jsonl.gz (default ``../shared/corpora``; the
first 5,000, cycled, each made unique) when present, else synthetic ones; the bench prints
which. Timings on a shared 2-core machine vary with load.

    .venv/bin/python bench/harvest_batch.py [--n 50000] [--skip-end-to-end] [--corpora DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from _corpora import add_corpora_option, corpus_texts

from stillroom.harvest._batch_files import BatchLimits, read_results, split_requests
from stillroom.harvest._batch_ingest import IngestTally, ingest_results
from stillroom.harvest._prompts import load_prompts
from stillroom.harvest._rows import RowContext
from stillroom.harvest._store import Store
from stillroom.harvest._work import plan_work, sampling_params


def prompt_texts(n: int, corpora: Path | None) -> tuple[list[str], str]:
    base, where = corpus_texts(corpora, "instructions.jsonl.gz")
    if base:
        base, where = base[:5000], f"{where}, the first {min(5000, len(base)):,} cycled"
    else:
        base = [f"Explain step {i} of the procedure in two sentences." for i in range(1000)]
    return [f"{base[i % len(base)]} (#{i})" for i in range(n)], where


def plain_json_lines(items) -> bytes:
    out = []
    for item in items:
        body = {"messages": list(item.messages), **item.params}
        line = {"custom_id": item.key, "method": "POST", "url": "/v1/chat/completions",
                "body": body}  # fmt: skip
        out.append(json.dumps(line, ensure_ascii=False) + "\n")
    return "".join(out).encode()


def fake_output(items) -> bytes:
    """An output file as the fake Batch API writes it (its answer generator, no HTTP)."""
    from stillroom.harvest.testing import FakeSettings, _Server

    server = _Server(FakeSettings(reasoning="reasoning_content"))
    lines = []
    for item in items:
        body = {"messages": list(item.messages), **item.params}
        text = item.messages[-1]["content"]
        tokens = sum(len(m["content"]) // 4 + 4 for m in item.messages) + 3
        payload = server._completion(body, text, tokens, item.params["max_tokens"])
        response = {"status_code": 200, "request_id": f"req_{item.key[:12]}", "body": payload}
        lines.append(json.dumps({"id": f"br_{item.key[:12]}", "custom_id": item.key,
                                 "response": response, "error": None}) + "\n")  # fmt: skip
    return "".join(lines).encode()


def plain_json_ingest(data: bytes) -> list[tuple]:
    rows = []
    for raw in data.splitlines():
        line = json.loads(raw)
        body = line["response"]["body"]
        message = body["choices"][0]["message"]
        usage = body["usage"]
        rows.append((line["custom_id"], message["content"], message.get("reasoning_content"),
                     body["choices"][0]["finish_reason"], usage["prompt_tokens"],
                     usage["completion_tokens"], body["model"]))  # fmt: skip
    return rows


CPU: dict[str, float] = {}


def timed(fn, *args):
    """(result, wall seconds); the CPU seconds go to CPU[fn name] (steadier under load)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    CPU[fn.__name__] = time.process_time() - cpu
    return out, time.perf_counter() - start


def end_to_end(texts: list[str], tmp: Path) -> tuple[float, int, int]:
    from stillroom.harvest import HarvestConfig, run_harvest
    from stillroom.harvest.testing import FakeBatchProvider

    async def quick(seconds: float) -> None:
        await asyncio.sleep(min(seconds, 0.05))

    with FakeBatchProvider(reasoning="reasoning_content") as fake:
        cfg = HarvestConfig(prompts=[{"prompt": t} for t in texts], db=tmp / "e2e.duckdb",
                            base_url=fake.base_url, model="m", policy="self-hosted",
                            mode="batch", poll_interval=0.05, max_tokens=64)  # fmt: skip
        start = time.perf_counter()
        result = run_harvest(cfg, progress=False, sleep=quick)
        elapsed = time.perf_counter() - start
        return elapsed, result.completed, len(fake.creates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--skip-end-to-end", action="store_true")
    add_corpora_option(parser)
    args = parser.parse_args()
    texts, where = prompt_texts(args.n, args.corpora)
    print(f"prompts: {where}")
    params = sampling_params(model="m", max_tokens=64, temperature=0.7, top_p=None,
                             top_logprobs=None)  # fmt: skip
    items = plan_work(load_prompts([{"prompt": t} for t in texts]), params, 1)

    files, t_write = timed(split_requests, items, BatchLimits())
    plain, t_plain_write = timed(plain_json_lines, items)
    assert [json.loads(x) for x in files[0].content.splitlines()[:50]] == [
        json.loads(x) for x in plain.splitlines()[:50]
    ]
    output = fake_output(items)
    _, t_plain_ingest = timed(plain_json_ingest, output)

    import pyarrow  # noqa: F401  (a one-time ~1 s import, left out here; end to end has it)

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "ingest.duckdb")
        ctx = RowContext("bench", "self-hosted", "0" * 64, datetime.now)
        tally = IngestTally()

        def ingest() -> IngestTally:
            return ingest_results(
                store, read_results(output, "bench"), items={i.key: i for i in items},
                answered=set(), submissions=Counter(), max_attempts=3, ctx=ctx, tally=tally,
            )  # fmt: skip

        _, t_ingest = timed(ingest)
        stored = store.con.execute("SELECT count(*) FROM answers").fetchone()[0]
        store.close()
        assert stored == len(items) == tally.answered
        e2e = None if args.skip_end_to_end else end_to_end(texts, Path(tmp))

    n = len(items)
    mb = sum(len(f.content) for f in files) / 1e6
    print(f"{n} prompts, {len(files)} input file(s), {mb:.1f} MB of request JSONL")
    print(f"{'stage':<34}{'harvest rows/s':>16}{'plain json rows/s':>20}{'ratio':>8}")
    print(f"{'JSONL writing':<34}{n / t_write:>16,.0f}{n / t_plain_write:>20,.0f}"
          f"{t_plain_write / t_write:>8.2f}")  # fmt: skip
    print(f"{'result ingest (into DuckDB)':<34}{n / t_ingest:>16,.0f}{n / t_plain_ingest:>20,.0f}"
          f"{t_plain_ingest / t_ingest:>8.2f}")  # fmt: skip
    for label, ours, plain in (("JSONL writing", "split_requests", "plain_json_lines"),
                               ("result ingest", "ingest", "plain_json_ingest")):  # fmt: skip
        print(f"{'  per CPU second: ' + label:<34}{n / CPU[ours]:>16,.0f}{n / CPU[plain]:>20,.0f}"
              f"{CPU[plain] / CPU[ours]:>8.2f}")  # fmt: skip
    print(
        f"  (plain json = json.loads + field picking only; harvest = the sync parser, row builder, "
        f"DuckDB write; target >= 20,000/s: {'met' if n / t_ingest >= 20_000 else 'NOT met'})"
    )
    if e2e is not None:
        elapsed, completed, batches = e2e
        print(
            f"end to end, --mode batch vs the fake Batch API: {completed} stored in "
            f"{elapsed:.1f} s ({completed / elapsed:,.0f} rows/s, {batches} batch(es))"
        )


if __name__ == "__main__":
    main()
