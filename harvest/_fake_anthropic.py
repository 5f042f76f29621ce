"""A strict loopback Anthropic Messages API (``POST /v1/messages``) for tests.

Built from the pinned payloads in ``fixtures/anthropic/`` (see each file's ``sources`` and
``read``). Like the real API it refuses, with the documented error body:

- a missing or wrong ``x-api-key`` (401 ``authentication_error``; a bearer token alone is
  refused the same way: the key is what the official SDK sends);
- a missing ``anthropic-version`` header, or a version the fake does not know (400);
- a body field ``MessageCreateParams`` does not have, or a missing required one (400);
- a ``system`` role inside ``messages`` (the system prompt is the top-level ``system``);
- ``temperature`` above 1; with ``thinking``: a budget under 1024 or not under
  ``max_tokens``, ``temperature`` other than 1, ``top_k``, ``top_p`` outside [0.95, 1];
- the per-model sampling refusals of ``request_rules.json`` (``model_rules``).

Answers carry ``thinking`` blocks (text plus a signature) when thinking is enabled, a
``redacted_thinking`` block with ``redacted=True`` (the thinking text is ``thought``
formatted with the prompt's length ``n`` and the ``prompt``; ``responses`` keeps every body
answered), usage with cache reads and writes, and
``stop_reason`` ``max_tokens`` when thinking plus text exceed ``max_tokens``. Every answer
has ``anthropic-ratelimit-*`` headers (requests, tokens, input and output tokens) whose
resets are RFC 3339 times; a 429 adds ``retry-after`` (seconds).
"""

from __future__ import annotations

import base64
import hashlib
import math
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

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
    400: "invalid_request",
    401: "authentication",
    403: "permission",
    404: "not_found",
    413: "request_too_large",
    429: "rate_limit",
    500: "api",
    529: "overloaded",
}


class Refusal(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """The documented error body for ``status`` (its pinned message unless given)."""
    body = pinned_payload("anthropic", f"error_{_STATUS_FILE.get(status, 'api')}")["body"]
    if message is not None:
        body["error"]["message"] = message
    return body


def check_request(headers: Any, body: Any, api_key: str | None) -> None:
    """Raise :class:`Refusal` for anything the Messages API would refuse."""
    rules = pinned_payload("anthropic", "request_rules")
    msgs = rules["messages"]
    if api_key is not None and headers.get("x-api-key") != api_key:
        raise Refusal(401, msgs["bad_key"])
    version = headers.get("anthropic-version")
    if not version:
        raise Refusal(400, msgs["missing_version"])
    if version not in rules["versions"]:
        raise Refusal(400, f"anthropic-version: unknown version {version!r}")
    if not isinstance(body, dict):
        raise Refusal(400, "Input should be a valid dictionary")
    for name in body:
        if name not in rules["fields"]:
            raise Refusal(400, msgs["extra_field"].format(field=name))
    for name in rules["required"]:
        if name not in body:
            raise Refusal(400, msgs["missing_field"].format(field=name))
    for i, message in enumerate(body["messages"]):
        if message.get("role") not in ("user", "assistant"):
            raise Refusal(
                400,
                f"messages.{i}: Unexpected role {message.get('role')!r}. The Messages API "
                'accepts a top-level `system` parameter, not "system" as an input message role.',
            )
    _check_sampling(body, msgs, rules["model_rules"])


def _check_sampling(body: dict[str, Any], msgs: dict[str, str], model_rules: dict) -> None:
    if body.get("temperature", 0) > 1:
        raise Refusal(400, msgs["temperature_range"])
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens", 0)
        if budget < 1024:
            raise Refusal(400, msgs["budget_min"])
        if budget >= body["max_tokens"]:
            raise Refusal(400, msgs["budget_max"])
        if body.get("temperature", 1) != 1:
            raise Refusal(400, msgs["thinking_temperature"])
        if "top_k" in body:
            raise Refusal(400, msgs["thinking_top_k"])
        if not 0.95 <= body.get("top_p", 1) <= 1:
            raise Refusal(400, msgs["thinking_top_p"])
    for pattern, refused in model_rules.items():
        if not fnmatchcase(str(body["model"]), pattern):
            continue
        if "temperature_deprecated" in refused and "temperature" in body:
            raise Refusal(400, msgs["temperature_deprecated"])
        if "temperature_and_top_p" in refused and {"temperature", "top_p"} <= set(body):
            raise Refusal(400, msgs["temperature_and_top_p"])


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict))


def last_user_text(body: dict[str, Any]) -> str:
    return _text_of(
        next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
    )


def prompt_tokens_of(body: dict[str, Any]) -> int:
    tokens = sum(estimate_tokens(_text_of(m["content"])) for m in body["messages"])
    return tokens + estimate_tokens(_text_of(body.get("system", "")))


def signature_of(text: str) -> str:
    """The fake's opaque signature of a thinking text (the real one is encrypted)."""
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


