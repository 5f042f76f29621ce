"""``gemini``: the native Gemini API (``POST {base_url}/v1beta/models/{model}:generateContent``).

``--base-url`` is what the official SDK (``google-genai``) takes:
``https://generativelanguage.googleapis.com``. The key goes out as ``x-goog-api-key``, as
that SDK sends it (it reads ``GOOGLE_API_KEY``, else ``GEMINI_API_KEY``; harvest's default
is ``GEMINI_API_KEY``). The OpenAI-compatible layer (``/v1beta/openai/``) is ``--api chat``.

- ``contents`` with roles ``user`` and ``model`` (an assistant turn), text parts; system
  messages become ``systemInstruction``.
- ``generationConfig``: ``maxOutputTokens`` from ``--max-tokens`` (thoughts count towards
  it), ``temperature``, ``topP``, ``seed``, ``stopSequences``.
- thinking: ``thinkingConfig.includeThoughts`` is sent to the models that think
  (:data:`THINKING_MODELS`) and whenever ``--thinking-budget`` or ``--reasoning-effort`` is
  given; ``--thinking-budget`` goes out as ``thinkingBudget`` (0 turns thinking off, -1
  lets the model decide), ``--reasoning-effort`` as Gemini 3's ``thinkingLevel``; not both.
- ``--extra-body`` is merged in last; its ``generationConfig`` (and that one's
  ``thinkingConfig``) is merged into harvest's rather than replacing it.
- reasoning: the parts marked ``thought: true``. Gemini returns *thought summaries*
  ("synthesized versions of the model's raw thoughts", the thinking guide), so the kind
  is ``summary``. The ``thoughtSignature`` of each part is kept opaque (with the part's
  index), for a later turn to send back.
- usage: ``thoughtsTokenCount`` is reported outside ``candidatesTokenCount``; both are
  billed as output, so ``completion_tokens`` is their sum and ``reasoning_tokens`` the
  thoughts. ``cachedContentTokenCount`` is the cached input (inside ``promptTokenCount``).
- finish: ``STOP`` stop, ``MAX_TOKENS`` length, the safety and policy blocks refusal (a
  prompt blocked outright, ``promptFeedback.blockReason``, too), the rest other.
- errors: a wrong key is answered 400 ``API_KEY_INVALID``: that, 401 and 403 stop the
  run; a 400 naming a field harvest sends, an unknown model (404) and an unsupported
  location stop it naming the option; 500/503/504 are retried. Rate limits arrive as 429
  ``RESOURCE_EXHAUSTED`` with a ``google.rpc.RetryInfo`` ``retryDelay`` (no headers); a
  per-day quota stops the run (it will not reset soon).
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
    short_error,
)
from stillroom.harvest._dialect_chat import merge_extra
from stillroom.harvest._limiter import Observation
from stillroom.harvest._retry import TransientError
from stillroom.harvest.errors import HarvestConfigError

THINKING_MODELS = ("gemini-2.5*", "gemini-3*", "*thinking*")
LEVELS = ("minimal", "low", "medium", "high")
_REFUSALS = (
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "LANGUAGE",
)  # fmt: skip
FINISH = {"STOP": "stop", "MAX_TOKENS": "length", **{r: "refusal" for r in _REFUSALS}}
_ROLES = {"user": "user", "assistant": "model", "model": "model"}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")
# The fields harvest sends -> the option that sends them; a 400 names them in camelCase
# ("Unknown name") or snake_case (validation messages), matched without "_" and case.
_OPTION_OF = {
    "thinkingLevel": "--reasoning-effort",
    "thinkingBudget": "--thinking-budget",
    "includeThoughts": "--thinking-budget",
    "thinkingConfig": "--thinking-budget",
    "thinking": "--thinking-budget",
    "maxOutputTokens": "--max-tokens",
    "temperature": "--temperature",
    "topP": "--top-p",
    "seed": "--seed",
    "stopSequences": "--stop",
}
_SENT = set(_OPTION_OF) - {"thinking"}  # field names (the last key is only a word)
_UNKNOWN_FIELD = re.compile(r'Unknown name "([^"]+)"')


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


def _contents(messages: Sequence[Mapping[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    system = [_text(m.get("content")) for m in messages if m.get("role") == "system"]
    contents = []
    for m in messages:
        if m["role"] == "system":
            continue
        role = _ROLES.get(m["role"])
        if role is None:
            raise HarvestConfigError(f"--api gemini: a message role {m['role']!r} (user/assistant)")
        contents.append({"role": role, "parts": [{"text": _text(m.get("content"))}]})
    return ("\n\n".join(system) if system else None), contents


def _thinking_config(model: str, o: RequestOptions) -> dict[str, Any] | None:
    if o.thinking_budget is not None and o.reasoning_effort is not None:
        raise HarvestConfigError(
            "--thinking-budget and --reasoning-effort: Gemini takes thinkingBudget or "
            "thinkingLevel, not both; pass one"
        )
    if o.reasoning_effort is not None and o.reasoning_effort not in LEVELS:
        raise HarvestConfigError(
            f"--reasoning-effort {o.reasoning_effort}: Gemini's thinkingLevel is one of "
            f"{', '.join(LEVELS)}"
        )
    if o.thinking_budget is not None and o.thinking_budget < -1:
        raise HarvestConfigError(
            f"--thinking-budget {o.thinking_budget}: Gemini takes 0 (off), -1 (the model "
            "decides) or a positive number of tokens"
        )
    asked = o.thinking_budget is not None or o.reasoning_effort is not None
    if not asked and not any(fnmatchcase(model.lower(), p) for p in THINKING_MODELS):
        return None
    config: dict[str, Any] = {"includeThoughts": o.thinking_budget != 0}
    if o.thinking_budget is not None:
        config["thinkingBudget"] = o.thinking_budget
    if o.reasoning_effort is not None:
        config["thinkingLevel"] = o.reasoning_effort.upper()
    return config


def _merged_generation_config(
    config: dict[str, Any], extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``--extra-body``'s ``generationConfig`` merged into harvest's (``None`` removes)."""
    theirs = dict((extra or {}).get("generationConfig") or {})
    if isinstance(theirs.get("thinkingConfig"), Mapping) and "thinkingConfig" in config:
        theirs["thinkingConfig"] = merge_extra(
            dict(config["thinkingConfig"]), theirs["thinkingConfig"]
        )
    return merge_extra(config, theirs)


