"""A fake OpenAI Batch API over loopback: ``/v1/files`` and ``/v1/batches``, for tests.

:class:`FakeBatchProvider` serves the request and response shapes of OpenAI's Files and
Batch APIs (https://platform.openai.com/docs/api-reference/batch, .../files):

- ``POST /v1/files`` (multipart ``file`` + ``purpose``), ``GET /v1/files/{id}``,
  ``GET /v1/files/{id}/content``;
- ``POST /v1/batches`` (``input_file_id``, ``endpoint``: ``/v1/chat/completions`` or
  ``/v1/responses``, whose lines a server made with ``api="responses"`` answers; ``completion_window``,
  ``metadata``), ``GET /v1/batches/{id}``, ``GET /v1/batches?limit=&after=`` (newest
  first, ``has_more``/``first_id``/``last_id``), ``POST /v1/batches/{id}/cancel``;
- and ``POST /v1/chat/completions`` from the same answer generator as
  :class:`~stillroom.harvest.testing.FakeProvider`, so the synchronous and the batch path get
  identical answers, reasoning and logprobs.

A batch moves ``validating -> in_progress -> finalizing -> completed``, one step every
``polls_per_state`` retrieves (a cancelled one: ``cancelling -> cancelled`` at the next). An input file that breaks the limits (``max_requests``,
duplicate ``custom_id``, a line that is not a request) makes the batch ``failed`` with
``errors.data``. Per batch, by creation index: ``expire={index: n}`` answers only the first
``n`` requests, then ``expired`` (the others go to the error file as ``batch_expired``).
A prompt holding ``[[status:400]]`` becomes an error-file line. ``flaky_files=True``: each
output/error file answers 404 once; ``create_500_once=True``: the first create makes its
batch but answers 500. :meth:`FakeBatchProvider.hang_at` makes one endpoint
never answer (``create`` does the work first), so a test can kill its client right there.

``fake.creates`` records every batch create (body and id) and ``fake.uploads`` every file.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from stillroom.harvest import _fake_openai as oa
from stillroom.harvest.testing import FakeProvider, _Server

_TERMINAL = ("completed", "failed", "expired", "cancelled")
_ENDPOINTS = ("/v1/chat/completions", "/v1/responses")
_STEPS = ("validating", "in_progress", "finalizing", "completed")


@dataclass
class BatchSettings:
    polls_per_state: int = 1
    max_requests: int = 50_000
    max_file_bytes: int = 200 * 1024 * 1024
    expire: dict[int, int] = field(default_factory=dict)  # create index -> answered requests
    flaky_files: bool = False
    create_500_once: bool = False  # the first create makes the batch, then answers 500
    api_key: str | None = None


class _Batches:
    """Files and batches, and how they move (runs on the server's event loop)."""

    def __init__(self, chat: _Server, settings: BatchSettings):
        self.chat, self.s = chat, settings
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.creates: list[dict[str, Any]] = []
        self.uploads: list[dict[str, Any]] = []
        self.content_404s: set[str] = set()
        self.hang: str | None = None
        self.hung = threading.Event()
        self.calls: list[str] = []

    # -- files ---------------------------------------------------------------------------
    def add_file(self, name: str, purpose: str, content: bytes) -> dict[str, Any]:
        file_id = f"file-{len(self.files) + 1:06d}"
        meta = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": name,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        self.files[file_id], self.contents[file_id] = meta, content
        return meta

    # -- batches -------------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        file_id = body.get("input_file_id")
        if file_id not in self.files:
            return 400, _error(f"No such File object: {file_id}", "invalid_request_error")
        if body.get("endpoint") not in _ENDPOINTS:
            return 400, _error(f"endpoint must be one of {_ENDPOINTS}", "invalid_request_error")
        metadata = body.get("metadata")
        if metadata is not None and (
            len(metadata) > 16 or any(len(k) > 64 or len(str(v)) > 512 for k, v in metadata.items())
        ):
            return 400, _error("metadata: at most 16 pairs, keys 64 and values 512 chars", "")
        now = int(time.time())
        batch_id = f"batch_{len(self.batches) + 1:06d}"
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": file_id,
            "completion_window": body.get("completion_window", "24h"),
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 86400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": metadata,
        }
        self.batches[batch_id], self.polls[batch_id] = batch, 0
        self.creates.append({"id": batch_id, "body": body, "index": len(self.creates)})
        return 200, batch

    def retrieve(self, batch_id: str) -> dict[str, Any] | None:
        batch = self.batches.get(batch_id)
        if batch is None or batch["status"] in _TERMINAL:
            return batch
        self.polls[batch_id] += 1
        if batch["status"] == "cancelling" or self.polls[batch_id] % self.s.polls_per_state == 0:
            self._advance(batch)
        return batch

    def _advance(self, batch: dict[str, Any]) -> None:
        now = int(time.time())
        status = batch["status"]
        if status == "cancelling":
            self._finish(batch, "cancelled", answered=0)
        elif status == "validating":
            problem, lines = self._validate(
                self.contents[batch["input_file_id"]], batch["endpoint"]
            )
            if problem:
                batch.update(status="failed", failed_at=now)
                batch["errors"] = {"object": "list", "data": [problem]}
                return
            batch.update(status="in_progress", in_progress_at=now)
            batch["request_counts"]["total"] = len(lines)
        elif status == "in_progress":
            batch.update(status="finalizing", finalizing_at=now)
        elif status == "finalizing":
            index = next(c["index"] for c in self.creates if c["id"] == batch["id"])
            if index in self.s.expire:
                self._finish(batch, "expired", answered=self.s.expire[index])
            else:
                self._finish(batch, "completed", answered=None)

    def _validate(self, content: bytes, endpoint: str) -> tuple[dict | None, list[dict]]:
        lines, seen = [], set()
        if len(content) > self.s.max_file_bytes:
            return {"code": "file_too_large", "message": "file exceeds the size limit"}, []
        for number, raw in enumerate(content.splitlines(), 1):
            try:
                line = json.loads(raw)
                ok = line["method"] == "POST" and line["url"] == endpoint
                ok = ok and isinstance(line["body"], dict) and isinstance(line["custom_id"], str)
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                return {"code": "invalid_request", "line": number, "message": "bad line"}, []
            if line["custom_id"] in seen:
                return {"code": "duplicate_custom_id", "line": number, "message": "dup"}, []
            seen.add(line["custom_id"])
            lines.append(line)
        if len(lines) > self.s.max_requests:
            return {"code": "too_many_requests", "message": f"> {self.s.max_requests}"}, []
        return None, lines

    def _finish(self, batch: dict[str, Any], status: str, answered: int | None) -> None:
        _, lines = self._validate(self.contents[batch["input_file_id"]], batch["endpoint"])
        out, err = [], []
        for i, line in enumerate(lines):
            if answered is not None and i >= answered:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                err.append(_result(line, None, {"code": code, "message": f"not run: {code}"}))
                continue
            status_code, payload = self._answer(line["body"], line["url"])
            target = out if status_code == 200 else err
            target.append(_result(line, {"status_code": status_code, "body": payload}, None))
        now = int(time.time())
        batch["status"] = status
        batch[f"{status}_at"] = now
        if status != "cancelled":
            batch["completed_at"] = batch["completed_at"] if status != "completed" else now
        counts = batch["request_counts"]
        counts.update(total=len(lines), completed=len(out), failed=len(err))
        if out:
            batch["output_file_id"] = self._result_file(batch, "output", out)
        if err:
            batch["error_file_id"] = self._result_file(batch, "error", err)

    def _result_file(self, batch: dict[str, Any], kind: str, lines: list[dict]) -> str:
        content = "".join(json.dumps(line) + "\n" for line in lines).encode()
        meta = self.add_file(f"{batch['id']}_{kind}.jsonl", "batch_output", content)
        if self.s.flaky_files:
            self.content_404s.add(meta["id"])
        return meta["id"]

    def _answer(self, body: dict[str, Any], url: str) -> tuple[int, dict[str, Any]]:
        """The fake answer, exactly as the synchronous endpoint would give it (a server made
        with ``api="responses"`` answers ``/v1/responses`` lines)."""
        chat = self.chat
        chat.total += 1
        if url == "/v1/responses":
            messages = oa.responses_messages(body)
        else:
            messages = body.get("messages") or []
        last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        chat.per_prompt[last_user] += 1
        if "[[status:" in last_user:
            status = int(last_user.split("[[status:")[1].split("]]")[0])
            return status, _error(f"injected {status}", "invalid_request_error")
        prompt_tokens = sum(len(m.get("content") or "") // 4 + 4 for m in messages) + 3
        max_tokens = int(
            body.get("max_tokens")
            or body.get("max_completion_tokens")
            or body.get("max_output_tokens")
            or 256
        )
        return 200, chat._completion(body, last_user, prompt_tokens, max_tokens)

    def cancel(self, batch_id: str) -> dict[str, Any] | None:
        batch = self.batches.get(batch_id)
        if batch is not None and batch["status"] not in _TERMINAL:
            batch.update(status="cancelling", cancelling_at=int(time.time()))
        return batch

    def listing(self, limit: int, after: str | None) -> dict[str, Any]:
        ordered = sorted(self.batches.values(), key=lambda b: b["id"], reverse=True)
        if after is not None:
            ordered = [b for b in ordered if b["id"] < after]
        page = ordered[:limit]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(ordered) > limit,
        }


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _result(line: dict, response: dict | None, error: dict | None) -> dict[str, Any]:
    """One output/error-file line: ``id``, ``custom_id``, ``response`` and ``error``."""
    if response is not None:
        response = {**response, "request_id": f"req_b{zlib.crc32(line['custom_id'].encode()):010d}"}
    return {
        "id": f"batch_req_{line['custom_id'][:16]}",
        "custom_id": line["custom_id"],
        "response": response,
        "error": error,
    }


