"""Creating a Message Batch at most once, although batches carry no metadata.

OpenAI batches carry the file's metadata, so a batch whose id was never stored is found
by it (``BatchClient.find``). Anthropic's carry none. So, per file of work:

1. **the intent is stored before the create** (state ``creating``; ``metadata`` holds
   ``intent_at``, the time, and ``requests``, the count), in the same transaction that
   counts its requests against today's cap;
2. a file found in ``creating`` (the process died between the create and storing the
   id, or the create failed) is **adopted**: the batches created since ``intent_at`` less
   :data:`SKEW_S` (clock skew between this machine and the provider) are listed, newest
   first, and those holding exactly ``requests`` requests that this database does not
   already know are the *candidates*:

   - **one**: adopted. Once its results exist they are **confirmed by custom_id**
     (derived from this database and the key, so another database's batch of the same
     prompts has other ids): if none is this file's, the batch is rejected (remembered in
     the intent) and adoption starts again;
   - **several**: harvest waits until each has ended and reads their results; the one
     whose custom_ids are this file's is adopted, the others rejected;
   - **none**: a create may still be in flight (the killed process's request may have
     reached the provider, which finishes it whether or not anyone is listening).
     harvest creates again only once that is impossible: when the failed create was
     *answered* (``answered_at``: a 5xx or 429 means the provider has finished with that
     request, so a batch it made is already listed; a 4xx made none), or when :data:`IN_FLIGHT_S` have
     passed since ``intent_at``. Until then it **waits** (re-listing every poll interval;
     ``--max-poll`` ends the wait and the run stops ``adoption_wait``, and the same
     command resumes it). It never creates while the answer is unknown.

The one case this cannot rule out: a provider that takes longer than
:data:`IN_FLIGHT_S` to make a batch from a request whose sender is gone. Even then no
answer is stored twice (rows are keyed by the idempotency key), but that batch is paid
for twice. See docs/harvest.md, "Adoption without metadata".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from stillroom.harvest._batch_anthropic import candidates, read_results
from stillroom.harvest._batch_anthropic_client import CreateFailed, CreateRefused
from stillroom.harvest._batch_ledger import note_batch
from stillroom.harvest._batch_poll import TERMINAL, poll_until_done

if TYPE_CHECKING:
    from stillroom.harvest._batch_runner import BatchRun
    from stillroom.harvest._batch_store import BatchFileRow

SKEW_S = 120.0  # the provider's clock may run this far behind ours
IN_FLIGHT_S = 600.0  # a create older than this is no longer being made


async def create(run: BatchRun, f: BatchFileRow, content: bytes, *, counted: bool) -> None:
    """Store the intent (counting the requests once), then create; on failure, adopt."""
    before = f.metadata or {}
    intent = {"intent_at": run.now().isoformat(), "requests": f.requests,
              "rejected": before.get("rejected", []), "creates": before.get("creates", 0) + 1}  # fmt: skip
    if counted:
        run.batches.update(f.file_key, state="creating", metadata=intent)
    else:
        run.batches.mark_creating(f.file_key, intent, day=run.now().date())
        run.caps.requests_today += f.requests
    f.state, f.metadata = "creating", intent
    try:
        batch = await run.client.create(content)  # type: ignore[union-attr]
    except CreateRefused:  # answered: nothing made, nothing to wait for next time
        _set_intent(run, f, answered_at=run.now().isoformat())
        raise
    except CreateFailed as exc:
        if exc.answered:
            _set_intent(run, f, answered_at=run.now().isoformat())
        await adopt(run, f)
        return
    _record(run, f, batch, adopted=None)


async def adopt(run: BatchRun, f: BatchFileRow) -> None:
    """A ``creating`` file: adopt its batch, create it when nothing can be in flight, or
    wait (see the module's docstring)."""
    while True:
        intent = f.metadata or {}
        intent_at = datetime.fromisoformat(intent["intent_at"])
        exclude = run.batches.batch_ids() | set(intent.get("rejected", []))
        since = intent_at - timedelta(seconds=SKEW_S)
        listed = [b async for b in run.client.recent(since)]  # type: ignore[union-attr]
        found = candidates(listed, intent_at=intent_at, requests=f.requests, skew_s=SKEW_S,
                           exclude=exclude)  # fmt: skip
        if len(found) == 1:
            _record(run, f, found[0], adopted=found[0]["id"])
            return
        if len(found) > 1:
            if await _confirm_among(run, f, found) != "none":
                return  # adopted, or still waiting for them to end
            continue  # none was this file's: all rejected
        answered = intent.get("answered_at") is not None
        waited = (run.now() - intent_at).total_seconds()
        if answered or waited >= IN_FLIGHT_S:
            if intent.get("creates", 1) >= run.max_attempts:
                run.stop("batch_failed", f"file {f.file_key[:16]}: {intent['creates']} creates "
                         "failed; run the same command again later")  # fmt: skip
                return
            content = run._content(f)
            if content is not None:
                await create(run, f, content, counted=True)
            return
        if _past_deadline(run):
            run.stop("adoption_wait", f"a batch of {f.requests} requests may still be being "
                     f"created (intent {intent['intent_at']}, {waited:.0f} s ago); harvest "
                     f"waits {IN_FLIGHT_S:.0f} s before it creates again: run the same "
                     "command again")  # fmt: skip
            return
        await run.sleep(run.schedule.interval)


def rejected(run: BatchRun, f: BatchFileRow) -> None:
    """The adopted batch holds none of this file's custom_ids: back to ``creating``."""
    intent = dict(f.metadata or {})
    intent["rejected"] = [*intent.get("rejected", []), f.batch_id]
    intent.pop("adopted", None)
    run.batches.update(f.file_key, state="creating", metadata=intent, batch_id=None,
                       batch_status=None, request_counts=None)  # fmt: skip
    f.state, f.metadata, f.batch_id = "creating", intent, None


async def _confirm_among(run: BatchRun, f: BatchFileRow, found: list[dict[str, Any]]) -> str:
    """Wait for several candidates to end, then adopt the one holding this file's
    custom_ids; the rest are rejected. Returns ``adopted``, ``none`` (none was this
    file's) or ``wait`` (they have not all ended by the deadline)."""
    client = run.client
    assert client is not None
    ended = {b["id"]: b for b in found if b["status"] in TERMINAL}
    running = [b["id"] for b in found if b["id"] not in ended]
    if running:
        latest: dict[str, dict[str, Any]] = {}
        await poll_until_done(running, client.retrieve, lambda b: latest.update({b["id"]: b}),
                              schedule=run.deadline_schedule(), sleep=run.sleep,
                              clock=run.clock)  # fmt: skip
        ended.update({k: b for k, b in latest.items() if b["status"] in TERMINAL})
        if len(ended) < len(found):
            ids = ", ".join(b["id"] for b in found)
            run.stop("adoption_wait", f"batches {ids} could each be file {f.file_key[:16]}'s "
                     "(no metadata to tell); harvest reads their custom_ids once they end: "
                     "run the same command again")  # fmt: skip
            return "wait"
    mine = set(run.batches.keys_by_custom_id(f.file_key))
    for batch_id, batch in ended.items():
        data = await client.results(batch)  # type: ignore[attr-defined]
        ids = {cid for cid, _ in read_results(data, f"batch {batch_id}", {})}
        if ids & mine:
            _set_intent(run, f, rejected=[*(f.metadata or {}).get("rejected", []),
                                          *(b for b in ended if b != batch_id)])  # fmt: skip
            _record(run, f, batch, adopted=None)  # confirmed already
            return "adopted"
    _set_intent(run, f, rejected=[*(f.metadata or {}).get("rejected", []), *ended])
    return "none"


def _past_deadline(run: BatchRun) -> bool:
    limit = run.schedule.max_poll_s
    return limit is not None and run.clock() - run.started >= limit


def _set_intent(run: BatchRun, f: BatchFileRow, **changes: Any) -> None:
    f.metadata = {**(f.metadata or {}), **changes}
    run.batches.update(f.file_key, metadata=f.metadata)


def _record(run: BatchRun, f: BatchFileRow, batch: dict[str, Any], adopted: str | None) -> None:
    """The file's batch, ``adopted`` (its id) when it still has to be confirmed."""
    metadata = {**(f.metadata or {}), "adopted": adopted} if adopted else f.metadata
    run.batches.record_batch(f.file_key, batch, state="submitted", metadata=metadata)
    if not adopted:  # known to be ours: `harvest cancel` may find it while a run holds the db
        note_batch(run.store.path, batch["id"])
    f.state, f.metadata, f.batch_id = "submitted", metadata, batch["id"]
    run.view.update(f.file_key, batch["status"], f.requests, batch.get("request_counts"),
                    batch["id"])  # fmt: skip
