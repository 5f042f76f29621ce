"""Sending one chat completion through the official ``openai`` client, cheaply.

The SDK's ``AsyncOpenAI.post`` rebuilds everything for every request: it copies the
options model, merges default, platform and auth headers, parses and joins the URL and
asks the HTTP client to build a request with cookies and query params. On this 2-core
machine that is about 0.6 ms of CPU a request, as much as all the rest of harvest.

For a client whose requests do not change between calls (a plain ``AsyncOpenAI`` with a
fixed API key, which is what harvest builds), :class:`ChatSender` lets the SDK build and
prepare one request (``_prepare_options``, ``_build_request``, ``_prepare_request``) and
keeps its URL, headers and timeout. Per prompt it swaps in the body and the per-request
headers (``x-stainless-retry-count``, and the idempotency key under the client's
idempotency header when it has one; ``AsyncOpenAI`` has none), then sends it:

- ``lean``: on harvest's own default client (:class:`~harvest._http.LeanAioHttpClient`),
  straight on its aiohttp session;
- ``httpx``: on any other HTTP client (one a user injected), through the SDK's own send
  path (``_send_request``: its auth retry, then that client's ``send``).

Either way failures come back as the SDK's exception classes (``APIStatusError`` built by
the SDK from the response, ``APITimeoutError``, ``APIConnectionError``), so retry and
classification see exactly what ``client.post`` raises. A client the SDK re-authenticates
per request (an ``api_key`` callable, a provider runtime such as Azure, workload identity,
custom auth) or any subclass of ``AsyncOpenAI`` takes lane ``sdk``: ``client.post`` every
time. ``bench/harvest_overhead.py`` measures lanes ``lean`` and ``sdk`` side by side.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

import aiohttp
import openai
from httpx2 import Response as RawResponse  # the HTTP library of openai >= 3

from harvest._http import LeanAioHttpClient, timeout_of

try:  # the SDK internals the reused request needs (openai >= 3); without them: lane "sdk"
    from openai._httpx2 import request_exceptions, timeout_exceptions
    from openai._models import FinalRequestOptions
except ImportError:  # pragma: no cover - older SDKs
    FinalRequestOptions = None  # type: ignore[assignment,misc]

log = logging.getLogger("harvest")
_PATH = "/chat/completions"
Lane = Literal["lean", "httpx", "sdk"]


class ChatSender:
    """``await sender.send(body, key, retries_taken)`` -> the raw response of a 2xx answer.

    The response has ``status_code``, ``headers`` (case-insensitive) and ``content``.
    ``reuse_request=False`` forces lane ``sdk``.
    """

    def __init__(self, client: openai.AsyncOpenAI, *, reuse_request: bool = True):
        self.client = client
        self.lane: Lane = "sdk"
        if reuse_request and _static_requests(client):
            self.lane = "lean" if isinstance(client._client, LeanAioHttpClient) else "httpx"
        self._template: Any = None
        self._key_header: str | None = getattr(client, "_idempotency_header", None)

    async def send(self, body: dict[str, Any], key: str, retries_taken: int = 0) -> Any:
        template = self._template
        if template is None and self.lane != "sdk":
            template = await self._build_template()
        if self.lane == "sdk":
            options = {
                "idempotency_key": key,
                "headers": {"x-stainless-retry-count": str(retries_taken)},  # ours, not the SDK's
            }
            return await self.client.post(_PATH, body=body, cast_to=RawResponse, options=options)
        headers = self._headers.copy()
        if self._key_header:
            headers[self._key_header] = key
        headers["x-stainless-retry-count"] = str(retries_taken)
        content = _json_bytes(body)
        if self.lane == "lean":
            return await self._send_lean(template, headers, content)
        return await self._send_httpx(template, headers, content)

    async def _send_lean(self, template: Any, headers: dict[str, str], content: bytes) -> Any:
        http: LeanAioHttpClient = self.client._client  # type: ignore[assignment]
        try:
            reply = await http.post_bytes(self._url, headers, content, self._timeout)
        except TimeoutError as exc:
            raise openai.APITimeoutError(request=template) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise openai.APIConnectionError(request=template) from exc
        if reply.status_code >= 400:
            raise self.client._make_status_error_from_response(_as_response(template, reply))
        return reply

    async def _send_httpx(self, template: Any, headers: dict[str, str], content: bytes) -> Any:
        request = type(template)(
            "POST", template.url, headers=headers, content=content, extensions=template.extensions
        )
        timeouts, failures = timeout_exceptions(), request_exceptions()
        try:
            response = await self.client._send_request(request, stream=False)
        except openai.OpenAIError:
            raise
        except timeouts as exc:
            raise openai.APITimeoutError(request=request) from exc
        except failures as exc:
            raise openai.APIConnectionError(request=request) from exc
        if response.is_error:
            raise self.client._make_status_error_from_response(response)
        return response

    async def _build_template(self) -> Any:
        """One request built by the SDK exactly as ``client.post`` builds it.

        These are the SDK's private steps; if this SDK lacks one or changed its shape, the
        sender falls back to lane ``sdk`` for the rest of the run.
        """
        client = self.client
        try:
            options = FinalRequestOptions.construct(method="post", url=_PATH, json_data={})
            options = await client._prepare_options(options)
            request = client._build_request(options)
            await client._prepare_request(request)
            request.headers.pop("Content-Length", None)
            self._url, self._timeout = str(request.url), timeout_of(request.extensions)
            self._headers = dict(request.headers)
        except (AttributeError, TypeError, KeyError) as exc:
            log.warning("harvest: cannot reuse the SDK's request (%s); using client.post", exc)
            self.lane = "sdk"
            return None
        self._template = request
        return request


def _json_bytes(body: dict[str, Any]) -> bytes:
    """The body as the SDK encodes it (``openapi_dumps``: compact, UTF-8, no NaN)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _as_response(template: Any, reply: Any) -> Any:
    """An error answer as the SDK's HTTP library's response, for the SDK's error classes."""
    return RawResponse(
        reply.status_code, headers=list(reply.raw_headers), content=reply.content, request=template
    )


def _static_requests(client: openai.AsyncOpenAI) -> bool:
    """True when every request of ``client`` would carry the same URL, auth and headers."""
    return (
        FinalRequestOptions is not None
        and type(client) is openai.AsyncOpenAI
        and isinstance(client.api_key, str)
        and getattr(client, "_api_key_provider", None) is None
        and getattr(client, "_provider_runtime", None) is None
        and getattr(client, "_workload_identity_auth", None) is None
        and getattr(client, "custom_auth", None) is None
    )
