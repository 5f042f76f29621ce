"""Which failures are retried, and how long to wait: composed from tenacity's parts.

- retried: 429, 5xx, 408/409, timeouts, dropped connections, unparseable bodies;
- waited: the server's ``retry-after-ms`` / ``retry-after`` when it sent one (no 60 s cap,
  only ``max_wait``; asking for more than ``max_wait`` stops the run cleanly), otherwise
  exponential back-off with full jitter;
- recorded as failures: 400, 404, 422 and any other 4xx;
- fatal: 401/403 stop the whole run (:class:`~stillroom.harvest.errors.ProviderAuthError`).

``sleep`` and ``rng`` are parameters, so tests assert on the recorded sleeps.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base

from stillroom.harvest._limiter import retry_after_seconds


class TransientError(Exception):
    """A failure worth retrying; ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.status, self.retry_after = reason, status, retry_after


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


def classify(exc: BaseException) -> BaseException:
    """Map an ``openai`` exception to TransientError / PermanentError / AuthFailure."""
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        headers = exc.response.headers if exc.response is not None else {}
        if status in (401, 403):
            return AuthFailure(status, f"the provider refused the credentials (HTTP {status})")
        if status == 429 or status >= 500 or status in (408, 409):
            return TransientError(
                f"HTTP {status}: {_short(exc)}", status, retry_after_seconds(headers)
            )
        return PermanentError(f"HTTP {status}: {_short(exc)}", status)
    if isinstance(exc, openai.APITimeoutError):
        return TransientError("timeout")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return TransientError(f"connection: {type(cause).__name__}: {_short(cause)}")
    return exc


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
