"""What harvest reads of one answer, whatever the dialect (``_dialect``) that parsed it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from stillroom.harvest._retry import TransientError


@dataclass(slots=True)
class Answer:
    content: str
    reasoning: str | None
    top_logprobs: list[dict[str, Any]] | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    reasoning_tokens: int | None
    teacher_model: str | None
    request_id: str | None
    reasoning_kind: str = "none"  # full | summary | none (see _dialect.REASONING_KINDS)
    reasoning_blocks: str | None = None  # JSON: the provider's raw reasoning blocks, opaque
    cached_input_tokens: int | None = None
    finish: str | None = None  # stop | length | refusal | other (None: not given)


def _logprob_entry(raw: dict[str, Any]) -> dict[str, Any]:
    return {"token": raw.get("token"), "logprob": raw.get("logprob"), "bytes": raw.get("bytes")}


def normalise_logprobs(logprobs: Any) -> list[dict[str, Any]] | None:
    """``choices[0].logprobs.content`` as a list of {token, logprob, bytes, top_logprobs}."""
    if not isinstance(logprobs, dict) or not isinstance(logprobs.get("content"), list):
        return None
    out = []
    for raw in logprobs["content"]:
        entry = _logprob_entry(raw)
        entry["top_logprobs"] = [_logprob_entry(alt) for alt in raw.get("top_logprobs") or []]
        out.append(entry)
    return out


def decode_body(body: bytes) -> Any:
    """A 2xx body as JSON; one that is not raises :class:`TransientError` (retried)."""
    try:
        return json.loads(body)
    except ValueError as exc:
        raise TransientError(f"unparseable body: {type(exc).__name__}: {str(exc)[:200]}") from None
