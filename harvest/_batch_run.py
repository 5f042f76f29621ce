"""``harvest run --mode batch | batch-file``: the same lifecycle as a synchronous run
(``stillroom.harvest._lifecycle``: plan, policy, store, caps), sent through a Batch API
(``stillroom.harvest._batch_runner``) at batch prices, within today's daily cap.

``arun_harvest`` hands a config whose ``mode`` is not ``sync`` to :func:`arun_batch_harvest`.
:func:`cancel_batches` cancels the running batches of one database (``harvest cancel``).
It works while a run holds the database (OpenAI's batches carry the database's tag in their
metadata; Message Batches' ids are also kept in ``<db>.message-batches``), and that run
stores what the batches answered.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stillroom.harvest._batch_anthropic import MAX_BYTES, MAX_REQUESTS, AnthropicLines
from stillroom.harvest._batch_anthropic_client import AnthropicBatchClient
from stillroom.harvest._batch_client import BatchClient
from stillroom.harvest._batch_files import BatchLimits, Lines, LineShape, line_shape
from stillroom.harvest._batch_ledger import ledger_ids, ledger_path, rewrite_ledger
from stillroom.harvest._batch_poll import TERMINAL, PollSchedule
from stillroom.harvest._batch_progress import NoBatchProgress, RichBatchProgress
from stillroom.harvest._batch_runner import BatchRun, db_tag
from stillroom.harvest._batch_store import BatchStore, submitted_batch_ids
from stillroom.harvest._config import HarvestConfig, HarvestResult
from stillroom.harvest._dialect import dialect_for
from stillroom.harvest._http import openai_client
from stillroom.harvest._lifecycle import PreparedRun, RunOutcome, abandon, finish, prepare
from stillroom.harvest._rows import RowContext
from stillroom.harvest.errors import HarvestError


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
    """Policy, prompts, plan and caps exactly as :func:`stillroom.harvest.arun_harvest`
    (:func:`stillroom.harvest._lifecycle.prepare`, at batch prices); then batches."""
    run = prepare(cfg, now)
    try:
        batches = _batch_run(run, sleep=sleep, clock=clock, now=now)
        await _drive(batches, cfg, http_client, progress, seed)
        if cfg.api == "anthropic":
            rewrite_ledger(cfg.db, batches.batches.cancellable_ids())
    except BaseException as exc:
        abandon(run.store, run.run_id, exc)
        raise
    return finish(run, _outcome(batches))


def _batch_run(run: PreparedRun, *, sleep, clock, now) -> BatchRun:
    cfg, policy = run.cfg, run.policy
    dialect = dialect_for(cfg.api)
    tag = db_tag(cfg.db)
    if cfg.api == "anthropic":
        shape: Lines = AnthropicLines(dialect, cfg.model, cfg.request_options(), tag)
        # the provider's limits bind unless the run asked for less
        limits = BatchLimits(min(cfg.batch_max_requests, MAX_REQUESTS),
                             min(cfg.batch_max_bytes, MAX_BYTES))  # fmt: skip
    else:
        shape = line_shape(dialect, cfg.model, cfg.request_options())
        limits = BatchLimits(cfg.batch_max_requests, cfg.batch_max_bytes)
    return BatchRun(
        store=run.store, batches=BatchStore(run.store.con), plan=run.items,
        todo={i.key for i in run.todo}, answered=run.answered, caps=run.caps,
        ctx=RowContext(run.run_id, policy.id, policy.file_hash, now), mode=cfg.mode,
        limits=limits, max_attempts=cfg.max_attempts, max_tokens=cfg.max_tokens, db_tag=tag,
        batch_dir=cfg.batch_dir or cfg.db.with_name(cfg.db.stem + ".batches"),
        schedule=PollSchedule(interval=cfg.poll_interval, max_poll_s=cfg.max_poll_s,
                              max_interval=max(cfg.poll_interval, min(600.0, cfg.poll_interval * 20))),
        sleep=sleep, clock=clock, now=now, dialect=dialect,
        shape=shape,
    )  # fmt: skip


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
    client = openai_client(cfg, http_client)
    if isinstance(run.shape, LineShape):
        run.client = BatchClient(client, sleep=run.sleep, rng=random.Random(seed),
                                 max_attempts=cfg.max_attempts, max_wait=cfg.max_wait,
                                 endpoint=run.shape.url)  # fmt: skip
    else:
        run.client = AnthropicBatchClient(client, sleep=run.sleep, rng=random.Random(seed),
                                          max_attempts=cfg.max_attempts, max_wait=cfg.max_wait)  # fmt: skip
    run.view = RichBatchProgress() if progress else NoBatchProgress()
    try:
        with run.view:
            await run.run()
    finally:
        await client.close()


def _outcome(run: BatchRun) -> RunOutcome:
    t = run.tally
    return RunOutcome(
        completed=t.answered, failed=t.failed, requests=t.results, prompt_tokens=t.tokens_in,
        completion_tokens=t.tokens_out, stop_reason=run.stop_reason, message=run.stop_message,
        est_spend_usd=run.est_usd,
    )  # fmt: skip


async def cancel_batches(
    db: Path | str,
    base_url: str,
    *,
    api_key_env: str | None = None,
    http_client: Any = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    api: str = "chat",
) -> list[dict[str, Any]]:
    """Cancel every unfinished batch this database submitted to ``base_url``; returns them.

    OpenAI batches are found by the database's tag in their metadata. Message Batches carry
    none: their ids are read from the database, or from ``<db>.message-batches`` while a
    run holds it. Either way this works while a run is polling them."""
    cfg = HarvestConfig(prompts=[], db=Path(db), base_url=base_url, model="-",
                        api_key_env=api_key_env, api=api)  # fmt: skip
    ids = _recorded_batch_ids(cfg.db) if api == "anthropic" else None
    client = openai_client(cfg, http_client)
    try:
        kind = AnthropicBatchClient if api == "anthropic" else BatchClient
        batches = kind(client, sleep=sleep, rng=random.Random())
        cancelled = []
        async for batch in _ours(batches, cfg.db, ids):
            if batch["status"] not in TERMINAL and batch["status"] != "cancelling":
                cancelled.append(await batches.cancel(batch["id"]))
        return cancelled
    finally:
        await client.close()


async def _ours(batches: BatchClient, db: Path, ids: list[str] | None):
    if ids is None:
        async for batch in batches.matching({"stillroom_db": db_tag(db)}):
            yield batch
        return
    for batch_id in ids:
        yield await batches.retrieve(batch_id)


def _recorded_batch_ids(db: Path) -> list[str]:
    """Message Batches carry no metadata: their ids come from the database, or, while a
    run holds it, from the file beside it (``stillroom.harvest._batch_ledger``)."""
    import duckdb

    if not db.exists():
        raise HarvestError(f"{db}: no such database")
    try:
        return submitted_batch_ids(db)
    except duckdb.IOException as exc:  # held by a running harvest
        if ledger_path(db).exists():
            return ledger_ids(db)
        raise HarvestError(
            f"{db}: cannot read its batch ids ({str(exc).splitlines()[0][:200]}), and "
            f"{ledger_path(db)} does not exist. Message Batches carry no metadata: stop the "
            "running `harvest run` first (its batches keep running), then cancel"
        ) from None
