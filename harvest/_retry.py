"""Which failures are retried, and how long to wait: composed from tenacity's parts.

- what an error answer means is its dialect's verdict (``_dialect``: ``Dialect.classify``);
  by default:
- retried: 429, 5xx, 408/409, timeouts, dropped connections, unparseable bodies;
- waited: the server's ``retry-after-ms`` / ``retry-after`` when it sent one (no 60 s cap,
  only ``max_wait``; asking for more than ``max_wait`` stops the run cleanly), otherwise
  exponential back-off with full jitter;
- recorded as failures: 400, 404, 422 and any other 4xx;
- fatal: 401/403 stop the whole run (:class:`~stillroom.harvest.errors.ProviderAuthError`),
  and so does a request the provider refuses as such (an unsupported parameter).

``sleep`` and ``rng`` are parameters, so tests assert on the recorded sleeps.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base

if TYPE_CHECKING:
    from stillroom.harvest._dialect import Dialect


class TransientError(Exception):
    """A failure worth retrying; ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(
        self,
        reason: str,
        status: int | None = None,
        retry_after: float | None = None,
        rate_limited: bool = False,
    ):
        super().__init__(reason)
        self.reason, self.status, self.retry_after = reason, status, retry_after
        self.rate_limited = rate_limited  # the provider's rate limit (paces the whole run)


class PermanentError(Exception):
    """A failure retrying will not fix (400/404/422...): recorded in ``failures``."""

    def __init__(self, reason: str, status: int | None = None):
        super().__init__(reason)
        self.reason, self.status = reason, status


class StopRun(Exception):
    """Stop dispatching and end the run cleanly (the item stays pending)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class AuthFailure(Exception):
    """401/403 from the provider."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _short(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ")
    return text[:300]


def classify(exc: BaseException, dialect: Dialect | None = None) -> BaseException:
    """Map an ``openai`` exception to TransientError / PermanentError / AuthFailure /
    StopRun; an error answer by ``dialect``'s verdict (default: ``chat``'s)."""
    if isinstance(exc, openai.APIStatusError):
        if dialect is None:
            from stillroom.harvest._dialect_chat import DIALECT as dialect
        status = exc.status_code
        response = exc.response
        headers = response.headers if response is not None else {}
        body = _body_of(exc)
        verdict = dialect.classify(status, body, headers)
        if verdict.kind == "auth":
            return AuthFailure(status, verdict.message)
        if verdict.kind == "stop":
            return StopRun("unsupported_option", verdict.message)
        if verdict.kind == "permanent":
            return PermanentError(verdict.message, status)
        rate_limited = verdict.kind == "rate_limited"
        return TransientError(verdict.message, status, verdict.retry_after, rate_limited)
    if isinstance(exc, openai.APITimeoutError):
        return TransientError("timeout")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return TransientError(f"connection: {type(cause).__name__}: {_short(cause)}")
    return exc


def _body_of(exc: openai.APIStatusError) -> bytes:
    try:
        return exc.response.content
    except Exception:  # a response without its body read: the SDK's message
        return str(exc).encode()


class wait_retry_after_or_jitter(wait_base):
    """The server's retry-after when given, else full-jitter exponential back-off.

    Full jitter: ``uniform(0, min(cap, base * 2 ** (attempt - 1)))``.
    """

    def __init__(self, *, base: float, cap: float, rng: random.Random):
        self.base, self.cap, self.rng = base, cap, rng

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        hint = getattr(exc, "retry_after", None)
        if hint is not None:
            return min(hint, self.cap)
        ceiling = min(self.cap, self.base * 2 ** (retry_state.attempt_number - 1))
        return self.rng.uniform(0.0, ceiling)


def retrying(
    *,
    max_attempts: int,
    max_wait: float,
    sleep: Callable[[float], Awaitable[None]],
    rng: random.Random,
    base: float = 0.5,
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> AsyncRetrying:
    """The retry policy for one request (a fresh object per request: tenacity keeps state)."""
    return AsyncRetrying(
        retry=retry_if_exception(lambda e: isinstance(e, TransientError)),
        stop=stop_after_attempt(max_attempts),
        wait=wait_retry_after_or_jitter(base=base, cap=max_wait, rng=rng),
        sleep=sleep,
        reraise=True,
        before_sleep=before_sleep,
    )
