"""The options ``stillroom curate`` commands share, declared once (each command keeps its
default), and the small helpers that turn them into library configs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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


# out-of-core options (curate run, dedup, decontam)
_MemoryGb = Annotated[
    float, typer.Option("--memory-gb", help="Memory budget; past it dedup spills to DuckDB.")
]
_How = Annotated[
    str, typer.Option("--path", help="auto (by input size), memory (rensa) or disk (DuckDB spill).")
]
_ChunkRows = Annotated[int | None, typer.Option("--chunk-rows", help="Rows per chunk.")]
_Engine = Annotated[str, typer.Option("--engine", help="duckdb, or spark (the same SQL).")]
_Master = Annotated[str, typer.Option("--master", help="spark: local[N], spark://..., yarn.")]
