"""``chat``: OpenAI-compatible chat completions (``POST {base_url}/chat/completions``).

The dialect of OpenAI itself, vLLM, llama.cpp, DeepSeek, Groq, OpenRouter, Together...

- ``--max-tokens`` goes out as ``max_tokens``, except to the models
  :data:`OPENAI_MODEL_RULES` names (OpenAI's reasoning models: the o-series and GPT-5),
  which refuse it and take ``max_completion_tokens``; those also refuse any temperature
  but 1, ``top_p`` and logprobs, so none is sent to them (``--top-logprobs`` with one is
  an error before any request). ``gpt-5-chat-latest`` is a chat model: it takes them.
  The table matches bare OpenAI model names only: a routed name (``openai/gpt-5`` on
  OpenRouter) is the router's to translate.
- ``--reasoning-effort`` as ``reasoning_effort``, ``--seed``, ``--stop``; ``--extra-body``
  is merged in last (OpenRouter's ``reasoning`` object, vLLM's ``chat_template_kwargs``);
  a ``null`` there removes a field harvest would send (``{"max_tokens": null}``).
- A 400 for an unsupported parameter or value (``code: unsupported_parameter`` /
  ``unsupported_value``, or ``Unrecognized request argument``) stops the run at once,
  naming the option to change (bodies as OpenAI documents them: docs/harvest.md).
- reasoning: ``message.reasoning_content`` / ``message.reasoning`` / a leading
  ``<think>`` block, kind ``full``; OpenRouter's ``reasoning_details`` kept opaque.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from stillroom.harvest._answer import Answer, normalise_logprobs
from stillroom.harvest._completions import split_think
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
)
from stillroom.harvest._retry import TransientError
from stillroom.harvest.errors import HarvestConfigError

PATH = "/chat/completions"


@dataclass(frozen=True, slots=True)
class ModelRule:
    """How one family of OpenAI models takes the neutral options."""

    pattern: str  # fnmatch on the lower-cased model name
    max_field: str  # the field --max-tokens goes out as
    sampling: bool  # accepts temperature, top_p and logprobs
    reasoning: bool  # a reasoning model (takes reasoning effort; Responses: summaries)


# The one table of OpenAI reasoning-model names (first match wins; others: max_tokens and
# sampling). Sources: the API reference ("max_tokens ... is not compatible with o-series
# models"), and the 400s OpenAI returns (docs/harvest.md, "OpenAI reasoning models").
OPENAI_MODEL_RULES: tuple[ModelRule, ...] = (
    ModelRule("gpt-5-chat*", "max_completion_tokens", True, False),  # takes temperature
    ModelRule("gpt-5*", "max_completion_tokens", False, True),
    ModelRule("o[0-9]", "max_completion_tokens", False, True),
    ModelRule("o[0-9]-*", "max_completion_tokens", False, True),
)
_PLAIN = ModelRule("*", "max_tokens", True, False)
FINISH = {"stop": "stop", "length": "length", "content_filter": "refusal"}

# The wire field a provider names in a 400 -> the option that sent it.
_OPTION_OF = {
    "max_tokens": "--max-tokens",
    "max_completion_tokens": "--max-tokens",
    "temperature": "--temperature",
    "top_p": "--top-p",
    "logprobs": "--top-logprobs",
    "top_logprobs": "--top-logprobs",
    "reasoning_effort": "--reasoning-effort",
    "seed": "--seed",
    "stop": "--stop",
}


def model_rule(model: str) -> ModelRule:
    name = model.lower()
    return next((r for r in OPENAI_MODEL_RULES if fnmatchcase(name, r.pattern)), _PLAIN)


def merge_extra(body: dict[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """``--extra-body`` merged into ``body`` (top level; ``None`` removes a field)."""
    for key, value in (extra or {}).items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def unsupported_option(status: int, body: bytes) -> Verdict | None:
    """A 400 saying the request itself is wrong for this model/API: stop, naming the option."""
    if status != 400:
        return None
    error = error_fields(body)
    code, param = error.get("code"), error.get("param")
    message = str(error.get("message") or "")
    refused = ("unsupported_parameter", "unsupported_value", "unknown_parameter")
    if code not in refused and not message.startswith("Unrecognized request argument"):
        return None
    option = _OPTION_OF.get(str(param), "--extra-body")
    if param == "max_tokens":
        hint = " (this model takes max_completion_tokens: try --api responses, or --extra-body"
        hint += ' \'{"max_tokens": null, "max_completion_tokens": N}\')'
    elif code == "unsupported_value":
        hint = f" (leave it at the model's default: --extra-body '{{\"{param}\": null}}')"
    else:
        hint = ""
    return Verdict("stop", f"the provider refused the request: {message} Change {option}{hint}.")


class ChatDialect:
    name = "chat"
    key_env = "OPENAI_API_KEY"
    request_id_header = "x-request-id"
    limits_profile = "openai"
    batch_url = "/v1/chat/completions"

    def __init__(self) -> None:
        self._per_run = PerRun(self._fixed)

    def build(
        self, model: str, messages: Sequence[Mapping[str, Any]], options: RequestOptions
    ) -> WireRequest:
        return WireRequest(PATH, {"messages": list(messages), **self._per_run(model, options)})

    def _fixed(self, model: str, o: RequestOptions) -> dict[str, Any]:
        """Every field but ``messages`` (the same for every request of a run)."""
        rule = model_rule(model)
        body: dict[str, Any] = {"model": model, rule.max_field: o.max_tokens}
        if rule.sampling:
            if o.temperature is not None:
                body["temperature"] = o.temperature
            if o.top_p is not None:
                body["top_p"] = o.top_p
            if o.top_logprobs is not None:
                body["logprobs"] = True
                body["top_logprobs"] = o.top_logprobs
        elif o.top_logprobs is not None:
            raise HarvestConfigError(
                f"--top-logprobs: {model} is an OpenAI reasoning model, which returns no logprobs"
            )
        if o.thinking_budget is not None:
            raise HarvestConfigError(
                "--thinking-budget is for --api anthropic or gemini; a chat host takes its own "
                'field through --extra-body (OpenRouter: \'{"reasoning": {"max_tokens": N}}\')'
            )
        if o.reasoning_effort is not None:
            body["reasoning_effort"] = o.reasoning_effort
        if o.seed is not None:
            body["seed"] = o.seed
        if o.stop:
            body["stop"] = list(o.stop)
        return merge_extra(body, o.extra_body)

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def parse(self, data: Any, request_id: str | None) -> Answer:
        try:
            choice = data["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise TransientError(
                f"unparseable body: {type(exc).__name__}: {str(exc)[:200]}"
            ) from None
        content = message.get("content") or ""
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        if not isinstance(reasoning, str):
            reasoning = None
        content, think = split_think(content)
        reasoning = reasoning or think
        usage = data.get("usage") or {}
        details = usage.get("completion_tokens_details") or {}
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        blocks = message.get("reasoning_details")
        raw_finish = choice.get("finish_reason")
        return Answer(
            content=content,
            reasoning=reasoning,
            top_logprobs=normalise_logprobs(choice.get("logprobs")),
            finish_reason=raw_finish,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            reasoning_tokens=details.get("reasoning_tokens"),
            teacher_model=data.get("model"),
            request_id=request_id or data.get("id"),
            reasoning_kind="full" if reasoning else "none",
            reasoning_blocks=json.dumps(blocks, ensure_ascii=False) if blocks else None,
            cached_input_tokens=cached,
            finish="refusal" if message.get("refusal") else normalise_finish(raw_finish, FINISH),
        )

    def classify(self, status: int, body: bytes, headers: Mapping[str, str]) -> Verdict:
        return unsupported_option(status, body) or classify_http(status, body, headers)

    def limits(self, headers: Mapping[str, str], profile: Any) -> LimitSnapshot:
        return read_limits(headers, profile)


DIALECT = ChatDialect()
