"""Dedup and decontamination of a stream of ``(texts, ids)`` chunks: the runs ``curate
dedup`` and ``curate decontam`` make on a file, in memory or spilled (:mod:`._spill`), with
their summaries (counts, the path taken, time and peak memory)."""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from stillroom.curate._dedup import DedupConfig, find_duplicates
from stillroom.curate._drop import Drop
from stillroom.curate._sketch import sketch_stream
from stillroom.curate._spill import ScaleConfig, SpilledDedup


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class DedupRun:
    """What a dedup run did: counts, the path taken, time and peak memory."""

    rows: int
    exact: int
    near: int
    kept: int
    path: str
    seconds: float
    peak_rss_mb: float

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def dedup_chunks(
    chunks: Iterator[tuple[list[str], list[str]]],
    config: DedupConfig | None = None,
    scale: ScaleConfig | None = None,
    what: str = "prompt",
    path: str = "disk",
) -> tuple[DedupRun, list[tuple[int, str, Drop]]]:
    """Dedup rows given as ``(texts, ids)`` chunks on ``path`` (``memory`` or ``disk``): the run's
    summary and its drops ``(row, id, Drop)`` in row order."""
    start, scale = time.perf_counter(), scale or ScaleConfig()
    if path == "memory":
        texts: list[str] = []
        ids: list[str] = []
        for t, i in chunks:
            texts += t
            ids += i
        found = find_duplicates(texts, ids, config, what)
        drops = [(r, ids[r], found[r]) for r in sorted(found)]
        rows = len(texts)
    else:
        with SpilledDedup(config, scale, what) as dedup:
            for i, sketch in sketch_stream(chunks, dedup.spec, scale.workers):
                dedup.add_sketch(i, sketch)
            drops = list(dedup.drops())
            rows = dedup.rows
    exact = sum(d.score == 1.0 and d.reason.startswith("exact") for _, _, d in drops)
    run = DedupRun(
        rows, exact, len(drops) - exact, rows - len(drops), path,
        round(time.perf_counter() - start, 3), round(peak_rss_mb(), 1),
    )  # fmt: skip
    return run, drops


def decontam_chunks(
    chunks: Iterator[tuple[list[str], list[str]]], decontaminator: Any
) -> tuple[dict[str, Any], list[tuple[int, str, Drop]]]:
    """Decontaminate rows given as ``(texts, ids)`` chunks: a summary and the drops.

    Whether a row leaks depends only on the row and the benchmark items (a 13-gram lookup, an
    LSH query against the items), never on other rows, so there is nothing to spill: memory is
    the benchmark's index plus one chunk, and the decisions are those of one big ``check``."""
    start, rows = time.perf_counter(), 0
    drops: list[tuple[int, str, Drop]] = []
    for texts, ids in chunks:
        for pos, drop in enumerate(decontaminator.check(texts)):
            if drop is not None:
                drops.append((rows + pos, ids[pos], drop))
        rows += len(texts)
    by_stage = {s: 0 for s in ("decontam-ngram", "decontam-minhash", "decontam-embedding")}
    for _, _, drop in drops:
        by_stage[drop.stage] = by_stage.get(drop.stage, 0) + 1
    summary = {
        "rows": rows, **{k.removeprefix("decontam-"): v for k, v in by_stage.items()},
        "kept": rows - len(drops), "path": "chunks",
        "seconds": round(time.perf_counter() - start, 3), "peak_rss_mb": round(peak_rss_mb(), 1),
    }  # fmt: skip
    return summary, drops
