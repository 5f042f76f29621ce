"""What each host means by its rate-limit headers: names, and the window each limit covers.

Not every OpenAI-compatible host means the same thing by ``x-ratelimit-limit-requests``:
OpenAI's is per minute, Groq's is requests per *day*, Cerebras names its headers by window
(``x-ratelimit-limit-requests-day``). A :class:`HeaderProfile` says, for requests and for
tokens, which headers carry the limit, the remaining budget and the reset time, and how
many seconds the limit covers; the limiter (``stillroom.harvest._limiter``) refills its estimate of
the provider's bucket at ``limit / window`` a second.

The profile comes from ``--limits-profile`` / ``HarvestConfig.limits_profile``, else the
policy's ``limits.headers_profile``, else the first profile whose hosts match the base
URL's host (``anthropic`` for ``api.anthropic.com``), else :data:`DEFAULT_PROFILE` (``openai``: OpenAI's meanings, which most
OpenAI-compatible servers copy). ``none`` ignores the headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from stillroom.harvest.errors import HarvestConfigError

MINUTE, DAY = 60.0, 86400.0


@dataclass(frozen=True)
class HeaderDim:
    """The headers of one dimension and the window (seconds) its limit covers."""

    limit: str
    remaining: str
    reset: str
    window_s: float


@dataclass(frozen=True)
class HeaderProfile:
    name: str
    hosts: tuple[str, ...]
    requests: HeaderDim | None
    tokens: HeaderDim | None
    source: str  # the page that documents these headers
    # Hosts that limit input and output tokens apart (Anthropic) name them here too; the
    # limiter paces on ``tokens`` (for Anthropic the most restrictive limit in effect).
    input_tokens: HeaderDim | None = None
    output_tokens: HeaderDim | None = None

    def dim(self, which: str) -> HeaderDim | None:
        """``requests``, ``tokens``, ``input_tokens`` or ``output_tokens``."""
        return getattr(self, which)


def _x(dim: str, window_s: float, suffix: str = "") -> HeaderDim:
    return HeaderDim(
        limit=f"x-ratelimit-limit-{dim}{suffix}",
        remaining=f"x-ratelimit-remaining-{dim}{suffix}",
        reset=f"x-ratelimit-reset-{dim}{suffix}",
        window_s=window_s,
    )


def _anthropic(dim: str) -> HeaderDim:
    return HeaderDim(
        limit=f"anthropic-ratelimit-{dim}-limit",
        remaining=f"anthropic-ratelimit-{dim}-remaining",
        reset=f"anthropic-ratelimit-{dim}-reset",  # an RFC 3339 time
        window_s=MINUTE,
    )


PROFILES: dict[str, HeaderProfile] = {
    p.name: p
    for p in (
        # "x-ratelimit-limit-requests | 60 | The maximum number of requests that are
        # permitted before exhausting the rate limit"; reset "1s", "6m0s".
        HeaderProfile(
            "openai",
            ("api.openai.com",),
            _x("requests", MINUTE),
            _x("tokens", MINUTE),
            "https://platform.openai.com/docs/guides/rate-limits",
        ),
        # "x-ratelimit-limit-requests | 14400 | Always refers to Requests Per Day (RPD)";
        # "x-ratelimit-limit-tokens | 18000 | Always refers to Tokens Per Minute (TPM)".
        HeaderProfile(
            "groq",
            ("api.groq.com",),
            _x("requests", DAY),
            _x("tokens", MINUTE),
            "https://console.groq.com/docs/rate-limits",
        ),
        # x-ratelimit-limit-requests-day / x-ratelimit-limit-tokens-minute; resets in
        # seconds ("33011.382867097855").
        HeaderProfile(
            "cerebras",
            ("api.cerebras.ai",),
            _x("requests", DAY, "-day"),
            _x("tokens", MINUTE, "-minute"),
            "https://inference-docs.cerebras.ai/support/rate-limits",
        ),
        # "anthropic-ratelimit-requests-reset | The time when the request rate limit will
        # be fully replenished, provided in RFC 3339 format"; -tokens-* is "the most
        # restrictive limit currently in effect"; input and output tokens have their own.
        HeaderProfile(
            "anthropic",
            ("api.anthropic.com",),
            _anthropic("requests"),
            _anthropic("tokens"),
            "https://docs.claude.com/en/api/rate-limits#response-headers",
            input_tokens=_anthropic("input-tokens"),
            output_tokens=_anthropic("output-tokens"),
        ),
        HeaderProfile("none", (), None, None, "(headers ignored)"),
    )
}
DEFAULT_PROFILE = PROFILES["openai"]


def get_profile(name: str) -> HeaderProfile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise HarvestConfigError(f"unknown limits profile {name!r} (known: {known})") from None


def profile_for(
    base_url: str, chosen: str | None = None, dialect_default: str | None = None
) -> HeaderProfile:
    """``chosen`` (a profile name) when given, else by the URL's host, else the dialect's
    (``Dialect.limits_profile``), else the default."""
    if chosen:
        return get_profile(chosen)
    host = (urlsplit(base_url).hostname or "").lower()
    for profile in PROFILES.values():
        if any(fnmatchcase(host, pattern) for pattern in profile.hosts):
            return profile
    return PROFILES.get(dialect_default or "", DEFAULT_PROFILE)
