"""On-policy distillation vs ``train sft`` vs ``train sft`` + sparse KD, at equal teacher tokens.

Context distillation: the teacher is SmolLM2-135M-Instruct with a pirate system prompt, the
student the same base with no prompt. On-policy runs first against a loopback scoring teacher
(``tests/train/scoring_server.py``: ``/v1/completions`` echo+logprobs, one forward pass); its
``teacher_tokens_train`` (the teacher's prefill for training samples) is the budget. The SFT students train on the
teacher's greedy answers to as many train prompts as fit the same budget (prompt + output
tokens). Each student is measured on held-out prompts (same split rule as ``train sft``):
reverse KL against the teacher-with-prompt (nats/token, 4 samples at T=1 per prompt, fixed
seeds, 95% bootstrap over prompts) and pirate rate (greedy, "arr"/"matey" in the answer,
Wilson 95%).

    .venv/bin/python bench/train_onpolicy.py [--prompts 40] [--steps 12] [--per-step 8] \
        [--samples 2] [--new-tokens 32] [--threads 2] [--corpora DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _corpora import add_corpora_option
from train_context_distill import SYSTEM, prompts, teacher_db


def heldout_metrics(model, tok, teacher, texts, new_tokens, seed=0) -> dict:
    import numpy as np

    from stillroom.curate import wilson_interval
    from stillroom.train._onpolicy_model import (
        completion_logprobs,
        render_student,
        render_teacher,
        sample,
        sample_seed,
        teacher_messages,
    )

    kls, pirate = [], 0
    for text in texts:
        msgs = [{"role": "user", "content": text}]
        pids = render_student(tok, msgs)
        _, tids = render_teacher(tok, teacher_messages(msgs, SYSTEM))
        comps = sample(model, tok, pids, k=4, max_new_tokens=new_tokens, temperature=1.0,
                       seed=sample_seed(seed, "bench", text))  # fmt: skip
        ls = completion_logprobs(model, tok.pad_token_id, [(pids, c) for c in comps])
        lt = completion_logprobs(teacher, tok.pad_token_id, [(tids, c) for c in comps])
        kls.append(
            float(np.mean([np.mean(np.subtract(s, t)) for s, t in zip(ls, lt, strict=True)]))
        )
        import torch

        with torch.no_grad():
            out = model.generate(input_ids=torch.tensor([pids]), max_new_tokens=24, do_sample=False,
                                 pad_token_id=tok.pad_token_id)  # fmt: skip
        answer = tok.decode(out[0, len(pids) :], skip_special_tokens=True).lower()
        pirate += "arr" in answer or "matey" in answer
    boots = np.random.default_rng(seed).choice(kls, size=(2000, len(kls))).mean(axis=1)
    lo, hi = wilson_interval(pirate, len(texts))
    return {
        "reverse_kl": float(np.mean(kls)),
        "kl_ci95": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))],
        "pirate": pirate,
        "n": len(texts),
        "pirate_ci95": [lo, hi],
    }


def sft_rows_within(
    db: Path, out: Path, budget: int, tok, train_keys: set[str]
) -> tuple[Path, int]:
    """The harvest's train-prompt rows, in order, while prompt + output tokens fit ``budget``."""
    from stillroom.harvest import prompt_key, read_completions, write_completions

    kept, used = [], 0
    for row in read_completions(db):
        chat = json.loads(row.messages)
        if prompt_key([m for m in chat if m["role"] != "system"]) not in train_keys:
            continue
        rendered = tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        cost = len(tok(rendered, add_special_tokens=False)["input_ids"]) + len(
            tok(row.content, add_special_tokens=False)["input_ids"]
        )
        if used + cost > budget:
            break
        kept.append(row)
        used += cost
    return write_completions(out, kept), used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=40)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--per-step", type=int, default=8)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    add_corpora_option(parser)
    args = parser.parse_args()

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from stillroom.harvest import prompt_key
    from stillroom.train import OnPolicyConfig, TrainConfig, resolve_base, train_onpolicy, train_sft
    from stillroom.train._data import Example, split_by_prompt
    from tests.train.scoring_server import ScoringTeacher

    torch.set_num_threads(args.threads)
    base = resolve_base(None)
    tmp = Path(tempfile.mkdtemp(prefix="train-opd-"))
    texts, where = prompts(args.prompts, args.corpora)
    print(f"prompts: {where}; work dir {tmp}")
    (tmp / "p.jsonl").write_text("".join(json.dumps({"id": f"c{i}", "prompt": t}) + "\n"
                                         for i, t in enumerate(texts)))  # fmt: skip
    msgs = {t: [{"role": "user", "content": t}] for t in texts}
    ex = [Example(t, 0, msgs[t], [], prompt_key(msgs[t]), "", None, None, None) for t in texts]
    train, held = split_by_prompt(ex, eval_fraction=0.25, seed=0)
    tok = AutoTokenizer.from_pretrained(base)
    teacher = AutoModelForCausalLM.from_pretrained(base).eval()

    t0 = time.perf_counter()
    with ScoringTeacher(teacher, tok) as server:
        opd = train_onpolicy(OnPolicyConfig(
            prompts=tmp / "p.jsonl", db=tmp / "opd.duckdb", out=tmp / "opd",
            teacher_base_url=server.base_url, teacher_model="smollm2+system",
            policy="smollm2", teacher_system=SYSTEM, base=str(base), eval_fraction=0.25,
            steps=args.steps, prompts_per_step=args.per_step,
            samples_per_prompt=args.samples, max_new_tokens=args.new_tokens, progress=False,
        ))  # fmt: skip
    t1 = time.perf_counter()
    budget = opd.metrics["teacher_tokens_train"]  # the held-out metric's scoring not counted
    full = teacher_db(tmp / "teacher.duckdb", base, [e.prompt_id for e in train], args.new_tokens)
    db, used = sft_rows_within(full, tmp / "sft.duckdb", budget, tok, {e.prompt_key for e in train})
    t2 = time.perf_counter()
    students = {"onpolicy": opd.adapter_dir}
    for name, alpha in (("sft", 0.0), ("sft+kd", 0.5)):
        r = train_sft(TrainConfig(
            db=db, out=tmp / name, base=str(base), drop_system=True, finish_reasons=(),
            eval_fraction=0.0, num_train_epochs=3, per_device_train_batch_size=4,
            learning_rate=1e-3, max_length=160, progress=False, kd_alpha=alpha,
        ))  # fmt: skip
        students[name] = r.adapter_dir
    t3 = time.perf_counter()
    held_texts = [e.prompt_id for e in held]
    rows = {"base": heldout_metrics(teacher, tok, teacher, held_texts, args.new_tokens)}
    for name, adapter in students.items():
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter)
        rows[name] = heldout_metrics(model.eval(), tok, teacher, held_texts, args.new_tokens)
    t4 = time.perf_counter()
    print(f"teacher tokens: on-policy scored {budget}; SFT harvest used {used} "
          f"(prompt + output, {db})")  # fmt: skip
    print(f"time: on-policy {t1 - t0:.0f}s, harvest {t2 - t1:.0f}s, 2x sft {t3 - t2:.0f}s, "
          f"eval {t4 - t3:.0f}s; {len(train)} train / {len(held)} held-out prompts")  # fmt: skip
    print(f"{'student':10s} {'held-out reverse KL [95% CI]':32s} {'pirate rate [Wilson 95%]':28s}")
    for name, m in rows.items():
        kl = f"{m['reverse_kl']:.3f} [{m['kl_ci95'][0]:.3f}, {m['kl_ci95'][1]:.3f}]"
        pr = f"{m['pirate']}/{m['n']} [{m['pirate_ci95'][0]:.2f}, {m['pirate_ci95'][1]:.2f}]"
        print(f"{name:10s} {kl:32s} {pr:28s}")
    print("on-policy per-step training KL:", [round(v, 3) for v in opd.metrics["per_step"]])
    (tmp / "bench.json").write_text(json.dumps({"args": vars(args) | {"corpora": str(args.corpora)},
                                                "rows": rows, "budget": budget, "sft_used": used}))  # fmt: skip


if __name__ == "__main__":
    main()
