"""The one module that touches the openai SDK's private internals.

harvest reuses one request the SDK built (see ``_sender``): that needs the SDK's private
steps (``FinalRequestOptions``, ``_prepare_options``, ``_build_request``,
``_prepare_request``, ``_send_request``, ``_make_status_error_from_response``,
``openai._httpx2``) and its private state (``_client``, ``_idempotency_header`` and the
attributes that say how it authenticates). They are used here and nowhere else, on the
versions in :data:`TESTED_WINDOW` (``pyproject.toml`` pins the same window; a test checks
that they agree). The rules:

- **Before the network**, any doubt (an untested SDK version, a missing or changed
  internal, an attribute this module does not know on the client) means: do not reuse,
  let ``client.post`` send it. :func:`reuse_problem` and :func:`build_template` return or
  raise :class:`SdkMismatch` for that; the sender warns once and falls back.
- **Auth fails closed**: a client is reused only when every attribute that could change
  its auth per request is one this module knows and is unset.
- **After the network**, a failure is the SDK's own exception class, built by the SDK
  when it can and by the public constructors otherwise (:func:`status_error`), and never
  sent again by a fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import openai
from httpx2 import Response as RawResponse  # the SDK's HTTP library (openai >= 3)

try:
    from openai._httpx2 import request_exceptions, timeout_exceptions
    from openai._models import FinalRequestOptions
except ImportError:  # pragma: no cover - an SDK outside the window: every request via post
    FinalRequestOptions = None  # type: ignore[assignment,misc]
    request_exceptions = timeout_exceptions = None  # type: ignore[assignment]

TESTED_WINDOW = ("3.57", "3.58")  # openai >= 3.57, < 3.58 (as pinned in pyproject.toml)
CHAT_PATH = "/chat/completions"

# Every instance attribute of a plain AsyncOpenAI in the tested window. One that is not
# here may be new auth state, so a client carrying it is not reused (fail closed).
_KNOWN_ATTRIBUTES = frozenset(
    {
        "_ambient_authorizations", "_api_key_provider", "_base_url", "_base_url_was_default",
        "_client", "_custom_headers", "_custom_query", "_data_residency",
        "_default_stream_cls", "_idempotency_header", "_platform", "_provider",
        "_provider_runtime", "_strict_response_validation", "_version",
        "_workload_identity_auth", "admin_api_key", "api_key", "max_retries", "organization",
        "project", "timeout", "webhook_secret", "websocket_base_url", "workload_identity",
    }
)  # fmt: skip
# The attributes that make the SDK authenticate per request; each must exist and be unset.
_PER_REQUEST_AUTH = (
    "_api_key_provider",
    "_provider",
    "_provider_runtime",
    "_workload_identity_auth",
    "workload_identity",
    "custom_auth",
)


class SdkMismatch(Exception):
    """The SDK is not the one this module was tested on, in a way that matters here."""


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def version_in_window(version: str | None = None) -> bool:
    low, high = (_version_tuple(v) for v in TESTED_WINDOW)
    return low <= _version_tuple(version or openai.__version__) < high


@dataclass(frozen=True, slots=True)
class ReuseProblem:
    """Why a client's request is not reused. ``drift``: the SDK or the client is not what
    this module was tested on (worth a warning); otherwise the client legitimately changes
    its requests (per-request auth, a subclass) and ``client.post`` is simply the way."""

    reason: str
    drift: bool


def reuse_problem(client: Any) -> ReuseProblem | None:
    """Why ``client``'s requests cannot be reused (``None``: they can: same URL, auth and
    headers every time). Anything this module cannot vouch for is a problem."""
    if FinalRequestOptions is None or request_exceptions is None:
        return ReuseProblem("this openai SDK lacks the internals harvest reuses", drift=True)
    if not version_in_window():
        why = f"openai {openai.__version__} is outside the tested window {TESTED_WINDOW}"
        return ReuseProblem(why, drift=True)
    if type(client) is not openai.AsyncOpenAI:
        return ReuseProblem(f"{type(client).__name__} is not a plain AsyncOpenAI", drift=False)
    if not isinstance(getattr(client, "api_key", None), str):
        return ReuseProblem("the API key is not a fixed string", drift=False)
    unknown = sorted(set(vars(client)) - _KNOWN_ATTRIBUTES)
    if unknown:
        why = f"the client has attributes this harvest does not know: {', '.join(unknown)}"
        return ReuseProblem(why, drift=True)
    for name in (*_PER_REQUEST_AUTH, "_ambient_authorizations"):
        try:
            value = getattr(client, name)
        except AttributeError:
            why = f"the client has no {name!r} (renamed?): its auth cannot be checked"
            return ReuseProblem(why, drift=True)
        if value:  # set: the SDK authenticates this client per request
            return ReuseProblem(f"the client authenticates per request ({name})", drift=False)
    return None


def http_client(client: openai.AsyncOpenAI) -> Any:
    """The HTTP client the SDK sends on."""
    return client._client


@dataclass(frozen=True, slots=True)
class RequestTemplate:
    """One chat request as the SDK builds it, for every later prompt to reuse."""

    request: Any  # the SDK's request object (its exceptions name it)
    url: str
    headers: dict[str, str]
    extensions: dict[str, Any]  # the SDK's timeout lives here
    key_header: str | None  # where the idempotency key goes (AsyncOpenAI has none)
    send_request: Any  # the SDK's send step: its auth retry, then the client's send

    def request_with(self, headers: dict[str, str], content: bytes) -> Any:
        """A request like the template's with these headers and body (nothing sent)."""
        return type(self.request)(
            "POST", self.request.url, headers=headers, content=content, extensions=self.extensions
        )


