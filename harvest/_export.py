"""``export_dataset``: completions as chat ``messages`` for TRL, with a dataset card beside them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stillroom import policies
from stillroom.harvest._completions import (
    CompletionRow,
    connect,
    read_completions,
    render_assistant,
)
from stillroom.harvest._store import utcnow
from stillroom.harvest.errors import HarvestError, MissingDependencyError

if TYPE_CHECKING:
    import duckdb

FORMATS = ("jsonl", "parquet", "hf")
REASONING = ("field", "think", "drop")

_ORDER = ("created_at", "prompt_id", "sample_index")


@dataclass
class ExportResult:
    path: Path
    card_path: Path
    rows: int
    format: str


def _dialect_columns(rows: list[CompletionRow]) -> bool:
    """Whether an export carries the dialect columns (``reasoning_kind``,
    ``reasoning_blocks``, ``finish``, ``cached_input_tokens``): when any row has something
    the older columns do not say (raw reasoning blocks, cached input, a summary, a finish
    that differs from the raw one). Every row of one export has the same columns; an
    export of answers without any (older stores, fixtures) keeps its bytes."""
    return any(
        r.reasoning_blocks is not None
        or r.cached_input_tokens is not None
        or r.reasoning_kind == "summary"
        or (r.finish is not None and r.finish != r.finish_reason)
        for r in rows
    )


def _record(row: CompletionRow, mode: str, dialect_columns: bool = False) -> dict[str, Any]:
    chat = row.chat()
    if mode == "field":  # every message has the field, so the rows share one Arrow schema
        chat = [{**m, "reasoning_content": None} for m in chat]
    chat.append(render_assistant(row.content, row.reasoning, mode))
    extra = (
        {
            "reasoning_kind": row.kind_of_reasoning,
            "reasoning_blocks": row.reasoning_blocks,  # the provider's raw blocks, opaque JSON
            "finish": row.finish_or_raw,
            "cached_input_tokens": row.cached_input_tokens,
        }
        if dialect_columns
        else {}
    )
    return {
        "prompt_id": row.prompt_id,
        "sample_index": row.sample_index,
        "messages": chat,
        "reasoning": row.reasoning,
        **extra,
        "finish_reason": row.finish_reason,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "teacher_model": row.teacher_model,
        "requested_model": row.requested_model,
        "policy_id": row.policy_id,
        "policy_hash": row.policy_hash,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "request_params": row.request_params,
        "top_logprobs": row.top_logprobs,
    }


def export_dataset(
    db_path: Path | str,
    out_path: Path | str,
    format: str = "jsonl",
    *,
    reasoning: str = "field",
) -> ExportResult:
    """Write every completion as a chat example, plus a dataset card beside it.

    Each record has ``messages`` (the exact messages sent, then the assistant answer) and
    the provenance columns. ``reasoning``: ``"field"`` keeps it as the assistant message's
    ``reasoning_content`` (what reasoning chat templates render), ``"think"`` inlines a
    ``<think>`` block in the content, ``"drop"`` leaves it out of ``messages`` (the
    ``reasoning`` column always has it). ``top_logprobs`` stays a JSON string.

    The card goes to ``<out>/README.md`` for ``hf`` and ``<out stem>.card.md`` otherwise.
    """
    if format not in FORMATS:
        raise HarvestError(f"unknown export format {format!r}; choose one of {FORMATS}")
    if reasoning not in REASONING:
        raise HarvestError(f"unknown reasoning mode {reasoning!r}; choose one of {REASONING}")
    db_path, out = Path(db_path), Path(out_path)
    rows = read_completions(db_path, order_by=_ORDER)
    dialect_columns = _dialect_columns(rows)
    records = [_record(row, reasoning, dialect_columns) for row in rows]
    con = connect(db_path, read_only=True)
    try:
        runs = con.execute(
            "SELECT DISTINCT base_url, requested_model, policy_id, policy_hash FROM runs "
            "WHERE policy_id IS NOT NULL ORDER BY 1, 2"
        ).fetchall()
        accepted = run_acceptances(con)
    finally:
        con.close()
    if format == "hf":
        try:
            import datasets
        except ImportError:
            raise MissingDependencyError(
                "export --format hf needs the 'datasets' package: pip install 'stillroom[train]'"
            ) from None
        datasets.Dataset.from_list(records).save_to_disk(str(out))
        card = out / "README.md"
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        if format == "jsonl":
            with out.open("w", encoding="utf-8") as fh:
                for rec in records:
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(records), out)
        card = out.with_name(out.name.split(".")[0] + ".card.md")
    card.write_text(dataset_card(db_path, records, runs, accepted), encoding="utf-8")
    return ExportResult(path=out, card_path=card, rows=len(records), format=format)


def run_acceptances(con: duckdb.DuckDBPyConnection) -> list[policies.Acceptance]:
    """What each run accepted (user, time, declared purpose), from the run records."""
    rows = con.execute(
        "SELECT policy FROM runs WHERE policy IS NOT NULL ORDER BY started_at"
    ).fetchall()
    return policies.acceptances_from_records(r[0] for r in rows)


def read_acceptances(db_path: Path | str) -> list[policies.Acceptance]:
    """:func:`run_acceptances` of a harvest database, opened read-only."""
    con = connect(Path(db_path), read_only=True)
    try:
        return run_acceptances(con)
    finally:
        con.close()


def reasoning_kind_note(kinds: dict[str, int]) -> str | None:
    """The warning a card carries when its reasoning is a provider's summary."""
    if not kinds.get("summary"):
        return None
    return (
        "reasoning of kind `summary` is the provider's summary of the model's reasoning "
        "(OpenAI's Responses API, Claude 4's thinking, Gemini's thoughts), not the trace "
        "itself: a student trained on it learns to "
        "write summaries"
    )


