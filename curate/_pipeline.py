"""Curation as one pass over rows: decontaminate prompts, dedup prompts, verify answers,
select samples per prompt, dedup answers. Every row comes out with a keep or drop decision.

A row here is a :class:`CurationRow` (its id, prompt key, prompt text, answer text and
reference); where rows come from (a JSONL file today, the harvest store through the
harvest-to-train contract next) is the caller's business.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from stillroom.curate._decontam import BenchmarkItem, DecontamConfig, Decontaminator
from stillroom.curate._dedup import DedupConfig, find_duplicates
from stillroom.curate._drop import Drop
from stillroom.curate._registry import get_verifier
from stillroom.curate._sampling import PromptStats, SamplingConfig, select_samples
from stillroom.curate._verdict import Verdict
from stillroom.curate.errors import ConfigError


@dataclass(frozen=True)
class CurationRow:
    """One answer to curate. ``prompt_key`` groups the samples of one prompt."""

    row_id: str
    prompt_key: str
    prompt: str
    answer: str
    reference: Any = None


@dataclass(frozen=True)
class CurateConfig:
    """What curation does. ``verifier=None`` skips verification (dedup/decontam only)."""

    verifier: str | None = "math"
    verifier_options: dict[str, Any] = field(default_factory=dict)
    prompt_dedup: DedupConfig | None = field(default_factory=DedupConfig)
    # 0.7, as for prompts: bench/curate_answer_dedup.py (docs/curate.md, "Defaults")
    answer_dedup: DedupConfig | None = field(default_factory=DedupConfig)
    # "prompt": duplicate answers among one prompt's samples; "global": across every prompt
    # (templated answers), which a short-answer task must not use ("12" answers many prompts).
    answer_dedup_scope: str = "prompt"
    decontam: DecontamConfig = field(default_factory=DecontamConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    def __post_init__(self) -> None:
        if self.answer_dedup_scope not in ("prompt", "global"):
            raise ConfigError(
                f"answer_dedup_scope must be 'prompt' or 'global', got {self.answer_dedup_scope!r}"
            )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """The keep or drop of one row, with the verdict when it was verified."""

    row_id: str
    keep: bool
    drop: Drop | None = None
    verdict: Verdict | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "row_id": self.row_id,
            "keep": self.keep,
            **(self.drop.as_dict() if self.drop else {"stage": None, "reason": "kept"}),
            "verdict": self.verdict.as_dict() if self.verdict else None,
        }


@dataclass
class CurationResult:
    decisions: list[Decision]
    prompt_stats: dict[str, PromptStats]

    def summary(self) -> dict[str, Any]:
        """Counts per reason and stage, for the dataset card."""
        reasons = Counter(d.drop.stage if d.drop else "kept" for d in self.decisions)
        verified = [d.verdict for d in self.decisions if d.verdict is not None]
        return {
            "rows": len(self.decisions),
            "kept": sum(d.keep for d in self.decisions),
            "by_stage": dict(sorted(reasons.items())),
            "verifiers": sorted({f"{v.verifier}@{v.version}" for v in verified}),
            "verified": len(verified),
            "verified_passed": sum(v.passed for v in verified),
            "prompts": len(self.prompt_stats),
        }


VerdictCache = Callable[[CurationRow], Verdict | None]


def curate_rows(
    rows: Sequence[CurationRow],
    config: CurateConfig | None = None,
    benchmarks: Sequence[BenchmarkItem] = (),
    cached_verdict: VerdictCache | None = None,
    on_verdict: Callable[[CurationRow, Verdict], None] | None = None,
) -> CurationResult:
    """Curate ``rows``. ``cached_verdict`` returns a stored verdict (so a resumed run does not
    verify again) and ``on_verdict`` stores a new one as soon as it is made."""
    config = config or CurateConfig()
    drops: dict[int, Drop] = {}
    _drop_leaks(rows, benchmarks, config.decontam, drops)
    _drop_duplicate_prompts(rows, config.prompt_dedup, drops)
    verdicts = _verify(rows, config, drops, cached_verdict, on_verdict)
    live = [i for i in range(len(rows)) if i not in drops]
    chosen, stats = select_samples(
        [rows[i].prompt_key for i in live],
        [verdicts[i].passed if i in verdicts else True for i in live],
        config.sampling,
        [rows[i].row_id for i in live],
    )
    for pos, drop in chosen.items():
        i = live[pos]
        verdict = verdicts.get(i)
        if drop.stage == "verify" and verdict is not None:
            drop = Drop("verify", verdict.reason or "failed verification", None, None)
        drops[i] = drop
    if config.answer_dedup is not None:
        _drop_duplicate_answers(rows, config, drops)
    decisions = [
        Decision(row.row_id, i not in drops, drops.get(i), verdicts.get(i))
        for i, row in enumerate(rows)
    ]
    return CurationResult(decisions, stats)


def _drop_leaks(rows, benchmarks, config, drops) -> None:
    if not benchmarks:
        return
    keys = list(dict.fromkeys(row.prompt_key for row in rows))
    text = {row.prompt_key: row.prompt for row in rows}
    hits = dict(
        zip(keys, Decontaminator(benchmarks, config).check([text[k] for k in keys]), strict=True)
    )
    for i, row in enumerate(rows):
        if hits[row.prompt_key] is not None:
            drops[i] = hits[row.prompt_key]


def _drop_duplicate_prompts(rows, config, drops) -> None:
    if config is None:
        return
    keys = list(dict.fromkeys(row.prompt_key for i, row in enumerate(rows) if i not in drops))
    text = {row.prompt_key: row.prompt for row in rows}
    found = find_duplicates([text[k] for k in keys], keys, config, "prompt")
    dropped = {keys[pos]: drop for pos, drop in found.items()}
    for i, row in enumerate(rows):
        if i not in drops and row.prompt_key in dropped:
            drops[i] = dropped[row.prompt_key]


def _drop_duplicate_answers(rows, config, drops) -> None:
    groups: dict[str, list[int]] = {}
    for i in range(len(rows)):
        if i not in drops:
            groups.setdefault(
                "" if config.answer_dedup_scope == "global" else rows[i].prompt_key, []
            ).append(i)
    for live in groups.values():
        if len(live) < 2:
            continue
        found = find_duplicates(
            [rows[i].answer for i in live],
            [rows[i].row_id for i in live],
            config.answer_dedup,
            "answer",
        )
        drops.update({live[pos]: drop for pos, drop in found.items()})


def _verify(rows, config, drops, cached_verdict, on_verdict) -> dict[int, Verdict]:
    """Verdicts for the live rows: stored ones reused, the rest verified. A verifier with a
    ``prepare(triples)`` (the harvest judge) gets every (prompt, answer, reference) still to
    verify first, at once."""
    if config.verifier is None:
        return {}
    verifier = get_verifier(config.verifier, **config.verifier_options)
    identity = (verifier.name, verifier.version)
    verdicts: dict[int, Verdict] = {}
    todo: list[int] = []
    for i, row in enumerate(rows):
        if i in drops:
            continue
        if row.reference is None or row.reference == "":
            drops[i] = Drop("verify", "no reference to verify against")
            continue
        verdict = cached_verdict(row) if cached_verdict else None
        if verdict is None or (verdict.verifier, verdict.version) != identity:
            todo.append(i)
        else:
            verdicts[i] = verdict
    prepare = getattr(verifier, "prepare", None)
    if prepare is not None and todo:
        prepare([(rows[i].prompt, rows[i].answer, rows[i].reference) for i in todo])
    for i in todo:
        verdict = verifier.verify(rows[i].prompt, rows[i].answer, rows[i].reference)
        if on_verdict is not None:
            on_verdict(rows[i], verdict)
        verdicts[i] = verdict
    return verdicts
