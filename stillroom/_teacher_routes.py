"""ASGI pieces the teacher's server process shares between its backends.

- :class:`ScoringRoutes`: ``POST /v1/completions`` with ``echo`` + ``logprobs`` answered in one
  forward pass (:mod:`stillroom._teacher_scoring`), ``GET /v1/tokenizer`` (the tokenizer's
  identity); everything else goes to the wrapped app, so chat keeps working on the same port;
- :class:`DefaultSystemPrompt`: a default system prompt for chat requests that have none;
- small helpers to read a request body, replay it, and answer JSON.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from stillroom._teacher_scoring import (
    ScoreRequest,
    ScoringRequestError,
    is_scoring_request,
    parse_score_request,
)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
TOKENIZER_PATHS = ("/v1/tokenizer", "/tokenizer")


async def read_body(receive: Receive) -> bytes:
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields ``body`` once, then defers to the original."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def with_length(scope: Scope, body: bytes) -> Scope:
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
    return {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}


async def send_json(send: Send, status: int, payload: Any) -> None:
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def error_body(message: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape."""
    return {"error": {"message": message, "type": "invalid_request_error", "param": param}}


def with_system_prompt(body: bytes, system: str) -> bytes:
    """The request body with ``system`` as first message when it has no system message.

    Anything that is not a JSON chat request with a ``messages`` list is returned as is,
    for the backend's own validation to answer.
    """
    try:
        request = json.loads(body)
    except ValueError:
        return body
    messages = request.get("messages") if isinstance(request, dict) else None
    if not isinstance(messages, list):
        return body
    if any(isinstance(m, dict) and m.get("role") == "system" for m in messages):
        return body
    request["messages"] = [{"role": "system", "content": system}, *messages]
    return json.dumps(request).encode()


class DefaultSystemPrompt:
    """ASGI middleware: a default system prompt for chat requests that have none."""

    def __init__(self, app: ASGIApp, system: str) -> None:
        self.app = app
        self.system = system

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != CHAT_PATH:
            await self.app(scope, receive, send)
            return
        body = with_system_prompt(await read_body(receive), self.system)
        await self.app(with_length(scope, body), replay(body, receive), send)


class ScoringRoutes:
    """ASGI middleware: the scoring route and the tokenizer route in front of ``app``.

    ``score`` answers a validated request (run it off the event loop, under the model's
    lock); ``tokenizer`` is the JSON ``GET /v1/tokenizer`` returns.
    """

    def __init__(
        self,
        app: ASGIApp,
        score: Callable[[ScoreRequest], Awaitable[dict[str, Any]]],
        tokenizer: dict[str, Any],
    ) -> None:
        self.app = app
        self.score = score
        self.tokenizer = tokenizer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        http = scope["type"] == "http"
        if http and scope["method"] == "GET" and scope["path"] in TOKENIZER_PATHS:
            await send_json(send, 200, self.tokenizer)
            return
        if not http or scope["method"] != "POST" or scope["path"] != COMPLETIONS_PATH:
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        if not is_scoring_request(request):
            await self.app(scope, replay(body, receive), send)
            return
        try:
            answer = await self.score(parse_score_request(request))
        except ScoringRequestError as exc:
            await send_json(send, 400, error_body(str(exc), exc.param))
            return
        await send_json(send, 200, answer)
