"""train: TRL SFT of a LoRA student on a harvest (or on-policy distillation from a served
teacher), measured against the teacher and the base.

Library first (``train_sft``, ``evaluate_student``, ``resolve_base``); ``stillroom.train.cli`` is a thin
Typer shell over it. Heavy imports (torch, trl, transformers, peft, datasets) happen inside
the functions that need them, and every name but the errors is imported on first use (see
:mod:`stillroom._core.lazy`), so ``import stillroom.train`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stillroom._core.lazy import lazy_exports
from stillroom.train.errors import (
    BaseModelError,
    PolicyForbidsTraining,
    TeacherNoLogprobs,
    TeacherScoringError,
    TeacherTokenizerMismatch,
    TrainConfigError,
    TrainDataError,
    TrainError,
)

if TYPE_CHECKING:
    from stillroom.train._base import cache_root, default_gguf, resolve_base
    from stillroom.train._config import TrainConfig
    from stillroom.train._data import Dataset, Example, load_dataset, split_by_prompt
    from stillroom.train._evaluate import EvalConfig, evaluate_student, render_report
    from stillroom.train._metrics import METRIC_NAMES, exact_match, rouge_l, score, token_f1
    from stillroom.train._onpolicy import OnPolicyResult, train_onpolicy
    from stillroom.train._onpolicy_config import OnPolicyConfig
    from stillroom.train._sft import TrainResult, train_sft
    from stillroom.train._split import SplitRecord

_LAZY = {
    "cache_root": "stillroom.train._base",
    "default_gguf": "stillroom.train._base",
    "resolve_base": "stillroom.train._base",
    "TrainConfig": "stillroom.train._config",
    "SplitRecord": "stillroom.train._split",
    "Dataset": "stillroom.train._data",
    "Example": "stillroom.train._data",
    "load_dataset": "stillroom.train._data",
    "split_by_prompt": "stillroom.train._data",
    "EvalConfig": "stillroom.train._evaluate",
    "evaluate_student": "stillroom.train._evaluate",
    "render_report": "stillroom.train._evaluate",
    "METRIC_NAMES": "stillroom.train._metrics",
    "exact_match": "stillroom.train._metrics",
    "rouge_l": "stillroom.train._metrics",
    "score": "stillroom.train._metrics",
    "token_f1": "stillroom.train._metrics",
    "OnPolicyConfig": "stillroom.train._onpolicy_config",
    "OnPolicyResult": "stillroom.train._onpolicy",
    "train_onpolicy": "stillroom.train._onpolicy",
    "TrainResult": "stillroom.train._sft",
    "train_sft": "stillroom.train._sft",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "METRIC_NAMES",
    "BaseModelError",
    "Dataset",
    "EvalConfig",
    "Example",
    "OnPolicyConfig",
    "OnPolicyResult",
    "PolicyForbidsTraining",
    "SplitRecord",
    "TeacherNoLogprobs",
    "TeacherScoringError",
    "TeacherTokenizerMismatch",
    "TrainConfig",
    "TrainConfigError",
    "TrainDataError",
    "TrainError",
    "TrainResult",
    "cache_root",
    "default_gguf",
    "evaluate_student",
    "exact_match",
    "load_dataset",
    "render_report",
    "resolve_base",
    "rouge_l",
    "score",
    "split_by_prompt",
    "token_f1",
    "train_onpolicy",
    "train_sft",
]
