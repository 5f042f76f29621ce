"""Task scores: accuracy with a Wilson interval, and McNemar's paired test between two models.

:func:`task_report` scores several models' answers to the same prompts with one verifier,
so base, student and teacher are judged by the same rule, and compares every pair on the
prompts both answered (exact McNemar: a two-sided binomial test on the discordant pairs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

from stillroom.curate._verdict import Verifier
from stillroom.curate.errors import ConfigError


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a proportion (95% by default); ``(0, 1)`` when n is 0."""
    if n == 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ConfigError(f"wilson_interval: successes {successes} not in [0, {n}]")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (a right and b wrong, and
    the reverse): a binomial test of ``only_a`` in ``only_a + only_b`` at 1/2."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def task_report(
    prompts: Sequence[str],
    answers: Mapping[str, Sequence[str]],
    references: Sequence[Any],
    verifier: Verifier,
    notes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Score each model's answers (one per prompt, aligned with ``prompts`` and
    ``references``)."""
    n = len(references)
    if len(prompts) != n:
        raise ConfigError(f"task_report: {len(prompts)} prompts for {n} references")
    for model, texts in answers.items():
        if len(texts) != n:
            raise ConfigError(f"task_report: {model} has {len(texts)} answers for {n} prompts")
    verdicts = {
        m: [verifier.verify(q, t, r) for q, t, r in zip(prompts, texts, references, strict=True)]
        for m, texts in answers.items()
    }
    models: dict[str, Any] = {}
    for model, vs in verdicts.items():
        right = sum(v.passed for v in vs)
        low, high = wilson_interval(right, n)
        models[model] = {
            "correct": right,
            "n": n,
            "accuracy": right / n if n else None,
            "wilson_95": [low, high],
            "note": (notes or {}).get(model, ""),
        }
    pairs = []
    for a, b in combinations(verdicts, 2):
        only_a = sum(
            x.passed and not y.passed for x, y in zip(verdicts[a], verdicts[b], strict=True)
        )
        only_b = sum(
            y.passed and not x.passed for x, y in zip(verdicts[a], verdicts[b], strict=True)
        )
        pairs.append(
            {
                "a": a,
                "b": b,
                "only_a": only_a,
                "only_b": only_b,
                "mcnemar_p": mcnemar_exact(only_a, only_b),
            }
        )
    return {
        "verifier": f"{verifier.name}@{verifier.version}",
        "models": models,
        "paired": pairs,
        "verdicts": {m: [v.as_dict() for v in vs] for m, vs in verdicts.items()},
    }
