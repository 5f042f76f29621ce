"""Client-side rate limiting: request and token buckets that pace from the provider's headers.

Two kinds of bucket apply to every request, and a request waits for all of them:

- **own** buckets from limits the user (or the policy) gave: ``rpm``/``tpm`` refilled
  smoothly, holding at most ``burst_seconds`` of budget;
- **mirror** buckets, an estimate of the provider's own buckets, learned from
  ``x-ratelimit-limit-*`` and re-synchronised on *every* answer from
  ``x-ratelimit-remaining-*`` and ``x-ratelimit-reset-*``: the level becomes what the
  provider said remained, minus what we sent after that request left. A run therefore
  settles just under the provider's real limit instead of bouncing off 429s. Which
  headers to read and the window each limit covers (a minute for OpenAI, a day for
  Groq's request limit) come from a :class:`~stillroom.harvest._header_profiles.HeaderProfile`.

A 429 pauses every request (not only the one that got it) until its ``retry-after`` or a
short back-off, empties the mirror buckets and lowers their rate by 10%, recovering slowly.
Time is a parameter: ``clock`` (seconds, monotonic) and ``sleep`` (an async callable).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from stillroom.harvest._header_profiles import DEFAULT_PROFILE, HeaderProfile

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def parse_duration(value: str | None) -> float | None:
    """Seconds in a reset header: ``"1s"``, ``"6m0s"``, ``"20ms"``, ``"1h2m3.5s"``, ``"0.5"``
    or an RFC 3339 time (``"2025-08-21T12:40:59Z"``, Anthropic's: seconds until then)."""
    if value is None:
        return None
    value = value.strip()
    if _RFC3339.match(value):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - time.time())
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value.replace(" ", ""):
            return None
        return sum(float(n) * _UNIT[u] for n, u in parts)
    if seconds > 1e9:  # an epoch timestamp
        return max(0.0, seconds - time.time())
    return max(0.0, seconds)


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


class Bucket:
    """A token bucket: refills ``rate`` units a second up to ``capacity``.

    A cost above the capacity is allowed once the bucket is full (the level goes
    negative), so a single large request never waits forever.
    """

    __slots__ = ("capacity", "level", "rate", "stamp")

    def __init__(self, rate: float, capacity: float, now: float, level: float | None = None):
        self.rate = rate
        self.capacity = max(capacity, 1.0)
        self.level = self.capacity if level is None else level
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self, cost: float, now: float) -> float:
        """Seconds until ``cost`` can be taken (0 when it can be now)."""
        self.refill(now)
        need = min(cost, self.capacity) - self.level
        if need <= 1e-9:
            return 0.0
        return need / self.rate if self.rate > 0 else 1.0

    def take(self, cost: float) -> None:
        self.level -= cost


@dataclass
class Observation:
    """What one answer's headers said about one dimension (requests or tokens)."""

    limit: int | None
    remaining: int | None
    reset: float | None
    window_s: float = 60.0  # the limit is per this many seconds


