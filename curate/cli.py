"""``stillroom curate ...``: a thin Typer shell over the ``curate`` library.

``run`` and ``show`` work on the harvest store (a named curated set that ``train sft
--curated NAME`` trains on); ``jsonl`` does the same on JSONL files (harvest's export, or
flat ``{"id", "prompt", "answer"}`` rows); ``verify``, ``dedup`` and ``decontam`` are single
checks for looking at data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from stillroom._core.cli_edge import FriendlyErrors

app = typer.Typer(
    cls=FriendlyErrors,
    help="Verify, deduplicate and decontaminate training data (a harvest store or JSONL).",
    no_args_is_help=True,
)


# The options the commands share, declared once (each command keeps its default).
_Verifier = Annotated[
    str, typer.Option("--verifier", help="math, exact, regex, choice, code, judge, or none.")
]
_Benchmark = Annotated[
    list[Path],
    typer.Option("--benchmark", help="Benchmark file to decontaminate against; repeatable."),
]
_BenchmarkField = Annotated[
    str | None, typer.Option("--benchmark-field", help="Text field of benchmark rows.")
]
_PromptThreshold = Annotated[
    float, typer.Option("--prompt-threshold", help="Near-duplicate prompt Jaccard.")
]
_AnswerThreshold = Annotated[
    float, typer.Option("--answer-threshold", help="Near-duplicate answer Jaccard.")
]
_Ngram = Annotated[int, typer.Option("--ngram", help="Verbatim-leak n-gram size (0: off).")]
_DecontamThreshold = Annotated[
    float, typer.Option("--decontam-threshold", help="Reworded-leak Jaccard.")
]
_Keep = Annotated[str, typer.Option("--keep", help="Verified samples kept per prompt: one or all.")]
_DropAllPass = Annotated[
    bool, typer.Option("--drop-all-pass", help="Drop prompts every sample solved.")
]
_KeepAllFail = Annotated[
    bool, typer.Option("--keep-all-fail", help="Keep prompts no sample solved.")
]
_AnswerScope = Annotated[
    str, typer.Option("--answer-dedup-scope", help="Answers deduplicated per prompt, or global.")
]
_EmbedThreshold = Annotated[
    float | None,
    typer.Option(
        "--embed-threshold", help="Also drop paraphrases by embedding cosine (curate-embed)."
    ),
]


# --verifier judge: the judge model, asked through a harvest run of its own
_JudgeBaseUrl = Annotated[
    str | None, typer.Option("--judge-base-url", help="judge: the judge's OpenAI-compatible URL.")
]
_JudgeModel = Annotated[str | None, typer.Option("--judge-model", help="judge: the model to ask.")]
_JudgeDb = Annotated[
    Path | None,
    typer.Option("--judge-db", help="judge: DuckDB file for its replies (default: beside --db)."),
]
_JudgePolicy = Annotated[
    str | None, typer.Option("--judge-policy", help="judge: the policy of the judge's provider.")
]
_Accept = Annotated[
    list[str], typer.Option("--accept", help="judge: accept this policy's conditions; repeatable.")
]
_Purpose = Annotated[
    str, typer.Option("--purpose", help="judge: the declared use, recorded with its run.")
]
_JudgeKeyEnv = Annotated[
    str, typer.Option("--judge-api-key-env", help="judge: environment variable holding its key.")
]
_JudgeRpm = Annotated[
    int | None, typer.Option("--judge-rpm", help="judge: requests per minute (and the policy's).")
]


def _judge_options(base_url, model, db, policy, accept, purpose, key_env, rpm) -> dict:
    """The ``judge`` verifier's options from the command line (library checks the rest)."""
    if not base_url or not model:
        raise typer.BadParameter("--verifier judge needs --judge-base-url and --judge-model")
    return {
        "db": str(db), "base_url": base_url, "model": model, "policy": policy,
        "accept": list(accept), "purpose": purpose, "api_key_env": key_env, "rpm": rpm,
        "progress": True,
    }  # fmt: skip


def _benchmarks(paths: list[Path], field: str | None):
    from stillroom.curate import load_benchmark

    return [item for path in paths for item in load_benchmark(path, field)]


