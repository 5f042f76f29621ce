"""``stillroom curate dedup`` and ``decontam``: single checks on a JSONL or Parquet file, in
bounded memory (registered on the ``curate`` app by ``cli.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from stillroom.curate._cli_options import (
    _BenchmarkField,
    _benchmarks,
    _ChunkRows,
    _Engine,
    _How,
    _Master,
    _MemoryGb,
    _Ngram,
)

_Json = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]
_DropsOut = Annotated[
    Path | None, typer.Option("--out", help="Write one JSON line per dropped row here.")
]


def _report(summary: dict, drops: list, out: Path | None, as_json: bool, show: int) -> None:
    """Print a dedup or decontam summary (text or JSON), write the drops, show a few."""
    if out is not None:
        with out.open("w", encoding="utf-8") as handle:
            for row, rid, drop in drops:
                line = {"row": row, "id": rid, **drop.as_dict()}
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(", ".join(f"{k} {v}" for k, v in summary.items()))
    for _, rid, drop in drops[:show]:
        typer.echo(f"  {rid} matches {drop.matched} ({drop.reason})")


def dedup_command(
    path: Path = typer.Argument(..., help="JSONL or Parquet file."),
    field: str = typer.Option("prompt", "--field", help="Field (column) to deduplicate."),
    threshold: float = typer.Option(0.7, "--threshold", help="Near-duplicate Jaccard."),
    memory_gb: _MemoryGb = 2.0,
    how: _How = "auto",
    chunk_rows: _ChunkRows = None,
    workers: int = typer.Option(1, "--workers", help="Processes sketching chunks (disk path)."),
    engine: _Engine = "duckdb",
    master: _Master = "local[2]",
    as_json: _Json = False,
    out: _DropsOut = None,
    show: int = typer.Option(10, "--show", help="Print this many drops."),
) -> None:
    """Exact and near duplicates of one field of a JSONL or Parquet file, in bounded memory."""
    from stillroom.curate import DedupConfig
    from stillroom.curate._chunk_runs import dedup_chunks
    from stillroom.curate._inputs import read_field_chunks
    from stillroom.curate._spill import ScaleConfig

    config = DedupConfig(near_threshold=threshold)
    if engine == "spark":
        from stillroom.curate._spark_dedup import spark_dedup
        from stillroom.detect import spark_session

        run, drops = spark_dedup(spark_session(master), path, field, config, field)
        _report(run.as_dict(), drops, out, as_json, show)
        return
    if engine != "duckdb":
        raise typer.BadParameter(f"--engine must be duckdb or spark, got {engine!r}")
    scale = ScaleConfig(memory_gb=memory_gb, path=how, chunk_rows=chunk_rows, workers=workers)
    chosen = scale.choose(path.stat().st_size if path.exists() else 0)
    run, drops = dedup_chunks(
        read_field_chunks(path, field, scale.chunk), config, scale, field, chosen,
    )  # fmt: skip
    _report(run.as_dict(), drops, out, as_json, show)


def decontam_command(
    path: Path = typer.Argument(..., help="JSONL or Parquet file."),
    benchmark: list[Path] = typer.Option(..., "--benchmark", help="Benchmark file; repeatable."),
    field: str = typer.Option("prompt", "--field", help="Field (column) to check."),
    benchmark_field: _BenchmarkField = None,
    ngram: _Ngram = 13,
    threshold: float = typer.Option(0.5, "--threshold", help="Reworded-leak Jaccard."),
    embed_threshold: float | None = typer.Option(
        None, "--embed-threshold", help="Also paraphrases, by embedding cosine (curate-embed)."
    ),
    memory_gb: _MemoryGb = 2.0,
    as_json: _Json = False,
    out: _DropsOut = None,
    show: int = typer.Option(10, "--show", help="Print this many drops."),
) -> None:
    """Rows of a JSONL or Parquet file that leak benchmark items, by method, in chunks."""
    from stillroom.curate import DecontamConfig, Decontaminator
    from stillroom.curate._chunk_runs import decontam_chunks
    from stillroom.curate._inputs import read_field_chunks
    from stillroom.curate._spill import ScaleConfig

    dc = Decontaminator(
        _benchmarks(benchmark, benchmark_field),
        DecontamConfig(ngram=ngram, near_threshold=threshold, embed_threshold=embed_threshold),
    )
    chunk = ScaleConfig(memory_gb=memory_gb).chunk
    summary, drops = decontam_chunks(read_field_chunks(path, field, chunk), dc)
    _report(summary, drops, out, as_json, show)
