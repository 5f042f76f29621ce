"""The API dialect contract: what harvest needs to know to talk to one provider API.

A *dialect* is one module (``_dialect_<name>.py``) exposing ``DIALECT``, an object with
the :class:`Dialect` interface. The sync engine (``_engine``, ``_sender``) and the batch
path (``_batch_files``, ``_batch_ingest``) take a dialect and hold no per-dialect code;
a fifth dialect is one new file plus its fake, and one line in :data:`MODULES`.

The contract:

- **Options are dialect-neutral.** :class:`RequestOptions` holds what the user asked for
  (``--max-tokens``, ``--temperature``, ``--reasoning-effort``, ``--thinking-budget``,
  ``--extra-body``...). :meth:`RequestOptions.params` is the neutral record: the
  idempotency key is computed from it and it is stored as ``request_params``; it is never
  the wire body. An option left unset adds nothing to it, so stores written before the
  dialects existed resume with the same keys (``tests/golden`` pins that). Any
  dialect but ``chat`` adds ``"api": name``: asking another API is another request.
- ``build(model, messages, options) -> WireRequest``: the request as the provider takes
  it: a ``path`` relative to ``--base-url`` (which is what the provider's own SDK takes as
  its base URL), headers beyond auth, the JSON body. ``build`` raises
  :class:`~stillroom.harvest.errors.HarvestConfigError` for an option the dialect cannot
  send (named, with the flag to change); the run calls it once before any request, so a
  bad option sends nothing. It runs once per request: keep it cheap (:class:`PerRun`
  computes what does not depend on ``messages`` once).
- ``auth_headers(api_key)``: the auth headers (the key is never stored). When they carry
  no ``Authorization`` the sender strips the SDK's bearer header (see ``_sender``).
- ``parse(data, request_id) -> Answer``: a decoded 2xx body (or a batch output line's
  body) as :class:`~stillroom.harvest._answer.Answer`: content, reasoning and
  ``reasoning_kind`` (``full`` / ``summary`` / ``none``), the provider's raw reasoning
  blocks kept opaque (JSON text; signatures, ``redacted_thinking``, ``encrypted_content``),
  usage (reasoning tokens *inside* ``completion_tokens``, which is what is billed as
  output), cached input tokens, the raw ``finish_reason`` and the normalised ``finish``
  (:data:`FINISHES`). A body that is not an answer raises
  :class:`~stillroom.harvest._retry.TransientError`.
- ``classify(status, body, headers) -> Verdict``: an error answer (its raw body bytes) as
  one of
  ``retry`` (5xx, 408/409, overloaded), ``rate_limited`` (with the provider's delay when
  it gave one), ``stop`` (end the run at once: the request itself is wrong, e.g. an
  unsupported parameter; the message names the option to change), ``auth`` (401/403:
  end the run at once) or ``permanent`` (a failure of this prompt only).
  :func:`classify_http` is the common part every dialect starts from.
- ``limits(headers, profile) -> LimitSnapshot``: what an answer's headers say about the
  provider's request and token buckets, ``(requests, tokens)`` as
  :class:`~stillroom.harvest._limiter.Observation` (limit, remaining, reset seconds,
  window): :func:`read_limits` reads them by a header profile
  (``_header_profiles``); a dialect whose provider sends other headers overrides it.
  A delay that arrives in an error body (Gemini's ``RetryInfo``) is the verdict's
  ``retry_after``, not a limit snapshot.
- attributes: ``name``, ``key_env`` (default API-key variable), ``request_id_header``,
  ``limits_profile`` (the header profile used when neither the user nor the policy names
  one and the host matches none), ``batch_url`` (the OpenAI batch ``url`` of its lines;
  ``anthropic``: its Message Batches endpoint, ``stillroom.harvest._batch_anthropic``;
  ``None``: the dialect has no batch mode here).

:func:`dialect_for` returns a dialect by name; :func:`infer_api` picks one from the
base URL's host where that is unambiguous. :data:`OTHER_NAMES` are dialects that are no
``--api`` choice: ``scoring`` (``_dialect_scoring``) asks a teacher for the log-probability
of every token of a given text, and its ``parse`` answers with a ``ScoringEcho``, not an
``Answer``; ``train onpolicy`` sends it with harvest's public limiter, retries and caps.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit

from stillroom.harvest._limiter import Observation, retry_after_seconds
from stillroom.harvest._limiter import read_limits as read_limits  # the default `limits`
from stillroom.harvest.errors import HarvestConfigError

if TYPE_CHECKING:
    from stillroom.harvest._answer import Answer
    from stillroom.harvest._header_profiles import HeaderProfile

API_NAMES = ("chat", "responses", "anthropic", "gemini")
# Dialects that are not ``--api`` choices: harvest's engine never runs them (``scoring``:
# a teacher's logprobs of a given text, for ``train onpolicy``).
OTHER_NAMES = ("scoring",)
MODULES = {name: f"stillroom.harvest._dialect_{name}" for name in (*API_NAMES, *OTHER_NAMES)}
# Hosts whose native API is unambiguous (their OpenAI-compatible layers are other paths).
HOST_APIS = {"api.anthropic.com": "anthropic", "generativelanguage.googleapis.com": "gemini"}
FINISHES = ("stop", "length", "refusal", "other")
REASONING_KINDS = ("full", "summary", "none")

LimitSnapshot = tuple[Observation, Observation]  # (requests, tokens)
VerdictKind = Literal["retry", "rate_limited", "stop", "auth", "permanent"]


@dataclass(frozen=True)
class RequestOptions:
    """What the user asked for, in harvest's own names (mapped to the wire per dialect).

    ``temperature``/``top_p``/``top_logprobs``: a dialect or model that refuses them does
    not send them (documented per dialect). ``extra_body`` is merged into every request
    body last (OpenRouter's ``reasoning``, vLLM's ``chat_template_kwargs``...).
    """

    max_tokens: int = 512
    temperature: float | None = 0.7
    top_p: float | None = None
    top_logprobs: int | None = None
    reasoning_effort: str | None = None
    thinking_budget: int | None = None
    extra_body: Mapping[str, Any] | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def params(self, model: str, api: str = "chat") -> dict[str, Any]:
        """The neutral record: keyed on, stored as ``request_params``; unset adds nothing."""
        params: dict[str, Any] = {"model": model, "max_tokens": self.max_tokens}
        params["temperature"] = self.temperature
        if self.top_p is not None:
            params["top_p"] = self.top_p
        if self.top_logprobs is not None:
            params["logprobs"] = True
            params["top_logprobs"] = self.top_logprobs
        for name in ("reasoning_effort", "thinking_budget", "seed"):
            if getattr(self, name) is not None:
                params[name] = getattr(self, name)
        if self.stop:
            params["stop"] = list(self.stop)
        if self.extra_body:
            params["extra_body"] = dict(self.extra_body)
        if api != "chat":
            params["api"] = api
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> tuple[str, RequestOptions, str]:
        """``(model, options, api)`` back from :meth:`params` (a stored ``request_params``)."""
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in params.items() if k in known}
        if "stop" in kwargs:
            kwargs["stop"] = tuple(kwargs["stop"])
        return params["model"], cls(**kwargs), params.get("api", "chat")


@dataclass(frozen=True, slots=True)
class WireRequest:
    """One request as the provider takes it: POST ``path`` (relative to the base URL)."""

    path: str
    body: dict[str, Any]
    headers: Mapping[str, str] | None = None  # beyond auth


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an error answer means for the run (see the module docstring)."""

    kind: VerdictKind
    message: str
    retry_after: float | None = None  # seconds the provider asked for (retry/rate_limited)


