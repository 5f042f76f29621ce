"""``stillroom curate ...``: a thin Typer shell over the ``curate`` library.

``run`` and ``show`` work on the harvest store (a named curated set that ``train sft
--curated NAME`` trains on); ``jsonl`` does the same on JSONL files (harvest's export, or
flat ``{"id", "prompt", "answer"}`` rows); ``verify``, ``dedup`` and ``decontam`` are single
checks for looking at data.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from stillroom._core.cli_edge import FriendlyErrors
from stillroom.curate._cli_options import (
    _Accept,
    _AnswerScope,
    _AnswerThreshold,
    _Benchmark,
    _BenchmarkField,
    _benchmarks,
    _ChunkRows,
    _config,
    _DecontamThreshold,
    _DropAllPass,
    _EmbedThreshold,
    _Engine,
    _How,
    _judge_options,
    _JudgeBaseUrl,
    _JudgeDb,
    _JudgeKeyEnv,
    _JudgeModel,
    _JudgePolicy,
    _JudgeRpm,
    _Keep,
    _KeepAllFail,
    _Master,
    _MemoryGb,
    _Ngram,
    _print_summary,
    _PromptThreshold,
    _Purpose,
    _Verifier,
)
from stillroom.curate._cli_scale import decontam_command, dedup_command

app = typer.Typer(
    cls=FriendlyErrors,
    help="Verify, deduplicate and decontaminate training data (a harvest store or JSONL).",
    no_args_is_help=True,
)


@app.command("run")
def run_command(
    db: Path = typer.Option(..., "--db", help="Harvest DuckDB file."),
    name: str = typer.Option(
        ..., "--name", help="Name of the curated set (train sft --curated NAME)."
    ),
    verifier: _Verifier = "math",
    references: Path | None = typer.Option(
        None, "--references", help="JSONL of {id, FIELD}: prompt id -> reference."
    ),
    reference_field: str = typer.Option(
        "answer", "--reference-field", help="Field of --references holding the reference."
    ),
    benchmark: _Benchmark = [],  # noqa: B006 (typer copies the default)
    benchmark_field: _BenchmarkField = None,
    prompt_threshold: _PromptThreshold = 0.7,
    answer_threshold: _AnswerThreshold = 0.7,
    ngram: _Ngram = 13,
    decontam_threshold: _DecontamThreshold = 0.5,
    rel_tol: float | None = typer.Option(
        None, "--rel-tol", help="math: relative tolerance (default 1e-6)."
    ),
    keep: _Keep = "all",
    drop_all_pass: _DropAllPass = False,
    keep_all_fail: _KeepAllFail = False,
    answer_scope: _AnswerScope = "prompt",
    embed_threshold: _EmbedThreshold = None,
    judge_base_url: _JudgeBaseUrl = None,
    judge_model: _JudgeModel = None,
    judge_db: _JudgeDb = None,
    judge_policy: _JudgePolicy = None,
    accept: _Accept = [],  # noqa: B006 (typer copies the default)
    purpose: _Purpose = "evaluation",
    judge_api_key_env: _JudgeKeyEnv = "OPENAI_API_KEY",
    judge_rpm: _JudgeRpm = None,
    memory_gb: _MemoryGb = 2.0,
    how: _How = "auto",
    chunk_rows: _ChunkRows = None,
    engine: _Engine = "duckdb",
    master: _Master = "local[2]",
) -> None:
    """Curate every answer of a harvest into a named set (re-run to resume or refresh).

    A harvest past --memory-gb (or --path disk) is streamed in chunks through the out-of-core
    dedup; a run killed half way, run again, redoes only the chunks it had not finished."""
    from stillroom.curate import curate_store
    from stillroom.curate._jsonl import read_references
    from stillroom.curate._spill import ScaleConfig

    refs = read_references(references, reference_field) if references else None
    judge = None
    if verifier == "judge":
        judge = _judge_options(
            judge_base_url, judge_model, judge_db or db.with_suffix(".judge.duckdb"),
            judge_policy, accept, purpose, judge_api_key_env, judge_rpm,
        )  # fmt: skip
    config = _config(
        verifier, prompt_threshold, answer_threshold, ngram, decontam_threshold,
        keep, drop_all_pass, keep_all_fail, rel_tol, answer_scope, embed_threshold, judge,
    )  # fmt: skip
    result = curate_store(
        db, name, references=refs, config=config,
        benchmarks=_benchmarks(benchmark, benchmark_field), benchmark_files=[str(b) for b in benchmark],
        scale=ScaleConfig(memory_gb=memory_gb, path=how, chunk_rows=chunk_rows),
        progress=_chunk_done, spark=_spark(engine, master),
    )  # fmt: skip
    _print_summary(result.summary, f"curated set {name!r} in {db} ({result.path} path)")
    typer.echo(
        f"verdicts: {result.verdicts_new} new, {result.verdicts_reused} reused from the store"
    )
    if result.chunks:
        (sb, sr), (vb, vr) = result.chunks["sketch"], result.chunks["verify"]
        typer.echo(
            f"resumed: sketch {sb} chunks done before, {sr} run; verify {vb} done before, {vr} run"
        )


def _spark(engine: str, master: str):
    """``--engine``: None for DuckDB, else a SparkSession on ``master``."""
    if engine not in ("duckdb", "spark"):
        raise typer.BadParameter(f"--engine must be duckdb or spark, got {engine!r}")
    if engine == "duckdb":
        return None
    from stillroom.detect import spark_session

    return spark_session(master)


def _chunk_done(stage: str, chunk: int, first_row: int, rows: int) -> None:
    typer.echo(f"{stage} chunk {chunk} done ({first_row}-{first_row + rows - 1})", err=True)


@app.command("show")
def show_command(
    db: Path = typer.Option(..., "--db", help="Harvest DuckDB file."),
    name: str = typer.Option(..., "--name", help="Curated set."),
    drops: int = typer.Option(
        10, "--drops", help="Print this many dropped answers with their reason."
    ),
) -> None:
    """A curated set's counts, thresholds, benchmarks, and whether the harvest grew since."""
    from stillroom.curate import read_curated
    from stillroom.harvest._completions import connect

    curated = read_curated(db, name)
    typer.echo(json.dumps(curated.card(), indent=2))
    if curated.changed:
        typer.echo(
            f"note: the harvest changed since curation ({curated.grown_by or 'some'} answers new or changed)"
        )
    con = connect(db, read_only=True)
    try:
        rows = con.execute(
            "SELECT idempotency_key, stage, reason, matched FROM curation_decisions "
            "WHERE curation = ? AND NOT keep ORDER BY idempotency_key LIMIT ?",
            [name, drops],
        ).fetchall()
    finally:
        con.close()
    for key, stage, reason, matched in rows:
        typer.echo(f"  {key}: {stage}: {reason}" + (f" (matches {matched})" if matched else ""))


