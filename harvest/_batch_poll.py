"""Polling batches until they end, with back-off, composed from tenacity's parts.

Every round retrieves each unfinished batch once; the wait before the next round starts
at ``interval`` and grows by ``factor`` for each round in which nothing changed, up to
``max_interval``, and drops back to ``interval`` when a batch changes state. Polling ends
when every batch is terminal, or after ``max_poll_s`` seconds of ``clock`` (the run then
stops cleanly; the same command resumes polling). ``sleep`` and ``clock`` are
parameters, so tests assert on the recorded sleeps and never sleep.

Real providers take minutes to hours per batch; Together's docs ask for 30-60 s between
polls (https://docs.together.ai/docs/inference/batch/manage), hence the 30 s default.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_result
from tenacity.stop import stop_base
from tenacity.wait import wait_base

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
DEFAULT_POLL_INTERVAL = 30.0


@dataclass(frozen=True)
class PollSchedule:
    interval: float = DEFAULT_POLL_INTERVAL
    factor: float = 1.5
    max_interval: float = 600.0
    max_poll_s: float | None = None  # None: until every batch ends

    def __post_init__(self) -> None:
        bad_deadline = self.max_poll_s is not None and self.max_poll_s < 0
        if (
            self.interval <= 0
            or self.factor < 1
            or self.max_interval < self.interval
            or bad_deadline
        ):
            raise ValueError(f"bad poll schedule {self}")


class wait_unchanged_backoff(wait_base):
    """``interval * factor ** rounds_without_change``, capped at ``max_interval``."""

    def __init__(self, schedule: PollSchedule):
        self.schedule = schedule
        self.quiet_rounds = 0

    def __call__(self, retry_state: RetryCallState) -> float:
        s = self.schedule
        return min(s.max_interval, s.interval * s.factor ** max(0, self.quiet_rounds - 1))


class stop_after_clock(stop_base):
    """Stop once ``clock() - start`` passes ``seconds`` (an injected clock, unlike
    tenacity's own ``stop_after_delay``)."""

    def __init__(self, seconds: float | None, clock: Callable[[], float]):
        self.seconds, self.clock, self.start = seconds, clock, clock()

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.seconds is not None and self.clock() - self.start >= self.seconds


Retrieve = Callable[[str], Awaitable[dict[str, Any]]]
OnUpdate = Callable[[dict[str, Any]], None]


async def poll_until_done(
    batch_ids: list[str],
    retrieve: Retrieve,
    on_update: OnUpdate,
    *,
    schedule: PollSchedule,
    sleep: Callable[[float], Awaitable[None]],
    clock: Callable[[], float],
    known: dict[str, str] | None = None,
) -> dict[str, str]:
    """Poll until every batch is terminal (or ``max_poll_s``); returns id -> last status.

    ``retrieve(id)`` returns the batch object (a dict); ``on_update`` gets each one whose
    status or counts changed since ``known`` (id -> status) or the previous round.
    """
    states: dict[str, str] = dict(known or {})
    counts: dict[str, Any] = {}
    wait = wait_unchanged_backoff(schedule)

    async def one_round() -> list[str]:
        changed = False
        for batch_id in [b for b in batch_ids if states.get(b) not in TERMINAL]:
            batch = await retrieve(batch_id)
            status, tally = batch["status"], batch.get("request_counts")
            if status != states.get(batch_id) or tally != counts.get(batch_id):
                changed = changed or status != states.get(batch_id)
                states[batch_id], counts[batch_id] = status, tally
                on_update(batch)
        wait.quiet_rounds = 0 if changed else wait.quiet_rounds + 1
        return [b for b in batch_ids if states.get(b) not in TERMINAL]

    policy = AsyncRetrying(
        retry=retry_if_result(bool),  # some batch is still running
        wait=wait,
        stop=stop_after_clock(schedule.max_poll_s, clock),
        sleep=sleep,
        retry_error_callback=lambda state: state.outcome.result(),
    )
    await policy(one_round)
    return states
