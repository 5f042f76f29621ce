"""harvest's default HTTP client: the SDK's aiohttp client plus one lean call.

:class:`LeanAioHttpClient` *is* ``openai.DefaultAioHttpClient`` (an ``httpx2.AsyncClient``
on aiohttp), so the SDK can use it for anything. It adds :meth:`post_bytes`, which sends
one prepared POST on aiohttp directly and returns a small :class:`Reply`. Building and
reading ``httpx2.Request``/``Response`` objects around aiohttp's own costs about as much
CPU as aiohttp itself; harvest repeats one request shape thousands of times a second, so
:class:`~stillroom.harvest._sender.WireSender` uses this call when the client is one of these.

A client a user injects (``run_harvest(cfg, http_client=...)``) is never bypassed.

:func:`openai_client` builds a run's SDK client (sync and batch paths) on one of these,
or on the client a user injects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment

import aiohttp
import openai
from multidict import CIMultiDictProxy

from stillroom.harvest._config import HarvestConfig

_UNSET: Any = object()


@dataclass(slots=True)
class Reply:
    """What harvest reads of an answer: status, headers (case-insensitive) and body."""

    status_code: int
    headers: CIMultiDictProxy[str]
    content: bytes
    raw_headers: tuple[tuple[bytes, bytes], ...]


class LeanAioHttpClient(openai.DefaultAioHttpClient):
    """``openai.DefaultAioHttpClient`` with :meth:`post_bytes` for the repeated request."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._lean_session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str | None] = {}
        # (named so as not to shadow an attribute of the SDK's class, which has its own)

    async def post_bytes(
        self, url: str, headers: dict[str, str], content: bytes, timeout: aiohttp.ClientTimeout
    ) -> Reply:
        """POST ``content``; aiohttp's exceptions propagate (the caller maps them).

        The proxy comes from the environment (``HTTPS_PROXY``, ``NO_PROXY``...), as httpx
        reads it, looked up once per URL: aiohttp's ``trust_env`` would look it up in a
        thread for every request.
        """
        session = self._lean_session or self._open_session()
        proxy = self._proxies.get(url, _UNSET)
        if proxy is _UNSET:
            proxy = self._proxies[url] = env_proxy_for(url)
        async with session.post(
            url, data=content, headers=headers, timeout=timeout, proxy=proxy
        ) as resp:
            body = await resp.read()
            return Reply(resp.status, resp.headers, body, resp.raw_headers)

    def _open_session(self) -> aiohttp.ClientSession:
        import httpx2

        limits = openai.DEFAULT_CONNECTION_LIMITS
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0,
            keepalive_timeout=limits.keepalive_expiry,
            ssl=httpx2.create_ssl_context(trust_env=True),  # the CA bundle httpx2 uses
        )
        self._lean_session = aiohttp.ClientSession(connector=connector)
        return self._lean_session

    async def aclose(self) -> None:
        if self._lean_session is not None:
            await self._lean_session.close()
            self._lean_session = None
        await super().aclose()


def env_proxy_for(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``None``: connect directly)."""
    scheme, host = urlsplit(url).scheme, urlsplit(url).hostname or ""
    if proxy_bypass_environment(host):
        return None
    return getproxies_environment().get(scheme)


def timeout_of(extensions: dict[str, Any]) -> aiohttp.ClientTimeout:
    """An httpx ``timeout`` request extension as aiohttp's (as the SDK's transport maps it)."""
    timeout = extensions.get("timeout") or {}
    return aiohttp.ClientTimeout(
        sock_connect=timeout.get("connect"),
        sock_read=timeout.get("read"),
        connect=timeout.get("pool"),
    )


_NO_KEY = "sk-no-key-set"


def uses_bearer(auth: dict[str, str], key: str) -> bool:
    """Whether a dialect's auth headers are the SDK's own ``Authorization: Bearer``."""
    return auth == {"Authorization": f"Bearer {key}"}


def openai_client(cfg: HarvestConfig, http_client: Any = None) -> openai.AsyncOpenAI:
    """A run's SDK client: the key from ``cfg.api_key_env`` (never stored), no SDK retries
    (harvest retries), on ``http_client`` or else harvest's :class:`LeanAioHttpClient`.

    A dialect that does not authenticate with a bearer token has its auth headers set
    here; the sender then drops the SDK's ``Authorization`` (:func:`uses_bearer`)."""
    from stillroom.harvest._dialect import dialect_for

    key = os.environ.get(cfg.api_key_env) or _NO_KEY
    auth = dialect_for(cfg.api).auth_headers(key)
    return openai.AsyncOpenAI(
        api_key=key,
        default_headers=None if uses_bearer(auth, key) else auth,
        base_url=cfg.base_url,
        max_retries=0,
        timeout=cfg.request_timeout,
        http_client=http_client if http_client is not None else LeanAioHttpClient(),
    )
