"""``stillroom detect ...``: a thin Typer shell over the ``detect`` library."""

from __future__ import annotations

import gc
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console

from stillroom._core.cli_edge import FriendlyErrors

app = typer.Typer(
    cls=FriendlyErrors,
    help="Find distillation campaigns in API traffic logs (and simulate such logs).",
    no_args_is_help=True,
)
_console = Console(stderr=True)


class Engine(StrEnum):
    """``--engine``: where the row-level stages run."""

    duckdb = "duckdb"
    spark = "spark"


class Embedder(StrEnum):
    """``--embedder``: how prompts are embedded for coverage, provenance and content links."""

    static = "static"
    minilm = "minilm"
    hashing = "hashing"


class World(StrEnum):
    """``simulate --world``: the pre-issue-26 simulator or the current one."""

    frozen = "frozen"
    current = "current"


class Families(StrEnum):
    """``simulate --phrasing``: the training or the held-out families."""

    training = "training"
    held_out = "held_out"


@app.command("scan")
def scan_command(
    logs: list[str] = typer.Argument(..., help="Traffic files, globs or directories (schema v1)."),
    out: Path = typer.Option(..., "--out", help="Write the JSON report here."),
    html: Path | None = typer.Option(
        None, "--html", help="Also write a self-contained HTML report."
    ),
    csv: Path | None = typer.Option(None, "--csv", help="Also write one CSV row per account."),
    column_map: list[str] = typer.Option(
        [], "--map", help="Rename a column: SRC=DST (DST a schema-v1 name); repeatable."
    ),
    public_index: Path | None = typer.Option(
        None,
        "--public-index",
        help="Public prompts to report provenance against (text, one a line, or JSONL).",
    ),
    embedder: Embedder = typer.Option(
        Embedder.static, "--embedder", help="Prompt embeddings: static, minilm (slow) or hashing."
    ),
    threads: int | None = typer.Option(None, "--threads", help="DuckDB threads (default: all)."),
    memory_limit: str = typer.Option(
        "3GB", "--memory-limit", help="DuckDB memory limit (half of it after the row-level stages)."
    ),
    engine: Engine = typer.Option(
        Engine.duckdb, "--engine", help="Where row-level stages run: duckdb (embedded) or spark."
    ),
    master: str = typer.Option(
        "local[2]", "--master", help="Spark master (--engine spark): local[N], spark://..., yarn."
    ),
    driver_memory: str = typer.Option("2g", "--driver-memory", help="Spark driver memory."),
    state: Path | None = typer.Option(
        None,
        "--state",
        help="Incremental: fold these logs' per-day partials into this DuckDB state store, score its window.",
    ),
    window_days: int = typer.Option(
        30, "--window-days", help="Days the incremental window keeps (--state); older age out."
    ),
    late_days: int = typer.Option(
        2,
        "--late-days",
        help="Rows up to this many days older than the store's latest day may still arrive "
        "(--state); older ones for a day already folded are refused.",
    ),
) -> None:
    """Scan traffic logs and report campaigns, flagged accounts and why."""
    from stillroom.detect._report import console_lines
    from stillroom.detect._scan import ScanConfig, scan

    spark = None
    if engine is Engine.spark:
        from stillroom.detect._spark import spark_session

        spark = spark_session(master, driver_memory=driver_memory)
    config = ScanConfig(
        threads=threads, memory_limit=memory_limit, public_index=public_index, embedder=embedder
    )
    # the libraries just imported are long-lived: leave them out of the collector's full
    # passes (about half a second of a 0.5M-row scan; this process is the CLI's own)
    gc.freeze()
    result = scan(
        logs,
        column_map=column_map,
        config=config,
        progress=lambda stage, s: _console.print(f"{stage}: {s:.1f} s", markup=False),
        spark=spark,
        state=state,
        window_days=window_days,
        late_days=late_days,
    )
    result.write_json(out)
    if csv is not None:
        result.write_csv(csv)
    if html is not None:
        from stillroom.detect._html import write_html_report

        write_html_report(result.report, html)
    for line in console_lines(result.report):
        typer.echo(line)
    for example in result.report["summary"]["skipped_examples"][:5]:
        _console.print(f"skipped: {example}", markup=False)
    typer.echo(
        f"report: {out}" + (f", html: {html}" if html else "") + (f", csv: {csv}" if csv else "")
    )


@app.command("simulate")
def simulate_command(
    out: Path = typer.Option(
        ..., "--out", help="Traffic file: .parquet, .jsonl, .jsonl.gz or .csv."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same bytes)."),
    scale: float = typer.Option(
        1.0, "--scale", help="1.0 is about 155k rows (147k-164k for seeds 0-2); 0.1 about 30k."
    ),
    corpora: Path | None = typer.Option(
        None,
        "--corpora",
        help="Directory of prompt corpora (*.jsonl.gz) to draw real prompts from.",
    ),
    world: World = typer.Option(
        World.frozen,
        "--world",
        help="frozen: the pre-issue-26 world (scale figures above); current: adds products "
        "whose answers derive from their users' text and person-paced extraction (~190k rows).",
    ),
    phrasing: Families = typer.Option(
        Families.training,
        "--phrasing",
        help="Which families of wording, pacing and pools to draw from.",
    ),
) -> None:
    """Write simulated traffic with campaigns and hard negatives, plus its ground truth."""
    from stillroom.detect.simulator import simulate

    result = simulate(
        out, seed=seed, scale=scale, corpora=corpora, phrasing=str(phrasing), world=str(world)
    )
    typer.echo(f"wrote {result.rows:,} rows to {result.traffic_path}; truth: {result.truth_path}")
