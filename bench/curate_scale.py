"""Out-of-core dedup at scale: rows/s and peak RSS at 1M-5M answers, bounded by a memory budget.

Synthetic answers are generated chunk by chunk (never all held) into a Parquet file first
(``--parquet``; generation is timed apart and reused), ~60 words each from the
corpora's vocabulary (``--corpora``) or the shipped prompts', with 3% exact duplicates (case
and spacing changed) and 3% near duplicates (two words replaced) of a random earlier row among
the last 200,000 (a window, so the generator's memory stays small). Measured in one run:

- curate's spilled dedup read from the Parquet file (``path=disk``: sketches in ``--workers`` processes, band keys and
  signatures in DuckDB, candidates from a band-key self-join) on all ``--rows``: rows/s, peak
  RSS of this process and of the largest worker;
- recall of the injected duplicates and the rows dropped beyond them;
- on the first ``--prefix-rows`` (after the peak is read): curate's in-memory path (rensa),
  bare rensa (digest matrix + ``RMinHashLSH`` duplicate flags, no verification) and datasketch
  (``bench/curate_speed.py``'s), with rows/s, and whether the spilled decisions on the prefix are
  the in-memory ones (a row's decision depends only on earlier rows, so the prefix must agree).
- ``--spark``: the same dedup of the same file through Spark ``--master`` (``local[2]``), timed
  beside DuckDB's, and whether both drop the same rows.

    nice -n 10 .venv/bin/python bench/curate_scale.py --rows 1000000 --corpora ../shared/corpora
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib

from curate_speed import _vocab_and_bench, datasketch_dedup

from stillroom.curate import DedupConfig, find_duplicates, optimal_bands
from stillroom.curate._inputs import read_field_chunks
from stillroom.curate._sketch import sketch_stream
from stillroom.curate._spill import ScaleConfig, SpilledDedup

WINDOW = 200_000
EXACT, NEAR = 1, 2


def answer_chunks(
    n: int, vocab: list[str], chunk: int, truth: np.ndarray, seed: int = 7
) -> Iterator[tuple[list[str], list[str]]]:
    """``(texts, ids)`` chunks of ``n`` answers; ``truth[i]`` is set to EXACT or NEAR for the
    injected duplicates."""
    rng = random.Random(seed)
    window: list[str] = []
    texts: list[str] = []
    for i in range(n):
        roll = rng.random()
        if i > 100 and roll < 0.03:
            text = "  " + window[rng.randrange(len(window))].upper()
            truth[i] = EXACT
        elif i > 100 and roll < 0.06:
            toks = window[rng.randrange(len(window))].split()
            for _ in range(2):
                toks[rng.randrange(len(toks))] = rng.choice(vocab)
            text = " ".join(toks)
            truth[i] = NEAR
        else:
            body = " ".join(rng.choices(vocab, k=rng.randint(40, 80)))
            text = f"Let us work it out. {body} #### {rng.randint(1, 9999)}"
        if len(window) < WINDOW:
            window.append(text)
        else:
            window[i % WINDOW] = text
        texts.append(text)
        if len(texts) == chunk:
            start = i + 1 - chunk
            yield texts, [str(start + j) for j in range(chunk)]
            texts = []
    if texts:
        yield texts, [str(n - len(texts) + j) for j in range(len(texts))]


class TreePeak:
    """The largest total RSS of this process and its descendants (the sketching workers are
    the forkserver's children; Spark's JVM and its Python workers), and the CPU seconds they
    used, sampled every ``every`` seconds in a thread (needs psutil)."""

    def __init__(self, every: float = 0.25) -> None:
        self.every, self.peak_mb, self._stop = every, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cpu: dict[tuple[int, float], float] = {}
        self._base: dict[tuple[int, float], float] = {}

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds the tree used since ``with`` (a process's last 0.25 s may be missed)."""
        return sum(v - self._base.get(k, 0.0) for k, v in self._cpu.items())

    def _sample(self) -> float:
        import psutil

        me, total = psutil.Process(), 0
        for proc in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
                times = proc.cpu_times()
                self._cpu[proc.pid, proc.create_time()] = times.user + times.system
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._sample())
            self._stop.wait(self.every)

    def __enter__(self) -> TreePeak:
        self._sample()
        self._base = dict(self._cpu)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def generate(args, vocab) -> tuple[Path, np.ndarray]:
    """Write ``--rows`` answers to ``--parquet`` (``id``, ``answer``, ``truth``) unless a file
    of that many rows is there; return it and the injected-duplicate truth."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = args.parquet or Path(f"/tmp/curate_scale_{args.rows}.parquet")
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == args.rows:
        print(f"answers from {path} (generated before)")
        return path, pq.read_table(path, columns=["truth"]).column("truth").to_numpy()
    truth = np.zeros(args.rows, dtype=np.int8)
    start, writer = time.perf_counter(), None
    for texts, ids in answer_chunks(args.rows, vocab, 100_000, truth):
        lo = int(ids[0])
        table = pa.table({"id": ids, "answer": texts, "truth": truth[lo : lo + len(ids)]})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()
    print(
        f"generated {args.rows:,} answers to {path} in {time.perf_counter() - start:.1f} s "
        f"({path.stat().st_size / 2**20:,.0f} MB; not counted below)"
    )
    return path, truth


def spilled(args, path: Path, truth: np.ndarray) -> dict[int, object]:
    """curate's disk path on the file, as ``curate dedup --path disk`` runs it."""
    scale = ScaleConfig(memory_gb=args.memory_gb, path="disk", workers=args.workers)
    start = time.perf_counter()
    prefix: dict[int, object] = {}
    dropped = np.zeros(args.rows, dtype=bool)
    cpu_before = time.process_time()
    with TreePeak() as tree, SpilledDedup(DedupConfig(), scale, "answer") as dedup:
        chunks = read_field_chunks(path, "answer", scale.chunk)
        for ids, sketch in sketch_stream(chunks, dedup.spec, scale.workers):
            before = dedup.rows
            dedup.add_sketch(ids, sketch)
            if dedup.rows // 500_000 > before // 500_000:  # progress, for a run cut short
                took = time.perf_counter() - start
                print(f"  {dedup.rows:,} rows spilled in {took:.0f} s ({dedup.rows / took:,.0f} "
                      f"rows/s), peak RSS with workers {tree.peak_mb:,.0f} MB, load "
                      f"{Path('/proc/loadavg').read_text().split()[0]}", flush=True)  # fmt: skip
        t_add = time.perf_counter() - start
        counts = dedup.counts()
        t_join = time.perf_counter() - start - t_add
        for row, _, drop in dedup.drops():
            dropped[row] = True
            if row < args.prefix_rows:
                prefix[row] = drop
    seconds = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    injected = truth > 0
    print(
        f"spilled dedup (DuckDB): {args.rows / seconds:,.0f} rows/s ({seconds:.1f} s: read+sketch"
        f"+spill {t_add:.1f} s, join+verify+decide {t_join:.1f} s, drops read "
        f"{seconds - t_add - t_join:.1f} s; chunk "
        f"{scale.chunk:,} rows, {scale.workers} workers, DuckDB memory_limit "
        f"{scale.duckdb_limit}); {counts}"
    )
    cpu = tree.cpu_seconds
    print(
        f"peak RSS: this process {own:,.0f} MB; this process and its workers together "
        f"{tree.peak_mb:,.0f} MB (sampled every {tree.every} s); CPU {cpu:,.0f} s in all "
        f"({cpu / args.rows * 1e6:.0f} CPU us a row; this process "
        f"{(time.process_time() - cpu_before) / args.rows * 1e6:.0f})"
    )
    print(
        f"injected: {int((truth == EXACT).sum()):,} exact + {int((truth == NEAR).sum()):,} near; "
        f"recall {(dropped & injected).sum() / max(1, injected.sum()):.4f}; "
        f"dropped beyond them {int((dropped & ~injected).sum()):,}"
    )
    if args.spark:
        on_spark(args, path, seconds, dropped)
    return prefix


