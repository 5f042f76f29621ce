"""The arms of ``bench/train_onpolicy.py`` at equal teacher tokens, against one served teacher.

The teacher is a Hugging Face directory behind ``stillroom teacher serve --backend
transformers --model DIR`` (here :func:`stillroom.teacher.serve_teacher`, the same server
process), which answers both the chat harvest and the scoring requests. Teacher tokens are
what its ``usage`` reports: prompt + completion tokens of every harvested answer (SFT), the
prompt tokens (the prefill) of every scoring request of training (on-policy; the probe and the
held-out metric's scoring are not counted).

1. SFT harvest: the teacher answers every training prompt once (greedy) through ``run_harvest``,
   with its top-``top_logprobs`` log-probabilities per token (OpenAI's chat ``logprobs``);
2. on-policy: ``train onpolicy`` with as many steps as that harvest's tokens allow, at the
   largest size a sample can have (prompt + ``new_tokens``), so it spends at most as much;
3. the SFT arm keeps harvested answers, in order, while their tokens fit what on-policy spent,
   and trains ``train sft`` on them; the sparse-KD arm (``train sft --kd-alpha``, when
   ``kd_alpha`` > 0) trains on the same answers and their stored top-k rows, so it spends
   the same teacher tokens as the SFT arm. The totals are printed.

A rerun in the same work directory reuses the SFT harvest (it resumes); the on-policy
arm starts afresh (the served teacher gets another port each time).
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ArmSettings:
    per_step: int = 8
    samples: int = 2
    new_tokens: int = 32
    threads: int = 1
    sft_epochs: float = 3.0
    sft_batch: int = 4
    sft_lr: float = 1e-3
    sft_warmup: float = 0.03  # TrainConfig's default; quick runs: 0 (one step would be at lr 0)
    kd_alpha: float = 0.5  # the sparse-KD arm's weight; 0: no KD arm
    top_logprobs: int = 20  # the teacher's top-k per harvested token (the KD arm's targets)
    max_steps: int | None = None  # cap on on-policy steps (quick runs)


def write_prompts(path: Path, texts: list[str]) -> list[dict]:
    rows = [{"id": f"t{i:04d}", "prompt": t} for i, t in enumerate(texts)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def _sft_harvest(teacher: Any, rows: list[dict], db: Path, system: str | None, s: ArmSettings):
    from stillroom.harvest import HarvestConfig, read_completions, run_harvest

    result = run_harvest(HarvestConfig(
        prompts=rows, db=db, base_url=teacher.base_url, model=teacher.model,
        policy=teacher.policy_id, purpose="bench: on-policy vs SFT at equal teacher tokens",
        system=system, max_tokens=s.new_tokens, temperature=0.0, concurrency=1,
        request_timeout=600.0, top_logprobs=s.top_logprobs if s.kd_alpha > 0 else None,
    ), progress=False)  # fmt: skip
    if result.failed or result.stopped_reason:
        raise SystemExit(f"SFT harvest did not finish: {result.failed} failed, {result.message}")
    return list(read_completions(db))


def _cost(row: Any) -> int:
    return int(row.prompt_tokens or 0) + int(row.completion_tokens or 0)


def run_arms(
    teacher_dir: Path, system: str | None, texts: list[str], work: Path, s: ArmSettings
) -> dict[str, Any]:
    """The students trained from the base on ``texts``; adapters and teacher-token totals."""
    from stillroom.harvest import write_completions
    from stillroom.teacher import TeacherConfig, serve_teacher
    from stillroom.train import OnPolicyConfig, TrainConfig, resolve_base, train_onpolicy, train_sft

    work.mkdir(parents=True, exist_ok=True)
    # the on-policy arm starts afresh: the served teacher's port differs from run to run,
    # and its store refuses another teacher URL
    for stale in (work / "opd.duckdb", work / "opd.duckdb.wal"):
        stale.unlink(missing_ok=True)
    shutil.rmtree(work / "opd", ignore_errors=True)
    rows = write_prompts(work / "train_prompts.jsonl", texts)
    base = resolve_base(None)
    config = TeacherConfig(backend="transformers", model_dir=teacher_dir, n_threads=s.threads)
    with serve_teacher(config) as teacher:
        harvested = _sft_harvest(teacher, rows, work / "harvest.duckdb", system, s)
        budget = sum(_cost(r) for r in harvested)
        widest = sum(int(r.prompt_tokens or 0) for r in harvested) / len(harvested) + s.new_tokens
        steps = max(1, math.floor(budget / (s.per_step * s.samples * widest)))
        steps = min(steps, s.max_steps or steps)
        opd = train_onpolicy(OnPolicyConfig(
            prompts=work / "train_prompts.jsonl", db=work / "opd.duckdb", out=work / "opd",
            teacher_base_url=teacher.base_url, teacher_model=teacher.model,
            policy=teacher.policy_id, teacher_system=system, base=str(base),
            eval_fraction=0.1, heldout_samples=1, steps=steps, prompts_per_step=s.per_step,
            samples_per_prompt=s.samples, max_new_tokens=s.new_tokens, progress=False,
        ))  # fmt: skip
    spent = int(opd.metrics["teacher_tokens_train"])
    kept, used = [], 0
    for row in harvested:
        if used + _cost(row) > spent:
            break
        kept.append(row)
        used += _cost(row)
    db = write_completions(work / "sft.duckdb", kept)
    adapters, kd_positions = {"on-policy": opd.adapter_dir}, None
    sft_arms = {"sft": 0.0} | ({"sft+kd": s.kd_alpha} if s.kd_alpha > 0 else {})
    for name, alpha in sft_arms.items():
        shutil.rmtree(work / name, ignore_errors=True)
        sft = train_sft(TrainConfig(
            db=db, out=work / name, base=str(base), drop_system=True, finish_reasons=(),
            eval_fraction=0.0, num_train_epochs=s.sft_epochs,
            per_device_train_batch_size=s.sft_batch, learning_rate=s.sft_lr,
            warmup=s.sft_warmup, max_length=160, kd_alpha=alpha, progress=False,
        ))  # fmt: skip
        adapters[name] = sft.adapter_dir
        if alpha > 0:
            kd_positions = int(sft.metrics["kd_mapped_positions"])
            if not kd_positions:
                raise SystemExit("the sft+kd arm mapped no teacher logprob onto the student")
    return {
        "adapters": adapters,
        "tokens": {"on-policy": spent, "sft": used, "harvested": budget},
        "onpolicy_steps": steps,
        "onpolicy_samples": steps * s.per_step * s.samples,
        "sft_rows": len(kept),
        "kd_positions": kd_positions,
        "per_step_kl": opd.metrics["per_step"],
    }


def token_line(arms: dict[str, Any]) -> str:
    t = arms["tokens"]
    ratio = t["sft"] / t["on-policy"] if t["on-policy"] else float("nan")
    return (
        f"teacher tokens (its usage): on-policy {t['on-policy']} ({arms['onpolicy_steps']} steps, "
        f"{arms['onpolicy_samples']} samples scored), SFT {t['sft']} ({arms['sft_rows']} answers, "
        f"prompt + output; {t['harvested']} harvested; the KD arm: the same answers, "
        f"{arms['kd_positions']} teacher top-k positions mapped); "
        f"SFT / on-policy = {ratio:.3f}"
    )