async def build_template(
    client: openai.AsyncOpenAI, path: str = CHAT_PATH, headers: dict[str, Any] | None = None
) -> RequestTemplate:
    """The request ``client.post(path)`` would build (``headers``: per-request headers, an
    ``openai.Omit()`` value drops one); any failure is :class:`SdkMismatch`."""
    try:
        options = FinalRequestOptions.construct(
            method="post", url=path, json_data={}, headers=headers or {}
        )
        options = await client._prepare_options(options)
        request = client._build_request(options)
        await client._prepare_request(request)
        request.headers.pop("Content-Length", None)
        return RequestTemplate(
            request=request,
            url=str(request.url),
            headers=dict(request.headers),
            extensions=dict(request.extensions),
            key_header=client._idempotency_header,
            send_request=client._send_request,
        )
    except Exception as exc:  # any doubt before the network: client.post sends instead
        raise SdkMismatch(f"{type(exc).__name__}: {exc}") from exc


async def post(
    client: openai.AsyncOpenAI,
    body: dict[str, Any],
    key: str,
    retries: int,
    path: str = CHAT_PATH,
    headers: dict[str, Any] | None = None,
) -> Any:
    """``client.post``: the SDK builds and sends the request itself (the fallback lane)."""
    options = {
        "idempotency_key": key,
        # ours, not the SDK's
        "headers": {**(headers or {}), "x-stainless-retry-count": str(retries)},
    }
    return await client.post(path, body=body, cast_to=RawResponse, options=options)


async def send_via_sdk(template: RequestTemplate, request: Any) -> Any:
    """Send through the SDK's own send path; transport failures become its exceptions."""
    try:
        response = await template.send_request(request, stream=False)
    except openai.OpenAIError:
        raise
    except timeout_exceptions() as exc:
        raise openai.APITimeoutError(request=request) from exc
    except request_exceptions() as exc:
        raise openai.APIConnectionError(request=request) from exc
    return response


def as_response(template: RequestTemplate, status: int, raw_headers: Any, content: bytes) -> Any:
    """An answer received outside the SDK as the SDK's response type."""
    return RawResponse(status, headers=list(raw_headers), content=content, request=template.request)


_STATUS_ERRORS = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


def status_error(client: openai.AsyncOpenAI, response: Any) -> openai.APIStatusError:
    """The SDK's exception for an error answer (built by the SDK where it still can)."""
    try:
        return client._make_status_error_from_response(response)
    except Exception:  # the private builder changed: the public classes, as the SDK maps them
        cls = _STATUS_ERRORS.get(response.status_code)
        if cls is None:
            cls = openai.InternalServerError if response.status_code >= 500 else None
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        message = f"Error code: {response.status_code} - {body}"
        if cls is None:
            return openai.APIStatusError(message, response=response, body=body)
        return cls(message, response=response, body=body)
