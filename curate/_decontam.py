"""Decontamination: drop training rows that leak benchmark items, naming the item each matched.

Two methods, each on by default:

- **n-gram overlap** (13 words, as in the GPT-3 and Llama 2 reports): a row that shares any
  word 13-gram with a benchmark item is a verbatim leak. An item shorter than 13 words is
  matched as a whole (its full word sequence inside the row).
- **MinHash near-duplicate** of the row against each item (word 3-gram shingles, estimated
  Jaccard >= ``near_threshold``), for items that were reworded a little.

Neither catches a real paraphrase that shares few word sequences; ``docs/curate.md`` reports
what each catches on the paraphrase test.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stillroom.curate._drop import Drop
from stillroom.curate._minhash import MinHashIndex
from stillroom.curate._text import ngrams, shingles, words
from stillroom.curate.errors import ConfigError, InputFormatError

TEXT_FIELDS = ("text", "prompt", "question", "problem", "input", "instruction")


@dataclass(frozen=True)
class BenchmarkItem:
    """One benchmark test item: ``id`` is ``file:id-field`` or ``file:line``."""

    id: str
    text: str


def load_benchmark(path: str | Path, text_field: str | None = None) -> list[BenchmarkItem]:
    """Items from a JSONL (optionally .gz) file, or a .txt file of one item a line."""
    path = Path(path)
    if not path.exists():
        raise InputFormatError(f"{path}: benchmark file not found")
    opener = gzip.open if path.suffix == ".gz" else open
    items = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            if ".jsonl" not in path.name and ".json" not in path.name:
                items.append(BenchmarkItem(f"{path.name}:{lineno}", line.strip()))
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputFormatError(f"{path}:{lineno}: not JSON ({exc.msg})") from exc
            fields = [text_field] if text_field else [f for f in TEXT_FIELDS if f in obj]
            if not isinstance(obj, dict) or not fields or not isinstance(obj.get(fields[0]), str):
                want = text_field or " or ".join(TEXT_FIELDS)
                raise InputFormatError(f"{path}:{lineno}: no text field ({want})")
            item_id = obj.get("id", lineno)
            items.append(BenchmarkItem(f"{path.name}:{item_id}", obj[fields[0]]))
    return items


@dataclass(frozen=True)
class DecontamConfig:
    """``ngram=0`` or ``near_threshold=None`` turns that method off; ``embed_threshold``
    (cosine, e.g. 0.8) turns on the embedding method for paraphrases (``stillroom.curate._embed``)."""

    ngram: int = 13
    near_threshold: float | None = 0.5
    embed_threshold: float | None = None
    shingle_words: int = 3
    num_perm: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        if self.ngram < 0:
            raise ConfigError(f"ngram must be >= 0, got {self.ngram}")
        if self.ngram == 0 and self.near_threshold is None:
            raise ConfigError("both decontamination methods are off (ngram=0, near_threshold=None)")
        if self.near_threshold is not None and not 0.0 < self.near_threshold < 1.0:
            raise ConfigError(
                f"near_threshold must be in (0, 1) or None, got {self.near_threshold}"
            )


class Decontaminator:
    """Built once over the benchmark items; :meth:`check` then scans any number of rows."""

    def __init__(
        self, items: Sequence[BenchmarkItem], config: DecontamConfig | None = None
    ) -> None:
        if not items:
            raise ConfigError("no benchmark items to decontaminate against")
        self.items = list(items)
        self.config = config or DecontamConfig()
        n = self.config.ngram
        self._grams: dict[str, int] = {}
        self._short: list[tuple[str, int]] = []  # items under n words: matched whole
        for idx, item in enumerate(self.items):
            tokens = words(item.text)
            if n and len(tokens) < n:
                if tokens:
                    self._short.append((" " + " ".join(tokens) + " ", idx))
                continue
            for gram in ngrams(tokens, n) if n else []:
                self._grams.setdefault(gram, idx)

    def _ngram_hit(self, tokens: list[str]) -> int | None:
        n, grams = self.config.ngram, self._grams
        for i in range(len(tokens) - n + 1):
            idx = grams.get(" ".join(tokens[i : i + n]))
            if idx is not None:
                return idx
        if self._short:
            joined = " " + " ".join(tokens) + " "
            for needle, idx in self._short:
                if needle in joined:
                    return idx
        return None

    def check(self, texts: Sequence[str]) -> list[Drop | None]:
        """For each text, the :class:`Drop` naming the item it leaks, or None when clean."""
        result: list[Drop | None] = [None] * len(texts)
        cfg = self.config
        if cfg.ngram:
            for i, text in enumerate(texts):
                idx = self._ngram_hit(words(text))
                if idx is not None:
                    result[i] = Drop(
                        "decontam-ngram",
                        f"shares a {cfg.ngram}-gram with a benchmark item",
                        self.items[idx].id,
                    )
        if cfg.near_threshold is not None:
            rest = [i for i, drop in enumerate(result) if drop is None]
            index = MinHashIndex(cfg.near_threshold, cfg.num_perm, cfg.seed)
            n = cfg.shingle_words
            hits = index.matches(
                [item.text for item in self.items],
                [texts[i] for i in rest],
                lambda t: shingles(t, n),
            )
            for pos, hit in enumerate(hits):
                if hit is not None:
                    idx, similarity = hit
                    result[rest[pos]] = Drop(
                        "decontam-minhash",
                        f"near-duplicate of a benchmark item (estimated Jaccard {similarity:.2f} >= {cfg.near_threshold})",
                        self.items[idx].id,
                        round(similarity, 4),
                    )
        if cfg.embed_threshold is not None:
            from stillroom.curate._embed import EmbeddingMatcher

            rest = [i for i, drop in enumerate(result) if drop is None]
            found = EmbeddingMatcher(self.items, cfg.embed_threshold).check(
                [texts[i] for i in rest]
            )
            for pos, drop in enumerate(found):
                result[rest[pos]] = drop
        return result