def retry_delay(error: Mapping[str, Any]) -> float | None:
    """Seconds in a ``google.rpc.RetryInfo`` ``retryDelay`` (``"26s"``, ``"45.8s"``)."""
    for detail in error.get("details") or []:
        if not isinstance(detail, Mapping) or not str(detail.get("@type", "")).endswith(
            "google.rpc.RetryInfo"
        ):
            continue
        found = _DURATION.match(str(detail.get("retryDelay", "")).strip())
        if found:
            return float(found.group(1))
    return None


def _detail_values(error: Mapping[str, Any], key: str) -> list[str]:
    """Every ``key`` in the error's details (``reason`` of ErrorInfo, ``quotaId``...)."""
    values = []
    for detail in error.get("details") or []:
        if not isinstance(detail, Mapping):
            continue
        if key in detail:
            values.append(str(detail[key]))
        for violation in detail.get("violations") or []:
            if isinstance(violation, Mapping) and key in violation:
                values.append(str(violation[key]))
    return values


def fixed_fields(model: str, o: RequestOptions) -> dict[str, Any]:
    """Every field but ``contents`` and ``systemInstruction`` (the same for every request
    of a run)."""
    if o.top_logprobs is not None:
        raise HarvestConfigError("--top-logprobs is not supported with --api gemini")
    config: dict[str, Any] = {"maxOutputTokens": o.max_tokens}
    for option, name in (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed")):
        if getattr(o, option) is not None:
            config[name] = getattr(o, option)
    if o.stop:
        config["stopSequences"] = list(o.stop)
    thinking = _thinking_config(model, o)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    config = _merged_generation_config(config, o.extra_body)
    rest = {k: v for k, v in (o.extra_body or {}).items() if k != "generationConfig"}
    return merge_extra({"generationConfig": config}, rest)


class GeminiDialect:
    name = "gemini"
    key_env = "GEMINI_API_KEY"
    request_id_header = None  # the body's responseId names the answer
    limits_profile = "none"  # limits arrive as 429 bodies, not headers
    batch_url = None

    def __init__(self) -> None:
        self._fixed = PerRun(fixed_fields)

    def build(
        self, model: str, messages: Sequence[Mapping[str, Any]], options: RequestOptions
    ) -> WireRequest:
        system, contents = _contents(messages)
        body: dict[str, Any] = {"contents": contents, **self._fixed(model, options)}
        if system is not None and "systemInstruction" not in body:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        return WireRequest(f"/v1beta/models/{model.removeprefix('models/')}:generateContent", body)

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-goog-api-key": api_key}

    def parse(self, data: Any, request_id: str | None) -> Answer:
        try:
            candidates = data.get("candidates") or []
            usage = data.get("usageMetadata") or {}
            if not candidates and "promptFeedback" not in data:
                raise KeyError("candidates")
        except (AttributeError, KeyError) as exc:
            raise TransientError(
                f"unparseable body: {type(exc).__name__}: {str(exc)[:200]}"
            ) from None
        candidate = candidates[0] if candidates else {}
        parts = (candidate.get("content") or {}).get("parts") or []
        answer = "".join(p.get("text", "") for p in parts if not p.get("thought"))
        thoughts = "\n\n".join(p["text"] for p in parts if p.get("thought") and p.get("text"))
        signed = [
            {
                "part": i,
                "thought": bool(p.get("thought")),
                "thoughtSignature": p["thoughtSignature"],
            }
            for i, p in enumerate(parts)
            if p.get("thoughtSignature")
        ]
        raw_finish = candidate.get("finishReason")
        if raw_finish is None and (data.get("promptFeedback") or {}).get("blockReason"):
            raw_finish = data["promptFeedback"]["blockReason"]
        thoughts_tokens = usage.get("thoughtsTokenCount")
        output = usage.get("candidatesTokenCount")
        if output is not None or thoughts_tokens is not None:
            output = (output or 0) + (thoughts_tokens or 0)
        return Answer(
            content=answer,
            reasoning=thoughts or None,
            top_logprobs=None,
            finish_reason=raw_finish,
            prompt_tokens=usage.get("promptTokenCount"),
            completion_tokens=output,
            reasoning_tokens=thoughts_tokens,
            teacher_model=data.get("modelVersion"),
            request_id=request_id or data.get("responseId"),
            reasoning_kind="summary" if thoughts else "none",
            reasoning_blocks=json.dumps(signed) if signed else None,
            cached_input_tokens=usage.get("cachedContentTokenCount"),
            finish=normalise_finish(raw_finish, FINISH),
        )

    def classify(self, status: int, body: bytes, headers: Mapping[str, str]) -> Verdict:
        error = error_fields(body)
        said = short_error(status, body)
        if status == 400 and "API_KEY_INVALID" in _detail_values(error, "reason"):
            return Verdict("auth", "Gemini refused the API key (400 API_KEY_INVALID)")
        if status == 429:
            if any("PerDay" in q for q in _detail_values(error, "quotaId")):
                return Verdict(
                    "stop", f"Gemini's daily quota is spent ({said}); run again tomorrow"
                )
            return Verdict("rate_limited", said, retry_delay(error))
        if status in (400, 404):
            stop = _stop_verdict(status, error, said)
            if stop is not None:
                return stop
        return classify_http(status, body, headers)

    def limits(self, headers: Mapping[str, str], profile: Any) -> LimitSnapshot:
        """No rate-limit headers: the limiter learns from the 429s' RetryInfo alone."""
        return Observation(None, None, None), Observation(None, None, None)


def _stop_verdict(status: int, error: Mapping[str, Any], said: str) -> Verdict | None:
    """A 400 every request would get (a field harvest sends, the caller's location), or an
    unknown model: stop the run naming what to change."""
    message = str(error.get("message") or "")
    if status == 404:
        return Verdict("stop", f"Gemini refused the request ({said}). Check --model.")
    if error.get("status") == "FAILED_PRECONDITION":
        return Verdict("stop", f"Gemini refused the request ({said}).")
    unknown = _UNKNOWN_FIELD.search(message)
    if unknown is not None and unknown.group(1) not in _SENT:
        what = f"Remove {unknown.group(1)!r} from --extra-body"
        return Verdict("stop", f"Gemini refused the request ({said}). {what}.")
    folded = message.replace("_", "").replace(" ", "").lower()
    option = next((opt for field, opt in _OPTION_OF.items() if field.lower() in folded), None)
    if option is None:
        return None
    return Verdict("stop", f"Gemini refused the request ({said}). Change {option}.")


DIALECT = GeminiDialect()
