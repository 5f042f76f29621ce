"""A loopback Anthropic Message Batches API (and Messages API) for tests.

Served from the pinned payloads ``fixtures/anthropic/message_batch*.json`` (anthropic-sdk-python
``types/messages/``, docs.anthropic.com/en/api/*-message-batches, read 2026-12-03) on top
of :class:`~stillroom.harvest._fake_anthropic.FakeAnthropic` (which keeps serving
``POST /v1/messages``, and answers each batch request's ``params`` the same way):

- ``POST /v1/messages/batches``: ``{"requests": [{"custom_id", "params"}]}``, 1 to
  ``max_requests``; a ``custom_id`` outside ``[A-Za-z0-9_-]{1,64}`` or repeated is a 400
  (the key and ``anthropic-version`` are checked as for a message). ``params`` are checked
  when the batch runs: a refused one is an ``errored`` result;
- ``GET /v1/messages/batches/{id}``: ``in_progress`` for ``polls_per_state`` retrieves,
  then ``ended`` with its ``request_counts`` and ``results_url``;
- ``GET /v1/messages/batches?limit=&after_id=&before_id=``: most recent first;
- ``POST /v1/messages/batches/{id}/cancel``: ``canceling``, then ``ended`` at the next
  retrieve with every request ``canceled``;
- ``GET /v1/messages/batches/{id}/results``: JSONL, **not in request order** (reversed);
  a prompt holding ``[[status:N]]`` is ``errored`` with the error body of N.

Per batch, by creation index: ``expire={index: n}`` answers the first ``n`` requests and
the rest are ``expired``. ``create_500_once=True``: the first create makes its batch and
answers 500; ``create_500_before_once=True``: it answers 500 having made nothing. :meth:`FakeAnthropicBatches.hang_at` makes ``create_early`` (before the
batch is made: the body still on its way; released, it makes nothing, or with
``arrives_late = True`` makes the batch then, its sender long gone), ``create`` (after), ``retrieve`` or
``results`` never answer, so a test can kill its client right there.
:meth:`FakeAnthropicBatches.add_foreign` makes a batch someone else created.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from multidict import CIMultiDict

from stillroom.harvest._fake_anthropic import FakeAnthropic, Refusal, _App, error_body
from stillroom.harvest._fake_native import pinned_payload, receive

_CUSTOM_ID = r"^[a-zA-Z0-9_-]{1,64}$"
_PATH = "/v1/messages/batches"


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _BatchApp(_App):
    def build(self):
        app = super().build()
        app.router.add_post(_PATH, self.create)
        app.router.add_get(_PATH, self.listing)
        app.router.add_get(_PATH + "/{batch_id}", self.retrieve)
        app.router.add_post(_PATH + "/{batch_id}/cancel", self.cancel)
        app.router.add_get(_PATH + "/{batch_id}/results", self.results)
        return app

    async def _gate(self, request, name: str, hang: str | None = None):
        fake = self.fake
        fake.calls.append(name)
        key = self.server.s.api_key
        if key is not None and request.headers.get("x-api-key") != key:
            return self._error(401, None)
        if not request.headers.get("anthropic-version"):
            return self._error(400, "anthropic-version: header is required")
        hung = await self._maybe_hang(hang or name)
        if hung and hang == "create_early" and not self.fake.arrives_late:
            return self._error(400, "the request body never arrived whole")  # nothing made
        return None

    async def _maybe_hang(self, name: str) -> bool:
        fake = self.fake
        if fake.hang != name:
            return False
        fake.hung.set()
        while fake.hang == name:  # until released (hang_at(None) or stop)
            await asyncio.sleep(0.02)
        return True

    def _error(self, status: int, message: str | None):
        from aiohttp import web

        return web.json_response(error_body(status, message), status=status)

    def _ok(self, payload: dict[str, Any]):
        from aiohttp import web

        return web.json_response(payload)

    async def create(self, request):
        raw = await receive(self.server, request)
        if (denied := await self._gate(request, "create", hang="create_early")) is not None:
            return denied
        try:
            body = json.loads(raw)
            self.fake.check_create(body)
        except (ValueError, KeyError, TypeError) as exc:
            return self._error(400, f"requests: {exc}")
        except Refusal as refusal:
            return self._error(refusal.status, refusal.message)
        if self.fake.create_500_before_once:
            self.fake.create_500_before_once = False
            return self._error(500, None)  # nothing made
        batch = self.fake.make_batch(body, CIMultiDict(request.headers))
        await self._maybe_hang("create")  # after the work: the caller never hears of it
        if self.fake.create_500_once:
            self.fake.create_500_once = False
            return self._error(500, None)
        return self._ok(batch)

    async def retrieve(self, request):
        if (denied := await self._gate(request, "retrieve")) is not None:
            return denied
        batch = self.fake.advance(request.match_info["batch_id"])
        return self._ok(batch) if batch else self._error(404, None)

    async def cancel(self, request):
        if (denied := await self._gate(request, "cancel")) is not None:
            return denied
        batch = self.fake.batches.get(request.match_info["batch_id"])
        if batch is None:
            return self._error(404, None)
        if batch["processing_status"] == "in_progress":
            batch.update(
                processing_status="canceling", cancel_initiated_at=_rfc3339(self.fake.now())
            )
        return self._ok(batch)

    async def listing(self, request):
        if (denied := await self._gate(request, "list")) is not None:
            return denied
        q = request.query
        ordered = list(reversed(self.fake.batches.values()))  # most recent first
        ids = [b["id"] for b in ordered]
        if "after_id" in q:
            ordered = ordered[ids.index(q["after_id"]) + 1 :]
        elif "before_id" in q:
            ordered = ordered[: ids.index(q["before_id"])]
        limit = min(1000, int(q.get("limit", 20)))
        page = pinned_payload("anthropic", "message_batch_list")["body"]
        data = ordered[:limit]
        page.update(data=data, has_more=len(ordered) > limit,
                    first_id=data[0]["id"] if data else None,
                    last_id=data[-1]["id"] if data else None)  # fmt: skip
        return self._ok(page)

    async def results(self, request):
        from aiohttp import web

        if (denied := await self._gate(request, "results")) is not None:
            return denied
        batch_id = request.match_info["batch_id"]
        lines = self.fake.result_lines.get(batch_id)
        if lines is None:
            return self._error(404, f"batch {batch_id} has not ended")
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        return web.Response(body=body, content_type="application/binary")


class FakeAnthropicBatches(FakeAnthropic):
    """A strict loopback Messages and Message Batches API; use as a context manager."""

    def __init__(
        self,
        *,
        polls_per_state: int = 1,
        max_requests: int = 100_000,
        expire: dict[int, int] | None = None,
        create_500_once: bool = False,
        create_500_before_once: bool = False,
        **settings: Any,
    ):
        super().__init__(**settings)
        self.polls_per_state, self.max_requests = polls_per_state, max_requests
        self.expire = dict(expire or {})
        self.create_500_once = create_500_once
        self.create_500_before_once = create_500_before_once
        self.batches: dict[str, dict[str, Any]] = {}
        self.result_lines: dict[str, list[dict[str, Any]]] = {}
        self.creates: list[dict[str, Any]] = []  # {"id", "body", "index"} per batch made here
        self.calls: list[str] = []
        self.hang: str | None = None
        self.hung = threading.Event()
        self._pending: dict[str, tuple[list[dict[str, Any]], dict[str, str]]] = {}
        self._polls: dict[str, int] = {}
        self._ids = itertools.count(1)
        self.clock_offset = timedelta(0)  # the provider's clock, relative to ours
        self.arrives_late = False  # a create released from create_early makes its batch
        self._install(_BatchApp(self))

    def now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset

    def hang_at(self, endpoint: str | None) -> threading.Event:
        """Make ``create_early``/``create``/``retrieve``/``results`` never answer (None:
        stop). Returns an event set once a request has reached the hang."""
        self.hang = endpoint
        self.hung.clear()
        return self.hung

    def stop(self) -> None:
        self.hang = None
        super().stop()

    def check_create(self, body: dict[str, Any]) -> None:
        import re

        requests = body["requests"]
        if not 1 <= len(requests) <= self.max_requests:
            raise Refusal(400, f"requests: between 1 and {self.max_requests} items")
        seen: set[str] = set()
        for i, item in enumerate(requests):
            cid = item["custom_id"]
            if not isinstance(cid, str) or not re.match(_CUSTOM_ID, cid):
                raise Refusal(400, f"requests.{i}.custom_id: String should match pattern "
                              f"'{_CUSTOM_ID}'")  # fmt: skip
            if cid in seen:
                raise Refusal(400, f"requests.{i}.custom_id: duplicate custom_id {cid!r}")
            seen.add(cid)
            if not isinstance(item["params"], dict):
                raise Refusal(400, f"requests.{i}.params: Input should be a valid dictionary")

    def make_batch(self, body: dict[str, Any], headers: Any) -> dict[str, Any]:
        batch = self._new_batch(len(body["requests"]))
        self._pending[batch["id"]] = (body["requests"], headers)
        self.creates.append({"id": batch["id"], "body": body, "index": len(self.creates)})
        return batch

    def add_foreign(self, requests: int) -> dict[str, Any]:
        """A batch someone else made (other custom_ids), ``requests`` long, created now."""
        batch = self._new_batch(requests)
        params = {"model": "other", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}
        items = [{"custom_id": f"other-{i}", "params": params} for i in range(requests)]
        self._pending[batch["id"]] = (items, {"anthropic-version": "2023-06-01",
                                              "x-api-key": self.server.s.api_key or ""})  # fmt: skip
        return batch

    def _new_batch(self, requests: int) -> dict[str, Any]:
        batch = pinned_payload("anthropic", "message_batch")["body"]
        now = self.now()
        batch.update(id=f"msgbatch_fake{next(self._ids):06d}", created_at=_rfc3339(now),
                     expires_at=_rfc3339(now + timedelta(hours=24)))  # fmt: skip
        batch["request_counts"] = dict.fromkeys(batch["request_counts"], 0)
        batch["request_counts"]["processing"] = requests
        self.batches[batch["id"]], self._polls[batch["id"]] = batch, 0
        return batch

    def advance(self, batch_id: str) -> dict[str, Any] | None:
        batch = self.batches.get(batch_id)
        if batch is None or batch["processing_status"] == "ended":
            return batch
        self._polls[batch_id] += 1
        canceling = batch["processing_status"] == "canceling"
        if canceling or self._polls[batch_id] >= self.polls_per_state:
            self._end(batch)
        return batch

    def _end(self, batch: dict[str, Any]) -> None:
        requests, headers = self._pending.pop(batch["id"])
        index = next((c["index"] for c in self.creates if c["id"] == batch["id"]), None)
        answered = self.expire.get(index) if index is not None else None
        canceled = batch["processing_status"] == "canceling"
        lines = []
        for i, item in enumerate(requests):
            if canceled or (answered is not None and i >= answered):
                lines.append({"custom_id": item["custom_id"],
                              "result": {"type": "canceled" if canceled else "expired"}})  # fmt: skip
                continue
            status, payload = self.answer_params(headers, item["params"])
            result = (
                {"type": "succeeded", "message": payload}
                if status == 200
                else {"type": "errored", "error": {k: payload[k] for k in ("type", "error")}}
            )
            lines.append({"custom_id": item["custom_id"], "result": result})
        counts = {k: 0 for k in batch["request_counts"]}
        for line in lines:
            counts[line["result"]["type"]] += 1
        base = self.base_url.removesuffix("/")
        batch.update(processing_status="ended", ended_at=_rfc3339(self.now()),
                     request_counts=counts, results_url=f"{base}{_PATH}/{batch['id']}/results")  # fmt: skip
        self.result_lines[batch["id"]] = lines[::-1]  # any order: here, reversed

    def params_of(self, create_index: int) -> list[dict[str, Any]]:
        """The ``requests`` of the ``create_index``-th batch made here."""
        return self.creates[create_index]["body"]["requests"]