def _config(
    verifier,
    prompt_threshold,
    answer_threshold,
    ngram,
    decontam_threshold,
    keep,
    drop_all_pass,
    keep_all_fail,
    rel_tol=None,
    answer_scope="prompt",
    embed_threshold=None,
    judge=None,
):
    from stillroom.curate import CurateConfig, DecontamConfig, DedupConfig, SamplingConfig

    return CurateConfig(
        verifier=None if verifier == "none" else verifier,
        verifier_options=judge or ({"rel_tol": rel_tol} if rel_tol is not None else {}),
        prompt_dedup=DedupConfig(near_threshold=prompt_threshold),
        answer_dedup=DedupConfig(near_threshold=answer_threshold),
        answer_dedup_scope=answer_scope,
        decontam=DecontamConfig(
            ngram=ngram, near_threshold=decontam_threshold, embed_threshold=embed_threshold
        ),
        sampling=SamplingConfig(
            keep=keep, drop_all_fail=not keep_all_fail, drop_all_pass=drop_all_pass
        ),
    )


def _print_summary(summary: dict, where: str) -> None:
    typer.echo(f"kept {summary['kept']} of {summary['rows']} rows -> {where}")
    for stage, count in summary["by_stage"].items():
        typer.echo(f"  {stage:18s} {count}")


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
) -> None:
    """Curate every answer of a harvest into a named set (re-run to resume or refresh)."""
    from stillroom.curate import curate_store
    from stillroom.curate._jsonl import read_references

    refs = read_references(references, reference_field) if references else None
    judge = None
    if verifier == "judge":
        judge = _judge_options(
            judge_base_url, judge_model, judge_db or db.with_suffix(".judge.duckdb"),
            judge_policy, accept, purpose, judge_api_key_env, judge_rpm,
        )  # fmt: skip
    config = _config(
        verifier,
        prompt_threshold,
        answer_threshold,
        ngram,
        decontam_threshold,
        keep,
        drop_all_pass,
        keep_all_fail,
        rel_tol,
        answer_scope,
        embed_threshold,
        judge,
    )
    result = curate_store(
        db, name, references=refs, config=config,
        benchmarks=_benchmarks(benchmark, benchmark_field), benchmark_files=[str(b) for b in benchmark],
    )  # fmt: skip
    _print_summary(result.summary, f"curated set {name!r} in {db}")
    typer.echo(
        f"verdicts: {result.verdicts_new} new, {result.verdicts_reused} reused from the store"
    )


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


_MemoryGb = Annotated[
    float, typer.Option("--memory-gb", help="Memory budget; past it dedup spills to DuckDB.")
]
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


@app.command("dedup")
def dedup_command(
    path: Path = typer.Argument(..., help="JSONL or Parquet file."),
    field: str = typer.Option("prompt", "--field", help="Field (column) to deduplicate."),
    threshold: float = typer.Option(0.7, "--threshold", help="Near-duplicate Jaccard."),
    memory_gb: _MemoryGb = 2.0,
    how: str = typer.Option(
        "auto", "--path", help="auto (by input size), memory (rensa) or disk (DuckDB spill)."
    ),
    chunk_rows: int | None = typer.Option(None, "--chunk-rows", help="Rows per chunk."),
    workers: int = typer.Option(1, "--workers", help="Processes sketching chunks (disk path)."),
    engine: str = typer.Option("duckdb", "--engine", help="duckdb, or spark (the same SQL)."),
    master: str = typer.Option("local[2]", "--master", help="spark: local[N], spark://..., yarn."),
    as_json: _Json = False,
    out: _DropsOut = None,
    show: int = typer.Option(10, "--show", help="Print this many drops."),
) -> None:
    """Exact and near duplicates of one field of a JSONL or Parquet file, in bounded memory."""
    from stillroom.curate import DedupConfig
    from stillroom.curate._inputs import read_field_chunks
    from stillroom.curate._spill import ScaleConfig, dedup_chunks

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


@app.command("decontam")
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
    from stillroom.curate._inputs import read_field_chunks
    from stillroom.curate._spill import ScaleConfig, decontam_chunks

    dc = Decontaminator(
        _benchmarks(benchmark, benchmark_field),
        DecontamConfig(ngram=ngram, near_threshold=threshold, embed_threshold=embed_threshold),
    )
    chunk = ScaleConfig(memory_gb=memory_gb).chunk
    summary, drops = decontam_chunks(read_field_chunks(path, field, chunk), dc)
    _report(summary, drops, out, as_json, show)
