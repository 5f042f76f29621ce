"""train: TRL SFT of a LoRA student on a harvest, measured against the teacher and the base.

Library first (``train_sft``, ``evaluate_student``, ``resolve_base``); ``train.cli`` is a thin
Typer shell over it. Heavy imports (torch, trl, transformers, peft, datasets) happen inside
the functions that need them, and every name but the errors is imported on first use (see
:mod:`stillroom_core.lazy`), so ``import train`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stillroom_core.lazy import lazy_exports
from train.errors import (
    BaseModelError,
    PolicyForbidsTraining,
    TrainConfigError,
    TrainDataError,
    TrainError,
)

if TYPE_CHECKING:
    from train._base import cache_root, default_gguf, resolve_base
    from train._config import TrainConfig
    from train._data import Dataset, Example, load_dataset, split_by_prompt
    from train._evaluate import EvalConfig, evaluate_student, render_report
    from train._metrics import METRIC_NAMES, exact_match, rouge_l, score, token_f1
    from train._sft import TrainResult, train_sft
    from train._split import SplitRecord

_LAZY = {
    "cache_root": "train._base",
    "default_gguf": "train._base",
    "resolve_base": "train._base",
    "TrainConfig": "train._config",
    "SplitRecord": "train._split",
    "Dataset": "train._data",
    "Example": "train._data",
    "load_dataset": "train._data",
    "split_by_prompt": "train._data",
    "EvalConfig": "train._evaluate",
    "evaluate_student": "train._evaluate",
    "render_report": "train._evaluate",
    "METRIC_NAMES": "train._metrics",
    "exact_match": "train._metrics",
    "rouge_l": "train._metrics",
    "score": "train._metrics",
    "token_f1": "train._metrics",
    "TrainResult": "train._sft",
    "train_sft": "train._sft",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "METRIC_NAMES",
    "BaseModelError",
    "Dataset",
    "EvalConfig",
    "Example",
    "PolicyForbidsTraining",
    "SplitRecord",
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
    "train_sft",
]
