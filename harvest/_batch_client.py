"""The Files and Batch API calls harvest makes, through the official ``openai`` client.

Each call is retried on what the synchronous path retries (429, 5xx, timeouts, dropped
connections; ``stillroom.harvest._retry``), with the same injected ``sleep``. Two more rules:

- downloading a result file also retries 404 a few times: providers list a batch's output
  file id a moment before the file can be read;
- a create that failed in a way that may still have created the batch (a timeout, a 5xx)
  is not simply sent again: the provider's batches are listed first and one whose
  metadata matches is adopted (:meth:`BatchClient.find`).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

import openai
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from stillroom.harvest._retry import TransientError, classify, wait_retry_after_or_jitter

ENDPOINT = "/v1/chat/completions"
Sleep = Callable[[float], Awaitable[None]]


class _NotYet(TransientError):
    """A result file that is not readable yet (404)."""


class BatchClient:
    """Upload, create, retrieve, list, cancel and download; batch objects as dicts."""

    uploads = True  # requests go in an uploaded file (Message Batches: in the create)

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        sleep: Sleep,
        rng: random.Random,
        max_attempts: int = 6,
        max_wait: float = 300.0,
        endpoint: str = ENDPOINT,
    ):
        self.client, self.sleep, self.rng, self.endpoint = client, sleep, rng, endpoint
        self.max_attempts, self.max_wait = max_attempts, max_wait

    async def _call(self, fn: Callable[[], Awaitable[Any]], *, not_found_retries: bool = False):
        async def attempt() -> Any:
            try:
                return await fn()
            except openai.NotFoundError as exc:
                if not_found_retries:
                    raise _NotYet("HTTP 404: not readable yet", 404) from exc
                raise
            except openai.APIError as exc:
                err = classify(exc)
                if isinstance(err, TransientError):
                    raise err from exc
                raise

        policy = AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, TransientError)),
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_retry_after_or_jitter(base=1.0, cap=self.max_wait, rng=self.rng),
            sleep=self.sleep,
            reraise=True,
        )
        return await policy(attempt)

    async def upload(self, filename: str, content: bytes) -> str:
        """``POST /v1/files`` (purpose ``batch``); returns the file id."""
        file = await self._call(
            lambda: self.client.files.create(file=(filename, content), purpose="batch")
        )
        return file.id

    async def create(self, input_file_id: str, metadata: dict[str, str]) -> dict[str, Any]:
        """``POST /v1/batches``; after a failure that may have created it, adopt by metadata."""

        async def once() -> dict[str, Any]:
            try:
                batch = await self.client.batches.create(
                    input_file_id=input_file_id,
                    endpoint=self.endpoint,
                    completion_window="24h",
                    metadata=metadata,
                )
            except (openai.APITimeoutError, openai.APIConnectionError, openai.InternalServerError):
                found = await self.find(metadata)
                if found is not None:
                    return found
                raise
            return batch.model_dump()

        return await self._call(once)

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        batch = await self._call(lambda: self.client.batches.retrieve(batch_id))
        return batch.model_dump()

    async def cancel(self, batch_id: str) -> dict[str, Any]:
        batch = await self._call(lambda: self.client.batches.cancel(batch_id))
        return batch.model_dump()

    async def find(self, metadata: dict[str, str]) -> dict[str, Any] | None:
        """The newest batch whose metadata holds every pair of ``metadata``."""
        async for batch in self.matching(metadata):
            return batch
        return None

    async def matching(self, metadata: dict[str, str], max_pages: int = 50):
        """Batches whose metadata holds every pair of ``metadata``, newest first (``GET
        /v1/batches``, 100 a page, at most ``max_pages`` pages)."""
        after: str | None = None
        for _ in range(max_pages):
            kwargs: dict[str, Any] = {"limit": 100}
            if after:
                kwargs["after"] = after
            page = await self._call(lambda kw=kwargs: self.client.batches.list(**kw))
            for batch in page.data:
                meta = batch.metadata or {}
                if all(meta.get(k) == v for k, v in metadata.items()):
                    yield batch.model_dump()
            if not page.has_more or not page.data:
                return
            after = page.data[-1].id

    async def download(self, file_id: str) -> bytes:
        """``GET /v1/files/{id}/content``; a 404 is retried (the file may not be ready)."""
        response = await self._call(
            lambda: self.client.files.content(file_id), not_found_retries=True
        )
        return response.content