class Dialect(Protocol):
    name: str
    key_env: str
    request_id_header: str | None
    limits_profile: str
    batch_url: str | None

    def build(
        self, model: str, messages: Sequence[Mapping[str, Any]], options: RequestOptions
    ) -> WireRequest: ...

    def auth_headers(self, api_key: str) -> dict[str, str]: ...

    def parse(self, data: Any, request_id: str | None) -> Answer: ...

    def classify(self, status: int, body: bytes, headers: Mapping[str, str]) -> Verdict: ...

    def limits(self, headers: Mapping[str, str], profile: HeaderProfile) -> LimitSnapshot: ...


class PerRun:
    """``fields(model, options)`` computed once and reused while both stay the same (a run
    builds every request with one model and one options object): ``build`` stays cheap."""

    __slots__ = ("_compute", "_key", "_value")

    def __init__(self, compute: Callable[[str, RequestOptions], dict[str, Any]]):
        self._compute = compute
        self._key: tuple[str, RequestOptions] | None = None
        self._value: dict[str, Any] = {}

    def __call__(self, model: str, options: RequestOptions) -> dict[str, Any]:
        key = self._key
        if key is None or key[1] is not options or key[0] != model:
            self._value = self._compute(model, options)
            self._key = (model, options)
        return self._value


def dialect_for(name: str) -> Dialect:
    """The dialect called ``name`` (one of :data:`API_NAMES` or :data:`OTHER_NAMES`)."""
    module = MODULES.get(name)
    if module is None:
        raise HarvestConfigError(f"unknown --api {name!r} (known: {', '.join(API_NAMES)})")
    try:
        return importlib.import_module(module).DIALECT
    except ModuleNotFoundError:
        raise HarvestConfigError(f"--api {name} is not available in this build") from None


def check_options(api: str, model: str, options: RequestOptions) -> None:
    """Build one request (sends nothing): an option the dialect cannot send raises
    :class:`HarvestConfigError` before the run records anything."""
    dialect_for(api).build(model, [{"role": "user", "content": "?"}], options)


def infer_api(base_url: str) -> str:
    """The dialect a base URL's host implies: Anthropic's and Gemini's native hosts, else chat."""
    host = (urlsplit(base_url).hostname or "").lower()
    return HOST_APIS.get(host, "chat")


# -- the common parts every dialect starts from ---------------------------------------------
def error_fields(body: bytes) -> dict[str, Any]:
    """The ``error`` object of an error body (OpenAI, Anthropic and Google all nest one);
    ``{}`` when the body is not JSON or has none."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def short_error(status: int, body: bytes) -> str:
    """``HTTP 400: <the provider's message>`` (or the body's first 300 characters)."""
    message = error_fields(body).get("message")
    if not isinstance(message, str):
        message = body[:300].decode("utf-8", "replace")
    return f"HTTP {status}: {message.replace(chr(10), ' ')[:300]}"


def normalise_finish(raw: str | None, table: Mapping[str, str]) -> str | None:
    """A provider's finish reason as one of :data:`FINISHES` (``None`` stays ``None``)."""
    return None if raw is None else table.get(raw, "other")


def classify_http(status: int, body: bytes, headers: Mapping[str, str]) -> Verdict:
    """401/403 auth; 429 rate-limited (``retry-after``); 5xx, 408, 409 retry; else permanent."""
    message = short_error(status, body)
    if status in (401, 403):
        return Verdict("auth", f"the provider refused the credentials (HTTP {status})")
    if status == 429:
        return Verdict("rate_limited", message, retry_after_seconds(headers))
    if status >= 500 or status in (408, 409):
        return Verdict("retry", message, retry_after_seconds(headers))
    return Verdict("permanent", message)