def read_headers(
    headers: Mapping[str, str], dim: str, profile: HeaderProfile = DEFAULT_PROFILE
) -> Observation:
    """One dimension (``requests`` or ``tokens``) as ``profile`` names and means it."""
    names = profile.dim(dim)
    if names is None:
        return Observation(None, None, None)
    return Observation(
        limit=_int(headers.get(names.limit)),
        remaining=_int(headers.get(names.remaining)),
        reset=parse_duration(headers.get(names.reset)),
        window_s=names.window_s,
    )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``retry-after-ms`` (preferred) or ``retry-after`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def read_limits(
    headers: Mapping[str, str], profile: HeaderProfile
) -> tuple[Observation, Observation]:
    """Requests and tokens as ``profile`` names and means them (a dialect's default)."""
    return read_headers(headers, "requests", profile), read_headers(headers, "tokens", profile)


class _Mirror:
    """Our estimate of one provider bucket (requests or tokens)."""

    __slots__ = ("bucket", "last_seq", "limit", "window_s")

    def __init__(self) -> None:
        self.bucket: Bucket | None = None
        self.limit: int | None = None
        self.window_s = 60.0
        self.last_seq = -1.0

    def observe(self, obs: Observation, sent_after: float, seq: float, factor: float, now: float):
        if obs.limit is not None and obs.limit > 0:
            self.limit, self.window_s = obs.limit, obs.window_s
        if self.limit is None:
            return
        per_second = self.limit / self.window_s
        rate = per_second * factor
        capacity = float(self.limit)
        if obs.remaining is not None and obs.reset is not None:
            # remaining + what refills until "reset" is the provider's bucket size.
            capacity = min(capacity, max(1.0, obs.remaining + obs.reset * per_second))
        if self.bucket is None:
            self.bucket = Bucket(rate, capacity, now, level=0.0)
        self.bucket.refill(now)
        self.bucket.rate, self.bucket.capacity = rate, max(capacity, 1.0)
        if obs.remaining is not None and seq > self.last_seq:
            self.last_seq = seq
            self.bucket.level = min(self.bucket.capacity, obs.remaining - sent_after)


class RateLimiter:
    """Paces requests under the user's limits and the provider's observed ones.

    ``acquire(cost)`` waits until one request costing ``cost`` tokens may go and returns a
    ticket; hand the ticket back with the answer's headers to :meth:`observe`, or to
    :meth:`rate_limited` on a 429.
    """

    def __init__(
        self,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        burst_seconds: float = 1.0,
        learn: bool = True,
        profile: HeaderProfile = DEFAULT_PROFILE,
        read: Callable[[Mapping[str, str], HeaderProfile], tuple[Observation, Observation]]
        | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.clock, self.sleep, self.profile = clock, sleep, profile
        self.read = read or read_limits  # a dialect's ``limits``: (requests, tokens)
        self.learn = learn and (profile.requests is not None or profile.tokens is not None)
        now = clock()
        self.own_requests = Bucket(rpm / 60, rpm / 60 * burst_seconds, now) if rpm else None
        self.own_tokens = Bucket(tpm / 60, tpm / 60 * burst_seconds, now) if tpm else None
        self.mirror_requests = _Mirror()
        self.mirror_tokens = _Mirror()
        self.paused_until = 0.0
        self.factor = 1.0
        self.sent = 0
        self.tokens_sent = 0.0
        self.rate_limited_count = 0
        self._lock = asyncio.Lock()
        # Slow start: until the first answer (and its headers) is back, one request at a time.
        self._probed = asyncio.Event()
        if not learn:
            self._probed.set()

    def _buckets(self, cost: float) -> list[tuple[Bucket, float]]:
        pairs = []
        if self.own_requests is not None:
            pairs.append((self.own_requests, 1.0))
        if self.own_tokens is not None:
            pairs.append((self.own_tokens, cost))
        if self.mirror_requests.bucket is not None:
            pairs.append((self.mirror_requests.bucket, 1.0))
        if self.mirror_tokens.bucket is not None:
            pairs.append((self.mirror_tokens.bucket, cost))
        return pairs

    def wait_time(self, cost: float) -> float:
        now = self.clock()
        waits = [bucket.wait_time(c, now) for bucket, c in self._buckets(cost)]
        return max([self.paused_until - now, 0.0, *waits])

    async def acquire(self, cost: float) -> tuple[int, float]:
        """Wait for room for one request of ``cost`` tokens; returns the ticket."""
        if self.sent and not self._probed.is_set():
            await self._probed.wait()
        if not self._lock.locked() and self.wait_time(cost) <= 0:
            return self._take(cost)
        async with self._lock:  # one waiter at a time: FIFO, no thundering herd
            while (wait := self.wait_time(cost)) > 0:
                await self.sleep(wait)
            return self._take(cost)

    def _take(self, cost: float) -> tuple[int, float]:
        for bucket, c in self._buckets(cost):
            bucket.take(c)
        self.sent += 1
        self.tokens_sent += cost
        return self.sent, self.tokens_sent

    def observe(self, ticket: tuple[int, float], headers: Mapping[str, str]) -> None:
        """Learn limits and re-synchronise the mirror buckets from one answer's headers.

        Call it for every answer, errors included (with empty headers when there were none).
        """
        self._probed.set()
        if not self.learn:
            return
        now = self.clock()
        seq, tok_seq = ticket
        profile = self.profile
        req, tok = self.read(headers, profile)
        if req.limit is not None or self.mirror_requests.limit is not None:
            self.mirror_requests.observe(req, self.sent - seq, seq, self.factor, now)
        if tok.limit is not None or self.mirror_tokens.limit is not None:
            self.mirror_tokens.observe(tok, self.tokens_sent - tok_seq, tok_seq, self.factor, now)
        if self.factor < 1.0:
            self.factor = min(1.0, self.factor + 0.002)

    def correct_tokens(self, reserved: float, used: int) -> None:
        """Give back to the user's token bucket what an answer did not use."""
        if self.own_tokens is not None and reserved > used:
            self.own_tokens.level = min(
                self.own_tokens.capacity, self.own_tokens.level + reserved - used
            )

    def rate_limited(self, retry_after: float | None) -> float:
        """A 429: pause everyone; returns the pause in seconds."""
        now = self.clock()
        self.rate_limited_count += 1
        self.factor = max(0.5, self.factor * 0.9)
        rate = self.mirror_requests.bucket.rate if self.mirror_requests.bucket else 0.0
        pause = retry_after if retry_after is not None else (1.0 / rate if rate > 0 else 1.0)
        self.paused_until = max(self.paused_until, now + pause)
        for mirror in (self.mirror_requests, self.mirror_tokens):
            if mirror.bucket is not None:
                mirror.bucket.refill(now)
                mirror.bucket.level = min(mirror.bucket.level, 0.0)
        return pause

    @property
    def learned(self) -> dict[str, int | str | None]:
        """The learned limits in the provider's own units: ``rpm``/``tpm``, or ``rpd``/``tpd``
        for a limit the profile says is per day."""
        out: dict[str, int | str | None] = {"profile": self.profile.name, "rpm": None, "tpm": None}
        for dim, mirror in (("r", self.mirror_requests), ("t", self.mirror_tokens)):
            unit = "d" if mirror.window_s == 86400.0 else "m"
            if mirror.limit is not None or unit == "m":
                out[f"{dim}p{unit}"] = mirror.limit
        return out
