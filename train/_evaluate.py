"""``evaluate_student``: base vs student on the held-out prompts, scored against the teacher."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stillroom.train._base import offline_hub, resolve_base
from stillroom.train._data import Example
from stillroom.train._metrics import METRIC_NAMES, mean_scores, score
from stillroom.train._split import SplitRecord
from stillroom.train.errors import TrainConfigError, TrainDataError

log = logging.getLogger("stillroom.train")


@dataclass
class EvalConfig:
    """Configuration of :func:`stillroom.train.evaluate_student`.

    Parameters:
        db (`Path`): harvest database; its held-out split (same filters, seed and split as
            training: the :class:`~stillroom.train._split.SplitRecord` in ``train_config.json`` beside
            the adapter) is evaluated.
        adapter (`Path`): the adapter directory, or the ``train sft --out`` directory.
        out (`Path`): JSON report to write.
        limit (`int`, *optional*): evaluate at most this many held-out prompts.
        base (`str`, *optional*): base model (default: the one the adapter was trained on).
        max_new_tokens (`int`, defaults to 128): generation length (greedy decoding).
        batch_size (`int`, defaults to 8): prompts per generation batch.
        task (`str`, *optional*): a curate verifier (``math``, ``exact``, ``choice``, ...):
            also score base, student and the teacher's stored answers on the task, with a
            Wilson interval and McNemar's paired test (see :func:`stillroom.curate.task_report`).
        references (`Path`, *optional*): JSONL of ``{id, reference_field}`` keyed by prompt id,
            needed with ``task``.
        reference_field (`str`, defaults to ``"answer"``): the field holding each reference.
    """

    db: Path
    adapter: Path
    out: Path
    limit: int | None = None
    base: str | None = None
    max_new_tokens: int = 128
    batch_size: int = 8
    task: str | None = None
    references: Path | None = None
    reference_field: str = "answer"

    def __post_init__(self) -> None:
        self.db, self.adapter, self.out = Path(self.db), Path(self.adapter), Path(self.out)
        if self.task is not None and self.references is None:
            raise TrainConfigError("EvalConfig.task needs references (a JSONL of id -> answer)")
        if self.limit is not None and self.limit < 1:
            raise TrainConfigError(f"EvalConfig.limit = {self.limit!r}: must be >= 1")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise TrainConfigError("EvalConfig.max_new_tokens and batch_size must be >= 1")


def _adapter_dir(path: Path) -> Path:
    for candidate in (path, path / "adapter"):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    raise TrainConfigError(
        f"{path}: no adapter_config.json (pass train sft's --out or its adapter/)"
    )


def held_out(config: EvalConfig, split: SplitRecord) -> list[Example]:
    """One example per held-out prompt (its first sample is the reference)."""
    data = split.load(config.db)
    if not data.eval:
        raise TrainDataError(
            f"{config.db}: no held-out prompts to evaluate (eval_fraction="
            f"{split.eval_fraction}, {data.summary()['train_prompts']} prompts)"
        )
    firsts: dict[str, Example] = {}
    for example in data.eval:
        firsts.setdefault(example.prompt_key, example)
    chosen = list(firsts.values())
    return chosen[: config.limit] if config.limit else chosen


def _generate(
    model: Any, tokenizer: Any, prompts: list[list[dict]], config: EvalConfig
) -> list[str]:
    import torch

    tokenizer.padding_side = "left"
    texts: list[str] = []
    for start in range(0, len(prompts), config.batch_size):
        batch = prompts[start : start + config.batch_size]
        rendered = [
            tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
            for p in batch
        ]
        enc = tokenizer(rendered, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(model.device)
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=config.max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = out[:, enc["input_ids"].shape[1] :]
        texts += tokenizer.batch_decode(new, skip_special_tokens=True)
    return texts


def teacher_token_loss(model: Any, tokenizer: Any, examples: list[Example]) -> float | None:
    """Token-weighted mean cross-entropy of ``model`` on the teacher's answer tokens."""
    import torch

    total, count = 0.0, 0
    for example in examples:
        prompt = tokenizer.apply_chat_template(
            example.prompt, add_generation_prompt=True, tokenize=False
        )
        full = tokenizer.apply_chat_template(example.prompt + example.completion, tokenize=False)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        start = next(
            (i for i, (a, b) in enumerate(zip(p_ids, ids, strict=False)) if a != b),
            min(len(p_ids), len(ids)),
        )
        if start >= len(ids):
            continue
        input_ids = torch.tensor([ids], device=model.device)
        labels = input_ids.clone()
        labels[:, :start] = -100
        with torch.no_grad():
            loss = model(input_ids=input_ids, labels=labels).loss
        n = len(ids) - start
        total += float(loss) * n
        count += n
    return total / count if count else None