@app.command("jsonl")
def jsonl_command(
    rows: Path = typer.Argument(
        ..., help="Answers to curate (JSONL: harvest export or id/prompt/answer)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Directory for curated.jsonl, decisions.jsonl, curation.json."
    ),
    verifier: _Verifier = "math",
    references: Path | None = typer.Option(
        None, "--references", help="JSONL of {id, answer} keyed by prompt id."
    ),
    row_reference_field: str = typer.Option(
        "reference", "--row-reference-field", help="Field of each row holding its reference."
    ),
    old_reference_field: str | None = typer.Option(
        None, "--reference-field", hidden=True, help="Deprecated: --row-reference-field."
    ),
    benchmark: _Benchmark = [],  # noqa: B006 (typer copies the default)
    benchmark_field: _BenchmarkField = None,
    prompt_threshold: _PromptThreshold = 0.7,
    answer_threshold: _AnswerThreshold = 0.7,
    ngram: _Ngram = 13,
    decontam_threshold: _DecontamThreshold = 0.5,
    keep: _Keep = "all",
    drop_all_pass: _DropAllPass = False,
    keep_all_fail: _KeepAllFail = False,
    answer_scope: _AnswerScope = "prompt",
    embed_threshold: _EmbedThreshold = None,
    judge_base_url: _JudgeBaseUrl = None,
    judge_model: _JudgeModel = None,
    judge_db: _JudgeDb = None,
    judge_policy: _JudgePolicy = None,
    accept: _Accept = [],  # noqa: B006 (typer copies the default)
    purpose: _Purpose = "evaluation",
    judge_api_key_env: _JudgeKeyEnv = "OPENAI_API_KEY",
    judge_rpm: _JudgeRpm = None,
) -> None:
    """Curate a JSONL file of answers into OUT (kept rows, a decision for every row, a card)."""
    from stillroom.curate import curate_rows
    from stillroom.curate._jsonl import read_references, read_rows, write_outputs

    if old_reference_field is not None:
        typer.echo(
            "warning: `curate jsonl --reference-field` is deprecated: use --row-reference-field "
            "(in `curate run` --reference-field is a field of --references)",
            err=True,
        )
        row_reference_field = old_reference_field
    refs = read_references(references) if references else None
    rows_in, originals = read_rows(rows, refs, row_reference_field)
    judge = None
    if verifier == "judge":
        judge = _judge_options(
            judge_base_url, judge_model, judge_db or out / "judge.duckdb",
            judge_policy, accept, purpose, judge_api_key_env, judge_rpm,
        )  # fmt: skip
    config = _config(
        verifier, prompt_threshold, answer_threshold, ngram, decontam_threshold,
        keep, drop_all_pass, keep_all_fail, None, answer_scope, embed_threshold, judge,
    )  # fmt: skip
    result = curate_rows(rows_in, config, _benchmarks(benchmark, benchmark_field))
    card = {
        "input": str(rows),
        "benchmarks": [str(b) for b in benchmark],
        "config": config.as_dict(),
    }
    write_outputs(out, result, originals, card)
    _print_summary(result.summary(), f"{out}/curated.jsonl")


