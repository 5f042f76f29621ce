"""Storing batch results through the synchronous path's parser and row builders.

Every output line's chat completion goes through the synchronous path's parser
(the run's dialect's ``parse``, as for a synchronous answer: reasoning split, logprobs
normalised, usage) and the answer/failure rows are built by the same row builders
(:mod:`stillroom.harvest._rows`, a :class:`~stillroom.harvest._completions.CompletionRow`), then
written with ``Store.write_batch``: a batch answer is the same row a synchronous answer is, except ``request_id`` (the batch's), ``latency_ms``
(NULL: no per-request latency), ``created_at`` and ``run_id``.

A result whose key is already answered is skipped (a re-download after a crash stores
nothing twice). A request that never ran (expired, cancelled) or got 429/5xx is left
unanswered, to be submitted again, until it has been in ``max_attempts`` files; then,
like a 4xx, it is recorded in ``failures``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from stillroom.harvest._batch_files import BatchResult
from stillroom.harvest._completions import CompletionRow
from stillroom.harvest._dialect import Dialect
from stillroom.harvest._dialect_chat import DIALECT as CHAT
from stillroom.harvest._retry import PermanentError, TransientError
from stillroom.harvest._rows import RowContext, answer_row, failure_row
from stillroom.harvest._store import RunCounters, Store
from stillroom.harvest._work import WorkItem


@dataclass
class IngestTally:
    """A run's batch results so far (totals, also written as the run's counters)."""

    answered: int = 0
    failed: int = 0
    skipped: int = 0  # already answered, or a key this plan does not make
    tokens_in: int = 0
    tokens_out: int = 0
    results: int = 0
    retry: set[str] = field(default_factory=set)
    failed_keys: set[str] = field(default_factory=set)  # recorded as failures by this run


def ingest_results(
    store: Store,
    results: Iterable[BatchResult],
    *,
    items: dict[str, WorkItem],
    answered: set[str],
    submissions: Counter[str],
    max_attempts: int,
    ctx: RowContext,
    tally: IngestTally,
    chunk: int = 20_000,
    dialect: Dialect = CHAT,
) -> IngestTally:
    """Store ``results``; ``answered`` (keys with an answer) is updated as rows commit.

    The rows of one call share one ``created_at`` (when the results were stored)."""
    answers: list[CompletionRow] = []
    failures: list[tuple] = []
    stamp = ctx.now()
    ctx = dataclasses.replace(ctx, now=lambda: stamp)

    def flush() -> None:
        counters = RunCounters(
            run_id=ctx.run_id, requests=tally.results, completed=tally.answered,
            failed=tally.failed, rate_limited=0, prompt_tokens=tally.tokens_in,
            completion_tokens=tally.tokens_out, day=ctx.now().date(), uncounted_requests=0,
        )  # fmt: skip
        store.write_batch(answers, failures, counters)
        answered.update(row.idempotency_key for row in answers)
        answers.clear()
        failures.clear()

    for result in results:
        item = items.get(result.key)
        if item is None or result.key in answered:
            tally.skipped += 1
            continue
        tally.results += 1
        attempts = max(1, submissions[result.key])
        if result.ok:
            try:
                answer = dialect.parse(result.body, result.request_id)
            except TransientError as exc:
                result = BatchResult(result.key, 502, None, result.request_id, exc.reason)
            else:
                row = answer_row(ctx, item, answer, None, attempts)
                answers.append(row)
                tally.answered += 1
                tally.tokens_in += row.prompt_tokens or 0
                tally.tokens_out += row.completion_tokens or 0
                tally.retry.discard(result.key)
        if not result.ok:
            if result.retry and attempts < max_attempts:
                tally.retry.add(result.key)
            else:
                reason = result.error or "no answer"
                error = PermanentError(f"batch: {reason}", result.status)
                failures.append(failure_row(ctx, item, error, attempts))
                tally.failed += 1
                tally.failed_keys.add(result.key)
                tally.retry.discard(result.key)
        if len(answers) + len(failures) >= chunk:
            flush()
    flush()
    return tally
