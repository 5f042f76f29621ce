"""Two disjoint halves of the dataset pools: one the simulator samples, one a provider indexes.

A provider can index public instruction and benchmark sets and ask how close an account's
prompts come to them.  If the simulator drew its dataset questions from the very prompts the
index holds, provenance would work by exact membership, which real extraction (reworded,
from other releases of a set, from sets nobody indexed) does not allow.  So the dataset pools
(``capabilities`` and ``eval_questions``) are split by a hash of each prompt: the current
simulator samples one half, :func:`public_index_prompts` returns the other.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from stillroom.detect.simulator._text import PromptBank

SAMPLED, INDEXED = "sampled", "indexed"


def split_of(text: str) -> str:
    """``"sampled"`` or ``"indexed"``: a stable half of every pool, by a hash of the text."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=1).digest()[0]
    return SAMPLED if digest % 2 == 0 else INDEXED


def _half(pool: list[str], which: str) -> list[str]:
    return [t for t in pool if split_of(t) == which]


def split_bank(bank: PromptBank, which: str = SAMPLED) -> PromptBank:
    """``bank`` with its dataset pools cut to one half (chat and app templates are kept)."""
    return replace(
        bank,
        eval_questions=_half(bank.eval_questions, which),
        capabilities={k: _half(v, which) for k, v in bank.capabilities.items()},
    )


def public_index_prompts(corpora: Path | str | None = None) -> list[str]:
    """The prompts a provider's public-sets index holds: the half the simulator never samples.

    ``corpora`` is the directory of real corpora the simulation used (``None``: the built-in
    pools).  Benchmark and instruction prompts only; deduplicated, in a stable order.
    """
    bank = PromptBank.from_corpora(Path(corpora)) if corpora else PromptBank.builtin()
    indexed = split_bank(bank, INDEXED)
    pools = [
        indexed.eval_questions,
        *(indexed.capabilities[k] for k in sorted(indexed.capabilities)),
    ]
    return list(dict.fromkeys(t for pool in pools for t in pool))