@app.command("verify")
def verify_command(
    answer: str = typer.Argument(..., help="The answer text."),
    reference: str = typer.Option(
        ..., "--reference", help="The reference answer (or tests for code)."
    ),
    prompt: str = typer.Option(
        "", "--prompt", help="The question answered (the judge needs it; rules ignore it)."
    ),
    verifier: str = typer.Option(
        "math", "--verifier", help="math, exact, regex, choice, code or judge."
    ),
    judge_base_url: _JudgeBaseUrl = None,
    judge_model: _JudgeModel = None,
    judge_db: Path = typer.Option(
        Path("judge.duckdb"), "--judge-db", help="judge: DuckDB file for its replies."
    ),
    judge_policy: _JudgePolicy = None,
    accept: _Accept = [],  # noqa: B006 (typer copies the default)
    purpose: _Purpose = "evaluation",
    judge_api_key_env: _JudgeKeyEnv = "OPENAI_API_KEY",
    judge_rpm: _JudgeRpm = None,
) -> None:
    """Verify one answer and print the verdict as JSON."""
    from stillroom.curate import get_verifier

    options = {}
    if verifier == "judge":
        if not prompt:
            raise typer.BadParameter("--verifier judge needs --prompt (the question answered)")
        options = _judge_options(
            judge_base_url, judge_model, judge_db, judge_policy, accept, purpose,
            judge_api_key_env, judge_rpm,
        )  # fmt: skip
        options["progress"] = False
    verdict = get_verifier(verifier, **options).verify(prompt, answer, reference)
    typer.echo(json.dumps(verdict.as_dict()))


app.command("dedup")(dedup_command)
app.command("decontam")(decontam_command)
