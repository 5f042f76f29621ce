"""The async core of a run: workers send requests under the limiter, one writer stores them.

A worker holds its concurrency slot until the writer has *committed* its answer, so at any
moment at most ``concurrency`` requests are sent-but-not-stored: killing the process
re-requests at most that many prompts on the next run.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import openai

from stillroom.harvest._answer import Answer, decode_body
from stillroom.harvest._budget import Caps
from stillroom.harvest._dialect import Dialect, RequestOptions
from stillroom.harvest._limiter import RateLimiter
from stillroom.harvest._progress import NoProgress
from stillroom.harvest._retry import (
    AuthFailure,
    PermanentError,
    StopRun,
    TransientError,
    classify,
    retrying,
)
from stillroom.harvest._rows import RowContext, answer_row, failure_row
from stillroom.harvest._sender import WireSender
from stillroom.harvest._store import RunCounters, Store
from stillroom.harvest._work import WorkItem

# The run's counters (requests, 429s, tokens...) and the day's request count are written
# with a batch at most this often (seconds) and when the run ends: each costs DuckDB as much
# as the batch. After a SIGKILL they lag by at most this much; the answers never do.
COUNTERS_EVERY = 1.0


class Engine:
    """Runs a list of :class:`WorkItem`; results land in the :class:`Store`.

    ``dialect`` builds each request from the item's messages and the run's ``options``,
    parses each answer and classifies each error (``_dialect``)."""

    def __init__(
        self,
        *,
        sender: WireSender,
        dialect: Dialect,
        options: RequestOptions,
        store: Store,
        limiter: RateLimiter,
        caps: Caps,
        run_id: str,
        policy_id: str,
        policy_hash: str,
        concurrency: int,
        max_attempts: int,
        max_wait: float,
        sleep: Callable[[float], Any],
        clock: Callable[[], float],
        now: Callable[[], datetime],
        rng: random.Random,
        progress: NoProgress,
        already_done: int,
    ):
        self.sender, self.store, self.limiter, self.caps = sender, store, limiter, caps
        self.dialect, self.options = dialect, options
        self.rows = RowContext(run_id, policy_id, policy_hash, now)
        self.run_id = run_id
        self.concurrency, self.max_attempts, self.max_wait = concurrency, max_attempts, max_wait
        self.sleep, self.clock, self.now, self.rng = sleep, clock, now, rng
        self.progress = progress
        self.pending: deque[WorkItem] = deque()
        self.outbox: list[tuple[str, Any, asyncio.Future]] = []
        self.wake = asyncio.Event()
        self.closing = False
        self.stop_reason: str | None = None
        self.stop_message: str | None = None
        self.auth_failure: AuthFailure | None = None
        self.token_ratio = 1.0  # actual / estimated prompt tokens, learned from usage
        self.requests = self.requests_counted = 0
        self.rate_limited = 0
        self.counted_at = clock()
        self.completed = self.failed = 0
        self.tokens_in = self.tokens_out = self.tokens_cached = 0
        self.already_done = already_done

    # -- control -----------------------------------------------------------------------
    def stop(self, reason: str, message: str) -> None:
        if self.stop_reason is None:
            self.stop_reason, self.stop_message = reason, message

    async def run(self, items: list[WorkItem]) -> None:
        self.pending.extend(items)
        writer = asyncio.create_task(self._writer())
        workers = [
            asyncio.create_task(self._worker()) for _ in range(min(self.concurrency, len(items)))
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self.closing = True
            self.wake.set()
            await writer

    async def _worker(self) -> None:
        while self.pending and self.stop_reason is None:
            item = self.pending.popleft()
            cost_usd = self.caps.reserve(item.est_prompt_tokens * self.token_ratio, _max_out(item))
            if cost_usd is None:
                self.pending.appendleft(item)
                self.stop("spend_cap", f"spend cap of ${self.caps.limits.max_spend_usd} reached")
                return
            try:
                row_kind, row = await self._settle(item, cost_usd)
            except BaseException:
                self.caps.release(cost_usd)
                self.pending.appendleft(item)
                raise
            if row_kind == "pending":
                self.pending.appendleft(item)
                continue
            done = asyncio.get_running_loop().create_future()
            self.outbox.append((row_kind, row, done))
            self.wake.set()
            await done

    # -- one item ------------------------------------------------------------------------
    async def _settle(self, item: WorkItem, cost_usd: float) -> tuple[str, Any]:
        attempts = 0
        replay: BaseException | None = None

        async def attempt() -> tuple[Answer, float]:
            nonlocal attempts, replay
            if replay is not None:  # hand the fast path's failure to tenacity as attempt 1
                exc, replay = replay, None
                raise exc
            attempts += 1
            return await self._attempt(item, attempts - 1)

        try:
            try:  # fast path: most requests succeed first time; skip tenacity's set-up
                answer, latency = await attempt()
            except TransientError as exc:
                replay = exc
                policy = retrying(
                    max_attempts=self.max_attempts,
                    max_wait=self.max_wait,
                    sleep=self.sleep,
                    rng=self.rng,
                )
                answer, latency = await policy(attempt)
        except StopRun as stop:
            self.caps.release(cost_usd)
            self.stop(stop.reason, str(stop))
            return "pending", ()
        except AuthFailure as auth:
            self.caps.release(cost_usd)
            self.auth_failure = auth
            self.stop("auth", str(auth))
            return "pending", ()
        except (TransientError, PermanentError) as exc:
            self.caps.release(cost_usd)
            return "failure", failure_row(self.rows, item, exc, attempts)
        self.caps.settle(cost_usd, answer.prompt_tokens or 0, answer.completion_tokens or 0,
                         answer.cached_input_tokens or 0)  # fmt: skip
        return "answer", answer_row(self.rows, item, answer, latency, attempts)

    async def _attempt(self, item: WorkItem, retries_taken: int) -> tuple[Answer, float]:
        if self.caps.daily_cap_reached():
            raise StopRun("daily_cap", self.caps.daily_cap_message())
        self.caps.requests_today += 1  # counted before waiting, so workers cannot overshoot
        estimate = item.est_prompt_tokens * self.token_ratio
        reserved = estimate + _max_out(item)
        try:
            ticket = await self.limiter.acquire(reserved)
            if self.stop_reason not in (None, "daily_cap"):  # the day's count was reserved
                raise StopRun(self.stop_reason, self.stop_message or "")
        except BaseException:
            self.caps.requests_today -= 1
            raise
        self.requests += 1
        start = self.clock()
        try:
            # The raw response of the SDK's request (see _sender): headers, request id and
            # the body we parse; failures arrive as the SDK's exceptions.
            wire = self.dialect.build(item.params["model"], item.messages, self.options)
            raw = await self.sender.send(
                wire.body, item.key, retries_taken, wire.path, wire.headers
            )
        except openai.APIError as exc:
            raise self._observe_error(ticket, exc) from None
        latency = self.clock() - start
        self.limiter.observe(ticket, raw.headers)
        id_header = self.dialect.request_id_header
        answer = self.dialect.parse(
            decode_body(raw.content), raw.headers.get(id_header) if id_header else None
        )
        if answer.prompt_tokens:
            self.token_ratio = 0.9 * self.token_ratio + 0.1 * (
                answer.prompt_tokens / item.est_prompt_tokens
            )
            self.limiter.correct_tokens(
                reserved, answer.prompt_tokens + (answer.completion_tokens or 0)
            )
        return answer, latency

    def _observe_error(self, ticket: tuple[int, float], exc: openai.APIError) -> BaseException:
        """What a failed request teaches the limiter; returns the failure to raise."""
        err = classify(exc, self.dialect)
        if not isinstance(exc, openai.APIStatusError):
            self.limiter.observe(ticket, {})
            return err
        self.limiter.observe(ticket, exc.response.headers)
        if not (isinstance(err, TransientError) and err.rate_limited):
            return err
        self.rate_limited += 1
        hint = err.retry_after
        if hint is not None and hint > self.max_wait:
            raise StopRun(
                "provider_wait",
                f"the provider asks to wait {hint:.0f}s, more than --max-wait {self.max_wait:.0f}s; "
                "run the same command again later to resume",
            )
        self.limiter.rate_limited(hint)
        return err

    # -- the one writer ----------------------------------------------------------------
    async def _writer(self) -> None:
        while True:
            if not self.outbox:
                if self.closing:
                    break
                self.wake.clear()
                await self.wake.wait()
                continue
            batch, self.outbox = self.outbox, []
            try:
                await asyncio.to_thread(self._flush, batch)
            except BaseException as exc:
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                raise
            for _, _, fut in batch:
                if not fut.done():
                    fut.set_result(None)
            self.progress.update(
                done=self.completed + self.already_done,
                tokens=self.tokens_in + self.tokens_out,
                rate_limited=self.rate_limited,
                failed=self.failed,
            )
        self._flush([], final=True)  # the counters as they end, whatever was stored

    def _flush(self, batch: list[tuple[str, Any, asyncio.Future]], final: bool = False) -> None:
        answers = [row for kind, row, _ in batch if kind == "answer"]
        failures = [row for kind, row, _ in batch if kind == "failure"]
        tokens_in = sum(a.prompt_tokens or 0 for a in answers)
        tokens_out = sum(a.completion_tokens or 0 for a in answers)
        now = self.clock()
        counters = None
        if final or now - self.counted_at >= COUNTERS_EVERY:
            requests = self.requests  # workers go on counting while this thread writes
            counters = RunCounters(
                run_id=self.run_id,
                requests=requests,
                completed=self.completed + len(answers),
                failed=self.failed + len(failures),
                rate_limited=self.rate_limited,
                prompt_tokens=self.tokens_in + tokens_in,
                completion_tokens=self.tokens_out + tokens_out,
                day=self.today(),
                uncounted_requests=requests - self.requests_counted,
            )
        self.store.write_batch(answers, failures, counters)
        if counters is not None:
            self.requests_counted, self.counted_at = counters.requests, now
        self.completed += len(answers)
        self.failed += len(failures)
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        self.tokens_cached += sum(a.cached_input_tokens or 0 for a in answers)

    def today(self) -> date:
        return self.now().date()


def _max_out(item: WorkItem) -> int:
    return int(item.params.get("max_tokens") or 0)
