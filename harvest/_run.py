"""``run_harvest``: policy check, prompt validation, resume, then the async engine."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import openai

from stillroom.harvest._batch_store import BatchStore
from stillroom.harvest._budget import Caps, resolve_policy, run_limits
from stillroom.harvest._config import HarvestConfig, HarvestResult
from stillroom.harvest._engine import Engine
from stillroom.harvest._header_profiles import profile_for
from stillroom.harvest._http import LeanAioHttpClient
from stillroom.harvest._limiter import RateLimiter
from stillroom.harvest._progress import NoProgress, RichProgress
from stillroom.harvest._sender import ChatSender
from stillroom.harvest._store import Store
from stillroom.harvest._work import plan_config
from stillroom.harvest.errors import ProviderAuthError

_NO_KEY = "sk-no-key-set"


def default_http_client() -> Any:
    """The SDK's aiohttp-backed client with harvest's lean call (see ``_http``)."""
    return LeanAioHttpClient()


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
    started = time.monotonic()
    policy = resolve_policy(cfg, now())
    limits = run_limits(cfg, policy.limits)
    items = plan_config(cfg)
    store = Store(cfg.db)
    try:
        done = store.keys("answers")
        failed = set() if cfg.retry_failed else store.failed_keys
        todo = [i for i in items if i.key not in done and i.key not in failed]
        tokens_in, tokens_out = store.tokens_for_policy(policy.id)
        today = now().date()
        caps = Caps(
            limits,
            today=today,
            requests_today=store.requests_on(today),
            tokens_in=tokens_in,
            tokens_out=tokens_out,
        )
        run_id = start_run(store, cfg, policy, limits, items, now)
        engine = await _run_engine(
            cfg, http_client, progress, store, caps, limits, policy, run_id, todo,
            already=len(items) - len(todo), clock=clock, sleep=sleep, now=now, seed=seed,
        )  # fmt: skip
    except BaseException as exc:
        _abandon(store, locals().get("run_id"), exc)
        raise
    return _finish(cfg, store, engine, run_id, len(items), len(items) - len(todo), started)


async def _run_engine(
    cfg, http_client, progress, store, caps, limits, policy, run_id, todo, *, already, clock,
    sleep, now, seed,
) -> Engine:  # fmt: skip
    limiter = RateLimiter(
        rpm=limits.rpm, tpm=limits.tpm, burst_seconds=cfg.burst_seconds, clock=clock, sleep=sleep,
        profile=profile_for(cfg.base_url, limits.headers_profile),
    )  # fmt: skip
    own_client = http_client is None
    client = openai.AsyncOpenAI(
        api_key=os.environ.get(cfg.api_key_env) or _NO_KEY,
        base_url=cfg.base_url,
        max_retries=0,
        timeout=cfg.request_timeout,
        http_client=default_http_client() if own_client else http_client,
    )
    view = RichProgress(already + len(todo)) if progress and todo else NoProgress()
    sender = ChatSender(client, reuse_request=cfg.reuse_request)
    engine = Engine(
        sender=sender, store=store, limiter=limiter, caps=caps, run_id=run_id,
        policy_id=policy.id, policy_hash=policy.file_hash, concurrency=cfg.concurrency,
        max_attempts=cfg.max_attempts, max_wait=cfg.max_wait, sleep=sleep, clock=clock,
        now=now, rng=random.Random(seed), progress=view, already_done=already,
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


def _finish(cfg, store, engine: Engine, run_id, planned, already, started) -> HarvestResult:
    elapsed = time.monotonic() - started
    auth = engine.auth_failure
    status = "failed" if auth else ("stopped" if engine.stop_reason else "finished")
    priced = engine.caps.limits.usd_per_mtok_in is not None
    spent = engine.caps.cost(engine.tokens_in, engine.tokens_out) if priced else None
    try:
        store.finish_run(
            run_id,
            status=status,
            stopped_reason=engine.stop_reason,
            message=engine.stop_message,
            elapsed_s=elapsed,
            learned=engine.limiter.learned,
        )
        BatchStore(store.con).set_run_spend(run_id, mode="sync", est_usd=None, spent_usd=spent)
    finally:
        store.close()
    if auth is not None:
        raise ProviderAuthError(
            f"{cfg.base_url}: {auth}; check ${cfg.api_key_env} "
            f"({'set' if os.environ.get(cfg.api_key_env) else 'not set'}). "
            f"The run stopped; {engine.completed} answers were stored."
        )
    return HarvestResult(
        run_id=run_id,
        db=cfg.db,
        planned=planned,
        already_done=already,
        completed=engine.completed,
        failed=engine.failed,
        requests=engine.requests,
        rate_limited=engine.rate_limited,
        prompt_tokens=engine.tokens_in,
        completion_tokens=engine.tokens_out,
        elapsed_s=elapsed,
        stopped_reason=engine.stop_reason,
        message=engine.stop_message,
        learned_limits=engine.limiter.learned,
        spend_usd=spent,
    )


def start_run(store: Store, cfg: HarvestConfig, policy, limits, items, now) -> str:
    """Record a new run (its config, policy and planned keys) and return its id."""
    run_id = f"run-{now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    record = cfg.record()
    store.start_run(
        run_id,
        {
            "base_url": cfg.base_url,
            "model": cfg.model,
            "prompts_source": record["prompts"],
            "policy_id": policy.id,
            "policy_hash": policy.file_hash,
            "policy": policy.record(),
            "config": {**record, "limits": limits.to_dict()},
            "planned": len(items),
        },
        ((i.key, i.prompt_id, i.sample_index) for i in items),
    )
    return run_id


def _abandon(store: Store, run_id: str | None, exc: BaseException) -> None:
    """Record why a run ended early (interrupt, error) and close the database."""
    try:
        if run_id is not None:
            reason = (
                "interrupted"
                if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError)
                else "error"
            )
            store.finish_run(
                run_id,
                status="stopped",
                stopped_reason=reason,
                message=str(exc)[:500] or reason,
                elapsed_s=0.0,
                learned={},
            )
    finally:
        store.close()
