"""The life of one harvest run, whatever sends its requests: prepare, cap, finish, abandon.

Every way of sending (the synchronous engine in ``_run``, a Batch API in ``_batch_run``,
and any later API dialect) goes through these four steps, so the policy check, the plan,
resume, the daily and spend caps and the run record are decided in one place:

1. :func:`prepare`: the policy (a refusal sends nothing), the limits (batch prices for the
   batch modes), the plan with every prompt validated, the database opened (one writer),
   done work skipped, the caps loaded from what the database holds (requests sent today in
   any mode; what this policy's answers cost, each at its own run's prices), and the run
   recorded;
2. :func:`cap`: how many requests may go out now under the daily cap, and, when that is
   fewer than wanted, the message naming the cap;
3. :func:`finish`: the run's :class:`RunOutcome` stored, the database closed, a
   :class:`~stillroom.harvest.HarvestResult` returned;
4. :func:`abandon`: why a run ended early (interrupt, error) stored, the database closed.

The lifecycle knows nothing of the wire: a path reports what it did as a :class:`RunOutcome`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stillroom import policies
from stillroom.harvest._batch_store import BatchStore
from stillroom.harvest._budget import Caps, RunLimits, resolve_policy, run_limits
from stillroom.harvest._config import HarvestConfig, HarvestResult
from stillroom.harvest._dialect import check_options
from stillroom.harvest._store import Store
from stillroom.harvest._work import WorkItem, plan_config
from stillroom.harvest.errors import ProviderAuthError


@dataclass
class PreparedRun:
    """A recorded run with its plan, its open database and its caps."""

    cfg: HarvestConfig
    store: Store
    policy: policies.RunPolicy
    limits: RunLimits
    items: list[WorkItem]  # every planned item, in order
    answered: set[str]  # keys with a stored answer
    todo: list[WorkItem]  # what this run should settle, in plan order
    caps: Caps
    run_id: str
    started: float = field(default_factory=time.monotonic)

    @property
    def already(self) -> int:
        return len(self.items) - len(self.todo)


@dataclass
class RunOutcome:
    """What a path did, in the lifecycle's terms."""

    completed: int
    failed: int
    requests: int
    prompt_tokens: int
    completion_tokens: int
    rate_limited: int = 0
    stop_reason: str | None = None
    message: str | None = None
    learned: dict[str, Any] = field(default_factory=dict)
    est_spend_usd: float | None = None  # batch: the worst case reserved before submission
    auth_failure: str | None = None  # the provider refused the key: the run failed
    cached_input_tokens: int = 0  # of prompt_tokens, served from the provider's cache


def batch_prices(limits: RunLimits) -> RunLimits:
    """The run's limits with the batch prices as the prices (standard ones where the policy
    names no batch price: a cap then errs on the safe side)."""
    return dataclasses.replace(
        limits,
        usd_per_mtok_in=limits.usd_per_mtok_batch_in or limits.usd_per_mtok_in,
        usd_per_mtok_out=limits.usd_per_mtok_batch_out or limits.usd_per_mtok_out,
        usd_per_mtok_cached_in=None,  # no cached-input batch price is listed: input price
    )


def prepare(cfg: HarvestConfig, now: Callable[[], datetime]) -> PreparedRun:
    """Step 1: everything before the first request (see the module's docstring)."""
    check_options(cfg.api, cfg.model, cfg.request_options())
    policy = resolve_policy(cfg, now())
    limits = run_limits(cfg, policy.limits)
    if cfg.mode != "sync":
        limits = batch_prices(limits)
    items = plan_config(cfg)
    store = Store(cfg.db)
    try:
        answered = store.keys("answers")
        failed = set() if cfg.retry_failed else store.failed_keys
        todo = [i for i in items if i.key not in answered and i.key not in failed]
        today = now().date()
        spent = store.spend_for_policy(
            policy.id, usd_per_mtok_in=limits.usd_per_mtok_in,
            usd_per_mtok_out=limits.usd_per_mtok_out,
            usd_per_mtok_cached_in=limits.usd_per_mtok_cached_in,
        )  # fmt: skip
        caps = Caps(limits, today=today, requests_today=store.requests_on(today), spent_usd=spent)
        run_id = _start_run(store, cfg, policy, limits, items, now)
    except BaseException as exc:
        abandon(store, None, exc)
        raise
    return PreparedRun(cfg, store, policy, limits, items, answered, todo, caps, run_id)


def cap(caps: Caps, wanted: int) -> tuple[int, str | None]:
    """Step 2: how many of ``wanted`` requests may go out now under the daily cap (``--rpd``
    or the policy's), counting every request already sent today in any mode; with the
    message naming the cap when that is fewer than ``wanted``."""
    left = caps.requests_left()
    if left is None or wanted <= left:
        return wanted, None
    return left, caps.daily_cap_message(waiting=wanted - left)


def finish(run: PreparedRun, outcome: RunOutcome) -> HarvestResult:
    """Step 3: store how the run ended and what it spent; close the database."""
    elapsed = time.monotonic() - run.started
    cfg, caps = run.cfg, run.caps
    status = "failed" if outcome.auth_failure else "stopped" if outcome.stop_reason else "finished"
    priced = caps.limits.usd_per_mtok_in is not None
    spent = (
        caps.cost(outcome.prompt_tokens, outcome.completion_tokens, outcome.cached_input_tokens)
        if priced
        else None
    )
    est = outcome.est_spend_usd if priced else None
    try:
        length_stops = run.store.length_stops(run.run_id)
        run.store.finish_run(
            run.run_id, status=status, stopped_reason=outcome.stop_reason,
            message=outcome.message, elapsed_s=elapsed, learned=outcome.learned,
        )  # fmt: skip
        BatchStore(run.store.con).set_run_spend(
            run.run_id, mode=cfg.mode, est_usd=est, spent_usd=spent
        )
    finally:
        run.store.close()
    if outcome.auth_failure is not None:
        raise ProviderAuthError(
            f"{cfg.base_url}: {outcome.auth_failure}; check ${cfg.api_key_env} "
            f"({'set' if os.environ.get(cfg.api_key_env) else 'not set'}). "
            f"The run stopped; {outcome.completed} answers were stored."
        )
    return HarvestResult(
        run_id=run.run_id, db=cfg.db, planned=len(run.items), already_done=run.already,
        completed=outcome.completed, failed=outcome.failed, requests=outcome.requests,
        rate_limited=outcome.rate_limited, prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens, elapsed_s=elapsed,
        stopped_reason=outcome.stop_reason, message=outcome.message,
        learned_limits=outcome.learned, est_spend_usd=est, spend_usd=spent,
        length_stops=length_stops,
    )  # fmt: skip


def abandon(store: Store, run_id: str | None, exc: BaseException) -> None:
    """Step 4: record why a run ended early (interrupt, error) and close the database."""
    try:
        if run_id is not None:
            interrupted = isinstance(exc, KeyboardInterrupt | asyncio.CancelledError)
            reason = "interrupted" if interrupted else "error"
            store.finish_run(
                run_id, status="stopped", stopped_reason=reason,
                message=str(exc)[:500] or reason, elapsed_s=0.0, learned={},
            )  # fmt: skip
    finally:
        store.close()


def _start_run(store: Store, cfg: HarvestConfig, policy, limits, items, now) -> str:
    """Record a new run (its config, policy and planned keys) and return its id."""
    run_id = f"run-{now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    record = cfg.record()
    store.start_run(
        run_id,
        {
            "base_url": cfg.base_url,
            "api": cfg.api,
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
