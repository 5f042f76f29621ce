"""train: TRL SFT of a LoRA student on a harvest, measured against the teacher and the base.

Library first (``train_sft``, ``evaluate_student``, ``resolve_base``); ``train.cli`` is a thin
Typer shell over it. Heavy imports (torch, trl, transformers, peft, datasets) happen inside
the functions that need them, so ``import train`` stays cheap.
"""

from train._base import cache_root, default_gguf, resolve_base
from train._config import TrainConfig
from train._data import Dataset, Example, load_dataset, split_by_prompt
from train._evaluate import EvalConfig, evaluate_student, render_report
from train._metrics import METRIC_NAMES, exact_match, rouge_l, score, token_f1
from train._sft import TrainResult, train_sft
from train.errors import (
    BaseModelError,
    PolicyForbidsTraining,
    TrainConfigError,
    TrainDataError,
    TrainError,
)

__all__ = [
    "METRIC_NAMES",
    "BaseModelError",
    "Dataset",
    "EvalConfig",
    "Example",
    "PolicyForbidsTraining",
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
