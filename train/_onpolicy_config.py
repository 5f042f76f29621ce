"""``OnPolicyConfig``: every knob of :func:`stillroom.train.train_onpolicy`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stillroom.train.errors import TrainConfigError


@dataclass
class OnPolicyConfig:
    """Configuration of :func:`stillroom.train.train_onpolicy` (``TrainConfig``'s conventions).

    Parameters:
        > Data

        prompts (`Path`): prompt file (harvest's formats: JSONL ``{"prompt"}``/``{"messages"}``, ...).
        db (`Path`): on-policy DuckDB store (samples and the teacher's scores; resumable).
        out (`Path`): output directory (adapter, metrics, config used, model card, NOTICE, state).
        eval_fraction (`float`, defaults to 0.1), seed (`int`): held-out prompts, split as
            ``train sft`` splits (by prompt key, :func:`stillroom.train.split_by_prompt`).

        > Teacher

        teacher_base_url (`str`), teacher_model (`str`): an OpenAI-compatible server answering
            ``/v1/completions`` with ``echo`` + ``logprobs`` (vLLM, llama-cpp-python, stillroom's
            embedded teacher).
        policy (`str`, *optional*), accept (`list[str]`), purpose (`str`, *optional*): the
            teacher's terms, checked before the first request (as harvest checks them).
        teacher_system (`str`, *optional*): system prompt given to the teacher only (context
            distillation: the student sees none).
        rpm, tpm (`int`, *optional*): the user's own limits on the teacher.

        > Model and training

        base (`str`, *optional*), from_adapter (`Path`, *optional*): where the student starts.
        name (`str`, *optional*), lora_r, lora_alpha, lora_dropout, target_modules: as ``TrainConfig``.
        steps, prompts_per_step, samples_per_prompt, max_new_tokens: the loop's size.
        temperature (`float`, defaults to 1.0): sampling temperature (no top-k/top-p).
        learning_rate (`float`), kl_coef (`float`, defaults to 1.0): optimiser step, KL weight.
        heldout_samples (`int`, defaults to 4): samples per held-out prompt for the metric.
        heldout_prompts (`int`, *optional*, defaults to 8): held-out prompts the metric uses
            (a fixed, seeded choice among them); None = every held-out prompt. The metric
            costs ``2 x heldout_prompts x heldout_samples`` sampled and scored sequences.
        score_batch (`int`, defaults to 16): samples per scoring request where the teacher
            takes token ids (a list of id lists, one choice each); 1 = one request each.
        threads (`int`, *optional*, defaults to 1): torch CPU threads while the run goes
            (restored after); None = torch's own setting. One: on 2 cores the teacher needs
            the other, and on a busy machine two OpenMP threads waited for each other several
            times slower than one thread worked.
        progress (`bool`): log each step.
    """

    prompts: Path
    db: Path
    out: Path
    teacher_base_url: str
    teacher_model: str
    policy: str | None = None
    accept: list[str] = field(default_factory=list)
    purpose: str | None = None
    teacher_system: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    base: str | None = None
    from_adapter: Path | None = None
    name: str | None = None
    eval_fraction: float = 0.1
    seed: int = 0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: str | list[str] = "all-linear"
    steps: int = 12
    prompts_per_step: int = 8
    samples_per_prompt: int = 2
    max_new_tokens: int = 32
    temperature: float = 1.0
    learning_rate: float = 5e-4
    kl_coef: float = 1.0
    heldout_samples: int = 4
    heldout_prompts: int | None = 8
    score_batch: int = 16
    threads: int | None = 1
    progress: bool = True

    def __post_init__(self) -> None:
        self.prompts, self.db, self.out = Path(self.prompts), Path(self.db), Path(self.out)
        self.accept = list(self.accept or [])
        if self.from_adapter is not None:
            self.from_adapter = Path(self.from_adapter)
            if self.base is not None:
                _bad("base", self.base, "unset with from_adapter (the adapter names its base)")
        if not self.teacher_base_url.startswith(("http://", "https://")):
            _bad("teacher_base_url", self.teacher_base_url, "an http(s) URL")
        if not self.teacher_model:
            _bad("teacher_model", self.teacher_model, "a model name")
        for name in (
            "steps",
            "prompts_per_step",
            "samples_per_prompt",
            "max_new_tokens",
            "lora_r",
            "lora_alpha",
            "heldout_samples",
            "score_batch",
        ):
            if getattr(self, name) < 1:
                _bad(name, getattr(self, name), ">= 1")
        if not 0.0 < self.eval_fraction < 1.0:
            _bad(
                "eval_fraction", self.eval_fraction, "in (0, 1): the metric needs held-out prompts"
            )
        if self.temperature <= 0:
            _bad("temperature", self.temperature, "> 0 (sampling; 1.0 for an unbiased KL)")
        if self.learning_rate <= 0:
            _bad("learning_rate", self.learning_rate, "> 0")
        if self.kl_coef <= 0:
            _bad("kl_coef", self.kl_coef, "> 0")
        if not 0.0 <= self.lora_dropout < 1.0:
            _bad("lora_dropout", self.lora_dropout, "in [0, 1)")
        for name in ("rpm", "tpm", "heldout_prompts", "threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                _bad(name, getattr(self, name), ">= 1")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("prompts", "db", "out", "from_adapter"):
            data[name] = None if data[name] is None else str(data[name])
        return data

    def resume_fields(self) -> dict[str, Any]:
        """What must not change between a killed run and its rerun."""
        keep = ("prompts", "teacher_base_url", "teacher_model", "teacher_system", "base")
        keep += ("from_adapter", "seed", "eval_fraction", "prompts_per_step")
        keep += ("samples_per_prompt", "max_new_tokens", "temperature", "lora_r", "lora_alpha")
        keep += ("heldout_samples", "heldout_prompts")
        return {k: v for k, v in self.to_dict().items() if k in keep}


def _bad(name: str, value: Any, expected: str) -> None:
    raise TrainConfigError(f"OnPolicyConfig.{name} = {value!r}: must be {expected}")
