"""Training tokens/s of ``train_sft`` against a plain TRL script with identical settings.

Both runs train the same LoRA (r=16, all-linear) on SmolLM2-135M-Instruct over the same
harvest rows, in this process, alternating which goes first in each repeat; the
figure is the median of each side's ``train tokens / train_runtime`` and the ratio
stillroom / plain (target: >= 0.95, i.e. at most 5% overhead). End-to-end wall time
(data loading, model load, saving) is printed too.

    .venv/bin/python bench/train_throughput.py [--steps 10] [--repeats 2] [--threads 1] [--corpora DIR]

Prompts come from ``--corpora``/instructions.jsonl.gz (default ``../shared/corpora``) when
present (answers are synthetic: throughput does not depend on their quality), else from a
built-in list; the bench prints which.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _corpora import add_corpora_option, corpus_texts

COLUMNS = "prompt_id, sample_index, messages, content, reasoning, finish_reason, policy_id"


def prompts(n: int, corpora: Path | None) -> tuple[list[str], str]:
    texts, where = corpus_texts(corpora, "instructions.jsonl.gz")
    texts = [t for t in texts if 20 < len(t) < 400]
    if texts:
        return texts[:: max(1, len(texts) // n)][:n], f"{where}, {n} taken evenly"
    return [f"Explain topic number {i} in two sentences." for i in range(n)], where


def make_db(path: Path, texts: list[str]) -> Path:
    """A harvest database (harvest's writer) with one answer per prompt."""
    from stillroom.harvest import completion_row, write_completions

    rows = []
    for i, text in enumerate(texts):
        messages = [{"role": "system", "content": "Be helpful."}, {"role": "user", "content": text}]
        answer = "Here is my answer. " + " ".join(reversed(text.split()))[:300]
        rows.append(
            completion_row(
                prompt_id=f"b{i}",
                messages=messages,
                content=answer,
                finish_reason="stop",
                policy_id="self-hosted",
                teacher_model="bench",
            )
        )
    return write_completions(path, rows)


def plain_trl(db: Path, base: Path, out: Path, cfg) -> tuple[float, float]:
    """The script a TRL user would write, with the same settings train_sft uses."""
    import duckdb
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    start = time.perf_counter()
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(f"SELECT {COLUMNS} FROM completions ORDER BY prompt_id").fetchall()
    con.close()
    records = [
        {"prompt": json.loads(r[2]), "completion": [{"role": "assistant", "content": r[3]}]}
        for r in rows
    ]
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(
            output_dir=str(out),
            seed=cfg.seed,
            max_length=cfg.max_length,
            completion_only_loss=True,
            learning_rate=cfg.learning_rate,
            lr_scheduler_type=cfg.lr_scheduler_type,
            warmup_steps=cfg.warmup,
            max_steps=cfg.max_steps,
            per_device_train_batch_size=cfg.per_device_train_batch_size,
            gradient_checkpointing=False,
            bf16=torch.cuda.is_available(),
            use_cpu=not torch.cuda.is_available(),
            logging_steps=cfg.logging_steps,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
        ),
        train_dataset=Dataset.from_list(records),
        processing_class=tok,
        peft_config=LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
    )
    metrics = trainer.train().metrics
    trainer.model.save_pretrained(out / "adapter")
    wall = time.perf_counter() - start
    return trainer._total_train_tokens / metrics["train_runtime"], wall


def stillroom_sft(cfg) -> tuple[float, float]:
    from stillroom.train import train_sft

    start = time.perf_counter()
    m = train_sft(cfg).metrics
    return m["train_tokens_per_second"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (CPU only)")
    add_corpora_option(parser)
    args = parser.parse_args()

    import torch

    from stillroom.train import TrainConfig, resolve_base

    if not torch.cuda.is_available():
        torch.set_num_threads(args.threads)
    device = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"CPU x{args.threads} threads"
    )
    base = resolve_base(None)
    tmp = Path(tempfile.mkdtemp(prefix="train-bench-"))
    texts, where = prompts(args.steps * args.batch_size + 8, args.corpora)
    print(f"prompts: {where}")
    db = make_db(tmp / "h.duckdb", texts)
    results: dict[str, list[tuple[float, float]]] = {"plain TRL": [], "stillroom train_sft": []}
    for rep in range(args.repeats):
        cfg = TrainConfig(
            db=db,
            out=tmp / f"sft{rep}",
            base=str(base),
            eval_fraction=0.0,
            max_steps=args.steps,
            per_device_train_batch_size=args.batch_size,
            max_length=args.max_length,
            logging_steps=args.steps,
            progress=False,
            finish_reasons=("stop",),
            warmup=0.0,
        )
        runs = [
            ("plain TRL", lambda rep=rep, cfg=cfg: plain_trl(db, base, tmp / f"plain{rep}", cfg)),
            ("stillroom train_sft", lambda cfg=cfg: stillroom_sft(cfg)),
        ]
        for name, run in runs if rep % 2 == 0 else runs[::-1]:  # alternate who goes first
            results[name].append(run())
            gc.collect()
        print(
            f"repeat {rep}: " + ", ".join(f"{k} {v[-1][0]:.1f} tok/s" for k, v in results.items())
        )
    med = {k: statistics.median(t for t, _ in v) for k, v in results.items()}
    wall = {k: statistics.median(w for _, w in v) for k, v in results.items()}
    print(
        f"\ndevice: {device}; {args.steps} steps x batch {args.batch_size}, max_length "
        f"{args.max_length}, LoRA r=16 all-linear on SmolLM2-135M-Instruct, fp32"
        f"{' (bf16)' if torch.cuda.is_available() else ''}"
    )
    for k in results:
        print(f"{k:22s} train tokens/s {med[k]:8.1f}   end-to-end wall {wall[k]:6.1f} s")
    ratio = med["stillroom train_sft"] / med["plain TRL"]
    print(
        f"ratio stillroom/plain tokens/s: {ratio:.3f}  (overhead {100 * (1 - ratio):+.1f}%; "
        f"target <= 5%: {'met' if ratio >= 0.95 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
