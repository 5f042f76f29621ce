"""The Message Batches calls harvest makes, through the ``openai`` client as HTTP adapter.

Like :class:`~stillroom.harvest._batch_client.BatchClient` (whose retry policy it shares:
429, 5xx, timeouts and dropped connections are retried with the injected ``sleep``), but:

- the create is sent **once**: a retry could make a second batch, and a batch carries no
  metadata to find it by. :meth:`AnthropicBatchClient.create` says how it failed instead
  (:class:`CreateFailed`: ``answered`` when the provider answered, so it has finished with
  the request; not answered after a timeout or a dropped connection, when it may still
  make the batch), and the batch loop adopts before it creates again
  (``stillroom.harvest._batch_adopt``);
- batch objects come back through :func:`~stillroom.harvest._batch_anthropic.normalise`;
- there is no upload: the create body holds the requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import openai

from stillroom.harvest._batch_anthropic import BATCHES_PATH, create_body, created_at, normalise
from stillroom.harvest._batch_client import BatchClient
from stillroom.harvest._dialect_anthropic import VERSION
from stillroom.harvest.errors import HarvestError

# The key goes as x-api-key (the client's default headers); the SDK's bearer is dropped.
_HEADERS = {"anthropic-version": VERSION, "Authorization": openai.Omit()}


class CreateFailed(Exception):
    """A create that may or may not have made its batch."""

    def __init__(self, message: str, *, answered: bool):
        super().__init__(message)
        self.answered = answered


class CreateRefused(HarvestError):
    """A create the provider answered with a 4xx: no batch was made."""


class AnthropicBatchClient(BatchClient):
    """Create, retrieve, list, cancel and read results; batch objects as dicts."""

    uploads = False

    def _options(self) -> dict[str, Any]:
        return {"headers": dict(_HEADERS)}

    async def create(self, content: bytes) -> dict[str, Any]:  # type: ignore[override]
        """``POST /v1/messages/batches`` once; :class:`CreateFailed` when it may have made
        the batch (5xx, 429, timeout, dropped connection)."""
        import json

        body = json.loads(create_body(content))
        try:
            batch = await self.client.post(
                BATCHES_PATH, body=body, cast_to=object, options=self._options()
            )
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise CreateFailed(f"no answer ({type(exc).__name__})", answered=False) from exc
        except openai.APIStatusError as exc:
            if exc.status_code == 429 or exc.status_code >= 500:
                raise CreateFailed(f"HTTP {exc.status_code}", answered=True) from exc
            raise CreateRefused(
                f"Anthropic refused the batch (HTTP {exc.status_code}: {str(exc)[:300]})"
            ) from exc
        return normalise(batch)

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        batch = await self._call(
            lambda: self.client.get(
                f"{BATCHES_PATH}/{batch_id}", cast_to=object, options=self._options()
            )
        )
        return normalise(batch)

    async def cancel(self, batch_id: str) -> dict[str, Any]:
        batch = await self._call(
            lambda: self.client.post(
                f"{BATCHES_PATH}/{batch_id}/cancel", cast_to=object, options=self._options()
            )
        )
        return normalise(batch)

    async def recent(self, since: datetime, max_pages: int = 50) -> AsyncIterator[dict]:
        """Batches created at or after ``since``, newest first (``GET /v1/messages/batches``,
        100 a page via ``after_id``, at most ``max_pages`` pages)."""
        after: str | None = None
        for _ in range(max_pages):
            query: dict[str, Any] = {"limit": 100}
            if after:
                query["after_id"] = after
            options = {**self._options(), "params": query}
            page = await self._call(
                lambda o=options: self.client.get(BATCHES_PATH, cast_to=object, options=o)
            )
            data = page.get("data") or []
            for batch in data:
                if created_at(batch) < since:
                    return
                yield normalise(batch)
            if not page.get("has_more") or not data:
                return
            after = page.get("last_id") or data[-1]["id"]

    async def results(self, batch: dict[str, Any]) -> bytes:
        """The JSONL at the batch's ``results_url`` (a 404 is retried: not ready yet)."""
        url = batch.get("results_url")
        if not url:
            raise HarvestError(f"batch {batch['id']} ended without a results_url")
        return await self._call(
            lambda: self.client.get(url, cast_to=bytes, options=self._options()),
            not_found_retries=True,
        )
