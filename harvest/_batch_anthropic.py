"""Anthropic Message Batches: the wire shapes, in one place.

The API (anthropic-sdk-python ``resources/messages/batches.py``, ``types/messages/``;
https://docs.anthropic.com/en/docs/build-with-claude/batch-processing, read 2026-12-03):

- ``POST /v1/messages/batches`` takes ``{"requests": [{"custom_id", "params"}]}``, where
  ``params`` is a Messages request. Here it is exactly what the ``anthropic`` dialect's
  ``build`` sends synchronously (:func:`request_line`), so both modes ask the same thing;
- ``custom_id`` is 1-64 characters of ``[A-Za-z0-9_-]``, unique within the batch.
  harvest's is :func:`custom_id`: the sha256 (hex, 64 characters) of the database's tag
  and the idempotency key, stored beside the key (``batch_items.custom_id``): a batch
  another database sent for the same prompts has other ids, so a result confirms which
  batch is whose;
- a batch is polled through ``processing_status`` (``in_progress``, ``canceling``,
  ``ended``) and ``request_counts`` (``processing``, ``succeeded``, ``errored``,
  ``canceled``, ``expired``); :func:`normalise` adds the ``status`` harvest's batch loop
  reads (OpenAI's names: ``completed``, ``expired``, ``cancelled``...);
- results come from ``results_url`` as JSONL, in any order, one ``{"custom_id",
  "result": {"type": "succeeded" | "errored" | "canceled" | "expired", ...}}`` a line
  (:func:`read_results`);
- batches carry no metadata: a batch whose id was never stored is found again by its
  creation time and request count (:func:`candidates`; see ``_batch_adopt``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stillroom.harvest._batch_files import BatchResult, result_lines
from stillroom.harvest._dialect import Dialect, RequestOptions
from stillroom.harvest._prompts import canonical_json
from stillroom.harvest._work import WorkItem
from stillroom.harvest.errors import HarvestError

BATCHES_PATH = "/v1/messages/batches"
CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# "A Message Batch is limited to either 100,000 Message requests or 256 MB in size,
# whichever is reached first." (batch-processing docs, read 2026-12-03)
MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
# The error ``type`` of an ``errored`` result -> the HTTP status a synchronous request
# would have got (https://docs.anthropic.com/en/api/errors): 429/5xx are asked again.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def custom_id(db_tag: str, key: str) -> str:
    """The ``custom_id`` of one key sent from one database (64 hex characters)."""
    return hashlib.sha256(f"{db_tag}/{key}".encode()).hexdigest()


@dataclass(frozen=True)
class AnthropicLines:
    """A run's Message Batches requests, one JSON line each (``split_requests`` cuts them
    into batches; :func:`create_body` joins a batch's lines)."""

    dialect: Dialect
    model: str
    options: RequestOptions
    db_tag: str

    def custom_id(self, key: str) -> str:
        return custom_id(self.db_tag, key)

    def line(self, item: WorkItem) -> str:
        params = self.dialect.build(self.model, json.loads(item.messages_json), self.options)
        cid = self.custom_id(item.key)
        return f'{{"custom_id":"{cid}","params":{canonical_json(params.body)}}}\n'


def create_body(content: bytes) -> bytes:
    """``{"requests": [...]}`` from a file's request lines."""
    return b'{"requests":[' + b",".join(content.splitlines()) + b"]}"


def total(batch: Mapping[str, Any]) -> int:
    """How many requests a batch holds (the sum of its ``request_counts``)."""
    return sum(int(v or 0) for v in (batch.get("request_counts") or {}).values())


def normalise(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch object with ``status`` in the batch loop's terms: ``in_progress``,
    ``cancelling``, and once ended ``cancelled`` (a cancel was asked), ``expired`` (some
    request expired unanswered) or ``completed``."""
    state = batch.get("processing_status")
    counts = batch.get("request_counts") or {}
    if state == "ended":
        if batch.get("cancel_initiated_at"):
            status = "cancelled"
        elif counts.get("expired"):
            status = "expired"
        else:
            status = "completed"
    elif state == "canceling":
        status = "cancelling"
    elif state == "in_progress":
        status = "in_progress"
    else:
        raise HarvestError(f"batch {batch.get('id')}: unknown processing_status {state!r}")
    return {**batch, "status": status}


def created_at(batch: Mapping[str, Any]) -> datetime:
    """A batch's ``created_at`` (RFC 3339) as an aware datetime."""
    return datetime.fromisoformat(str(batch["created_at"]).replace("Z", "+00:00")).astimezone(UTC)


def candidates(
    batches: Iterable[dict[str, Any]],
    *,
    intent_at: datetime,
    requests: int,
    skew_s: float,
    exclude: set[str],
) -> list[dict[str, Any]]:
    """The listed batches that may be the one a file's create made: created no earlier
    than ``skew_s`` before the intent was stored, holding ``requests`` requests, and
    not one this database already knows (``exclude``)."""
    out = []
    for batch in batches:
        if batch["id"] in exclude or total(batch) != requests:
            continue
        if (created_at(batch) - intent_at).total_seconds() >= -skew_s:
            out.append(batch)
    return out


def read_results(
    data: bytes, source: str, keys: Mapping[str, str]
) -> Iterator[tuple[str, BatchResult]]:
    """``(custom_id, result)`` per line of a results file; ``result.key`` is the
    idempotency key ``keys`` maps the custom_id to (the custom_id itself when it is not
    one of them). A bad line raises naming ``source`` and the line."""
    for where, line in result_lines(data, source):
        try:
            cid, result = line["custom_id"], line["result"]
            kind = result["type"]
        except (KeyError, TypeError) as exc:
            raise HarvestError(f"{where}: not a batch result ({exc!r})") from None
        key = keys.get(cid, cid)
        if kind == "succeeded":
            yield cid, BatchResult(key, 200, result.get("message"), None, None)
        elif kind == "errored":
            error = (result.get("error") or {}).get("error") or {}
            status = _ERROR_STATUS.get(str(error.get("type")), 500)
            why = f"HTTP {status}: {error.get('type')}: {str(error.get('message'))[:300]}"
            yield cid, BatchResult(key, status, None, None, why)
        elif kind in ("expired", "canceled"):
            yield cid, BatchResult(key, None, None, None, f"{kind}: the request never ran")
        else:
            raise HarvestError(f"{where}: unknown result type {kind!r}")
