"""curate: verified, deduplicated, decontaminated training data.

Verifiers (math final answers, exact, regex, multiple choice, code in a sandbox, an LLM
judge asked through harvest) return a :class:`Verdict` with their name, version and reason.
Rejection sampling keeps the verified samples per prompt and records pass rates; dedup drops
exact and near-duplicate prompts and answers; decontamination drops rows that leak benchmark
items. Every dropped row says why, and names the row or benchmark item it matched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from curate.errors import (
    ConfigError,
    CurateError,
    InputFormatError,
    JudgeIncompleteError,
    SandboxUnavailableError,
    UnknownVerifierError,
)
from stillroom_core.lazy import lazy_exports

if TYPE_CHECKING:
    from curate._code import CodeVerifier, extract_code
    from curate._decontam import BenchmarkItem, DecontamConfig, Decontaminator, load_benchmark
    from curate._dedup import DedupConfig, find_duplicates
    from curate._drop import Drop
    from curate._embed import EmbeddingMatcher
    from curate._judge import JUDGE_TEMPLATE, HarvestJudge, JudgeVerifier, read_verdict
    from curate._match import ChoiceVerifier, ExactVerifier, RegexVerifier
    from curate._math import MathVerifier, extract_final_answer
    from curate._minhash import MinHashIndex, optimal_bands
    from curate._numbers import parse_number
    from curate._pipeline import CurateConfig, CurationResult, CurationRow, Decision, curate_rows
    from curate._registry import VERIFIERS, get_verifier
    from curate._sampling import PromptStats, SamplingConfig, pass_at_k, select_samples
    from curate._sandbox import SandboxLimits, SandboxResult, isolation, run_sandboxed
    from curate._stats import mcnemar_exact, task_report, wilson_interval
    from curate._store import (
        CuratedSet,
        StoreCuration,
        curate_store,
        read_curated,
        store_fingerprint,
    )
    from curate._verdict import Verdict, Verifier

_LAZY = {
    "EmbeddingMatcher": "curate._embed",
    "mcnemar_exact": "curate._stats",
    "task_report": "curate._stats",
    "wilson_interval": "curate._stats",
    "CuratedSet": "curate._store",
    "StoreCuration": "curate._store",
    "curate_store": "curate._store",
    "read_curated": "curate._store",
    "store_fingerprint": "curate._store",
    "CodeVerifier": "curate._code",
    "extract_code": "curate._code",
    "BenchmarkItem": "curate._decontam",
    "DecontamConfig": "curate._decontam",
    "Decontaminator": "curate._decontam",
    "load_benchmark": "curate._decontam",
    "DedupConfig": "curate._dedup",
    "find_duplicates": "curate._dedup",
    "Drop": "curate._drop",
    "JUDGE_TEMPLATE": "curate._judge",
    "HarvestJudge": "curate._judge",
    "JudgeVerifier": "curate._judge",
    "read_verdict": "curate._judge",
    "ChoiceVerifier": "curate._match",
    "ExactVerifier": "curate._match",
    "RegexVerifier": "curate._match",
    "MathVerifier": "curate._math",
    "extract_final_answer": "curate._math",
    "MinHashIndex": "curate._minhash",
    "optimal_bands": "curate._minhash",
    "parse_number": "curate._numbers",
    "CurateConfig": "curate._pipeline",
    "CurationResult": "curate._pipeline",
    "CurationRow": "curate._pipeline",
    "Decision": "curate._pipeline",
    "curate_rows": "curate._pipeline",
    "VERIFIERS": "curate._registry",
    "get_verifier": "curate._registry",
    "PromptStats": "curate._sampling",
    "SamplingConfig": "curate._sampling",
    "pass_at_k": "curate._sampling",
    "select_samples": "curate._sampling",
    "SandboxLimits": "curate._sandbox",
    "SandboxResult": "curate._sandbox",
    "isolation": "curate._sandbox",
    "run_sandboxed": "curate._sandbox",
    "Verdict": "curate._verdict",
    "Verifier": "curate._verdict",
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
    "select_samples",
    "store_fingerprint",
    "task_report",
    "wilson_interval",
]
