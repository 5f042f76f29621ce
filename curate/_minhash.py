"""MinHash signatures and an LSH index (rensa, the ``curate`` extra), with exact verification.

LSH proposes candidate pairs that share a band; each candidate is then checked by its
estimated Jaccard similarity against the threshold, so the threshold is what decides, and
the banding only decides what is looked at. Bands are chosen for recall (see
:func:`optimal_bands`): a false candidate costs one Jaccard check, a missed one is a duplicate
or a leak kept. With 128 permutations: threshold 0.5 -> 32 bands of 4 rows (a pair at 0.5 is
proposed with p = 0.87, at 0.6 with 0.99); 0.7 -> 32 x 4 (p = 1.00 at 0.7); 0.9 -> 16 x 8.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from stillroom.curate.errors import ConfigError

Tokenize = Callable[[str], list[str]]
CHUNK = 50_000


def _rensa() -> Any:
    try:
        import rensa
    except ImportError as exc:  # pragma: no cover - the extra is in the dev install
        raise ConfigError(
            "near-duplicate detection needs rensa: pip install 'stillroom[curate]'"
        ) from exc
    return rensa


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """The chance that two sets of this Jaccard similarity share at least one LSH band."""
    return 1.0 - (1.0 - similarity**rows) ** bands


@functools.cache
def optimal_bands(threshold: float, num_perm: int, recall_at_threshold: float = 0.85) -> int:
    """The number of LSH bands (a divisor of ``num_perm``) for ``threshold``: the fewest bands
    (the fewest false candidates) for which a pair exactly at the threshold is still proposed
    with probability >= ``recall_at_threshold``; pairs above it are proposed more often."""
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"a MinHash threshold must be in (0, 1), got {threshold}")
    if num_perm < 2:
        raise ConfigError(f"num_perm must be >= 2, got {num_perm}")
    divisors = [b for b in range(1, num_perm + 1) if num_perm % b == 0]
    for bands in divisors:
        if candidate_probability(threshold, bands, num_perm // bands) >= recall_at_threshold:
            return bands
    return num_perm


class MinHashIndex:
    """MinHash over token sets, with ``near_duplicates`` (within one list) and ``matches``
    (of query rows against indexed reference rows), each naming the row matched."""

    def __init__(self, threshold: float, num_perm: int = 128, seed: int = 0) -> None:
        self.threshold = threshold
        self.num_perm = num_perm
        self.seed = seed
        self.bands = optimal_bands(threshold, num_perm)

    def _lsh(self) -> Any:
        return _rensa().RMinHashLSH(self.threshold, self.num_perm, self.bands)

    def _hashes(self, token_sets: Sequence[list[str]]) -> list[Any]:
        return _rensa().RMinHash.from_token_sets(token_sets, self.num_perm, self.seed)

    def _matrix(self, token_sets: Sequence[list[str]]) -> Any:
        return _rensa().RMinHash.digest_matrix_from_token_sets(token_sets, self.num_perm, self.seed)

    def near_duplicates(
        self, texts: Sequence[str], tokenize: Tokenize, chunk: int = CHUNK
    ) -> list[tuple[int, float] | None]:
        """For each text, ``(earlier kept row, similarity)`` if it near-duplicates one, else None.

        Rows are taken in order; a row is compared only with earlier rows that were kept, so
        the row named is always one that stays. Texts with no tokens never match. Rows are
        sketched ``chunk`` at a time, so memory holds the LSH index, not every token set.
        """
        lsh = self._lsh()
        flagged: list[int] = []
        for start in range(0, len(texts), chunk):
            sets = [tokenize(t) for t in texts[start : start + chunk]]
            flags = lsh.insert_matrix_and_query_duplicate_flags(self._matrix(sets), start)
            flagged += [start + j for j, flag in enumerate(flags) if flag and sets[j]]
        sketch = _Sketches(self, texts, tokenize)
        result: list[tuple[int, float] | None] = [None] * len(texts)
        for i in flagged:
            mine = sketch[i]
            for k in sorted(lsh.query(mine)):
                if k >= i:
                    break
                if result[k] is None and sketch.has_tokens(k):
                    similarity = mine.jaccard(sketch[k])
                    if similarity >= self.threshold:
                        result[i] = (k, similarity)
                        break
        return result

    def matches(
        self,
        references: Sequence[str],
        queries: Sequence[str],
        tokenize: Tokenize,
        chunk: int = CHUNK,
    ) -> list[tuple[int, float] | None]:
        """For each query text, ``(most similar reference, similarity)`` at or above the
        threshold, else None."""
        lsh = self._lsh()
        ref_sets = [tokenize(t) for t in references]
        lsh.insert_matrix(self._matrix(ref_sets))
        offset = len(references)
        ref_sketch = dict(enumerate(self._hashes(ref_sets)))
        result: list[tuple[int, float] | None] = [None] * len(queries)
        for start in range(0, len(queries), chunk):
            sets = [tokenize(t) for t in queries[start : start + chunk]]
            # Query rows go in with keys past the references; a flag means a shared band with a
            # reference or another query, and only reference candidates are then checked.
            flags = lsh.insert_matrix_and_query_duplicate_flags(self._matrix(sets), offset + start)
            flagged = [j for j, flag in enumerate(flags) if flag and sets[j]]
            for j, mine in zip(flagged, self._hashes([sets[j] for j in flagged]), strict=True):
                scored = [
                    (mine.jaccard(ref_sketch[k]), k)
                    for k in lsh.query(mine)
                    if k < offset and ref_sets[k]
                ]
                best = max(scored, default=None)
                if best is not None and best[0] >= self.threshold:
                    result[start + j] = (best[1], best[0])
        return result


class _Sketches:
    """MinHash objects of rows, computed from their text on first use and kept."""

    def __init__(self, index: MinHashIndex, texts: Sequence[str], tokenize: Tokenize) -> None:
        self.index, self.texts, self.tokenize = index, texts, tokenize
        self.cache: dict[int, Any] = {}
        self.empty: set[int] = set()

    def __getitem__(self, i: int) -> Any:
        if i not in self.cache:
            tokens = self.tokenize(self.texts[i])
            if not tokens:
                self.empty.add(i)
            self.cache[i] = self.index._hashes([tokens])[0]
        return self.cache[i]

    def has_tokens(self, i: int) -> bool:
        self[i]
        return i not in self.empty
