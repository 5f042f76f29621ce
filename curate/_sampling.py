"""Rejection sampling over N samples per prompt, as pure functions over (prompt key, passed).

Per prompt it records the pass rate and unbiased pass@k (Chen et al., 2021, the Codex
paper's estimator ``1 - C(n-c, k) / C(n, k)``); it keeps one or all verified samples, and can
drop prompts where every sample failed (no verified answer to learn from) or every sample
passed (too easy to teach anything, as s1 and OpenThoughts filter).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from math import comb

from stillroom.curate._drop import Drop
from stillroom.curate.errors import ConfigError


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c correct) is correct."""
    if not 0 <= c <= n or k < 1:
        raise ConfigError(f"pass@k needs 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if k > n:
        raise ConfigError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


@dataclass(frozen=True)
class PromptStats:
    """One prompt's samples: how many, how many passed, pass rate and pass@k."""

    prompt_key: str
    samples: int
    passed: int
    pass_rate: float
    pass_at: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SamplingConfig:
    """``keep`` is ``"one"`` (the first verified sample) or ``"all"`` verified samples."""

    keep: str = "all"
    drop_all_fail: bool = True
    drop_all_pass: bool = False
    ks: tuple[int, ...] = (1, 4, 8)

    def __post_init__(self) -> None:
        if self.keep not in ("one", "all"):
            raise ConfigError(f"keep must be 'one' or 'all', got {self.keep!r}")


def select_samples(
    prompt_keys: Sequence[str],
    passed: Sequence[bool],
    config: SamplingConfig | None = None,
    row_ids: Sequence[str] | None = None,
) -> tuple[dict[int, Drop], dict[str, PromptStats]]:
    """``(drops by row index, stats by prompt key)``; rows not in drops are kept.

    Failed samples are dropped with stage ``verify`` (the caller may put the verdict's own
    reason there); verified samples not kept, and prompts filtered whole, with ``sampling``.
    ``row_ids`` name the kept sample a dropped one defers to (row indices when not given).
    """
    config = config or SamplingConfig()
    ids = list(row_ids) if row_ids is not None else [str(i) for i in range(len(prompt_keys))]
    if len(prompt_keys) != len(passed):
        raise ConfigError(f"{len(prompt_keys)} prompt keys but {len(passed)} verdicts")
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(prompt_keys):
        groups.setdefault(key, []).append(i)
    drops: dict[int, Drop] = {}
    stats: dict[str, PromptStats] = {}
    for key, rows in groups.items():
        n, c = len(rows), sum(bool(passed[i]) for i in rows)
        ks = {k: pass_at_k(n, c, k) for k in config.ks if k <= n}
        stats[key] = PromptStats(key, n, c, c / n, ks)
        if c == n and config.drop_all_pass:
            for i in rows:
                drops[i] = Drop("sampling", f"every sample passed ({c}/{n}): prompt too easy")
            continue
        if c == 0 and config.drop_all_fail:
            for i in rows:
                drops[i] = Drop("sampling", f"every sample failed (0/{n})")
            continue
        good = [i for i in rows if passed[i]]
        for i in rows:
            if not passed[i]:
                drops[i] = Drop("verify", "failed verification")
        if config.keep == "one":
            for i in good[1:]:
                drops[i] = Drop(
                    "sampling", "another verified sample of this prompt was kept", ids[good[0]]
                )
    return drops, stats
