"""Speed of curate's dedup and decontamination, against plain-Python baselines in the same run.

Builds ``--rows`` synthetic answers (words drawn from the real prompt corpora when
``--corpora`` is given, else from the shipped prompts; about 60 words each) with known
injections: 3% exact duplicates (case and spacing changed), 3% near duplicates (two words
replaced), 0.2% answers that embed a benchmark item verbatim and 0.2% that embed one with a
few words changed. The benchmark is GSM8K test (1,319 items) from the corpora, or the six
items in tests/curate/data without them.

Times, on all rows:
  - dedup: ``stillroom.curate.find_duplicates`` (exact + MinHash/LSH near-duplicates at 0.7);
  - decontamination: ``stillroom.curate.Decontaminator.check`` (13-gram + MinHash at 0.5);
and the same two jobs done two other ways, each on a prefix of the rows, whose rows/s are
then compared with curate's:

  - datasketch (the usual Python library; ``pip install 'stillroom[bench]'``): ``MinHash``
    (built with ``MinHash.bulk``) and ``MinHashLSH`` over the same word 3-gram shingles, the
    same 128 permutations, the same thresholds and the same bands x rows, candidates checked by
    estimated Jaccard as curate does, on the first ``--datasketch-rows``;
  - plain Python (dict for exact, MinHash with 128 Python hash functions and a dict of LSH
    bands, a set of 13-gram tuples) on the first ``--baseline-rows``.

The exact-duplicate and 13-gram parts are the same dict and set in both baselines. On each
prefix the drops are compared with curate's (reported as agreement). Run:

    nice -n 10 .venv/bin/python bench/curate_speed.py --rows 200000 --datasketch-rows 50000 \
        --corpora ../shared/corpora
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import random
import resource
import time
import zlib
from pathlib import Path

from stillroom.curate import (
    BenchmarkItem,
    DecontamConfig,
    Decontaminator,
    DedupConfig,
    find_duplicates,
)
from stillroom.curate._text import normalise, shingles, words

ROOT = Path(__file__).resolve().parents[1]


def _vocab_and_bench(corpora: Path | None) -> tuple[list[str], list[BenchmarkItem]]:
    texts: list[str] = []
    if corpora is not None and (corpora / "instructions.jsonl.gz").exists():
        with gzip.open(corpora / "instructions.jsonl.gz", "rt") as f:
            texts = [json.loads(line)["text"] for line in f]
        with gzip.open(corpora / "eval_gsm8k_test.jsonl.gz", "rt") as f:
            bench = [
                BenchmarkItem(f"gsm8k_test:{i}", json.loads(x)["text"]) for i, x in enumerate(f, 1)
            ]
    else:
        texts = [json.loads(x)["prompt"] for x in (ROOT / "stillroom/data/prompts.jsonl").open()]
        bench_file = ROOT / "tests/curate/data/benchmark_items.jsonl"
        bench = [
            BenchmarkItem(f"bench:{o['id']}", o["text"]) for o in map(json.loads, bench_file.open())
        ]
    vocab = sorted({w for t in texts for w in words(t)})
    return vocab, bench


def build_answers(
    n: int, vocab: list[str], bench: list[BenchmarkItem], seed: int = 7
) -> tuple[list[str], dict]:
    rng = random.Random(seed)
    out: list[str] = []
    truth = {"exact": 0, "near": 0, "leak": 0, "leak_edited": 0}
    for i in range(n):
        roll = rng.random()
        if i > 100 and roll < 0.03:
            out.append("  " + out[rng.randrange(i)].upper())
            truth["exact"] += 1
        elif i > 100 and roll < 0.06:
            toks = out[rng.randrange(i)].split()
            for _ in range(2):
                toks[rng.randrange(len(toks))] = rng.choice(vocab)
            out.append(" ".join(toks))
            truth["near"] += 1
        elif roll < 0.062:
            item = rng.choice(bench).text
            out.append(f"The question was: {item} So the answer is {rng.randint(1, 999)}.")
            truth["leak"] += 1
        elif roll < 0.064:
            toks = rng.choice(bench).text.split()
            toks[rng.randrange(len(toks))] = rng.choice(vocab)
            out.append("Restating: " + " ".join(toks))
            truth["leak_edited"] += 1
        else:
            body = " ".join(rng.choices(vocab, k=rng.randint(40, 80)))
            out.append(f"Let us work it out. {body} #### {rng.randint(1, 9999)}")
    return out, truth


# ---- plain-Python baselines ---------------------------------------------------------------

_P = (1 << 61) - 1
_RNG = random.Random(1)
_PERMS = [(_RNG.randrange(1, _P), _RNG.randrange(0, _P)) for _ in range(128)]


def _py_minhash(tokens: list[str]) -> tuple[int, ...]:
    hashes = [zlib.crc32(t.encode()) for t in tokens]
    return tuple(min((a * h + b) % _P for h in hashes) for a, b in _PERMS)


def _py_bands(sig: tuple[int, ...], rows: int) -> list[tuple]:
    return [(b, sig[b * rows : (b + 1) * rows]) for b in range(len(sig) // rows)]


def _py_jaccard(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def baseline_dedup(texts: list[str], threshold: float, rows: int) -> set[int]:
    seen: dict[str, int] = {}
    buckets: dict[tuple, list[int]] = {}
    sigs: dict[int, tuple[int, ...]] = {}
    dropped: set[int] = set()
    for i, text in enumerate(texts):
        key = normalise(text)
        if key in seen:
            dropped.add(i)
            continue
        seen[key] = i
        sig = _py_minhash(shingles(text, 3))
        bands = _py_bands(sig, rows)
        cands = {k for band in bands for k in buckets.get(band, ())}
        if any(_py_jaccard(sig, sigs[k]) >= threshold for k in sorted(cands)):
            dropped.add(i)
            continue
        sigs[i] = sig
        for band in bands:
            buckets.setdefault(band, []).append(i)
    return dropped


def baseline_decontam(
    texts: list[str], bench: list[BenchmarkItem], threshold: float, rows: int
) -> set[int]:
    grams = set()
    buckets: dict[tuple, list[int]] = {}
    sigs = []
    for idx, item in enumerate(bench):
        toks = words(item.text)
        grams.update(tuple(toks[i : i + 13]) for i in range(len(toks) - 12))
        sig = _py_minhash(shingles(item.text, 3))
        sigs.append(sig)
        for band in _py_bands(sig, rows):
            buckets.setdefault(band, []).append(idx)
    dropped = set()
    for i, text in enumerate(texts):
        toks = words(text)
        if any(tuple(toks[j : j + 13]) in grams for j in range(len(toks) - 12)):
            dropped.add(i)
            continue
        sig = _py_minhash(shingles(text, 3))
        cands = {k for band in _py_bands(sig, rows) for k in buckets.get(band, ())}
        if any(_py_jaccard(sig, sigs[k]) >= threshold for k in cands):
            dropped.add(i)
    return dropped


# ---- datasketch ---------------------------------------------------------------------------


def _ds_signatures(texts: list[str]) -> list:
    from datasketch import MinHash

    return MinHash.bulk(([s.encode() for s in shingles(t, 3)] for t in texts), num_perm=128, seed=1)


def _ds_lsh(threshold: float, bands: int):
    from datasketch import MinHashLSH

    return MinHashLSH(threshold=threshold, num_perm=128, params=(bands, 128 // bands))


def datasketch_dedup(texts: list[str], threshold: float, bands: int) -> set[int]:
    lsh, sigs = _ds_lsh(threshold, bands), {}
    seen: dict[str, int] = {}
    dropped: set[int] = set()
    for i, (text, sig) in enumerate(zip(texts, _ds_signatures(texts), strict=True)):
        key = normalise(text)
        if key in seen:
            dropped.add(i)
            continue
        seen[key] = i
        if any(sig.jaccard(sigs[k]) >= threshold for k in lsh.query(sig)):
            dropped.add(i)
            continue
        sigs[i] = sig
        lsh.insert(i, sig)
    return dropped


def datasketch_decontam(
    texts: list[str], bench: list[BenchmarkItem], threshold: float, bands: int
) -> set[int]:
    grams = set()
    for item in bench:
        toks = words(item.text)
        grams.update(tuple(toks[i : i + 13]) for i in range(len(toks) - 12))
    lsh, bench_sigs = _ds_lsh(threshold, bands), _ds_signatures([b.text for b in bench])
    for idx, sig in enumerate(bench_sigs):
        lsh.insert(idx, sig)
    dropped = set()
    for i, (text, sig) in enumerate(zip(texts, _ds_signatures(texts), strict=True)):
        toks = words(text)
        if any(tuple(toks[j : j + 13]) in grams for j in range(len(toks) - 12)) or any(
            sig.jaccard(bench_sigs[k]) >= threshold for k in lsh.query(sig)
        ):
            dropped.add(i)
    return dropped


def compare_datasketch(
    texts: list[str], bench, decon, dedup_cfg, curate_dedup_rps: float,
    curate_decon_rps: float, bands_dedup: int, bands_decon: int,
) -> None:  # fmt: skip
    """datasketch on ``texts`` (a prefix of the rows): rows/s, curate's ratio, agreement."""
    if importlib.util.find_spec("datasketch") is None:
        print("datasketch is not installed (pip install 'stillroom[bench]'): skipped")
        return
    d, ids = len(texts), [str(i) for i in range(len(texts))]
    ds_dedup, td_dedup = _timed(datasketch_dedup, texts, 0.7, bands_dedup)
    ds_decon, td_decon = _timed(datasketch_decontam, texts, bench, 0.5, bands_decon)
    g_dedup = set(find_duplicates(texts, ids, dedup_cfg, "answer"))
    g_decon = {i for i, x in enumerate(decon.check(texts)) if x is not None}
    print(f"datasketch dedup:   {d / td_dedup:>8,.0f} rows/s  (first {d:,} rows, {td_dedup:.1f} s)")
    print(f"datasketch decontam:{d / td_decon:>8,.0f} rows/s  (first {d:,} rows, {td_decon:.1f} s)")
    print(
        f"ratio (curate rows/s / datasketch rows/s): dedup {curate_dedup_rps / (d / td_dedup):.1f}x,"
        f" decontam {curate_decon_rps / (d / td_decon):.1f}x"
    )
    print(
        f"agreement on the first {d:,} rows: dedup curate {len(g_dedup)} / datasketch "
        f"{len(ds_dedup)} drops, {len(g_dedup & ds_dedup)} shared; decontam {len(g_decon)} / "
        f"{len(ds_decon)}, {len(g_decon & ds_decon)} shared"
    )


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=5_000)
    parser.add_argument("--datasketch-rows", type=int, default=50_000)
    parser.add_argument("--corpora", type=Path, default=None)
    args = parser.parse_args()

    vocab, bench = _vocab_and_bench(args.corpora)
    texts, truth = build_answers(args.rows, vocab, bench)
    ids = [str(i) for i in range(len(texts))]
    print(f"{len(texts):,} answers, {len(bench):,} benchmark items; injected {truth}")

    dedup_cfg, decon_cfg = DedupConfig(near_threshold=0.7), DecontamConfig()
    from stillroom.curate import optimal_bands

    rows_d = 128 // optimal_bands(0.7, 128)
    rows_c = 128 // optimal_bands(0.5, 128)

    drops, t_dedup = _timed(find_duplicates, texts, ids, dedup_cfg, "answer")
    exact = sum(d.reason.startswith("exact") for d in drops.values())
    print(
        f"curate dedup:   {len(texts) / t_dedup:>10,.0f} rows/s  ({t_dedup:.1f} s; {exact:,} exact, {len(drops) - exact:,} near)"
    )
    decon = Decontaminator(bench, decon_cfg)
    leaks, t_decon = _timed(decon.check, texts)
    by = {
        s: sum(1 for d in leaks if d and d.stage == s)
        for s in ("decontam-ngram", "decontam-minhash")
    }
    print(f"curate decontam:{len(texts) / t_decon:>10,.0f} rows/s  ({t_decon:.1f} s; {by})")

    compare_datasketch(
        texts[: args.datasketch_rows], bench, decon, dedup_cfg,
        len(texts) / t_dedup, len(texts) / t_decon, 128 // rows_d, 128 // rows_c,
    )  # fmt: skip

    m = min(args.baseline_rows, len(texts))
    prefix = texts[:m]
    b_dedup, tb_dedup = _timed(baseline_dedup, prefix, 0.7, rows_d)
    b_decon, tb_decon = _timed(baseline_decontam, prefix, bench, 0.5, rows_c)
    f_dedup = set(find_duplicates(prefix, ids[:m], dedup_cfg, "answer"))
    f_decon = {i for i, d in enumerate(decon.check(prefix)) if d is not None}
    print(f"python dedup:   {m / tb_dedup:>10,.0f} rows/s  (first {m:,} rows, {tb_dedup:.1f} s)")
    print(f"python decontam:{m / tb_decon:>10,.0f} rows/s  (first {m:,} rows, {tb_decon:.1f} s)")
    print(
        f"ratio (curate rows/s / python rows/s): dedup {(len(texts) / t_dedup) / (m / tb_dedup):.1f}x, "
        f"decontam {(len(texts) / t_decon) / (m / tb_decon):.1f}x"
    )
    print(
        f"agreement on the first {m:,} rows: dedup curate {len(f_dedup)} / python {len(b_dedup)} drops, "
        f"{len(f_dedup & b_dedup)} shared; decontam {len(f_decon)} / {len(b_decon)}, {len(f_decon & b_decon)} shared"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
