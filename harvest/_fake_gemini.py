"""A strict loopback Gemini API (``POST /v1beta/models/{model}:generateContent``) for tests.

Built from the pinned payloads in ``fixtures/gemini/`` (see each file's ``sources`` and
``read``). Like the real API it refuses, with the documented ``google.rpc.Status`` body:

- no ``x-goog-api-key`` (403 ``PERMISSION_DENIED``), a wrong one (400 ``INVALID_ARGUMENT``
  with ``ErrorInfo`` reason ``API_KEY_INVALID``, as the live API answers), a bearer token
  instead of the key (401 ``UNAUTHENTICATED``);
- a field the request, ``generationConfig`` or ``thinkingConfig`` does not have (400, the
  proto parser's "Unknown name ... Cannot find field.");
- a role other than ``user``/``model`` in ``contents``.

Answers put thought summaries in parts marked ``thought: true`` only when asked with
``thinkingConfig.includeThoughts``; the answer part carries a ``thoughtSignature``.
``usageMetadata`` reports ``thoughtsTokenCount`` outside ``candidatesTokenCount``, and
``finishReason`` is ``MAX_TOKENS`` when thoughts plus answer exceed ``maxOutputTokens``.
A 429 is ``RESOURCE_EXHAUSTED`` with a ``google.rpc.RetryInfo`` ``retryDelay`` and no
``retry-after`` header.
"""

from __future__ import annotations

import json
from typing import Any

from stillroom.harvest._fake_anthropic import signature_of
from stillroom.harvest._fake_native import (
    Directives,
    NativeFake,
    cut_to_tokens,
    estimate_tokens,
    pinned_payload,
    receive,
    take_prompt,
)

_STATUS_FILE = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    429: "resource_exhausted",
    500: "internal",
    503: "unavailable",
}
THOUGHTS_TOKENS = 24  # what the fake "thinks" per answer, budget permitting


