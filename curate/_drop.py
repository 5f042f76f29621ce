"""Why a row was dropped: the stage, the reason in words, and the row or benchmark item matched."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

STAGES = (
    "verify",
    "sampling",
    "dedup-prompt",
    "dedup-answer",
    "decontam-ngram",
    "decontam-minhash",
)


@dataclass(frozen=True)
class Drop:
    """One dropped row. ``matched`` names what it matched: the id of the row it duplicates,
    or the benchmark item (``file:id``) it leaks; ``score`` is the similarity where one applies."""

    stage: str
    reason: str
    matched: str | None = None
    score: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
