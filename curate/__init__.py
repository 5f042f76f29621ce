"""curate: verified, deduplicated, decontaminated training data.

Verifiers (math final answers, exact, regex, multiple choice, code in a sandbox, an LLM-judge
interface) return a :class:`Verdict` with their name, version and reason. Rejection sampling
keeps the verified samples per prompt and records pass rates; dedup drops exact and near-
duplicate prompts and answers; decontamination drops rows that leak benchmark items. Every
dropped row says why, and names the row or benchmark item it matched.
"""

from curate._code import CodeVerifier, extract_code
from curate._decontam import BenchmarkItem, DecontamConfig, Decontaminator, load_benchmark
from curate._dedup import DedupConfig, find_duplicates
from curate._drop import Drop
from curate._judge import JudgeVerifier
from curate._match import ChoiceVerifier, ExactVerifier, RegexVerifier
from curate._math import MathVerifier, extract_final_answer
from curate._minhash import MinHashIndex, optimal_bands
from curate._numbers import parse_number
from curate._pipeline import CurateConfig, CurationResult, CurationRow, Decision, curate_rows
from curate._registry import VERIFIERS, get_verifier
from curate._sampling import PromptStats, SamplingConfig, pass_at_k, select_samples
from curate._sandbox import SandboxLimits, SandboxResult, isolation, run_sandboxed
from curate._verdict import Verdict, Verifier
from curate.errors import (
    ConfigError,
    CurateError,
    InputFormatError,
    SandboxUnavailableError,
    UnknownVerifierError,
)

__all__ = [
    "VERIFIERS",
    "BenchmarkItem",
    "ChoiceVerifier",
    "CodeVerifier",
    "ConfigError",
    "CurateConfig",
    "CurateError",
    "CurationResult",
    "CurationRow",
    "Decision",
    "DecontamConfig",
    "Decontaminator",
    "DedupConfig",
    "Drop",
    "ExactVerifier",
    "InputFormatError",
    "JudgeVerifier",
    "MathVerifier",
    "MinHashIndex",
    "PromptStats",
    "RegexVerifier",
    "SamplingConfig",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailableError",
    "UnknownVerifierError",
    "Verdict",
    "Verifier",
    "curate_rows",
    "extract_code",
    "extract_final_answer",
    "find_duplicates",
    "get_verifier",
    "isolation",
    "load_benchmark",
    "optimal_bands",
    "parse_number",
    "pass_at_k",
    "run_sandboxed",
    "select_samples",
]