def _reasoning_kind_lines(records: list[dict[str, Any]]) -> list[str]:
    kinds: dict[str, int] = {}
    for rec in records:
        kind = rec.get("reasoning_kind") or ("full" if rec["reasoning"] else "none")
        kinds[kind] = kinds.get(kind, 0) + 1
    text = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    note = reasoning_kind_note(kinds)
    return [f"- reasoning kinds: {text or '-'}", *([f"- note: {note}"] if note else [])]


def dataset_card(
    db_path: Path,
    records: list[dict[str, Any]],
    runs: list[tuple],
    acceptances: list[policies.Acceptance] = (),
) -> str:
    """Markdown: teachers, policies and their obligations, counts, dates, sampling params."""
    teachers: dict[str, int] = {}
    policy_ids: dict[str, set[str]] = {}
    params: set[str] = set()
    for rec in records:
        teachers[rec["teacher_model"] or "?"] = teachers.get(rec["teacher_model"] or "?", 0) + 1
        policy_ids.setdefault(rec["policy_id"], set()).add(rec["policy_hash"])
        params.add(rec["request_params"])
    dates = sorted(r["created_at"] for r in records if r["created_at"])
    lines = [
        f"# Dataset card: {db_path.stem}",
        "",
        f"Harvested with stillroom from teacher APIs; exported {utcnow():%Y-%m-%d %H:%M} UTC.",
        "No license is claimed here: the teachers' terms below govern what these outputs may "
        "be used for.",
        "",
        "## Counts",
        "",
        f"- examples: {len(records)}",
        f"- prompts: {len({r['prompt_id'] for r in records})}",
        f"- with reasoning: {sum(1 for r in records if r['reasoning'])}",
        *_reasoning_kind_lines(records),
        f"- answers cut at max_tokens: "
        f"{sum(1 for r in records if r.get('finish', r['finish_reason']) == 'length')}",
        f"- first answer: {dates[0] if dates else '-'}; last answer: {dates[-1] if dates else '-'}",
        "",
        "## Teachers",
        "",
        "| model served | examples |",
        "|---|---|",
        *[f"| `{name}` | {count} |" for name, count in sorted(teachers.items())],
        "",
        "| endpoint | model requested | policy | policy file sha256 |",
        "|---|---|---|---|",
        *[
            f"| {url} | `{model}` | `{pid}` | `{(phash or '-')[:16]}...` |"
            for url, model, pid, phash in runs
        ],
        "",
        "## Sampling parameters",
        "",
        *[f"- `{p}`" for p in sorted(params)],
        "",
    ]
    ob = policies.obligations(sorted(pid for pid in policy_ids if pid), acceptances=acceptances)
    return "\n".join(lines) + "\n" + ob.card_markdown()
