"""``harvest run --mode batch | batch-file``: the same plan, policy and store as a
synchronous run, sent through a Batch API (``stillroom.harvest._batch_runner``) at batch prices.

``arun_harvest`` hands a config whose ``mode`` is not ``sync`` to :func:`arun_batch_harvest`.
:func:`cancel_batches` cancels the running batches of one database (``harvest cancel``);
it talks only to the provider (batches carry the database's tag in their metadata), so it
works while a run holds the database, and that run stores what the batches answered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai

from stillroom.harvest._batch_client import BatchClient
from stillroom.harvest._batch_files import BatchLimits
from stillroom.harvest._batch_ingest import RowContext
from stillroom.harvest._batch_poll import TERMINAL, PollSchedule
from stillroom.harvest._batch_progress import NoBatchProgress, RichBatchProgress
from stillroom.harvest._batch_runner import BatchRun, db_tag
from stillroom.harvest._batch_store import BatchStore
from stillroom.harvest._budget import Caps, RunLimits, resolve_policy, run_limits
from stillroom.harvest._config import HarvestConfig, HarvestResult
from stillroom.harvest._store import Store
from stillroom.harvest._work import plan_config

_NO_KEY = "sk-no-key-set"


def batch_prices(limits: RunLimits) -> RunLimits:
    """The run's limits with the batch prices as the prices (standard ones where the policy
    names no batch price: a cap then errs on the safe side)."""
    return dataclasses.replace(
        limits,
        usd_per_mtok_in=limits.usd_per_mtok_batch_in or limits.usd_per_mtok_in,
        usd_per_mtok_out=limits.usd_per_mtok_batch_out or limits.usd_per_mtok_out,
    )


def _client(cfg: HarvestConfig, http_client: Any) -> openai.AsyncOpenAI:
    from stillroom.harvest._run import default_http_client

    return openai.AsyncOpenAI(
        api_key=os.environ.get(cfg.api_key_env) or _NO_KEY,
        base_url=cfg.base_url,
        max_retries=0,
        timeout=cfg.request_timeout,
        http_client=http_client if http_client is not None else default_http_client(),
    )


async def arun_batch_harvest(
    cfg: HarvestConfig,
    http_client: Any = None,
    progress: bool = True,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    seed: int | None = None,
) -> HarvestResult:
    """Policy, prompts and plan exactly as :func:`stillroom.harvest.arun_harvest`; then batches."""
    from stillroom.harvest._run import _abandon, start_run

    started = time.monotonic()
    policy = resolve_policy(cfg, now())
    limits = batch_prices(run_limits(cfg, policy.limits))
    items = plan_config(cfg)
    store = Store(cfg.db)
    run_id = None
    try:
        answered = store.keys("answers")
        failed = set() if cfg.retry_failed else set(store.failed_keys)
        todo = {i.key for i in items if i.key not in answered and i.key not in failed}
        tokens_in, tokens_out = store.tokens_for_policy(policy.id)  # as the sync path does
        caps = Caps(limits, today=now().date(), requests_today=0,
                    tokens_in=tokens_in, tokens_out=tokens_out)  # fmt: skip
        run_id = start_run(store, cfg, policy, limits, items, now)
        run = BatchRun(
            store=store, batches=BatchStore(store.con), plan=items, todo=todo,
            answered=answered, caps=caps,
            ctx=RowContext(run_id, policy.id, policy.file_hash, now), mode=cfg.mode,
            limits=BatchLimits(cfg.batch_max_requests, cfg.batch_max_bytes),
            max_attempts=cfg.max_attempts, max_tokens=cfg.max_tokens, db_tag=db_tag(cfg.db),
            batch_dir=cfg.batch_dir or cfg.db.with_name(cfg.db.stem + ".batches"),
            schedule=PollSchedule(interval=cfg.poll_interval, max_poll_s=cfg.max_poll_s,
                                  max_interval=max(cfg.poll_interval, min(600.0, cfg.poll_interval * 20))),
            sleep=sleep, clock=clock, now=now,
        )  # fmt: skip
        await _drive(run, cfg, http_client, progress, seed)
        already = len(items) - len(todo)
        return _finish(store, run, cfg, run_id, len(items), already, started)
    except BaseException as exc:
        _abandon(store, run_id, exc)
        raise


async def _drive(run: BatchRun, cfg: HarvestConfig, http_client, progress, seed) -> None:
    if cfg.mode == "batch-file":
        run.ingest_outputs(list(cfg.batch_output))
        run.plan_files()
        waiting = [f for f in run.batches.files() if f.mode == "batch-file"]
        if waiting:
            paths = ", ".join(f.path or "?" for f in waiting)
            run.stop("awaiting_output", f"{len(waiting)} batch file(s) wait for an offline run "
                     f"({paths}); run e.g. `vllm run-batch -i FILE -o OUT --model {cfg.model}`, "
                     "then this command again with --batch-output OUT")  # fmt: skip
        return
    client = _client(cfg, http_client)
    run.client = BatchClient(client, sleep=run.sleep, rng=random.Random(seed),
                             max_attempts=cfg.max_attempts, max_wait=cfg.max_wait)  # fmt: skip
    run.view = RichBatchProgress() if progress else NoBatchProgress()
    try:
        with run.view:
            await run.run()
    finally:
        await client.close()


def _finish(store, run: BatchRun, cfg, run_id, planned, already, started) -> HarvestResult:
    elapsed = time.monotonic() - started
    t = run.tally
    priced = run.caps.limits.usd_per_mtok_in is not None
    spent = run.caps.cost(t.tokens_in, t.tokens_out) if priced else None
    est = run.est_usd if priced else None
    try:
        run.batches.set_run_spend(run_id, mode=cfg.mode, est_usd=est, spent_usd=spent)
        store.finish_run(
            run_id, status="stopped" if run.stop_reason else "finished",
            stopped_reason=run.stop_reason, message=run.stop_message, elapsed_s=elapsed,
            learned={},
        )  # fmt: skip
    finally:
        store.close()
    return HarvestResult(
        run_id=run_id, db=cfg.db, planned=planned, already_done=already, completed=t.answered,
        failed=t.failed, requests=t.results, rate_limited=0, prompt_tokens=t.tokens_in,
        completion_tokens=t.tokens_out, elapsed_s=elapsed, stopped_reason=run.stop_reason,
        message=run.stop_message, est_spend_usd=est, spend_usd=spent,
    )  # fmt: skip


async def cancel_batches(
    db: Path | str,
    base_url: str,
    *,
    api_key_env: str = "OPENAI_API_KEY",
    http_client: Any = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list[dict[str, Any]]:
    """Cancel every unfinished batch this database submitted to ``base_url``; returns them."""
    cfg = HarvestConfig(prompts=[], db=Path(db), base_url=base_url, model="-",
                        api_key_env=api_key_env)  # fmt: skip
    client = _client(cfg, http_client)
    try:
        batches = BatchClient(client, sleep=sleep, rng=random.Random())
        cancelled = []
        async for batch in batches.matching({"stillroom_db": db_tag(cfg.db)}):
            if batch["status"] not in TERMINAL and batch["status"] != "cancelling":
                cancelled.append(await batches.cancel(batch["id"]))
        return cancelled
    finally:
        await client.close()