class _App:
    """The aiohttp routes over :class:`_Batches` and the chat server."""

    def __init__(self, chat: _Server, batches: _Batches):
        self.chat, self.b = chat, batches

    def build(self):
        from aiohttp import web

        app = _Server.app(self.chat)  # the chat routes (the instance's .app is this method)
        app.router.add_post("/v1/files", self.upload)
        app.router.add_get("/v1/files/{file_id}", self.file)
        app.router.add_get("/v1/files/{file_id}/content", self.content)
        app.router.add_post("/v1/batches", self.create)
        app.router.add_get("/v1/batches", self.listing)
        app.router.add_get("/v1/batches/{batch_id}", self.retrieve)
        app.router.add_post("/v1/batches/{batch_id}/cancel", self.cancel)
        self.web = web
        return app

    async def _gate(self, request, name: str):
        """Record the call and check the key."""
        self.b.calls.append(name)
        key = self.b.s.api_key
        if key is not None and request.headers.get("Authorization") != f"Bearer {key}":
            return self._json(401, _error("bad key", "invalid_api_key"))
        return None

    async def _maybe_hang(self, name: str) -> None:
        if self.b.hang == name:
            self.b.hung.set()
            while self.b.hang == name:  # until released (hang_at(None) or stop)
                await asyncio.sleep(0.02)

    def _json(self, status: int, payload: dict):
        return self.web.json_response(payload, status=status)

    async def upload(self, request):
        if (denied := await self._gate(request, "upload")) is not None:
            return denied
        await self._maybe_hang("upload")
        form = await request.post()
        upload, purpose = form.get("file"), form.get("purpose")
        if upload is None or not hasattr(upload, "file") or purpose != "batch":
            return self._json(400, _error("multipart 'file' and purpose=batch needed", ""))
        content = upload.file.read()
        if len(content) > self.b.s.max_file_bytes:
            return self._json(400, _error("file too large", "invalid_request_error"))
        meta = self.b.add_file(upload.filename, purpose, content)
        self.b.uploads.append({"id": meta["id"], "bytes": len(content)})
        return self._json(200, meta)

    async def file(self, request):
        if (denied := await self._gate(request, "file")) is not None:
            return denied
        meta = self.b.files.get(request.match_info["file_id"])
        return self._json(200, meta) if meta else self._json(404, _error("no such file", ""))

    async def content(self, request):
        if (denied := await self._gate(request, "content")) is not None:
            return denied
        await self._maybe_hang("content")
        file_id = request.match_info["file_id"]
        if file_id not in self.b.contents:
            return self._json(404, _error("no such file", ""))
        if file_id in self.b.content_404s:
            self.b.content_404s.discard(file_id)
            return self._json(404, _error("file not ready", ""))
        body = self.b.contents[file_id]
        return self.web.Response(body=body, content_type="application/octet-stream")

    async def create(self, request):
        if (denied := await self._gate(request, "create")) is not None:
            return denied
        status, payload = self.b.create(await request.json())
        await self._maybe_hang("create")  # after the work: the caller never hears of it
        if self.b.s.create_500_once and status == 200:
            self.b.s.create_500_once = False
            return self._json(500, _error("the server had an error", "server_error"))
        return self._json(status, payload)

    async def retrieve(self, request):
        if (denied := await self._gate(request, "retrieve")) is not None:
            return denied
        await self._maybe_hang("retrieve")
        batch = self.b.retrieve(request.match_info["batch_id"])
        return self._json(200, batch) if batch else self._json(404, _error("no such batch", ""))

    async def listing(self, request):
        if (denied := await self._gate(request, "list")) is not None:
            return denied
        limit = min(100, int(request.query.get("limit", 20)))
        return self._json(200, self.b.listing(limit, request.query.get("after")))

    async def cancel(self, request):
        if (denied := await self._gate(request, "cancel")) is not None:
            return denied
        batch = self.b.cancel(request.match_info["batch_id"])
        return self._json(200, batch) if batch else self._json(404, _error("no such batch", ""))