def on_spark(args, path: Path, duck_seconds: float, duck_dropped: np.ndarray) -> None:
    """The same dedup through Spark ``--master`` on the same file (session start timed apart)."""
    from stillroom.curate._spark_dedup import spark_dedup
    from stillroom.detect import spark_session

    start = time.perf_counter()
    spark = spark_session(args.master)
    t_session = time.perf_counter() - start
    with TreePeak() as tree:
        run, drops = spark_dedup(spark, path, "answer", DedupConfig(), "answer")
    cpu = tree.cpu_seconds
    spark_dropped = np.zeros(args.rows, dtype=bool)
    spark_dropped[[r for r, _, _ in drops]] = True
    same = bool((spark_dropped == duck_dropped).all())
    print(
        f"Spark {args.master}: {run.seconds:.1f} s ({args.rows / run.seconds:,.0f} rows/s; "
        f"session start {t_session:.1f} s apart; {cpu:,.0f} CPU s for the driver, JVM and "
        f"workers, peak RSS {tree.peak_mb:,.0f} MB) against DuckDB {duck_seconds:.1f} s; "
        f"dropped rows {'identical' if same else 'DIFFER'}"
    )
    spark.stop()


def prefix_checks(args, path: Path, prefix_drops) -> None:
    m = min(args.prefix_rows, args.rows)
    texts: list[str] = []
    for chunk, _ in read_field_chunks(path, "answer", 50_000):
        texts += chunk[: m - len(texts)]
        if len(texts) >= m:
            break
    ids = [str(i) for i in range(m)]
    start = time.perf_counter()
    memory = find_duplicates(texts, ids, DedupConfig(), "answer")
    t_mem = time.perf_counter() - start
    same = memory == prefix_drops
    print(
        f"in-memory (rensa) on the first {m:,}: {m / t_mem:,.0f} rows/s; spilled decisions "
        f"{'identical' if same else 'DIFFER'} ({len(memory):,} drops in memory, {len(prefix_drops):,} spilled)"
    )
    import rensa

    start = time.perf_counter()
    from stillroom.curate._text import shingles

    bands = optimal_bands(0.7, 128)
    lsh = rensa.RMinHashLSH(0.7, 128, bands)
    sets = [shingles(t, 3) for t in texts]
    matrix = rensa.RMinHash.digest_matrix_from_token_sets(sets, 128, 0)
    flags = lsh.insert_matrix_and_query_duplicate_flags(matrix, 0)
    t_bare = time.perf_counter() - start
    print(
        f"bare rensa (flags only, no verification): {m / t_bare:,.0f} rows/s ({sum(flags):,} flagged)"
    )
    try:
        import datasketch  # noqa: F401
    except ImportError:
        print("datasketch not installed: skipped")
        return
    start = time.perf_counter()
    ds = datasketch_dedup(texts, 0.7, bands)
    t_ds = time.perf_counter() - start
    print(
        f"datasketch: {m / t_ds:,.0f} rows/s ({len(ds):,} drops; {len(ds & set(memory)):,} shared)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--prefix-rows", type=int, default=100_000)
    parser.add_argument("--memory-gb", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--corpora", type=Path, default=None)
    parser.add_argument("--parquet", type=Path, default=None, help="Answers file (made once).")
    parser.add_argument("--spark", action="store_true", help="Also dedup the file on Spark.")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    vocab, _ = _vocab_and_bench(args.corpora)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"{args.rows:,} answers, vocabulary {len(vocab):,} words; load average {load}")
    path, truth = generate(args, vocab)
    prefix = spilled(args, path, truth)
    if args.prefix_rows:
        prefix_checks(args, path, prefix)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"load average at the end {load}")


if __name__ == "__main__":
    main()
