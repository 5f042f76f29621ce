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
from typing import Any

from stillroom.harvest._batch_state import BatchSettings, _Batches, _error
from stillroom.harvest.testing import FakeProvider, _Server


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