class FakeBatchProvider(FakeProvider):
    """A :class:`~stillroom.harvest.testing.FakeProvider` that also serves the Files and Batch APIs.

    >>> with FakeBatchProvider(polls_per_state=2, expire={0: 5}) as fake:   # doctest: +SKIP
    ...     fake.base_url, len(fake.creates)
    """

    def __init__(
        self,
        *,
        polls_per_state: int = 1,
        max_requests: int = 50_000,
        max_file_bytes: int = 200 * 1024 * 1024,
        expire: dict[int, int] | None = None,
        flaky_files: bool = False,
        create_500_once: bool = False,
        **settings: Any,
    ):
        super().__init__(**settings)
        batch = BatchSettings(
            polls_per_state=polls_per_state,
            max_requests=max_requests,
            max_file_bytes=max_file_bytes,
            expire=dict(expire or {}),
            flaky_files=flaky_files,
            create_500_once=create_500_once,
            api_key=self.settings.api_key,
        )
        self.batches = _Batches(self.server, batch)
        app = _App(self.server, self.batches)
        self.server.app = app.build  # type: ignore[method-assign]  # served by FakeProvider

    def stop(self) -> None:
        self.batches.hang = None
        super().stop()

    @property
    def creates(self) -> list[dict[str, Any]]:
        return self.batches.creates

    @property
    def uploads(self) -> list[dict[str, Any]]:
        return self.batches.uploads

    def hang_at(self, endpoint: str | None) -> threading.Event:
        """Make ``upload``/``create``/``retrieve``/``content`` never answer (None: stop).

        Returns an event set once a request has reached the hang."""
        self.batches.hang = endpoint
        self.batches.hung.clear()
        return self.batches.hung

    def input_lines(self, create_index: int) -> list[dict[str, Any]]:
        """The request lines of the ``create_index``-th batch's input file."""
        file_id = self.creates[create_index]["body"]["input_file_id"]
        return [json.loads(x) for x in self.batches.contents[file_id].splitlines()]
