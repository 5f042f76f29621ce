"""``run_harvest``: the run lifecycle (``_lifecycle``: prepare, finish, abandon) around the
async engine, which sends each request and meets the daily cap per request."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from stillroom.harvest._config import HarvestConfig, HarvestResult
from stillroom.harvest._dialect import dialect_for
from stillroom.harvest._engine import Engine
from stillroom.harvest._header_profiles import profile_for
from stillroom.harvest._http import openai_client, uses_bearer
from stillroom.harvest._lifecycle import PreparedRun, RunOutcome, abandon, finish, prepare
from stillroom.harvest._limiter import RateLimiter
from stillroom.harvest._progress import NoProgress, RichProgress
from stillroom.harvest._sender import WireSender


def run_harvest(
    cfg: HarvestConfig,
    http_client: Any = None,
    progress: bool = True,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    seed: int | None = None,
) -> HarvestResult:
    """Harvest every (prompt, sample) not yet in ``cfg.db``; a sync wrapper over
    :func:`arun_harvest` (use that one from inside an event loop).

    ``http_client`` is handed to ``openai.AsyncOpenAI`` (default: its aiohttp client).
    ``clock``/``sleep`` drive the limiter and retries, ``now`` the stored timestamps and
    the UTC day of the daily cap, ``seed`` the back-off jitter.
    """
    return asyncio.run(
        arun_harvest(cfg, http_client, progress, clock=clock, sleep=sleep, now=now, seed=seed)
    )


async def arun_harvest(
    cfg: HarvestConfig,
    http_client: Any = None,
    progress: bool = True,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    seed: int | None = None,
) -> HarvestResult:
    """The async core of :func:`run_harvest`.

    Order: the policy is resolved (a refusal sends nothing), every prompt is validated,
    the database is opened (a second process gets :class:`DatabaseBusyError`), done work
    is skipped, and only then is a client created.
    """
    if cfg.mode != "sync":  # batch | batch-file: stillroom.harvest._batch_run
        from stillroom.harvest._batch_run import arun_batch_harvest

        return await arun_batch_harvest(
            cfg, http_client, progress, clock=clock, sleep=sleep, now=now, seed=seed
        )
    run = prepare(cfg, now)
    try:
        engine = await _run_engine(run, http_client, progress, clock=clock, sleep=sleep,
                                   now=now, seed=seed)  # fmt: skip
    except BaseException as exc:
        abandon(run.store, run.run_id, exc)
        raise
    return finish(run, _outcome(engine))


async def _run_engine(
    run: PreparedRun, http_client, progress, *, clock, sleep, now, seed
) -> Engine:
    cfg, limits, policy = run.cfg, run.limits, run.policy
    dialect = dialect_for(cfg.api)
    limiter = RateLimiter(
        rpm=limits.rpm, tpm=limits.tpm, burst_seconds=cfg.burst_seconds, clock=clock, sleep=sleep,
        profile=profile_for(cfg.base_url, limits.headers_profile, dialect.limits_profile),
        read=dialect.limits,
    )  # fmt: skip
    own_client = http_client is None
    client = openai_client(cfg, http_client)
    todo = run.todo
    view = RichProgress(run.already + len(todo)) if progress and todo else NoProgress()
    bearer = uses_bearer(dialect.auth_headers("k"), "k")
    sender = WireSender(client, reuse_request=cfg.reuse_request, strip_bearer=not bearer)
    engine = Engine(
        sender=sender, dialect=dialect, options=cfg.request_options(), store=run.store, limiter=limiter, caps=run.caps, run_id=run.run_id,
        policy_id=policy.id, policy_hash=policy.file_hash, concurrency=cfg.concurrency,
        max_attempts=cfg.max_attempts, max_wait=cfg.max_wait, sleep=sleep, clock=clock,
        now=now, rng=random.Random(seed), progress=view, already_done=run.already,
    )  # fmt: skip
    try:
        with view:
            await engine.run(todo)
    except (KeyboardInterrupt, asyncio.CancelledError):
        engine.stop("interrupted", "interrupted; run the same command again to resume")
        raise
    finally:
        if own_client:
            await client.close()
    return engine


def _outcome(engine: Engine) -> RunOutcome:
    auth = engine.auth_failure
    return RunOutcome(
        completed=engine.completed, failed=engine.failed, requests=engine.requests,
        prompt_tokens=engine.tokens_in, completion_tokens=engine.tokens_out,
        cached_input_tokens=engine.tokens_cached,
        rate_limited=engine.rate_limited, stop_reason=engine.stop_reason,
        message=engine.stop_message, learned=engine.limiter.learned,
        auth_failure=str(auth) if auth is not None else None,
    )  # fmt: skip
