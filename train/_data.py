"""Training rows from a harvest database: read, filter, deduplicate, split by prompt.

Reads the harvest through its contract (``stillroom.harvest.read_completions``, read-only), keeps
the finish reasons asked for, drops empty and duplicate answers and rows whose teacher's terms forbid training,
and splits train/eval deterministically by the prompt the *student* sees, so the same
prompt (every sample of it, whatever its ``prompt_id``) is always on one side only.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stillroom.harvest import (
    HarvestError,
    prompt_key,
    read_acceptances,
    read_completions,
    render_assistant,
)
from stillroom.train.errors import PolicyForbidsTraining, TrainDataError

if TYPE_CHECKING:
    from stillroom.harvest import CompletionRow

REASONING_MODES = (
    "think",
    "drop",
    "template",
)  # stillroom.harvest.render_assistant's modes train uses


@dataclass(frozen=True)
class Example:
    """One training row: what the student sees and what it should answer."""

    prompt_id: str
    sample_index: int
    prompt: list[dict[str, Any]]
    completion: list[dict[str, Any]]
    prompt_key: str
    content: str
    reasoning: str | None
    policy_id: str | None
    teacher_model: str | None
    top_logprobs: list[dict[str, Any]] | None = None
    reasoning_kind: str = "none"  # full | summary | none (the harvest row's)

    @property
    def target_text(self) -> str:
        """The assistant text the student is trained on (reasoning included when kept)."""
        return self.completion[0]["content"]

    def to_record(self, with_logprobs: bool = False) -> dict[str, Any]:
        """The TRL prompt-completion (conversational) record."""
        record: dict[str, Any] = {"prompt": self.prompt, "completion": self.completion}
        if with_logprobs:
            record["teacher_logprobs"] = (
                json.dumps(self.top_logprobs) if self.top_logprobs else None
            )
        return record


@dataclass
class Dataset:
    """Filtered, split rows and the account of what was dropped and why."""

    train: list[Example]
    eval: list[Example]
    counts: dict[str, int] = field(default_factory=dict)
    policy_ids: tuple[str, ...] = ()
    teacher_models: tuple[str, ...] = ()
    acceptances: tuple[Any, ...] = ()  # stillroom.policies.Acceptance of the kept rows' runs
    curation: dict[str, Any] | None = None  # the curated set trained on (curate's card)

    def summary(self) -> dict[str, Any]:
        return {
            **({"curation": self.curation} if self.curation else {}),
            **self.counts,
            "train_rows": len(self.train),
            "eval_rows": len(self.eval),
            "train_prompts": len({e.prompt_key for e in self.train}),
            "eval_prompts": len({e.prompt_key for e in self.eval}),
            "policy_ids": list(self.policy_ids),
            "teacher_models": list(self.teacher_models),
            "reasoning_kinds": dict(
                sorted(Counter(e.reasoning_kind for e in self.train + self.eval).items())
            ),
        }


def read_rows(db: Path, *, with_logprobs: bool) -> list[CompletionRow]:
    """Every row of the harvest's ``completions`` view (the contract's reader, read-only)."""
    try:
        return read_completions(db, with_logprobs=with_logprobs)
    except HarvestError as exc:  # no such file, not a harvest, busy (naming the holder)
        raise TrainDataError(str(exc)) from exc


def _parse_messages(raw: Any, where: str) -> list[dict[str, Any]]:
    try:
        messages = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise TrainDataError(f"{where}: field `messages` is not JSON ({exc})") from exc
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and "role" in m and "content" in m for m in messages
    ):
        raise TrainDataError(f"{where}: field `messages` must be a list of {{role, content}}")
    return messages


def _parse_logprobs(raw: Any, where: str) -> list[dict[str, Any]] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise TrainDataError(f"{where}: field `top_logprobs` is not JSON ({exc})") from exc
    if not isinstance(value, list):
        raise TrainDataError(f"{where}: field `top_logprobs` must be a list, one entry per token")
    return value or None


def completion_message(content: str, reasoning: str | None, mode: str) -> dict[str, Any]:
    """The assistant message train fits for one reasoning mode: the contract's renderer,
    on the reasoning with its surrounding whitespace trimmed."""
    return render_assistant(content, (reasoning or "").strip() or None, mode)


def build_examples(
    rows: Iterable[CompletionRow],
    *,
    db: Path,
    reasoning: str,
    drop_system: bool,
    finish_reasons: Sequence[str] | None,
    forbidden: frozenset[str] = frozenset(),
) -> tuple[list[Example], dict[str, int]]:
    """Filter and convert rows; ``counts`` says how many each filter dropped."""
    counts = {"rows": 0, "dropped_finish_reason": 0, "dropped_empty": 0}
    counts |= {"dropped_duplicate": 0, "dropped_policy_forbidden": 0}
    seen: set[tuple[str, str]] = set()
    examples: list[Example] = []
    for row in rows:
        counts["rows"] += 1
        where = f"{db}: row prompt_id={row.prompt_id!r} sample_index={row.sample_index}"
        if finish_reasons and row.finish_or_raw not in finish_reasons:
            counts["dropped_finish_reason"] += 1
            continue
        content = (row.content or "").strip()
        if not content:
            counts["dropped_empty"] += 1
            continue
        if row.policy_id in forbidden:
            counts["dropped_policy_forbidden"] += 1
            continue
        messages = _parse_messages(row.messages, where)
        prompt = [m for m in messages if not (drop_system and m["role"] == "system")]
        if not prompt:
            raise TrainDataError(f"{where}: no message left to prompt with after --drop-system")
        key = prompt_key(prompt)
        completion = completion_message(content, row.reasoning, reasoning)
        if (key, completion["content"]) in seen:
            counts["dropped_duplicate"] += 1
            continue
        seen.add((key, completion["content"]))
        examples.append(
            Example(
                prompt_id=str(row.prompt_id),
                sample_index=int(row.sample_index or 0),
                prompt=prompt,
                completion=[completion],
                prompt_key=key,
                content=content,
                reasoning=row.reasoning,
                policy_id=row.policy_id,
                teacher_model=row.teacher_model,
                top_logprobs=_parse_logprobs(row.top_logprobs, where),
                reasoning_kind=row.kind_of_reasoning,
            )
        )
    counts["kept"] = len(examples)
    return examples, counts


def split_by_prompt(
    examples: Sequence[Example], *, eval_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Deterministic train/eval split by prompt key; a prompt never lands on both sides."""
    keys = sorted({e.prompt_key for e in examples})
    if eval_fraction <= 0 or len(keys) < 2:
        return list(examples), []

    def score(key: str) -> float:
        return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:15], 16) / 16**15

    ranked = sorted(keys, key=score)
    n_eval = sum(1 for k in keys if score(k) < eval_fraction)
    n_eval = min(max(n_eval, 1), len(keys) - 1)
    eval_keys = set(ranked[:n_eval])
    train = [e for e in examples if e.prompt_key not in eval_keys]
    held = [e for e in examples if e.prompt_key in eval_keys]
    return train, held


