"""The fake provider's settings and its rate-limit bucket (re-exported by ``testing``)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class Faults:
    """Probabilities (0..1) of each injected fault, drawn per request from a seeded RNG."""

    error_500: float = 0.0
    truncated: float = 0.0
    dropped: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 1.0


@dataclass
class FakeSettings:
    rpm: int | None = None
    tpm: int | None = None
    burst_seconds: float = 60.0
    latency: float = 0.0
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    reasoning: str = "none"  # none | reasoning_content | reasoning | think
    served_model: str | None = "fake-teacher-2026-01"
    api_key: str | None = None
    rate_headers: bool = True
    record_requests: bool = False  # keep every request (method, path, headers, body) in .seen
    # scripted answers: [(substring, reply), ...] or a callable last_user -> reply | None
    replies: Sequence[Sequence[str]] | Callable[[str], str | None] | None = None
    api: str = "chat"  # chat | responses (POST /v1/responses)
    reasoning_model: bool = False  # refuse and answer as an OpenAI reasoning model


class _Bucket:
    def __init__(self, per_minute: int, burst_seconds: float):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.level = self.capacity
        self.limit = per_minute
        self.stamp = time.monotonic()

    def refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def shortfall(self, cost: float) -> float:
        """Seconds until ``cost`` is available (0 = now)."""
        need = min(cost, self.capacity) - self.level
        return need / self.rate if need > 0 else 0.0

    def headers(self, dim: str) -> dict[str, str]:
        reset = (self.capacity - self.level) / self.rate
        return {
            f"x-ratelimit-limit-{dim}": str(self.limit),
            f"x-ratelimit-remaining-{dim}": str(max(0, math.floor(self.level))),
            f"x-ratelimit-reset-{dim}": f"{reset * 1000:.0f}ms" if reset < 1 else f"{reset:.3f}s",
        }
