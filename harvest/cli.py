"""``stillroom harvest ...``: a thin Typer shell over the ``harvest`` library."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from stillroom._core.cli_edge import FriendlyErrors, run_app
from stillroom.harvest._header_profiles import PROFILES

app = typer.Typer(
    cls=FriendlyErrors,
    help="Harvest teacher answers (chat, Responses, Anthropic or Gemini API) into DuckDB.",
    no_args_is_help=True,
)


class Mode(StrEnum):
    """``--mode``: choices, so ``--help`` lists them and a typo fails before any work."""

    sync = "sync"
    batch = "batch"
    batch_file = "batch-file"


class Api(StrEnum):
    """``--api``: the API dialects (``stillroom.harvest._dialect.API_NAMES``)."""

    chat = "chat"
    responses = "responses"
    anthropic = "anthropic"
    gemini = "gemini"


# ``--limits-profile``: the header profiles harvest knows (``none``: ignore the headers)
LimitsProfile = StrEnum("LimitsProfile", {name: name for name in PROFILES})


@app.command()
def run(
    prompts: Path = typer.Option(
        ..., help="Prompt file: .jsonl, .json (array), .csv, .parquet or .txt (one a line)."
    ),
    db: Path = typer.Option(..., help="DuckDB file (created, or resumed)."),
    base_url: str = typer.Option(
        ..., help="The base URL the provider's SDK takes, e.g. http://host/v1."
    ),
    api: Api | None = typer.Option(
        None, help="API dialect (default: anthropic/gemini by their native host, else chat)."
    ),
    model: str = typer.Option(..., help="Model to ask for."),
    policy: str | None = typer.Option(None, help="Policy id (default: match URL and model)."),
    accept: list[str] = typer.Option([], help="Accept this policy's conditions (repeatable)."),
    purpose: str | None = typer.Option(None, help="Declared purpose, kept in the run record."),
    api_key_env: str | None = typer.Option(
        None, help="Env var holding the API key (default per API: OPENAI_API_KEY, ...)."
    ),
    rpm: int | None = typer.Option(None, help="Requests per minute (else learned)."),
    tpm: int | None = typer.Option(None, help="Tokens per minute (else learned)."),
    rpd: int | None = typer.Option(None, help="Requests per UTC day; stops, resumes next run."),
    concurrency: int = typer.Option(32, help="Requests in flight at most."),
    max_tokens: int = typer.Option(512, help="Most tokens the teacher writes per answer."),
    temperature: float = typer.Option(0.7, help="Sampling temperature sent to the teacher."),
    top_p: float | None = typer.Option(None, help="Nucleus sampling top_p (default: unsent)."),
    reasoning_effort: str | None = typer.Option(
        None, help="Reasoning effort (none|minimal|low|medium|high|xhigh; unsent by default)."
    ),
    thinking_budget: int | None = typer.Option(
        None, help="Thinking tokens (anthropic budget_tokens, gemini thinkingBudget)."
    ),
    extra_body: str | None = typer.Option(
        None, help="JSON object merged into every request body (null removes a field)."
    ),
    seed: int | None = typer.Option(None, help="Sampling seed (default: unsent)."),
    stop: list[str] = typer.Option([], help="Stop sequence (repeatable; default: none)."),
    samples: int = typer.Option(1, help="Answers per prompt."),
    top_logprobs: int | None = typer.Option(None, help="Keep the top K logprobs per token."),
    system: str | None = typer.Option(None, help="System message for prompts without one."),
    max_wait: float = typer.Option(300.0, help="Longest wait in seconds (retry-after too)."),
    retry_failed: bool = typer.Option(False, help="Retry prompts recorded as failures."),
    max_spend: float | None = typer.Option(None, help="Spend cap in USD (policy prices)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    mode: Mode = typer.Option(
        Mode.sync,
        help="sync, batch (the Batch API; --api anthropic: Message Batches) or batch-file "
        "(JSONL for an offline run).",
    ),
    poll_interval: float = typer.Option(30.0, help="Batch: seconds between polls (grows)."),
    max_poll: float | None = typer.Option(
        None, help="Batch: stop polling after SECONDS (0: submit, then stop; rerun collects)."
    ),
    batch_max_requests: int = typer.Option(50_000, help="Batch: requests per input file."),
    batch_max_mb: float = typer.Option(200.0, help="Batch: MB per input file."),
    batch_dir: Path | None = typer.Option(None, help="batch-file: where the JSONL goes."),
    batch_output: list[Path] = typer.Option([], help="batch-file: an output file to ingest."),
    limits_profile: LimitsProfile | None = typer.Option(
        None, help="What x-ratelimit-* headers mean (default: matched from --base-url)."
    ),
) -> None:
    """Send every prompt not yet answered; re-running the same command resumes."""
    from stillroom.harvest import HarvestConfig, run_harvest

    cfg = HarvestConfig(
        prompts=prompts, db=db, base_url=base_url, model=model, policy=policy,
        accept=tuple(accept), purpose=purpose, api_key_env=api_key_env, rpm=rpm, tpm=tpm,
        rpd=rpd, concurrency=concurrency, max_tokens=max_tokens, temperature=temperature,
        top_p=top_p, samples=samples, top_logprobs=top_logprobs, system=system,
        max_wait=max_wait, retry_failed=retry_failed, max_spend_usd=max_spend,
        mode=mode.value, poll_interval=poll_interval, max_poll_s=max_poll,
        batch_max_requests=batch_max_requests,
        batch_max_bytes=int(batch_max_mb * 1024 * 1024), batch_dir=batch_dir,
        batch_output=tuple(batch_output),
        limits_profile=limits_profile.value if limits_profile else None,
        api=api.value if api else None, reasoning_effort=reasoning_effort,
        thinking_budget=thinking_budget, extra_body=_json_object(extra_body, "--extra-body"),
        seed=seed, stop=tuple(stop),
    )  # fmt: skip
    result = run_harvest(cfg, progress=progress)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), default=str))
        return
    console = Console()
    console.print(
        f"{result.completed} completed, {result.failed} failed, {result.pending} pending "
        f"({result.already_done} already done) in {result.elapsed_s:.1f}s, "
        f"{result.completions_per_s:.1f}/s, {result.requests} requests, "
        f"{result.rate_limited} answered 429, {result.length_stops} stopped at the "
        f"--max-tokens limit -> {db}"
    )
    if result.spend_usd is not None and result.est_spend_usd is not None:  # batch, priced
        console.print(
            f"spend at batch prices: ${result.spend_usd:.4f} "
            f"(worst case reserved before submission: ${result.est_spend_usd:.4f})"
        )
    elif result.spend_usd is not None:
        console.print(f"spend: ${result.spend_usd:.4f}")
    if result.stopped_reason:
        console.print(f"[yellow]stopped ({result.stopped_reason}):[/] {result.message}")
    if result.stopped_reason == "unsupported_option":  # rerunning as is cannot help
        raise typer.Exit(1)


def _json_object(text: str | None, option: str) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint=option) from None
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint=option)
    return value


@app.command()
def cancel(
    db: Path = typer.Option(..., help="DuckDB file whose batches to cancel."),
    base_url: str = typer.Option(..., help="The base URL the batches went to."),
    api: Api | None = typer.Option(None, help="The API the run used (default: from the URL)."),
    api_key_env: str | None = typer.Option(
        None, help="Env var holding the API key (default: the API's usual one)."
    ),
) -> None:
    """Cancel this database's unfinished batches, also while a run is polling them (that
    run stores what they answered and stops `cancelled`)."""
    import asyncio

    from stillroom.harvest._batch_run import cancel_batches
    from stillroom.harvest._dialect import infer_api

    name = api.value if api else infer_api(base_url)
    cancelled = asyncio.run(cancel_batches(db, base_url, api_key_env=api_key_env, api=name))
    for batch in cancelled:
        typer.echo(f"{batch['id']} {batch['status']}")
    typer.echo(
        f"{len(cancelled)} batch(es) cancelled; `harvest run` stores what they answered "
        "and, run again, submits the rest"
    )


@app.command()
def status(
    db: Path = typer.Option(..., help="DuckDB file written by harvest run."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Done / failed / pending, tokens, 429s and throughput."""
    from stillroom.harvest import harvest_status

    st = harvest_status(db)
    if as_json:
        typer.echo(json.dumps(st.to_dict(), default=str))
        return
    table = Table(title=str(db), show_header=False)
    rate = f"{st.throughput:.1f}/s" if st.throughput else "-"
    for key, value in (
        ("done", st.done),
        ("failed", st.failed),
        ("pending", st.pending),
        (
            "tokens in / out / reasoning",
            f"{st.prompt_tokens} / {st.completion_tokens} / {st.reasoning_tokens}",
        ),
        ("requests (today)", f"{st.requests} ({st.requests_today})"),
        ("answered 429", st.rate_limited),
        ("stopped at --max-tokens", st.length_stops),
        ("reasoning kinds", ", ".join(f"{k} ({v})" for k, v in st.reasoning_kinds.items()) or "-"),
        ("last run throughput", rate),
        ("teachers", ", ".join(f"{k} ({v})" for k, v in st.teachers.items()) or "-"),
        ("policies", ", ".join(f"{k} ({v})" for k, v in st.policies.items()) or "-"),
        ("spend (actual)", "-" if st.spend_usd is None else f"${st.spend_usd:.4f}"),
        (
            "spend (batch worst case)",
            "-" if st.est_spend_usd is None else f"${st.est_spend_usd:.4f}",
        ),
        ("batch files", ", ".join(f"{k} ({v})" for k, v in st.batches.items()) or "-"),
    ):
        table.add_row(key, str(value))
    if st.last_run:
        run_ = st.last_run
        table.add_row(
            "last run", f"{run_['run_id']} {run_['status']} {run_['stopped_reason'] or ''}"
        )
        if run_["message"]:
            table.add_row("", run_["message"])
    for reason, count in st.failure_reasons.items():
        table.add_row("failure", f"{count} x {reason}")
    Console().print(table)


@app.command()
def export(
    db: Path = typer.Option(..., help="DuckDB file written by harvest run."),
    out: Path = typer.Option(..., help="Output file (jsonl/parquet) or directory (hf)."),
    format: str = typer.Option("jsonl", help="jsonl | parquet | hf (datasets.save_to_disk)."),
    reasoning: str = typer.Option("field", help="field | think | drop: reasoning in messages."),
) -> None:
    """Write chat examples for TRL, and a dataset card beside them."""
    from stillroom.harvest import export_dataset

    res = export_dataset(db, out, format=format, reasoning=reasoning)
    typer.echo(f"{res.rows} examples -> {res.path} (card: {res.card_path})")


def main() -> None:
    """``python -m stillroom.harvest.cli``: the harvest commands alone, behind the same error edge as
    the root CLI (one ``Error: ...`` line and exit 1; Ctrl-C exits 130)."""
    run_app(app)


if __name__ == "__main__":
    main()
