"""Model card and NOTICE for a trained student, from the teachers' policy obligations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def apply_name_prefix(name: str, prefix: str | None) -> str:
    """Prefix the model name as a teacher's terms require (``Llama`` -> ``Llama-my-model``)."""
    if not prefix or name.lower().startswith(prefix.lower()):
        return name
    sep = "" if prefix.endswith(("-", "_", " ", "/")) else "-"
    return f"{prefix}{sep}{name}"


def write_card(
    out: Path,
    *,
    name: str,
    base: str,
    base_dir: Path,
    db: Path,
    data_summary: dict[str, Any],
    metrics: dict[str, Any],
    config: dict[str, Any],
    obligations: Any,
    sections: list[str] | None = None,
) -> tuple[Path, Path | None]:
    """Write ``README.md`` (the model card) and ``NOTICE`` (when there are notices) in ``out``.

    ``sections``: the card's description, data and training lines, in place of ``train
    sft``'s (``train onpolicy`` gives its own); the header and the obligations are shared."""
    section = obligations.card_markdown()
    head = [
        "---",
        "library_name: peft",
        "tags: [stillroom, distillation, lora, trl, sft]",
        f"base_model: {json.dumps(base)}",
        "---",
        "",
        f"# {name}",
        "",
    ]
    body = sections or [
        f"A LoRA adapter on `{base}` trained by `stillroom train sft` (TRL SFTTrainer + PEFT) "
        "on answers a teacher model gave, harvested with `stillroom harvest`.",
        "",
        "## Data",
        "",
        f"- Harvest database: `{db}` (view `completions`)",
        f"- Teachers: {', '.join(f'`{t}`' for t in data_summary.get('teacher_models', [])) or 'unknown'}",
        f"- Policies: {', '.join(f'`{p}`' for p in data_summary.get('policy_ids', [])) or 'none recorded'}",
        f"- Rows read: {data_summary.get('rows')}, kept: {data_summary.get('kept')} "
        f"(dropped: finish reason {data_summary.get('dropped_finish_reason')}, empty "
        f"{data_summary.get('dropped_empty')}, duplicate {data_summary.get('dropped_duplicate')}, "
        f"policy forbids training {data_summary.get('dropped_policy_forbidden')})",
        f"- Split by prompt: {data_summary.get('train_rows')} train rows "
        f"({data_summary.get('train_prompts')} prompts), {data_summary.get('eval_rows')} eval rows "
        f"({data_summary.get('eval_prompts')} prompts)",
        f"- Reasoning: `{config.get('reasoning')}`; system prompt "
        f"{'dropped (context distillation)' if config.get('drop_system') else 'kept'}",
        *_reasoning_kind_lines(data_summary.get("reasoning_kinds") or {}),
        "",
        *_curation_lines(data_summary.get("curation")),
        "## Training",
        "",
        f"- Loss: {metrics.get('loss_masking')}",
        f"- LoRA r={config.get('lora_r')} alpha={config.get('lora_alpha')} "
        f"dropout={config.get('lora_dropout')} targets={config.get('target_modules')}",
        f"- Sparse KD alpha: {config.get('kd_alpha')} (mapped positions: "
        f"{metrics.get('kd_mapped_positions', 0)})",
        f"- Steps: {metrics.get('global_step')}, train loss: {_fmt(metrics.get('train_loss'))}, "
        f"eval loss: {_fmt(metrics.get('eval_loss'))}",
        "",
    ]
    lines = [*head, *body, section.rstrip(), ""]
    if obligations.name_prefix:
        lines += [f"Name prefix required by the teachers' terms: `{obligations.name_prefix}`", ""]
    # card_markdown() lists the conflicts between the teachers' policies it has; list here
    # only those it does not show (so each conflict appears once)
    unlisted = [c for c in obligations.conflicts if c not in section]
    if unlisted:
        lines += ["### Conflicts", ""] + [f"- ⚠ {c}" for c in unlisted] + [""]
    card = out / "README.md"
    card.write_text("\n".join(lines))
    notice_text = obligations.notice_text()  # the notices and the attributions, each once
    notice = None
    if notice_text:
        notice = out / "NOTICE"
        notice.write_text(notice_text)
    return card, notice


def _curation_lines(curation: dict[str, Any] | None) -> list[str]:
    """The model card's record of the curated set trained on (``train sft --curated``)."""
    if not curation:
        return []
    summary = curation.get("summary", {})
    stages = ", ".join(f"{k} {v}" for k, v in summary.get("by_stage", {}).items())
    changed = " (the harvest changed after curation)" if curation.get("store_changed_since") else ""
    return [
        "## Curation",
        "",
        f"- Curated set: `{curation.get('name')}`, kept {summary.get('kept')} of "
        f"{summary.get('rows')} answers; per stage: {stages}",
        f"- Verifiers: {', '.join(summary.get('verifiers', [])) or 'none'}",
        f"- Thresholds: {json.dumps(curation.get('thresholds'))}; sampling: "
        f"{json.dumps(curation.get('sampling'))}",
        f"- Benchmarks decontaminated against: "
        f"{', '.join(f'`{b}`' for b in curation.get('benchmarks', [])) or 'none'}",
        f"- Store fingerprint at curation: `{curation.get('store_fingerprint')}` "
        f"({curation.get('store_rows')} answers){changed}",
        "",
    ]


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _reasoning_kind_lines(kinds: dict[str, int]) -> list[str]:
    """Which kind of reasoning the examples carry (full trace, provider summary, none)."""
    from stillroom.harvest import reasoning_kind_note

    if not kinds:
        return []
    text = ", ".join(f"{kind} {count}" for kind, count in kinds.items())
    note = reasoning_kind_note(kinds)
    return [f"- Reasoning kinds: {text}", *([f"- Note: {note}"] if note else [])]
