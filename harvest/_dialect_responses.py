"""``responses``: OpenAI's Responses API (``POST {base_url}/responses``, base ``.../v1``).

The one way OpenAI returns reasoning *summaries* (the full trace never leaves). Request
(openai-python ``response_create_params.py``): the chat messages as ``input``,
``--max-tokens`` as ``max_output_tokens`` (reasoning tokens count against it),
``store: false``; to a reasoning model (the chat dialect's :data:`OPENAI_MODEL_RULES`) or
with ``--reasoning-effort``, ``reasoning: {effort, summary: "auto"}`` and
``include: ["reasoning.encrypted_content"]``, so each reasoning item comes back with its
encrypted content, kept opaque in ``reasoning_blocks`` for a stateless continuation.
Temperature and ``top_p`` go only to models that take them; the API has no ``seed`` or
``stop`` and harvest asks it for no logprobs, so those options are errors before any
request. ``--extra-body`` is merged in last.

Answer: the ``message`` items' ``output_text`` is the content, the ``reasoning`` items'
``summary_text`` the reasoning (kind ``summary``; a ``reasoning_text`` content, as some
open-weight servers return, is kind ``full``). ``status: incomplete`` with
``incomplete_details.reason: max_output_tokens`` is finish ``length`` (raw
``finish_reason``: the reason, or the status).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from stillroom.harvest._answer import Answer
from stillroom.harvest._dialect import (
    LimitSnapshot,
    PerRun,
    RequestOptions,
    Verdict,
    WireRequest,
    classify_http,
    normalise_finish,
    read_limits,
)
from stillroom.harvest._dialect_chat import merge_extra, model_rule, unsupported_option
from stillroom.harvest._retry import TransientError
from stillroom.harvest.errors import HarvestConfigError

PATH = "/responses"
FINISH = {
    "completed": "stop",
    "max_output_tokens": "length",
    "content_filter": "refusal",
}


class ResponsesDialect:
    name = "responses"
    key_env = "OPENAI_API_KEY"
    request_id_header = "x-request-id"
    limits_profile = "openai"
    batch_url = "/v1/responses"  # OpenAI batch lines (their body takes the messages as input)

    def __init__(self) -> None:
        self._per_run = PerRun(self._fixed)

    def build(
        self, model: str, messages: Sequence[Mapping[str, Any]], options: RequestOptions
    ) -> WireRequest:
        body = {"model": model, "input": list(messages), **self._per_run(model, options)}
        return WireRequest(PATH, body)

    def _fixed(self, model: str, o: RequestOptions) -> dict[str, Any]:
        for flag, value in (
            ("--seed", o.seed),
            ("--stop", o.stop or None),
            ("--top-logprobs", o.top_logprobs),
            ("--thinking-budget", o.thinking_budget),
        ):
            if value is not None:
                raise HarvestConfigError(f"{flag}: --api responses does not send it")
        rule = model_rule(model)
        body: dict[str, Any] = {"max_output_tokens": o.max_tokens, "store": False}
        if rule.sampling:
            if o.temperature is not None:
                body["temperature"] = o.temperature
            if o.top_p is not None:
                body["top_p"] = o.top_p
        if rule.reasoning or o.reasoning_effort is not None:
            reasoning: dict[str, Any] = {"summary": "auto"}
            if o.reasoning_effort is not None:
                reasoning["effort"] = o.reasoning_effort
            body["reasoning"] = reasoning
            body["include"] = ["reasoning.encrypted_content"]
        return merge_extra(body, o.extra_body)

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def parse(self, data: Any, request_id: str | None) -> Answer:
        try:
            output = data["output"]
            if not isinstance(output, list):
                raise TypeError("output is not a list")
        except (KeyError, TypeError) as exc:
            raise TransientError(
                f"unparseable body: {type(exc).__name__}: {str(exc)[:200]}"
            ) from None
        texts, summaries, full, blocks, refused = [], [], [], [], False
        for item in output:
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "message":
                for part in item.get("content") or []:
                    if part.get("type") == "output_text":
                        texts.append(part.get("text") or "")
                    elif part.get("type") == "refusal":
                        refused = True
                        texts.append(part.get("refusal") or "")
            elif kind == "reasoning":
                blocks.append(item)
                summaries += [s.get("text") or "" for s in item.get("summary") or []]
                full += [c.get("text") or "" for c in item.get("content") or []]
        reasoning_kind = "full" if any(full) else "summary" if any(summaries) else "none"
        reasoning = "\n\n".join(full if reasoning_kind == "full" else summaries) or None
        status = data.get("status")
        raw_finish = (data.get("incomplete_details") or {}).get("reason") or status
        usage = data.get("usage") or {}
        return Answer(
            content="".join(texts),
            reasoning=reasoning,
            top_logprobs=None,
            finish_reason=raw_finish,
            prompt_tokens=usage.get("input_tokens"),
            completion_tokens=usage.get("output_tokens"),
            reasoning_tokens=(usage.get("output_tokens_details") or {}).get("reasoning_tokens"),
            teacher_model=data.get("model"),
            request_id=request_id or data.get("id"),
            reasoning_kind=reasoning_kind,
            reasoning_blocks=json.dumps(blocks, ensure_ascii=False) if blocks else None,
            cached_input_tokens=(usage.get("input_tokens_details") or {}).get("cached_tokens"),
            finish="refusal" if refused else normalise_finish(raw_finish, FINISH),
        )

    def classify(self, status: int, body: bytes, headers: Mapping[str, str]) -> Verdict:
        return unsupported_option(status, body) or classify_http(status, body, headers)

    def limits(self, headers: Mapping[str, str], profile: Any) -> LimitSnapshot:
        return read_limits(headers, profile)


DIALECT = ResponsesDialect()
