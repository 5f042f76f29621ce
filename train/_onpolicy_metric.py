"""The held-out reverse-KL metric of ``train onpolicy`` (``metrics.json``'s
``heldout_reverse_kl``): which held-out prompts it uses, and the estimate with its interval."""

from __future__ import annotations

from typing import Any


def heldout_for_metric(held: list[Any], limit: int | None, seed: int) -> list[Any]:
    """The held-out prompts the KL metric uses: ``limit`` of them (all if None), a fixed
    choice by a seeded hash of each prompt's key (the same for base and student)."""
    from stillroom.train._onpolicy_model import sample_seed

    ranked = sorted(held, key=lambda e: sample_seed(seed, "heldout-metric", e.prompt_key))
    return ranked if limit is None else ranked[:limit]


def reverse_kl_summary(
    prompt_ids: list[str],
    student: list[list[float]],
    teacher: list[list[float | None]],
    seed: int,
) -> dict[str, Any]:
    """Mean over prompts of the mean over each prompt's samples of the per-token mean of
    ``log pi(y_t) - log p_T(y_t)`` (tokens the teacher did not score left out), with a 95%
    bootstrap interval over prompts (2000 resamples, seeded)."""
    import numpy as np

    per_prompt: dict[str, list[float]] = {}
    for pid, ls, lt in zip(prompt_ids, student, teacher, strict=True):
        pairs = [(s, t) for s, t in zip(ls, lt, strict=False) if t is not None]
        if pairs:
            per_prompt.setdefault(pid, []).append(sum(s - t for s, t in pairs) / len(pairs))
    values = [float(np.mean(v)) for v in per_prompt.values()]
    if not values:
        return {"mean": None, "ci95": [None, None], "prompts": 0}
    rng = np.random.default_rng(seed)
    boots = rng.choice(values, size=(2000, len(values)), replace=True).mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"mean": float(np.mean(values)), "ci95": [float(lo), float(hi)], "prompts": len(values)}
