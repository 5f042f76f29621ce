"""Exact and near-duplicate removal of prompts or answers; every drop names the row it duplicates.

Exact: equal after :func:`stillroom.curate._text.normalise` (case, Unicode form, whitespace). Near: word
n-gram shingles (3 by default), MinHash with ``num_perm`` permutations, LSH candidates checked
against ``near_threshold`` estimated Jaccard. The first occurrence is kept; a later row names the
kept row it duplicates. ``docs/curate.md`` has the measurements behind the default threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stillroom.curate._drop import Drop
from stillroom.curate._minhash import MinHashIndex
from stillroom.curate._text import fingerprint, shingles
from stillroom.curate.errors import ConfigError


@dataclass(frozen=True)
class DedupConfig:
    """``near_threshold=None`` turns near-duplicate detection off (exact only)."""

    near_threshold: float | None = 0.7
    shingle_words: int = 3
    num_perm: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        if self.near_threshold is not None and not 0.0 < self.near_threshold < 1.0:
            raise ConfigError(
                f"near_threshold must be in (0, 1) or None, got {self.near_threshold}"
            )
        if self.shingle_words < 1:
            raise ConfigError(f"shingle_words must be >= 1, got {self.shingle_words}")


def find_duplicates(
    texts: Sequence[str],
    ids: Sequence[str],
    config: DedupConfig | None = None,
    what: str = "prompt",
) -> dict[int, Drop]:
    """``{row index: Drop}`` for every row that duplicates an earlier kept one."""
    config = config or DedupConfig()
    if len(texts) != len(ids):
        raise ConfigError(f"{len(texts)} texts but {len(ids)} ids")
    stage = f"dedup-{what}"
    drops: dict[int, Drop] = {}
    first_seen: dict[str, int] = {}
    for i, text in enumerate(texts):
        key = fingerprint(text)
        if key in first_seen:
            drops[i] = Drop(stage, f"exact duplicate {what}", ids[first_seen[key]], 1.0)
        else:
            first_seen[key] = i
    if config.near_threshold is None:
        return drops
    survivors = [i for i in range(len(texts)) if i not in drops]
    index = MinHashIndex(config.near_threshold, config.num_perm, config.seed)
    n = config.shingle_words
    found = index.near_duplicates([texts[i] for i in survivors], lambda t: shingles(t, n))
    for pos, hit in enumerate(found):
        if hit is not None:
            kept, similarity = hit
            drops[survivors[pos]] = Drop(
                stage,
                f"near-duplicate {what} (estimated Jaccard {similarity:.2f} >= {config.near_threshold})",
                ids[survivors[kept]],
                round(similarity, 4),
            )
    return drops
