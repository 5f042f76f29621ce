"""The batch loop: plan files of work, submit each once, poll, ingest, resubmit what is missing.

Each round:

1. **plan**: the run's unanswered keys that no live file holds are cut into files within
   the provider's limits (``BatchStore.prepare``: one transaction, before anything is sent);
2. **submit** every live file from the state it was left in: reserve its worst-case cost
   (or stop: ``spend_cap``), upload (``uploaded``), store the intent (``creating``: the
   metadata), create (``submitted``). A file found in ``creating`` (the process died
   between ``POST /v1/batches`` and storing the id) is adopted from the provider's list
   by its metadata before anything is created. Message Batches (``client.uploads`` is
   False) have no upload and no metadata: their intent and adoption are
   ``stillroom.harvest._batch_adopt``'s;
3. **poll** the submitted batches until they end (``stillroom.harvest._batch_poll``);
4. **ingest** the output and error files of each ended batch (``stillroom.harvest._batch_ingest``)
   and mark the file ``ingested``. What an expired batch (or 429/5xx lines) left
   unanswered is planned again in the next round, and only that. The leftovers of a
   cancelled batch, or of one the provider refused as a whole (``failed``), wait for the
   next run, which stops with the reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from stillroom.harvest import _batch_adopt
from stillroom.harvest._batch_anthropic import read_results as read_message_results
from stillroom.harvest._batch_client import BatchClient
from stillroom.harvest._batch_files import (
    BatchLimits,
    BatchResult,
    Lines,
    LineShape,
    read_results,
    split_requests,
)
from stillroom.harvest._batch_ingest import IngestTally, ingest_results
from stillroom.harvest._batch_poll import TERMINAL, PollSchedule, poll_until_done
from stillroom.harvest._batch_progress import NoBatchProgress
from stillroom.harvest._batch_store import BatchFileRow, BatchStore
from stillroom.harvest._budget import Caps
from stillroom.harvest._dialect import Dialect
from stillroom.harvest._dialect_chat import DIALECT as CHAT
from stillroom.harvest._lifecycle import cap
from stillroom.harvest._rows import RowContext
from stillroom.harvest._store import Store
from stillroom.harvest._work import WorkItem
from stillroom.harvest.errors import HarvestError


@dataclass
class BatchRun:
    """What the loop works with (the run's plan, its store, its clock)."""

    store: Store
    batches: BatchStore
    plan: list[WorkItem]  # every planned item, in order
    todo: set[str]  # keys this run should settle
    answered: set[str]
    caps: Caps
    ctx: RowContext
    mode: str
    limits: BatchLimits
    max_attempts: int
    max_tokens: int
    db_tag: str
    batch_dir: Path
    schedule: PollSchedule
    sleep: Callable[[float], Any]
    clock: Callable[[], float]
    now: Callable[[], datetime]
    view: NoBatchProgress = field(default_factory=NoBatchProgress)
    client: BatchClient | None = None
    tally: IngestTally = field(default_factory=IngestTally)
    settled: set[str] = field(default_factory=set)  # failed during this run
    held: set[str] = field(default_factory=set)  # left by a cancelled batch
    stop_reason: str | None = None
    stop_message: str | None = None
    est_usd: float = 0.0
    day_capped: str | None = None  # the daily cap left work for a later day: why
    written: list[str] = field(default_factory=list)
    dialect: Dialect = CHAT
    shape: Lines = field(default_factory=LineShape)

    def __post_init__(self) -> None:
        self.by_key = {item.key: item for item in self.plan}
        self.started = self.clock()

    def stop(self, reason: str, message: str) -> None:
        if self.stop_reason is None:
            self.stop_reason, self.stop_message = reason, message

    # -- 1. plan ----------------------------------------------------------------------------
    def plan_files(self) -> None:
        if self.stop_reason is not None:
            return
        kept = self._keep_prepared_within_daily_cap() if self.mode == "batch" else 0
        live = self.batches.live_keys()
        skip = self.answered | self.settled | self.held | live
        fresh = [i for i in self.plan if i.key in self.todo and i.key not in skip]
        if self.mode == "batch":  # batch-file sends nothing to a provider
            allowed, message = cap(self.caps, kept + len(fresh))
            if message is not None:
                self.day_capped = message
                fresh = fresh[: allowed - kept]
        if not fresh:
            return
        files = split_requests(fresh, self.limits, self.shape)
        est = [self._worst_case(f.keys) for f in files]
        paths = None
        if self.mode == "batch-file":
            self.batch_dir.mkdir(parents=True, exist_ok=True)
            paths = [str(self.batch_dir / f"{f.sha256[:16]}-{len(f.keys)}.jsonl") for f in files]
            for f, path in zip(files, paths, strict=True):
                Path(path).write_bytes(f.content)
        state = "written" if self.mode == "batch-file" else "prepared"
        self.batches.prepare(
            files, run_id=self.ctx.run_id, mode=self.mode, est_usd=est, paths=paths, state=state
        )

    def _keep_prepared_within_daily_cap(self) -> int:
        """Files prepared earlier and not yet uploaded go first, as far as today's cap
        allows; one that no longer fits is abandoned (nothing of it was sent) and its keys
        are planned afresh. Returns the requests kept."""
        left = self.caps.requests_left()
        kept = 0
        for f in self.batches.files():
            if f.mode != "batch" or f.state != "prepared":
                continue
            if left is None or kept + f.requests <= left:
                kept += f.requests
            else:
                self.batches.update(f.file_key, state="abandoned", message="over the daily cap")
        return kept

    def _worst_case(self, keys: list[str]) -> float:
        tokens_in = sum(self.by_key[k].est_prompt_tokens for k in keys)
        return self.caps.cost(tokens_in, self.max_tokens * len(keys))

    # -- 2. submit --------------------------------------------------------------------------
    def reserve_in_flight(self) -> None:
        """Files submitted by an earlier run already hold their worst case."""
        for f in self.batches.files():
            if f.mode == "batch" and f.state in ("uploaded", "creating", "submitted"):
                self.caps.reserved_usd += f.est_usd or 0.0

    async def submit(self, f: BatchFileRow) -> None:
        assert self.client is not None
        if f.state == "prepared":
            content = self._content(f)
            if content is None:
                return
            est = f.est_usd or 0.0
            if not self.caps.reserve_usd(est):
                self.stop("spend_cap", f"spend cap of ${self.caps.limits.max_spend_usd} "
                          f"reached: a file of {f.requests} requests may cost ${est:.4f} at "
                          "batch prices")  # fmt: skip
                return
            self.est_usd += est
            if not self.client.uploads:  # Message Batches: the create holds the requests
                await _batch_adopt.create(self, f, content, counted=False)
                return
            file_id = await self.client.upload(f"stillroom-{f.file_key[:24]}.jsonl", content)
            # its requests count against today's cap from here (the create follows)
            self.batches.mark_uploaded(f.file_key, file_id, day=self.now().date())
            self.caps.requests_today += f.requests
            f.state, f.input_file_id = "uploaded", file_id
        if f.state == "uploaded":
            metadata = {"stillroom_run": f.run_id, "stillroom_sha256": f.sha256,
                        "stillroom_file": f.file_key, "stillroom_db": self.db_tag}  # fmt: skip
            self.batches.update(f.file_key, state="creating", metadata=metadata)  # the intent
            f.state, f.metadata = "creating", metadata
            batch = await self.client.create(f.input_file_id or "", metadata)
        elif f.state == "creating" and not self.client.uploads:
            await _batch_adopt.adopt(self, f)
            return
        elif f.state == "creating":
            batch = await self.client.find(f.metadata or {})
            if batch is None:  # the create never reached the provider
                batch = await self.client.create(f.input_file_id or "", f.metadata or {})
        else:
            return
        self.batches.record_batch(f.file_key, batch, state="submitted")
        self.view.update(
            f.file_key, batch["status"], f.requests, batch.get("request_counts"), batch["id"]
        )

    def _content(self, f: BatchFileRow) -> bytes | None:
        """The file's bytes again (from the plan), or None: abandoned, its keys re-planned."""
        keys = self.batches.keys_of(f.file_key)
        work = [self.by_key[k] for k in self.by_key if k in keys]
        if len(work) == len(keys):
            (again,) = split_requests(work, BatchLimits(len(work) + 1, 1 << 40), self.shape)
            if again.sha256 == f.sha256:
                return again.content
        self.batches.update(f.file_key, state="abandoned", message="the plan changed")
        return None

    # -- 3. poll ----------------------------------------------------------------------------
    async def poll(self, files: list[BatchFileRow]) -> None:
        assert self.client is not None
        by_id = {f.batch_id: f for f in files if f.batch_id}

        def on_update(batch: dict[str, Any]) -> None:
            f = by_id[batch["id"]]
            self.batches.record_batch(f.file_key, batch)
            self.view.update(
                f.file_key, batch["status"], f.requests, batch.get("request_counts"), batch["id"]
            )

        known = {f.batch_id: f.batch_status or "" for f in files if f.batch_id}
        await poll_until_done(
            list(by_id), self.client.retrieve, on_update, schedule=self.deadline_schedule(),
            sleep=self.sleep, clock=self.clock, known=known,
        )  # fmt: skip

    def deadline_schedule(self) -> PollSchedule:
        """The poll schedule with what is left of the run's one ``max_poll_s``."""
        schedule = self.schedule
        if schedule.max_poll_s is not None:
            left = max(0.0, schedule.max_poll_s - (self.clock() - self.started))
            schedule = dataclasses.replace(schedule, max_poll_s=left)
        return schedule

    # -- 4. ingest --------------------------------------------------------------------------
    async def ingest(self, f: BatchFileRow) -> None:
        assert self.client is not None
        batch = await self.client.retrieve(f.batch_id or "")
        keys = self.batches.keys_of(f.file_key)
        tokens = (self.tally.tokens_in, self.tally.tokens_out)
        if not self.client.uploads and not await self._store_message_results(f, batch):
            _batch_adopt.rejected(self, f)  # an adopted batch that is not this file's
            return
        for file_id in (batch.get("output_file_id"), batch.get("error_file_id")):
            if file_id:
                data = await self.client.download(file_id)
                self._store_results(data, f"{f.batch_id} file {file_id}")
        # the worst case it reserved becomes what its answers cost
        spent = self.caps.cost(self.tally.tokens_in - tokens[0], self.tally.tokens_out - tokens[1])
        self.caps.settle(f.est_usd or 0.0, 0, 0)
        self.caps.spent_usd += spent
        message = None
        left = keys - self.answered - self.settled
        if batch["status"] == "failed":  # the whole batch was refused (validation)
            message = str((batch.get("errors") or {}).get("data"))[:500]
            self.held |= left
            self.stop("batch_failed", f"batch {f.batch_id} failed: {message}; fix the cause "
                      "and run the same command again")  # fmt: skip
        if batch["status"] == "cancelled":
            self.held |= left
            self.stop("cancelled", f"batch {f.batch_id} was cancelled; {len(left)} prompts "
                      "were not answered: run the same command again to submit them")  # fmt: skip
        self._settle_never_ran(keys)
        self.batches.record_batch(
            f.file_key, batch, state="ingested", message=message, spent_usd=spent
        )
        self.view.update(
            f.file_key, batch["status"], f.requests, batch.get("request_counts"), batch["id"]
        )

    async def _store_message_results(self, f: BatchFileRow, batch: dict[str, Any]) -> bool:
        """Store a Message Batch's results (matched by custom_id); False, storing nothing,
        when the file's batch was adopted and its results hold none of the file's ids."""
        by_id = self.batches.keys_by_custom_id(f.file_key)
        data = await self.client.results(batch)  # type: ignore[union-attr]
        lines = list(read_message_results(data, f"batch {f.batch_id} results", by_id))
        foreign = lines and not by_id.keys() & {cid for cid, _ in lines}
        if foreign and (f.metadata or {}).get("adopted"):
            return False
        self._store(r for _, r in lines)
        return True

    def _store_results(self, data: bytes, source: str) -> None:
        self._store(read_results(data, source))

    def _store(self, results: Iterable[BatchResult]) -> None:
        ingest_results(
            self.store, results, items=self.by_key, answered=self.answered,
            submissions=self.batches.submissions(), max_attempts=self.max_attempts,
            ctx=self.ctx, tally=self.tally, dialect=self.dialect,
        )  # fmt: skip
        self.settled |= self.tally.failed_keys

    def _settle_never_ran(self, keys: set[str]) -> None:
        """Keys a finished file did not answer are planned again, unless that was their
        last attempt: then they are failures."""
        missing = keys - self.answered - self.settled - self.held
        counts = self.batches.submissions()
        spent = [k for k in missing if counts[k] >= self.max_attempts and k not in self.tally.retry]
        if spent:
            results = [BatchResult(k, None, None, None, "no result in any batch") for k in spent]
            ingest_results(
                self.store, results, items=self.by_key, answered=self.answered,
                submissions=counts, max_attempts=self.max_attempts, ctx=self.ctx,
                tally=self.tally,
            )  # fmt: skip
            self.settled |= self.tally.failed_keys

    # -- the loop ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Rounds until nothing is left to submit or poll; a daily cap met while planning
        ends the run as ``daily_cap`` once what it allowed is in (unless it stopped first)."""
        await self._rounds()
        if self.day_capped is not None:
            self.stop("daily_cap", self.day_capped)

    async def _rounds(self) -> None:
        self.reserve_in_flight()
        while True:
            self.plan_files()
            live = [f for f in self.batches.files() if f.mode == "batch"]
            for f in live:
                if self.stop_reason is None or f.state in ("uploaded", "creating"):
                    await self.submit(f)
            submitted = [f for f in self.batches.files() if f.state == "submitted"]
            if not submitted:
                return
            running = [f for f in submitted if f.batch_status not in TERMINAL]
            if running:
                await self.poll(running)
            ended = [f for f in self.batches.files() if f.state == "submitted"]
            ended = [f for f in ended if f.batch_status in TERMINAL]
            if not ended:
                self.stop("poll_deadline", "batches are still running; run the same command "
                          "again to resume polling")  # fmt: skip
                return
            for f in ended:
                await self.ingest(f)

    def ingest_outputs(self, paths: list[Path]) -> None:
        """``batch-file``: store the results in offline output files (``vllm run-batch -o``)."""
        touched: set[str] = set()
        for path in paths:
            if not path.exists():
                raise HarvestError(f"{path}: no such batch output file")
            data = path.read_bytes()
            keys = {r.key for r in read_results(data, str(path))}
            self._store_results(data, str(path))
            for f in self.batches.files():
                mine = f.mode == "batch-file" and f.file_key not in touched
                if mine and keys & self.batches.keys_of(f.file_key):
                    touched.add(f.file_key)
        for file_key in touched:
            self._settle_never_ran(self.batches.keys_of(file_key))
            self.batches.update(file_key, state="ingested")


def db_tag(db: Path) -> str:
    """A stable tag for one database file, sent in every batch's metadata."""
    return hashlib.sha256(str(Path(db).resolve()).encode()).hexdigest()[:16]
