"""curate: verified, deduplicated, decontaminated training data.

Verifiers (math final answers, exact, regex, multiple choice, code in a sandbox, an LLM
judge asked through harvest) return a :class:`Verdict` with their name, version and reason.
Rejection sampling keeps the verified samples per prompt and records pass rates; dedup drops
exact and near-duplicate prompts and answers; decontamination drops rows that leak benchmark
items. Every dropped row says why, and names the row or benchmark item it matched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stillroom._core.lazy import lazy_exports
from stillroom.curate.errors import (
    ConfigError,
    CurateError,
    InputFormatError,
    JudgeIncompleteError,
    SandboxUnavailableError,
    UnknownVerifierError,
)

if TYPE_CHECKING:
    from stillroom.curate._code import CodeVerifier, extract_code
    from stillroom.curate._decontam import (
        BenchmarkItem,
        DecontamConfig,
        Decontaminator,
        load_benchmark,
    )
    from stillroom.curate._dedup import DedupConfig, find_duplicates
    from stillroom.curate._drop import Drop
    from stillroom.curate._embed import EmbeddingMatcher
    from stillroom.curate._judge import JUDGE_TEMPLATE, HarvestJudge, JudgeVerifier, read_verdict
    from stillroom.curate._match import ChoiceVerifier, ExactVerifier, RegexVerifier
    from stillroom.curate._math import MathVerifier, extract_final_answer
    from stillroom.curate._minhash import MinHashIndex, optimal_bands
    from stillroom.curate._numbers import parse_number
    from stillroom.curate._pipeline import (
        CurateConfig,
        CurationResult,
        CurationRow,
        Decision,
        curate_rows,
    )
    from stillroom.curate._registry import VERIFIERS, get_verifier
    from stillroom.curate._sampling import PromptStats, SamplingConfig, pass_at_k, select_samples
    from stillroom.curate._sandbox import (
        SandboxLimits,
        SandboxResult,
        isolation,
        run_sandboxed,
        sandbox_problem,
    )
    from stillroom.curate._stats import mcnemar_exact, task_report, wilson_interval
    from stillroom.curate._store import (
        CuratedSet,
        StoreCuration,
        curate_store,
        read_curated,
        store_fingerprint,
    )
    from stillroom.curate._verdict import Verdict, Verifier

_LAZY = {
    "EmbeddingMatcher": "stillroom.curate._embed",
    "mcnemar_exact": "stillroom.curate._stats",
    "task_report": "stillroom.curate._stats",
    "wilson_interval": "stillroom.curate._stats",
    "CuratedSet": "stillroom.curate._store",
    "StoreCuration": "stillroom.curate._store",
    "curate_store": "stillroom.curate._store",
    "read_curated": "stillroom.curate._store",
    "store_fingerprint": "stillroom.curate._store",
    "CodeVerifier": "stillroom.curate._code",
    "extract_code": "stillroom.curate._code",
    "BenchmarkItem": "stillroom.curate._decontam",
    "DecontamConfig": "stillroom.curate._decontam",
    "Decontaminator": "stillroom.curate._decontam",
    "load_benchmark": "stillroom.curate._decontam",
    "DedupConfig": "stillroom.curate._dedup",
    "find_duplicates": "stillroom.curate._dedup",
    "Drop": "stillroom.curate._drop",
    "JUDGE_TEMPLATE": "stillroom.curate._judge",
    "HarvestJudge": "stillroom.curate._judge",
    "JudgeVerifier": "stillroom.curate._judge",
    "read_verdict": "stillroom.curate._judge",
    "ChoiceVerifier": "stillroom.curate._match",
    "ExactVerifier": "stillroom.curate._match",
    "RegexVerifier": "stillroom.curate._match",
    "MathVerifier": "stillroom.curate._math",
    "extract_final_answer": "stillroom.curate._math",
    "MinHashIndex": "stillroom.curate._minhash",
    "optimal_bands": "stillroom.curate._minhash",
    "parse_number": "stillroom.curate._numbers",
    "CurateConfig": "stillroom.curate._pipeline",
    "CurationResult": "stillroom.curate._pipeline",
    "CurationRow": "stillroom.curate._pipeline",
    "Decision": "stillroom.curate._pipeline",
    "curate_rows": "stillroom.curate._pipeline",
    "VERIFIERS": "stillroom.curate._registry",
    "get_verifier": "stillroom.curate._registry",
    "PromptStats": "stillroom.curate._sampling",
    "SamplingConfig": "stillroom.curate._sampling",
    "pass_at_k": "stillroom.curate._sampling",
    "select_samples": "stillroom.curate._sampling",
    "SandboxLimits": "stillroom.curate._sandbox",
    "SandboxResult": "stillroom.curate._sandbox",
    "isolation": "stillroom.curate._sandbox",
    "run_sandboxed": "stillroom.curate._sandbox",
    "sandbox_problem": "stillroom.curate._sandbox",
    "Verdict": "stillroom.curate._verdict",
    "Verifier": "stillroom.curate._verdict",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "JUDGE_TEMPLATE",
    "VERIFIERS",
    "BenchmarkItem",
    "ChoiceVerifier",
    "CodeVerifier",
    "ConfigError",
    "CurateConfig",
    "CurateError",
    "CuratedSet",
    "CurationResult",
    "CurationRow",
    "Decision",
    "DecontamConfig",
    "Decontaminator",
    "DedupConfig",
    "Drop",
    "EmbeddingMatcher",
    "ExactVerifier",
    "HarvestJudge",
    "InputFormatError",
    "JudgeIncompleteError",
    "JudgeVerifier",
    "MathVerifier",
    "MinHashIndex",
    "PromptStats",
    "RegexVerifier",
    "SamplingConfig",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailableError",
    "StoreCuration",
    "UnknownVerifierError",
    "Verdict",
    "Verifier",
    "curate_rows",
    "curate_store",
    "extract_code",
    "extract_final_answer",
    "find_duplicates",
    "get_verifier",
    "isolation",
    "load_benchmark",
    "mcnemar_exact",
    "optimal_bands",
    "parse_number",
    "pass_at_k",
    "read_curated",
    "read_verdict",
    "run_sandboxed",
    "sandbox_problem",
    "select_samples",
    "store_fingerprint",
    "task_report",
    "wilson_interval",
]
