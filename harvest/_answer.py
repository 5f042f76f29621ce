"""Turning one chat-completion body into the fields harvest stores."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from stillroom.harvest._completions import split_think
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


def parse_answer(body: bytes, request_id: str | None) -> Answer:
    """Parse a 200 body; a body that is not a chat completion raises :class:`TransientError`."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise TransientError(f"unparseable body: {type(exc).__name__}: {str(exc)[:200]}") from None
    return answer_from_completion(data, request_id)


def answer_from_completion(data: Any, request_id: str | None) -> Answer:
    """:func:`parse_answer` of a body already decoded (a batch output line holds it)."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError) as exc:
        raise TransientError(f"unparseable body: {type(exc).__name__}: {str(exc)[:200]}") from None
    content = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if not isinstance(reasoning, str):
        reasoning = None
    content, think = split_think(content)
    usage = data.get("usage") or {}
    details = usage.get("completion_tokens_details") or {}
    return Answer(
        content=content,
        reasoning=reasoning if reasoning else think,
        top_logprobs=normalise_logprobs(choice.get("logprobs")),
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        reasoning_tokens=details.get("reasoning_tokens"),
        teacher_model=data.get("model"),
        request_id=request_id or data.get("id"),
    )
