"""The rows one request ends as: a :class:`CompletionRow` for an answer, a failure tuple
(``_migrations.FAILURE_COLUMNS``) for a failure. The sync engine and batch ingest both
build them here, so a batch answer is the same row a synchronous one is."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from stillroom.harvest._answer import Answer
from stillroom.harvest._completions import CompletionRow
from stillroom.harvest._retry import PermanentError, TransientError
from stillroom.harvest._work import WorkItem


@dataclass
class RowContext:
    """What every row of a run carries: the run, the policy and the clock."""

    run_id: str
    policy_id: str
    policy_hash: str
    now: Callable[[], datetime]


def answer_row(
    ctx: RowContext, item: WorkItem, a: Answer, latency: float | None, attempts: int
) -> CompletionRow:
    """``latency`` None: a batch answer (no per-request latency)."""
    return CompletionRow(
        idempotency_key=item.key,
        prompt_id=item.prompt_id,
        sample_index=item.sample_index,
        messages=item.messages_json,
        system_prompt=item.system_prompt,
        content=a.content,
        reasoning=a.reasoning,
        top_logprobs=json.dumps(a.top_logprobs) if a.top_logprobs is not None else None,
        finish_reason=a.finish_reason,
        prompt_tokens=a.prompt_tokens,
        completion_tokens=a.completion_tokens,
        reasoning_tokens=a.reasoning_tokens,
        teacher_model=a.teacher_model,
        requested_model=item.params["model"],
        policy_id=ctx.policy_id,
        policy_hash=ctx.policy_hash,
        created_at=ctx.now().replace(tzinfo=None),
        request_params=item.params_json,
        request_id=a.request_id,
        latency_ms=latency * 1000.0 if latency is not None else None,
        run_id=ctx.run_id,
        attempts=attempts,
        reasoning_kind=a.reasoning_kind,
        reasoning_blocks=a.reasoning_blocks,
        cached_input_tokens=a.cached_input_tokens,
        finish=a.finish,
    )


def failure_row(
    ctx: RowContext, item: WorkItem, exc: TransientError | PermanentError, attempts: int
) -> tuple:
    return (
        item.key,
        item.prompt_id,
        item.sample_index,
        item.messages_json,
        item.params_json,
        exc.reason,
        exc.status,
        attempts,
        ctx.policy_id,
        ctx.policy_hash,
        ctx.run_id,
        ctx.now().replace(tzinfo=None),
    )