class _App:
    def __init__(self, fake: FakeAnthropic):
        self.fake, self.server = fake, fake.server

    def build(self):
        from aiohttp import web

        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/v1/messages", self.handle)
        return app

    def _json(self, status: int, payload: dict, headers: dict[str, str]):
        from aiohttp import web

        if "request_id" in payload:  # an error body names the request as its header does
            payload["request_id"] = headers["request-id"]
        self.fake.responses.append(payload)
        self.server.requests[status] += 1
        return web.json_response(payload, status=status, headers=headers)

    async def handle(self, request):
        server = self.server
        raw = await receive(server, request)
        headers = {"request-id": f"req_fake{server.total:08d}"}
        try:
            body = _json_or_refuse(raw)
            check_request(request.headers, body, server.s.api_key)
        except Refusal as refusal:
            return self._json(refusal.status, error_body(refusal.status, refusal.message), headers)
        last_user = last_user_text(body)
        directives, seen_before = await take_prompt(server, last_user)
        prompt_tokens = prompt_tokens_of(body)
        wait = server._admit(prompt_tokens + body["max_tokens"])
        headers.update(self.fake.ratelimit_headers())
        status = directives.fault(seen_before) or (429 if wait > 0 else None)
        if status is not None:
            if status == 429:
                retry = directives.retry if directives.retry is not None else wait
                pinned = pinned_payload("anthropic", "rate_limit_headers")["headers"]
                headers["retry-after"] = str(math.ceil(retry)) if retry else pinned["retry-after"]
            return self._json(status, error_body(status), headers)
        payload = self.fake.message(body, last_user, prompt_tokens, directives)
        return self._json(200, payload, headers)


def _json_or_refuse(raw: bytes) -> Any:
    import json

    try:
        return json.loads(raw)
    except ValueError:
        raise Refusal(400, "There was an error parsing the body as JSON") from None


class FakeAnthropic(NativeFake):
    """A strict loopback Messages API; use as a context manager.

    >>> with FakeAnthropic(api_key="sk-ant-test") as fake:   # doctest: +SKIP
    ...     fake.base_url            # http://127.0.0.1:PORT, as the SDK takes it
    """

    def __init__(
        self,
        *,
        api_key: str | None = "sk-ant-test",
        redacted: bool = False,
        thought: str = "The user wrote {n} characters.",
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        served_model: str | None = None,
        record_requests: bool = True,
        **settings: Any,
    ):
        settings.setdefault("rpm", 4000)  # the real API sends its limits on every answer
        settings.setdefault("tpm", 2_000_000)
        super().__init__(
            api_key=api_key, served_model=served_model, record_requests=record_requests, **settings
        )
        self.redacted, self.thought = redacted, thought
        self.responses: list[dict[str, Any]] = []  # every JSON body answered, in order
        self.cache_read_tokens, self.cache_write_tokens = cache_read_tokens, cache_write_tokens
        self._install(_App(self))

    def ratelimit_headers(self) -> dict[str, str]:
        """``anthropic-ratelimit-*`` from the fake's buckets (resets: RFC 3339, UTC)."""
        out: dict[str, str] = {}
        now = datetime.now(UTC)
        buckets = {"requests": self.server.req_bucket, "tokens": self.server.tok_bucket}
        buckets["input-tokens"] = buckets["output-tokens"] = self.server.tok_bucket
        for dim, bucket in buckets.items():
            if bucket is None:
                continue
            full_in = (bucket.capacity - bucket.level) / bucket.rate
            reset = (now + timedelta(seconds=full_in)).isoformat(timespec="seconds")
            out[f"anthropic-ratelimit-{dim}-limit"] = str(bucket.limit)
            out[f"anthropic-ratelimit-{dim}-remaining"] = str(max(0, math.floor(bucket.level)))
            out[f"anthropic-ratelimit-{dim}-reset"] = reset.replace("+00:00", "Z")
        return out

    def answer_params(self, headers: Any, params: Any) -> tuple[int, dict[str, Any]]:
        """One Message Batches request's ``params`` answered as ``POST /v1/messages`` would
        (refusals and ``[[status:N]]`` faults as error bodies; no rate limits or delays)."""
        server = self.server
        server.total += 1
        try:
            check_request(headers, params, server.s.api_key)
        except Refusal as refusal:
            return refusal.status, error_body(refusal.status, refusal.message)
        last_user = last_user_text(params)
        seen_before = server.per_prompt[last_user]
        server.per_prompt[last_user] += 1
        directives = Directives.read(last_user)
        status = directives.fault(seen_before)
        if status is not None:
            return status, error_body(status)
        return 200, self.message(params, last_user, prompt_tokens_of(params), directives)

    def message(
        self, body: dict[str, Any], last_user: str, prompt_tokens: int, directives: Directives
    ) -> dict[str, Any]:
        """The pinned Message shape with this request's blocks, usage and stop reason."""
        if directives.stop == "refusal":
            payload = pinned_payload("anthropic", "message_refusal")["body"]
            payload["usage"]["input_tokens"] = prompt_tokens
            return payload
        payload = pinned_payload("anthropic", "message_thinking")["body"]
        budget = body["max_tokens"]
        blocks: list[dict[str, Any]] = []
        if (body.get("thinking") or {}).get("type") == "enabled":
            thought = self.thought.format(n=len(last_user), prompt=last_user)
            blocks.append({"type": "thinking", "thinking": thought, "signature": ""})
            if self.redacted:
                blocks.append({"type": "redacted_thinking", "data": signature_of(last_user)})
        spent = sum(estimate_tokens(b.get("thinking", b.get("data", ""))) for b in blocks)
        answer = self.server._reply(last_user)
        stop = "end_turn"
        if spent + estimate_tokens(answer) > budget:
            answer, stop = cut_to_tokens(answer, budget - spent), "max_tokens"
        for block in blocks:
            if block["type"] == "thinking":
                block["signature"] = signature_of(block["thinking"])
        if answer:
            blocks.append({"type": "text", "text": answer})
        payload.update(
            id=f"msg_fake{self.server.total:08d}",
            model=self.settings.served_model or body["model"],
            content=blocks,
            stop_reason=stop,
        )
        payload["usage"] = {
            "input_tokens": prompt_tokens,
            "cache_creation_input_tokens": self.cache_write_tokens,
            "cache_read_input_tokens": self.cache_read_tokens,
            "output_tokens": spent + (estimate_tokens(answer) if answer else 0),
            "service_tier": "standard",
        }
        return payload
