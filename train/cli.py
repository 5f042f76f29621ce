"""``stillroom train ...``: a thin Typer shell over the ``train`` library."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from stillroom._core.cli_edge import FriendlyErrors
from stillroom.train.errors import TrainConfigError

app = typer.Typer(
    cls=FriendlyErrors,
    help="Fine-tune a LoRA student on a harvest (TRL SFT), and evaluate it against the base.",
    no_args_is_help=True,
)
console = Console()

Opt = typer.Option


def _logging(quiet: bool) -> None:
    from rich.logging import RichHandler

    logger = logging.getLogger("stillroom.train")
    if not logger.handlers:
        logger.addHandler(RichHandler(console=console, show_path=False))
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


# `train sft` options are TrainConfig fields: the same name, or the one this table gives
# (tests/train/test_train_cli.py checks every field has its option, of the field's type,
# defaulting to None so that TrainConfig's own default applies).
FIELD_OF_OPTION = {
    "finish_reason": "finish_reasons",
    "lr_scheduler": "lr_scheduler_type",
    "epochs": "num_train_epochs",
    "batch_size": "per_device_train_batch_size",
    "grad_accum": "gradient_accumulation_steps",
}
NOT_FIELDS = frozenset({"config", "quiet"})  # progress follows --quiet
CLI_ONLY_FIELDS = frozenset({"progress"})


@app.command("sft")
def sft(
    db: Annotated[Path | None, Opt(help="harvest DuckDB file")] = None,
    out: Annotated[Path | None, Opt(help="output directory")] = None,
    base: Annotated[
        str | None, Opt(help="HF model dir or .gguf (default: SmolLM2-135M-Instruct)")
    ] = None,
    config: Annotated[Path | None, Opt(help="TOML file setting TrainConfig fields")] = None,
    reasoning: Annotated[str | None, Opt(help="think | drop | template")] = None,
    drop_system: Annotated[
        bool | None, Opt("--drop-system/--keep-system", help="train without the system prompt")
    ] = None,
    finish_reason: Annotated[
        list[str] | None, Opt(help="finish reasons kept (repeat; default stop; any = all)")
    ] = None,
    eval_fraction: Annotated[float | None, Opt(help="share of prompts held out")] = None,
    seed: Annotated[int | None, Opt()] = None,
    max_rows: Annotated[int | None, Opt(help="cap on training rows")] = None,
    curated: Annotated[
        str | None, Opt(help="train on a curated set (stillroom curate run --name NAME)")
    ] = None,
    name: Annotated[str | None, Opt(help="student name (a required prefix is applied)")] = None,
    lora_r: Annotated[int | None, Opt()] = None,
    lora_alpha: Annotated[int | None, Opt()] = None,
    lora_dropout: Annotated[float | None, Opt()] = None,
    target_modules: Annotated[str | None, Opt(help="all-linear or comma-separated names")] = None,
    merge: Annotated[
        bool | None, Opt("--merge/--no-merge", help="also write the merged model")
    ] = None,
    max_length: Annotated[int | None, Opt()] = None,
    packing: Annotated[bool | None, Opt("--packing/--no-packing")] = None,
    learning_rate: Annotated[float | None, Opt("--learning-rate", "--lr")] = None,
    lr_scheduler: Annotated[str | None, Opt(help="linear, cosine, constant, ...")] = None,
    warmup: Annotated[float | None, Opt(help="warmup steps (< 1: ratio)")] = None,
    epochs: Annotated[float | None, Opt()] = None,
    max_steps: Annotated[int | None, Opt(help="-1: use epochs")] = None,
    batch_size: Annotated[int | None, Opt(help="per-device train batch size")] = None,
    grad_accum: Annotated[int | None, Opt(help="gradient accumulation steps")] = None,
    gradient_checkpointing: Annotated[
        bool | None, Opt("--gradient-checkpointing/--no-gradient-checkpointing")
    ] = None,
    bf16: Annotated[
        bool | None, Opt("--bf16/--no-bf16", help="default: on where the GPU supports it")
    ] = None,
    logging_steps: Annotated[int | None, Opt()] = None,
    eval_steps: Annotated[
        int | None, Opt(help="evaluate every N steps (default: at the end)")
    ] = None,
    kd_alpha: Annotated[
        float | None, Opt(help="weight of sparse KD on stored top-k logprobs")
    ] = None,
    quiet: Annotated[bool, Opt("--quiet", "-q", help="no progress bars or info logs")] = False,
) -> None:
    """Fine-tune a LoRA student on the teacher answers in a harvest database."""
    options = dict(locals())  # every option, by name: each one not None sets its field
    from stillroom.train._config import TrainConfig
    from stillroom.train._sft import train_sft

    _logging(quiet)
    fields: dict[str, Any] = {
        FIELD_OF_OPTION.get(name, name): value
        for name, value in options.items()
        if name not in NOT_FIELDS
    }
    fields["finish_reasons"] = _finish_reasons(finish_reason)
    fields["target_modules"] = _targets(target_modules)
    fields["progress"] = False if quiet else None
    given = {k: v for k, v in fields.items() if v is not None}
    if config is not None:
        cfg = TrainConfig.from_toml(config, **given)
    elif db is None or out is None:
        raise TrainConfigError("--db and --out are required (or set them in --config FILE.toml)")
    else:
        cfg = TrainConfig(**given)
    result = train_sft(cfg)
    m = result.metrics
    console.print(
        f"[bold]{result.name}[/]: {m.get('global_step')} steps, train loss "
        f"{_num(m.get('train_loss'))}, eval loss {_num(m.get('eval_loss'))}, "
        f"{_num(m.get('train_tokens_per_second'), 1)} tokens/s; {m.get('loss_masking')}"
    )
    if cfg.kd_alpha > 0:
        console.print(f"sparse KD: {m.get('kd_mapped_positions')} teacher positions mapped")
    console.print(f"adapter: {result.adapter_dir}\nmodel card: {result.model_card_path}")
    if result.merged_dir:
        console.print(f"merged model: {result.merged_dir}")


@app.command("onpolicy")
def onpolicy(
    prompts: Annotated[Path, Opt(help="prompt file (JSONL {prompt} or {messages}, ...)")],
    db: Annotated[Path, Opt(help="on-policy DuckDB store (samples and scores; resumable)")],
    out: Annotated[Path, Opt(help="output directory")],
    teacher_base_url: Annotated[str, Opt(help="teacher's OpenAI-compatible base URL (.../v1)")],
    teacher_model: Annotated[str, Opt(help="teacher model name")],
    policy: Annotated[str | None, Opt(help="the teacher's policy id")] = None,
    accept: Annotated[
        list[str] | None, Opt(help="accept a conditional policy's conditions (repeat)")
    ] = None,
    purpose: Annotated[str | None, Opt(help="declared purpose (recorded)")] = None,
    teacher_system: Annotated[
        str | None, Opt(help="system prompt for the teacher only (context distillation)")
    ] = None,
    base: Annotated[str | None, Opt(help="HF model dir or .gguf (default: SmolLM2)")] = None,
    from_adapter: Annotated[Path | None, Opt(help="start from this LoRA adapter")] = None,
    name: Annotated[str | None, Opt(help="student name (a required prefix is applied)")] = None,
    steps: Annotated[int | None, Opt()] = None,
    prompts_per_step: Annotated[int | None, Opt()] = None,
    samples_per_prompt: Annotated[int | None, Opt()] = None,
    max_new_tokens: Annotated[int | None, Opt()] = None,
    temperature: Annotated[float | None, Opt(help="sampling temperature (1.0: unbiased)")] = None,
    learning_rate: Annotated[float | None, Opt("--learning-rate", "--lr")] = None,
    kl_coef: Annotated[float | None, Opt(help="weight of the reverse-KL advantage")] = None,
    eval_fraction: Annotated[float | None, Opt(help="share of prompts held out")] = None,
    heldout_samples: Annotated[
        int | None, Opt(help="samples per held-out prompt for the KL metric (default 4)")
    ] = None,
    heldout_prompts: Annotated[
        int | None,
        Opt(help="held-out prompts the KL metric uses (default 8, a fixed seeded choice; 0 = all)"),
    ] = None,
    score_batch: Annotated[
        int | None, Opt(help="samples per scoring request when the teacher takes ids (default 16)")
    ] = None,
    threads: Annotated[
        int | None, Opt(help="torch CPU threads (default 1: the teacher needs a core; 0 = torch's)")
    ] = None,
    seed: Annotated[int | None, Opt()] = None,
    lora_r: Annotated[int | None, Opt()] = None,
    lora_alpha: Annotated[int | None, Opt()] = None,
    rpm: Annotated[int | None, Opt(help="your own requests/minute limit on the teacher")] = None,
    tpm: Annotated[int | None, Opt(help="your own tokens/minute limit on the teacher")] = None,
    quiet: Annotated[bool, Opt("--quiet", "-q", help="no per-step logs")] = False,
) -> None:
    """On-policy distillation: the student samples, a served teacher scores every token."""
    options = dict(locals())
    from stillroom.train._onpolicy import train_onpolicy
    from stillroom.train._onpolicy_config import OnPolicyConfig

    _logging(quiet)
    given = {k: v for k, v in options.items() if k != "quiet" and v is not None}
    given |= {k: None for k in ("heldout_prompts", "threads") if given.get(k) == 0}
    given["progress"] = not quiet
    result = train_onpolicy(OnPolicyConfig(**given))
    m = result.metrics
    kl = m["heldout_reverse_kl"]
    console.print(
        f"[bold]{result.name}[/]: {m['steps']} steps; held-out reverse KL base "
        f"{_num(kl['base'])} -> student {_num(kl['student'])}; teacher requests "
        f"{m['teacher_requests']}, tokens scored {m['teacher_tokens_scored']}"
    )
    console.print(f"adapter: {result.adapter_dir}\nmodel card: {result.model_card_path}")


@app.command("eval")
def eval_(
    db: Annotated[Path, Opt(help="harvest DuckDB file (its held-out prompts are used)")],
    adapter: Annotated[Path, Opt(help="train sft --out directory or its adapter/")],
    out: Annotated[Path, Opt(help="JSON report to write")],
    limit: Annotated[int | None, Opt(help="at most N held-out prompts")] = None,
    base: Annotated[str | None, Opt(help="base model (default: the adapter's)")] = None,
    max_new_tokens: Annotated[int, Opt()] = 128,
    batch_size: Annotated[int, Opt()] = 8,
    task: Annotated[
        str | None, Opt(help="also score on a task with a curate verifier (math, exact, ...)")
    ] = None,
    references: Annotated[
        Path | None, Opt(help="JSONL of {id, answer}: the task's references")
    ] = None,
    reference_field: Annotated[
        str, Opt(help="field of --references holding the reference")
    ] = "answer",
    quiet: Annotated[bool, Opt("--quiet", "-q")] = False,
) -> None:
    """Generate with the base and the student on held-out prompts; score both against the teacher."""
    from stillroom.train._evaluate import EvalConfig, evaluate_student, render_report

    _logging(quiet)
    report = evaluate_student(
        EvalConfig(
            db=db,
            adapter=adapter,
            out=out,
            limit=limit,
            base=base,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            task=task,
            references=references,
            reference_field=reference_field,
        )
    )
    for table in render_report(report):
        console.print(table)
    console.print(f"report: {out}")


def _finish_reasons(values: list[str] | None) -> tuple[str, ...] | None:
    if not values:
        return None
    return () if "any" in values else tuple(values)


def _targets(value: str | None) -> str | list[str] | None:
    if value is None or value == "all-linear":
        return value
    return [v.strip() for v in value.split(",") if v.strip()]


def _num(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else json.dumps(value)