class Refusal(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(body["error"]["message"])
        self.status, self.body = status, body


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """The documented error body for ``status`` (its pinned message unless given)."""
    body = pinned_payload("gemini", f"error_{_STATUS_FILE.get(status, 'internal')}")["body"]
    if message is not None:
        body["error"]["message"] = message
        body["error"].pop("details", None)
    return body


def _unknown(name: str, where: str | None) -> Refusal:
    at = f" at '{where}'" if where else ""
    msg = f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'
    return Refusal(400, error_body(400, msg))


def check_request(headers: Any, body: Any, api_key: str | None) -> None:
    """Raise :class:`Refusal` for anything ``generateContent`` would refuse."""
    rules = pinned_payload("gemini", "request_rules")
    key = headers.get("x-goog-api-key")
    if key is None and headers.get("authorization"):
        raise Refusal(401, error_body(401))
    if key is None and api_key is not None:
        raise Refusal(403, error_body(403))
    if api_key is not None and key != api_key:
        raise Refusal(400, pinned_payload("gemini", "error_api_key_invalid")["body"])
    if not isinstance(body, dict):
        raise Refusal(400, error_body(400, "Invalid JSON payload received."))
    for name in body:
        if name not in rules["fields"]:
            raise _unknown(name, None)
    config = body.get("generationConfig") or {}
    for name in config:
        if name not in rules["generation_config"]:
            raise _unknown(name, "generation_config")
    for name in config.get("thinkingConfig") or {}:
        if name not in rules["thinking_config"]:
            raise _unknown(name, "generation_config.thinking_config")
    if not body.get("contents"):
        raise Refusal(
            400, error_body(400, "* GenerateContentRequest.contents: contents is not specified")
        )
    for content in body["contents"]:
        if content.get("role", "user") not in rules["roles"]:
            raise Refusal(400, error_body(400, "Please use a valid role: user, model."))


def retry_info_body(delay_s: float) -> dict[str, Any]:
    """The pinned 429 body with its ``RetryInfo.retryDelay`` set to ``delay_s``."""
    body = error_body(429)
    for detail in body["error"]["details"]:
        if detail["@type"].endswith("google.rpc.RetryInfo"):
            whole = float(delay_s).is_integer()
            detail["retryDelay"] = f"{int(delay_s)}s" if whole else f"{delay_s:.6f}s"
    return body


def _text_of(content: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in content.get("parts") or [])


class _App:
    def __init__(self, fake: FakeGemini):
        self.fake, self.server = fake, fake.server

    def build(self):
        from aiohttp import web

        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/v1beta/models/{call}", self.handle)
        return app

    def _json(self, status: int, payload: dict):
        from aiohttp import web

        self.server.requests[status] += 1
        self.fake.responses.append(payload)
        return web.json_response(payload, status=status)

    async def handle(self, request):
        server = self.server
        raw = await receive(server, request)
        model, _, method = request.match_info["call"].partition(":")
        if method != "generateContent":
            return self._json(404, error_body(404))
        try:
            body = json.loads(raw)
            check_request(request.headers, body, server.s.api_key)
        except ValueError:
            return self._json(400, error_body(400, "Invalid JSON payload received."))
        except Refusal as refusal:
            return self._json(refusal.status, refusal.body)
        last_user = next(
            (_text_of(c) for c in reversed(body["contents"]) if c.get("role", "user") == "user"),
            "",
        )
        directives, seen_before = await take_prompt(server, last_user)
        prompt_tokens = sum(estimate_tokens(_text_of(c)) for c in body["contents"])
        prompt_tokens += estimate_tokens(_text_of(body.get("systemInstruction") or {}))
        config = body.get("generationConfig") or {}
        wait = server._admit(prompt_tokens + int(config.get("maxOutputTokens") or 8192))
        status = directives.fault(seen_before) or (429 if wait > 0 else None)
        if status == 429:
            if directives.retry is not None or wait > 0:
                return self._json(429, retry_info_body(directives.retry or round(wait, 3)))
            return self._json(429, error_body(429))  # the pinned RetryInfo delay
        if status is not None:
            return self._json(status, error_body(status))
        return self._json(
            200, self.fake.response(model, body, last_user, prompt_tokens, directives)
        )


class FakeGemini(NativeFake):
    """A strict loopback ``generateContent``; use as a context manager.

    >>> with FakeGemini(api_key="AIza-test") as fake:   # doctest: +SKIP
    ...     fake.base_url            # http://127.0.0.1:PORT, as the SDK takes it
    """

    def __init__(
        self,
        *,
        api_key: str | None = "AIza-test",
        cached_tokens: int = 0,
        thought: str = "**Reading the question**\n\n{n} characters.",
        served_model: str | None = None,
        record_requests: bool = True,
        **settings: Any,
    ):
        super().__init__(
            api_key=api_key, served_model=served_model, record_requests=record_requests, **settings
        )
        self.cached_tokens = cached_tokens
        self.thought = thought
        self.responses: list[dict[str, Any]] = []  # every JSON body answered, in order
        self._install(_App(self))

    def response(
        self,
        model: str,
        body: dict[str, Any],
        last_user: str,
        prompt_tokens: int,
        directives: Directives,
    ) -> dict[str, Any]:
        """The pinned response shape with this request's parts, usage and finish reason."""
        if directives.stop == "safety":
            payload = pinned_payload("gemini", "response_safety")["body"]
            payload["usageMetadata"].update(
                promptTokenCount=prompt_tokens, totalTokenCount=prompt_tokens
            )
            return payload
        payload = pinned_payload("gemini", "response_thoughts")["body"]
        config = body.get("generationConfig") or {}
        limit = int(config.get("maxOutputTokens") or 8192)
        thinking = config.get("thinkingConfig") or {}
        budget = thinking.get("thinkingBudget", -1)
        thoughts_tokens = THOUGHTS_TOKENS if budget < 0 else min(budget, THOUGHTS_TOKENS)
        thoughts_tokens = min(thoughts_tokens, limit)
        answer, finish = self.server._reply(last_user), "STOP"
        if thoughts_tokens + estimate_tokens(answer) > limit:
            answer, finish = cut_to_tokens(answer, limit - thoughts_tokens), "MAX_TOKENS"
        parts: list[dict[str, Any]] = []
        if thinking.get("includeThoughts") and thoughts_tokens:
            text = self.thought.format(n=len(last_user), prompt=last_user)
            parts.append({"text": text, "thought": True})
        if answer:
            parts.append({"text": answer, "thoughtSignature": signature_of(answer)})
        answer_tokens = estimate_tokens(answer) if answer else 0
        payload["candidates"] = [
            {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
        ]
        payload["usageMetadata"] = {
            "promptTokenCount": prompt_tokens + self.cached_tokens,
            "candidatesTokenCount": answer_tokens,
            "thoughtsTokenCount": thoughts_tokens,
            "totalTokenCount": prompt_tokens + self.cached_tokens + answer_tokens + thoughts_tokens,
        }
        if self.cached_tokens:
            payload["usageMetadata"]["cachedContentTokenCount"] = self.cached_tokens
        if not thoughts_tokens:
            del payload["usageMetadata"]["thoughtsTokenCount"]
        payload["modelVersion"] = self.settings.served_model or model
        payload["responseId"] = f"fake{self.server.total:08d}"
        return payload