def _side(
    model: Any, tokenizer: Any, examples: list[Example], config: EvalConfig
) -> tuple[dict, list[str]]:
    generations = _generate(model, tokenizer, [e.prompt for e in examples], config)
    metrics = mean_scores(
        [score(g, e.target_text) for g, e in zip(generations, examples, strict=True)]
    )
    metrics["teacher_token_loss"] = teacher_token_loss(model, tokenizer, examples)
    return {name: metrics.get(name) for name in METRIC_NAMES}, generations


def evaluate_student(config: EvalConfig) -> dict[str, Any]:
    """Generate with the base and the student on held-out prompts; score both; write JSON."""
    offline_hub()
    adapter_dir = _adapter_dir(config.adapter)
    split, used = SplitRecord.beside(adapter_dir)
    examples = held_out(config, split)
    if config.base is not None:
        base_dir = resolve_base(config.base)
    elif used.get("base_dir") and Path(used["base_dir"]).is_dir():
        base_dir = Path(used["base_dir"])
    else:
        base_dir = resolve_base(used.get("base"))

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).to(device)
    model = PeftModel.from_pretrained(model, adapter_dir).eval()
    with model.disable_adapter():
        base_metrics, base_gen = _side(model, tokenizer, examples, config)
    student_metrics, student_gen = _side(model, tokenizer, examples, config)
    report = {
        "base": base_metrics,
        "student": student_metrics,
        "n_prompts": len(examples),
        "base_model": str(base_dir),
        "adapter": str(adapter_dir),
        "db": str(config.db),
        "max_new_tokens": config.max_new_tokens,
        "examples": [
            {
                "prompt_id": e.prompt_id,
                "prompt": e.prompt[-1]["content"],
                "teacher": e.target_text,
                "base": b,
                "student": s,
            }
            for e, b, s in zip(examples, base_gen, student_gen, strict=True)
        ],
    }
    if config.task is not None:
        report["task"] = task_scores(config, examples, base_gen, student_gen)
    config.out.parent.mkdir(parents=True, exist_ok=True)
    config.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def task_scores(
    config: EvalConfig, examples: list[Example], base_gen: list[str], student_gen: list[str]
) -> dict[str, Any]:
    """Base, student and the teacher's stored answer, scored by one curate verifier on the
    held-out prompts that have a reference."""
    from stillroom.curate import get_verifier, task_report
    from stillroom.curate._jsonl import read_references

    refs = read_references(config.references, config.reference_field)
    idx = [i for i, e in enumerate(examples) if e.prompt_id in refs]
    if not idx:
        raise TrainDataError(f"{config.references}: no reference for any of the held-out prompts")
    report = task_report(
        [_question(examples[i]) for i in idx],
        {
            "base": [base_gen[i] for i in idx],
            "student": [student_gen[i] for i in idx],
            "teacher": [examples[i].content for i in idx],
        },
        [refs[examples[i].prompt_id] for i in idx],
        get_verifier(config.task),
        notes={
            "base": "greedy",
            "student": "greedy",
            "teacher": "its stored answer (sampled at harvest time), first sample per prompt",
        },
    )
    return report | {"prompts_without_reference": len(examples) - len(idx)}


def _question(example: Example) -> str:
    """The question a held-out example asks: its last user message."""
    users = [m.get("content", "") for m in example.prompt if m.get("role") == "user"]
    return str(users[-1]) if users else ""


def render_report(report: dict[str, Any]) -> list[Any]:
    """Rich tables: metrics side by side, then a few examples."""
    from rich.table import Table

    table = Table(title=f"base vs student on {report['n_prompts']} held-out prompts")
    for col in ("metric", "base", "student", "delta"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name in METRIC_NAMES:
        b, s = report["base"].get(name), report["student"].get(name)
        delta = f"{s - b:+.3f}" if b is not None and s is not None else "-"
        table.add_row(name, _fmt(b), _fmt(s), delta)
    examples = Table(title="examples", show_lines=True)
    for col in ("prompt", "teacher", "base", "student"):
        examples.add_column(col, overflow="fold", max_width=40)
    for ex in report["examples"][:3]:
        examples.add_row(*(_clip(ex[c]) for c in ("prompt", "teacher", "base", "student")))
    if "task" not in report:
        return [table, examples]
    task = report["task"]
    scores = Table(title=f"task accuracy ({task['verifier']}), 95% Wilson interval")
    for col in ("model", "correct", "accuracy", "interval", "note"):
        scores.add_column(col)
    for model, m in task["models"].items():
        low, high = m["wilson_95"]
        scores.add_row(
            model,
            f"{m['correct']}/{m['n']}",
            _fmt(m["accuracy"]),
            f"{low:.3f}-{high:.3f}",
            m["note"],
        )
    paired = Table(title="paired (McNemar exact): prompts only one of the two got right")
    for col in ("a", "b", "only a", "only b", "p"):
        paired.add_column(col)
    for p in task["paired"]:
        paired.add_row(p["a"], p["b"], str(p["only_a"]), str(p["only_b"]), f"{p['mcnemar_p']:.3g}")
    return [table, scores, paired, examples]


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _clip(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"
