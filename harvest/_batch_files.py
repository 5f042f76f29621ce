"""Batch input files (request JSONL, split within a provider's limits) and result lines.

The input format is OpenAI's (https://platform.openai.com/docs/guides/batch), which
``vllm run-batch`` reads too: one request a line,
``{"custom_id": ..., "method": "POST", "url": "/v1/chat/completions", "body": {...}}``,
where harvest's ``custom_id`` is the row's idempotency key. A file holds at most
``max_requests`` lines and ``max_bytes`` bytes (OpenAI: 50,000 requests and 200 MB).

Output and error files hold one result a line,
``{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}``:
``response`` is the chat completion (or the error answer) a synchronous request would
have got; ``error`` is set instead when the request never ran (``batch_expired``,
``batch_cancelled``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from stillroom.harvest._dialect import Dialect, RequestOptions
from stillroom.harvest._prompts import canonical_json
from stillroom.harvest._work import WorkItem
from stillroom.harvest.errors import HarvestError

CHAT_URL = "/v1/chat/completions"


@dataclass(frozen=True)
class BatchLimits:
    """What one batch input file may hold."""

    max_requests: int = 50_000
    max_bytes: int = 200 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.max_bytes < 1024:
            raise HarvestError(f"batch limits too small: {self}")


# https://platform.openai.com/docs/guides/batch ("up to 50,000 requests, and a batch
# input file can be up to 200 MB in size"), read 2026-12-01.
OPENAI_BATCH_LIMITS = BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024)


@dataclass
class BatchInput:
    """One input file: its lines' keys, its bytes and their sha256."""

    keys: list[str]
    content: bytes
    sha256: str
    custom_ids: list[str] | None = None  # what each line is sent under (None: its key)

    @property
    def requests(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class LineShape:
    """What every line of a run shares: the batch ``url``, the body field the chat
    messages go in (``messages``; ``input`` for ``/v1/responses``) and the body's other
    fields as canonical JSON (``None``: the item's neutral params, which is the chat body
    of a plain model)."""

    url: str = CHAT_URL
    fields_json: str | None = None
    messages_field: str = "messages"

    def line(self, item: WorkItem) -> str:
        return request_line(item, self)

    def custom_id(self, key: str) -> str:
        return key  # OpenAI's custom_id takes the idempotency key as it is


# The body field each OpenAI batch endpoint takes the chat messages in.
_MESSAGES_FIELD = {CHAT_URL: "messages", "/v1/responses": "input"}


def line_shape(dialect: Dialect, model: str, options: RequestOptions) -> LineShape:
    """The lines a dialect's requests make (its ``build``, once per run)."""
    field = _MESSAGES_FIELD.get(dialect.batch_url or "")
    if field is None:
        raise HarvestError(f"--api {dialect.name} has no OpenAI batch lines")
    body = dialect.build(model, [], options).body
    if field not in body:  # the lines splice each item's messages in
        raise HarvestError(f"--api {dialect.name}: its requests carry no chat messages")
    fields_json = canonical_json({k: v for k, v in body.items() if k != field})
    return LineShape(dialect.batch_url or CHAT_URL, fields_json, field)


def request_line(item: WorkItem, shape: LineShape = LineShape()) -> str:
    """One request line. Built from the item's stored JSON (messages and canonical fields)
    rather than ``json.dumps`` of a fresh dict: same bytes every run, ~4x faster."""
    params = (shape.fields_json or item.params_json)[1:]  # canonical: sorted, an object
    comma = "," if params != "}" else ""
    return (
        f'{{"custom_id":"{item.key}","method":"POST","url":"{shape.url}",'
        f'"body":{{"{shape.messages_field}":{item.messages_json}{comma}{params}}}\n'
    )


class Lines(Protocol):
    """How a run's requests become batch lines: :class:`LineShape` (OpenAI's JSONL) or
    ``stillroom.harvest._batch_anthropic.AnthropicLines`` (Message Batches requests)."""

    def line(self, item: WorkItem) -> str: ...

    def custom_id(self, key: str) -> str: ...


def split_requests(
    items: Sequence[WorkItem], limits: BatchLimits, shape: Lines = LineShape()
) -> list[BatchInput]:
    """The items' request lines, in order, cut into files within ``limits``."""
    files: list[BatchInput] = []
    keys: list[str] = []
    lines: list[bytes] = []
    size = 0

    def cut() -> None:
        content = b"".join(lines)
        ids = [shape.custom_id(k) for k in keys]
        files.append(BatchInput(list(keys), content, hashlib.sha256(content).hexdigest(), ids))
        keys.clear()
        lines.clear()

    for item in items:
        line = shape.line(item).encode()
        if len(line) > limits.max_bytes:
            raise HarvestError(
                f"prompt {item.prompt_id!r}: one request is {len(line)} bytes, more than a "
                f"batch file may hold ({limits.max_bytes})"
            )
        if keys and (len(keys) >= limits.max_requests or size + len(line) > limits.max_bytes):
            cut()
            size = 0
        keys.append(item.key)
        lines.append(line)
        size += len(line)
    if keys:
        cut()
    return files


@dataclass(slots=True)
class BatchResult:
    """One line of an output or error file."""

    key: str
    status: int | None  # the answer's HTTP status; None when the request never ran
    body: dict | None  # the answer's JSON (a chat completion when status is 200)
    request_id: str | None
    error: str | None  # why it failed or never ran (code: message)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.body is not None

    @property
    def retry(self) -> bool:
        """Worth asking again: never ran, rate limited or a server error."""
        return self.status is None or self.status == 429 or self.status >= 500


def result_lines(data: bytes, source: str) -> Iterator[tuple[str, Any]]:
    """``(where, line)`` for each JSON line of a results file (``where``: ``source, line
    N``, for the parser's errors); one that is not JSON raises naming it."""
    try:
        text = data.decode()  # one decode, not one per line in json.loads
    except UnicodeDecodeError as exc:
        raise HarvestError(f"{source}: not UTF-8 JSONL ({exc})") from None
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError as exc:
            raise HarvestError(f"{source}, line {number}: not a batch result ({exc})") from None
        yield f"{source}, line {number}", line


def read_results(data: bytes, source: str) -> Iterator[BatchResult]:
    """Parse an output/error file; a bad line raises naming ``source`` and the line."""
    for where, line in result_lines(data, source):
        try:
            key = line["custom_id"]
            response, error = line.get("response"), line.get("error")
        except (KeyError, TypeError, AttributeError) as exc:
            raise HarvestError(f"{where}: not a batch result ({exc!r})") from None
        if response:
            body = response.get("body")
            status = response.get("status_code")
            why = None
            if status != 200:
                detail = (body or {}).get("error") if isinstance(body, dict) else body
                why = f"HTTP {status}: {json.dumps(detail)[:300]}"
            yield BatchResult(key, status, body, response.get("request_id"), why)
        else:
            error = error or {}
            why = f"{error.get('code')}: {error.get('message')}"
            yield BatchResult(key, None, None, None, why)
