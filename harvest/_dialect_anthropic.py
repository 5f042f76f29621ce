"""``anthropic``: the native Messages API (``POST {base_url}/v1/messages``).

``--base-url`` is what the official SDK takes: ``https://api.anthropic.com``. The request
carries the key as ``x-api-key`` and ``anthropic-version: 2023-06-01``, the headers the
official Python SDK sends (``anthropic/_client.py``).

- ``--max-tokens`` goes out as ``max_tokens`` (required); leading and interleaved system
  messages become the top-level ``system`` (the API has no system role).
- ``--thinking-budget N`` sends ``thinking: {type: enabled, budget_tokens: N}``; N must be
  at least 1024 and below ``--max-tokens`` (the API's rule, checked before any request).
  With thinking, ``temperature``, ``top_p`` and ``top_k`` are not sent: the API refuses
  any but their defaults ("Thinking isn't compatible with temperature or top_k
  modifications").
- Without thinking, ``--temperature`` (0 to 1 here) and ``--top-p`` go out as asked.
  Newer models refuse some of them (``temperature`` deprecated on Opus 4.7; both
  together on Sonnet 4.5): the first 400 stops the run naming the option to change.
- ``--stop`` as ``stop_sequences``; ``--extra-body`` merged in last (``top_k``,
  ``metadata``, ``service_tier``...). No logprobs, seed or reasoning effort: asking for
  them is an error before any request.
- reasoning: the ``thinking`` blocks' text. Claude 4 models return a *summary* of their
  thinking (Anthropic's extended-thinking guide, "Summarized thinking"), so the kind is
  ``summary``; only Claude 3.7 Sonnet returns it in full. The blocks themselves (thinking
  with its ``signature``, ``redacted_thinking`` with its ``data``) are kept opaque, in
  order, to send back in a later turn. Thinking tokens are inside ``output_tokens``.
- usage: ``prompt_tokens`` is every input token (``input_tokens`` plus cache writes and
  reads, as the API totals them), ``cached_input_tokens`` the cache reads.
- errors: 529 ``overloaded_error`` is retried like a 503; 401/403 stop the run; a 400
  naming a request field stops it naming the option; a 404 (unknown model) stops it too.
- limits: the ``anthropic`` header profile (``anthropic-ratelimit-*``, RFC 3339 resets)
  and ``retry-after`` on a 429.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from stillroom.harvest._answer import Answer
from stillroom.harvest._dialect import (
    LimitSnapshot,
    PerRun,
    RequestOptions,
    Verdict,
    WireRequest,
    classify_http,
    error_fields,
    normalise_finish,
    read_limits,
    short_error,
)
from stillroom.harvest._dialect_chat import merge_extra
from stillroom.harvest._limiter import read_headers, retry_after_seconds
from stillroom.harvest._retry import TransientError
from stillroom.harvest.errors import HarvestConfigError

PATH = "/v1/messages"
VERSION = "2023-06-01"  # what the official SDK sends (its default_headers)
MIN_BUDGET = 1024
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "refusal",
}
FULL_THINKING_MODELS = ("claude-3-7-sonnet*",)  # the rest summarise their thinking
# The request field a 400 names -> the option that sends it (first match wins).
_OPTION_OF = (
    ("budget_tokens", "--thinking-budget"),
    ("thinking", "--thinking-budget"),
    ("max_tokens", "--max-tokens"),
    ("temperature", "--temperature"),
    ("top_p", "--top-p"),
    ("top_k", "--extra-body"),
    ("stop_sequences", "--stop"),
    ("anthropic-version", "(harvest's anthropic-version header)"),
)
_EXTRA_FIELD = re.compile(r"^([\w.]+): Extra inputs are not permitted")
_PROMPT_SPECIFIC = ("prompt is too long", "context limit", "content blocks must be non-empty")


def _system_and_turns(
    messages: Sequence[Mapping[str, Any]],
) -> tuple[str | None, list[dict[str, Any]]]:
    system = [str(m.get("content") or "") for m in messages if m.get("role") == "system"]
    turns = [
        {"role": m["role"], "content": m["content"]} for m in messages if m["role"] != "system"
    ]
    return ("\n\n".join(system) if system else None), turns


def check_options(o: RequestOptions) -> None:
    """The options this API cannot take, as errors naming the flag (before any request)."""
    if o.top_logprobs is not None:
        raise HarvestConfigError("--top-logprobs: the Anthropic Messages API returns no logprobs")
    if o.seed is not None:
        raise HarvestConfigError("--seed: the Anthropic Messages API takes no seed")
    if o.reasoning_effort is not None:
        raise HarvestConfigError(
            "--reasoning-effort is not an Anthropic option: use --thinking-budget N "
            "(1024 <= N < --max-tokens)"
        )
    budget = o.thinking_budget
    if budget is not None and not MIN_BUDGET <= budget < o.max_tokens:
        raise HarvestConfigError(
            f"--thinking-budget {budget}: Anthropic needs at least {MIN_BUDGET} and less than "
            f"--max-tokens ({o.max_tokens}); thinking counts towards max_tokens, so raise "
            "--max-tokens to leave room for the answer"
        )
    if budget is None and o.temperature is not None and not 0.0 <= o.temperature <= 1.0:
        raise HarvestConfigError(f"--temperature {o.temperature}: Anthropic takes 0 to 1")


def fixed_fields(model: str, o: RequestOptions) -> dict[str, Any]:
    """Every field but ``messages`` and ``system`` (the same for every request of a run)."""
    check_options(o)
    body: dict[str, Any] = {"model": model, "max_tokens": o.max_tokens}
    if o.thinking_budget is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": o.thinking_budget}
    else:
        if o.temperature is not None:
            body["temperature"] = o.temperature
        if o.top_p is not None:
            body["top_p"] = o.top_p
    if o.stop:
        body["stop_sequences"] = list(o.stop)
    return merge_extra(body, o.extra_body)


class AnthropicDialect:
    name = "anthropic"
    key_env = "ANTHROPIC_API_KEY"
    request_id_header = "request-id"
    limits_profile = "anthropic"
    batch_url = "/v1/messages/batches"  # Message Batches: stillroom.harvest._batch_anthropic

    def __init__(self) -> None:
        self._fixed = PerRun(fixed_fields)

    def build(
        self, model: str, messages: Sequence[Mapping[str, Any]], options: RequestOptions
    ) -> WireRequest:
        system, turns = _system_and_turns(messages)
        body: dict[str, Any] = {**self._fixed(model, options), "messages": turns}
        if system is not None and "system" not in body:
            body["system"] = system
        return WireRequest(PATH, body, {"anthropic-version": VERSION})

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key}

    def parse(self, data: Any, request_id: str | None) -> Answer:
        try:
            blocks = data["content"]
            usage = data.get("usage") or {}
            if data.get("type") != "message" or not isinstance(blocks, list):
                raise TypeError(f"not a message: type {data.get('type')!r}")
        except (KeyError, TypeError, AttributeError) as exc:
            raise TransientError(
                f"unparseable body: {type(exc).__name__}: {str(exc)[:200]}"
            ) from None
        text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        thoughts = [b.get("thinking") or "" for b in blocks if b.get("type") == "thinking"]
        reasoning = "\n\n".join(t for t in thoughts if t) or None
        kept = [b for b in blocks if b.get("type") in ("thinking", "redacted_thinking")]
        model = data.get("model")
        cache_read = usage.get("cache_read_input_tokens")
        inputs = [usage.get(k) for k in ("input_tokens", "cache_creation_input_tokens")]
        prompt_tokens = (
            sum(n or 0 for n in [*inputs, cache_read]) if inputs[0] is not None else None
        )
        raw_finish = data.get("stop_reason")
        return Answer(
            content=text,
            reasoning=reasoning,
            top_logprobs=None,
            finish_reason=raw_finish,
            prompt_tokens=prompt_tokens,
            completion_tokens=usage.get("output_tokens"),
            reasoning_tokens=None,  # billed inside output_tokens, not reported apart
            teacher_model=model,
            request_id=request_id or data.get("id"),
            reasoning_kind=_kind(reasoning, model),
            reasoning_blocks=json.dumps(kept, ensure_ascii=False) if kept else None,
            cached_input_tokens=cache_read,
            finish=normalise_finish(raw_finish, FINISH),
        )

    def classify(self, status: int, body: bytes, headers: Mapping[str, str]) -> Verdict:
        error = error_fields(body)
        kind = error.get("type")
        if status == 529 or kind == "overloaded_error":
            return Verdict("retry", short_error(status, body), retry_after_seconds(headers))
        if status == 400 or (status == 404 and kind == "not_found_error"):
            stop = _stop_verdict(status, str(error.get("message") or ""))
            if stop is not None:
                return stop
        return classify_http(status, body, headers)

    def limits(self, headers: Mapping[str, str], profile: Any) -> LimitSnapshot:
        """Requests and tokens; without the combined ``-tokens-*`` headers, the input
        tokens' (what a request's size mostly charges) stand in for them."""
        requests, tokens = read_limits(headers, profile)
        if tokens.limit is None and profile.input_tokens is not None:
            tokens = read_headers(headers, "input_tokens", profile)
        return requests, tokens


def _kind(reasoning: str | None, model: str | None) -> str:
    if not reasoning:
        return "none"
    name = (model or "").lower()
    return "full" if any(fnmatchcase(name, p) for p in FULL_THINKING_MODELS) else "summary"


def _stop_verdict(status: int, message: str) -> Verdict | None:
    """A 400 that every request would get (a field harvest sends), or an unknown model."""
    said = f"Anthropic refused the request (HTTP {status}: {message[:300]})"
    if status == 404:
        return Verdict("stop", f"{said}. Check --model and --base-url.")
    if any(p in message for p in _PROMPT_SPECIFIC):
        return None  # this prompt's own problem: a failure, not a stop
    extra = _EXTRA_FIELD.match(message)
    if extra is not None:
        return Verdict("stop", f"{said}. Remove {extra.group(1)!r} from --extra-body.")
    option = next((opt for field, opt in _OPTION_OF if field in message), None)
    if option is None:
        return None
    return Verdict("stop", f"{said}. Change {option}.")


DIALECT = AnthropicDialect()
