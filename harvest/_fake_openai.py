"""The OpenAI wire rules of :class:`~stillroom.harvest.testing.FakeProvider`, from pinned payloads.

Two things the fake provider checks and answers as OpenAI does, built from the JSON
fixtures in ``harvest/fixtures/`` (each with its sources and the date read):

- ``reasoning_model=True`` on the chat endpoint: the request is refused as OpenAI's
  reasoning models refuse it (``max_tokens``, a temperature but 1, ``top_p``, logprobs:
  ``openai_chat_reasoning.json``), and the answer spends hidden reasoning tokens out of
  ``max_completion_tokens`` (all of it, when the budget is small: empty content, finish
  ``length``);
- ``api="responses"``: ``POST /v1/responses``, strict: an unknown field, ``reasoning`` or
  ``include`` value is refused; the answer is ``example_response`` of
  ``openai_responses.json`` with this request's texts and counts (``status: incomplete``,
  ``incomplete_details.reason: max_output_tokens`` when the budget runs out).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib.resources import files
from typing import Any

HIDDEN_REASONING_TOKENS = 8  # what the fake "thinks" before answering


@cache
def fixture(name: str) -> dict[str, Any]:
    """A pinned payload file (package data: it ships in the wheel)."""
    return json.loads(files("stillroom.harvest").joinpath("fixtures", name).read_text())


def _error(which: str, file: str, **fill: Any) -> tuple[int, dict[str, Any]]:
    spec = fixture(file)["errors"][which]
    text = json.dumps(spec["body"])
    for key, value in fill.items():
        text = text.replace("{" + key + "}", str(value))
    return spec["status"], json.loads(text)


def reasoning_model_refusal(body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The 400 a chat reasoning model answers this body with (None: accepted)."""
    file = "openai_chat_reasoning.json"
    if "max_tokens" in body:
        return _error("max_tokens", file)
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        return _error("temperature", file, value=temperature)
    if "top_p" in body:
        return _error("top_p", file)
    if body.get("logprobs") or "top_logprobs" in body:
        return _error("logprobs", file)
    return None


def responses_refusal(body: dict[str, Any], reasoning_model: bool) -> tuple[int, dict] | None:
    """The 400 the Responses API answers this body with (None: accepted)."""
    file = "openai_responses.json"
    spec = fixture(file)
    for name in body:
        if name not in spec["request_fields"]:
            return _error("unknown_parameter", file, param=name)
    for name in body.get("reasoning") or {}:
        if name not in spec["reasoning_fields"]:
            return _error("unknown_parameter", file, param=f"reasoning.{name}")
    for value in body.get("include") or []:
        if value not in spec["include_values"]:
            return _error("unknown_parameter", file, param="include")
    if reasoning_model:
        for name in ("temperature", "top_p"):
            if name in body:
                return _error(name, file)
    return None


def responses_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat messages a Responses ``input`` (and ``instructions``) hold."""
    raw = body.get("input") or []
    messages = [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw)
    if body.get("instructions"):
        messages.insert(0, {"role": "system", "content": body["instructions"]})
    return messages


def responses_answer(
    body: dict[str, Any], answer: str, summary: str, prompt_tokens: int, tokens: list[str]
) -> dict[str, Any]:
    """``example_response`` carrying this answer: a reasoning item (its summary, and
    ``encrypted_content`` when asked with ``include``), then the message; cut when
    ``max_output_tokens`` runs out (the reasoning tokens count against it)."""
    out = copy.deepcopy(fixture("openai_responses.json")["example_response"])
    budget = int(body.get("max_output_tokens") or 10**9)
    reasoning_tokens = min(HIDDEN_REASONING_TOKENS, budget)
    left = max(0, budget - reasoning_tokens)
    complete = len(tokens) <= left
    kept = tokens if complete else tokens[:left]
    reasoning_item, message = out["output"]
    reasoning_item["summary"][0]["text"] = summary
    if "reasoning.encrypted_content" in (body.get("include") or []):
        reasoning_item["encrypted_content"] = "gAAAAB" + str(len(answer)).rjust(8, "0")
    message["content"][0]["text"] = "".join(kept)
    out["output"] = [reasoning_item] + ([message] if kept else [])
    if not complete:
        message["status"] = "incomplete"
        out["status"] = "incomplete"
        out["incomplete_details"] = {"reason": "max_output_tokens"}
    out.update(model=body.get("model"), max_output_tokens=body.get("max_output_tokens"))
    out["store"] = body.get("store", True)
    output_tokens = reasoning_tokens + len(kept)
    out["usage"] = {
        "input_tokens": prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": prompt_tokens + output_tokens,
    }
    return out


def request_budget(body: dict[str, Any], messages: list[dict[str, Any]]) -> tuple[int, int]:
    """The fake's token estimate of a request (its messages' characters / 4, plus framing)
    and the output it may use (``max_tokens`` in any dialect's name, else 256)."""
    prompt_tokens = sum(len(m.get("content") or "") // 4 + 4 for m in messages) + 3
    max_tokens = int(
        body.get("max_tokens")
        or body.get("max_completion_tokens")
        or body.get("max_output_tokens")
        or 256
    )
    return prompt_tokens, max_tokens


def reasoning_usage(prompt_tokens: int, kept: int, reasoning_tokens: int) -> dict[str, Any]:
    """A chat reasoning model's usage block (the pinned shape, this answer's counts)."""
    usage = copy.deepcopy(fixture("openai_chat_reasoning.json")["usage"])
    usage.update(
        prompt_tokens=prompt_tokens,
        completion_tokens=kept + reasoning_tokens,
        total_tokens=prompt_tokens + kept + reasoning_tokens,
    )
    usage["completion_tokens_details"]["reasoning_tokens"] = reasoning_tokens
    return usage