def load_dataset(
    db: Path,
    *,
    reasoning: str = "think",
    drop_system: bool = False,
    finish_reasons: Sequence[str] | None = ("stop",),
    eval_fraction: float = 0.1,
    seed: int = 0,
    with_logprobs: bool = False,
    max_rows: int | None = None,
    curated: str | None = None,
) -> Dataset:
    """Read, filter and split a harvest; raise :class:`TrainDataError` when nothing is left.

    ``curated`` keeps only the answers a curated set of that name kept (``curate``)."""
    from stillroom.policies import obligations

    rows = read_rows(db, with_logprobs=with_logprobs)
    if not rows:
        raise TrainDataError(f"{db}: the `completions` view has no rows (nothing harvested yet)")
    curation, total = None, len(rows)
    if curated is not None:
        rows, curation = _curated_rows(db, curated, rows)
    ids = sorted({r.policy_id for r in rows if r.policy_id})
    forbidden = frozenset(obligations(ids).training_forbidden) if ids else frozenset()
    examples, counts = build_examples(
        rows,
        db=db,
        reasoning=reasoning,
        drop_system=drop_system,
        finish_reasons=finish_reasons,
        forbidden=forbidden,
    )
    if curated is not None:
        counts |= {"rows": total, "dropped_by_curation": total - len(rows)}
    if not examples:
        detail = ", ".join(f"{k}={v}" for k, v in counts.items())
        if (
            counts["dropped_policy_forbidden"]
            and counts["rows"]
            == counts["dropped_policy_forbidden"]
            + counts["dropped_finish_reason"]
            + counts["dropped_empty"]
        ):
            raise PolicyForbidsTraining(
                f"{db}: no rows left: the terms of {sorted(forbidden)} forbid training on their "
                f"outputs ({detail})"
            )
        raise TrainDataError(
            f"{db}: no rows left after filters ({detail}; finish_reasons={list(finish_reasons or [])})"
        )
    train, held = split_by_prompt(examples, eval_fraction=eval_fraction, seed=seed)
    if max_rows is not None:  # after the split, so evaluation finds the same held-out prompts
        train = train[:max_rows]
    kept_ids = sorted({e.policy_id for e in examples if e.policy_id})
    teachers = sorted({e.teacher_model for e in examples if e.teacher_model})
    # what the harvest runs accepted (user, time, declared purpose), for the model card
    accepted = tuple(a for a in read_acceptances(db) if a.policy_id in kept_ids)
    return Dataset(
        train,
        held,
        counts,
        tuple(kept_ids),
        tuple(teachers),
        acceptances=accepted,
        curation=curation,
    )


def _curated_rows(
    db: Path, name: str, rows: list[CompletionRow]
) -> tuple[list[CompletionRow], dict[str, Any]]:
    """The rows curated set ``name`` kept, and its card; warns when the harvest changed."""
    import logging

    from stillroom.curate import CurateError, read_curated

    try:
        curated = read_curated(db, name)
    except CurateError as exc:
        raise TrainDataError(str(exc)) from exc
    if curated.changed:
        logging.getLogger("stillroom.train").warning(
            "%s: the harvest changed since curated set %r was made (%s answers then, %d now); "
            "answers added since are not trained on: run `stillroom curate run --name %s` again",
            db, name, curated.store_rows, len(rows), name,
        )  # fmt: skip
    kept = [r for r in rows if r.idempotency_key in curated.kept_keys]
    if not kept:
        raise TrainDataError(f"{db}: curated set {name!r} kept no answers")
    return kept, curated.card()
