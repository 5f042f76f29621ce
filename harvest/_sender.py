"""Sending one request of any dialect through the official ``openai`` client, cheaply.

The ``openai`` SDK is harvest's HTTP adapter for every dialect (``_dialect``): a dialect's
request is a path under the base URL, a JSON body and headers; a dialect whose auth is not
a bearer token (``x-api-key``, ``x-goog-api-key``) has its headers set on the client
(:func:`stillroom.harvest._http.openai_client`) and the SDK's ``Authorization`` dropped
per request (``strip_bearer``).

The SDK's ``AsyncOpenAI.post`` rebuilds everything for every request: it copies the
options model, merges default, platform and auth headers, parses and joins the URL and
asks the HTTP client to build a request with cookies and query params. On this 2-core
machine that is about 0.6 ms of CPU a request, as much as all the rest of harvest.

For a client whose requests do not change between calls (a plain ``AsyncOpenAI`` with a
fixed API key, which is what harvest builds), :class:`WireSender` lets the SDK build one
request per path (:func:`stillroom.harvest._sdk.build_template`) and keeps its URL, headers and timeout. Per
prompt it swaps in the body and the per-request headers (``x-stainless-retry-count``, and
the idempotency key under the client's idempotency header when it has one; ``AsyncOpenAI``
has none), then sends it:

- ``lean``: on harvest's own default client (:class:`~stillroom.harvest._http.LeanAioHttpClient`),
  straight on its aiohttp session;
- ``httpx``: on any other HTTP client (one a user injected), through the SDK's own send
  path (its auth retry, then that client's ``send``).

Either way failures come back as the SDK's exception classes (``APIStatusError`` built by
the SDK from the response, ``APITimeoutError``, ``APIConnectionError``), so retry and
classification see exactly what ``client.post`` raises, and a request that has left is
never sent again by a fallback. A client the SDK re-authenticates per request (an
``api_key`` callable, a provider runtime such as Azure, workload identity, custom auth),
any subclass of ``AsyncOpenAI``, and any doubt about the SDK before a request leaves (see
:mod:`stillroom.harvest._sdk`, the only module that touches its internals) take lane ``sdk``:
``client.post``. ``bench/harvest_overhead.py`` measures lanes ``lean`` and ``sdk``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp
import openai

from stillroom.harvest import _sdk
from stillroom.harvest._http import LeanAioHttpClient, timeout_of

log = logging.getLogger("stillroom.harvest")
Lane = Literal["lean", "httpx", "sdk"]


class WireSender:
    """``await sender.send(body, key, retries_taken, path, headers)`` -> the raw response of
    a 2xx answer (``path`` relative to the base URL, default the chat path).

    The response has ``status_code``, ``headers`` (case-insensitive) and ``content``.
    ``reuse_request=False`` forces lane ``sdk``; ``strip_bearer`` drops the SDK's
    ``Authorization`` header (a dialect that authenticates otherwise).
    """

    def __init__(
        self, client: openai.AsyncOpenAI, *, reuse_request: bool = True, strip_bearer: bool = False
    ):
        self.client = client
        self.lane: Lane = "sdk"
        self._templates: dict[str, _sdk.RequestTemplate] = {}
        # another provider's auth: no bearer key, and none of the OpenAI account ids the SDK
        # reads from OPENAI_ORG_ID / OPENAI_PROJECT_ID
        omit = ("Authorization", "OpenAI-Organization", "OpenAI-Project")
        self._strip = {name: openai.Omit() for name in omit} if strip_bearer else {}
        self._warned = False
        if not reuse_request:
            return
        problem = _sdk.reuse_problem(client)
        if problem is None:
            http = _sdk.http_client(client)
            self.lane = "lean" if isinstance(http, LeanAioHttpClient) else "httpx"
        elif problem.drift:
            self._fall_back(problem.reason)

    def _fall_back(self, why: str) -> None:
        """From now on every request goes through ``client.post`` (warned once)."""
        if not self._warned:
            log.warning("harvest: cannot reuse the SDK's request (%s); using client.post", why)
            self._warned = True
        self.lane = "sdk"

    async def send(
        self,
        body: dict[str, Any],
        key: str,
        retries_taken: int = 0,
        path: str = _sdk.CHAT_PATH,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Any:
        if self.lane != "sdk":
            try:  # everything before the network: any doubt and client.post sends it
                template = self._templates.get(path) or await self._build(path, extra_headers)
                headers = dict(template.headers)
                if extra_headers:
                    headers.update(extra_headers)
                if template.key_header:
                    headers[template.key_header] = key
                headers["x-stainless-retry-count"] = str(retries_taken)
                content = _json_bytes(body)
                request = template.request_with(headers, content) if self.lane == "httpx" else None
            except Exception as exc:
                self._fall_back(f"{type(exc).__name__}: {exc}")
            else:
                if request is not None:
                    return await self._send_httpx(template, request)
                return await self._send_lean(template, headers, content)
        headers = {**(extra_headers or {}), **self._strip}
        return await _sdk.post(self.client, body, key, retries_taken, path, headers)

    async def _build(
        self, path: str, extra_headers: Mapping[str, str] | None
    ) -> _sdk.RequestTemplate:
        headers = {**(extra_headers or {}), **self._strip}
        template = self._templates[path] = await _sdk.build_template(self.client, path, headers)
        self._timeout = timeout_of(template.extensions)
        return template

    async def _send_lean(
        self, template: _sdk.RequestTemplate, headers: dict[str, str], content: bytes
    ) -> Any:
        http: LeanAioHttpClient = _sdk.http_client(self.client)
        try:
            reply = await http.post_bytes(template.url, headers, content, self._timeout)
        except TimeoutError as exc:
            raise openai.APITimeoutError(request=template.request) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise openai.APIConnectionError(request=template.request) from exc
        if reply.status_code >= 400:
            response = _sdk.as_response(
                template, reply.status_code, reply.raw_headers, reply.content
            )
            raise _sdk.status_error(self.client, response)
        return reply

    async def _send_httpx(self, template: _sdk.RequestTemplate, request: Any) -> Any:
        response = await _sdk.send_via_sdk(template, request)
        if response.is_error:
            raise _sdk.status_error(self.client, response)
        return response


def _json_bytes(body: dict[str, Any]) -> bytes:
    """The body as the SDK encodes it (``openapi_dumps``: compact, UTF-8, no NaN)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
