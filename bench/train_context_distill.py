"""A small context-distillation run: the student's agreement with the teacher rises above the base's.

Teacher: SmolLM2-135M-Instruct prompted with a system prompt (a persona with a fixed
opening line), greedy, top-5 logprobs stored as an API returns them. Student: the same base
with a LoRA, trained with ``--drop-system`` (it never sees the system prompt), then
``evaluate_student`` on held-out prompts, base vs student, against the teacher's answers.

    .venv/bin/python bench/train_context_distill.py [--prompts 40] [--steps 16] [--kd-alpha 0.5] [--corpora DIR]

Prompts: ``--corpora``/chat.jsonl.gz (default ``../shared/corpora``) when present, else a
built-in list; the bench prints which.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _corpora import add_corpora_option, corpus_texts

SYSTEM = "You are Captain Byte, a pirate. Start every answer with 'Arr matey!' and keep it short."


def prompts(n: int, corpora: Path | None) -> tuple[list[str], str]:
    texts, where = corpus_texts(corpora, "chat.jsonl.gz")
    texts = [t.strip() for t in texts if 10 < len(t.strip()) < 120]
    if texts:
        return texts[:: max(1, len(texts) // n)][:n], f"{where}, {n} taken evenly"
    topics = ["the sea", "maps", "parrots", "gold", "storms", "ships", "islands", "rum"]
    return [f"Tell me one fact about {topics[i % 8]} (#{i})." for i in range(n)], where


def teacher_db(path: Path, base: Path, texts: list[str], new_tokens: int) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from stillroom.harvest import completion_row, write_completions

    tok = AutoTokenizer.from_pretrained(base)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(base).eval()
    rows = []
    for start in range(0, len(texts), 8):
        batch = texts[start : start + 8]
        convs = [
            [{"role": "system", "content": SYSTEM}, {"role": "user", "content": t}] for t in batch
        ]
        rendered = [
            tok.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in convs
        ]
        enc = tok(rendered, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=new_tokens,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
                pad_token_id=tok.pad_token_id,
            )
        gen = out.sequences[:, enc["input_ids"].shape[1] :]
        for b, conv in enumerate(convs):
            entries, ids = [], []
            for step, tid in enumerate(gen[b].tolist()):
                if tid in (tok.eos_token_id, tok.pad_token_id):
                    break
                logp = torch.log_softmax(out.scores[step][b].float(), -1)
                top = torch.topk(logp, 5)

                def entry(t: int, lp: float) -> dict:
                    text = tok.decode([t])
                    return {"token": text, "logprob": lp, "bytes": list(text.encode())}

                alts = [
                    entry(int(t), float(v)) for v, t in zip(top.values, top.indices, strict=True)
                ]
                entries.append({**entry(tid, float(logp[tid])), "top_logprobs": alts})
                ids.append(tid)
            finish = "stop" if len(ids) < new_tokens else "length"
            rows.append(
                completion_row(
                    prompt_id=f"c{start + b}",
                    messages=conv,
                    content=tok.decode(ids, skip_special_tokens=True),
                    top_logprobs=json.dumps(entries),
                    finish_reason=finish,
                    policy_id="self-hosted",
                    teacher_model="smollm2+system",
                )
            )
    return write_completions(path, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=40)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=20)
    parser.add_argument("--eval-limit", type=int, default=10)
    parser.add_argument("--kd-alpha", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=1)
    add_corpora_option(parser)
    args = parser.parse_args()

    import torch

    from stillroom.train import EvalConfig, TrainConfig, evaluate_student, resolve_base, train_sft

    if not torch.cuda.is_available():
        torch.set_num_threads(args.threads)
    base = resolve_base(None)
    tmp = Path(tempfile.mkdtemp(prefix="train-cd-"))
    t0 = time.perf_counter()
    texts, where = prompts(args.prompts, args.corpora)
    print(f"prompts: {where}")
    db = teacher_db(tmp / "teacher.duckdb", base, texts, args.new_tokens)
    t1 = time.perf_counter()
    result = train_sft(
        TrainConfig(
            db=db,
            out=tmp / "student",
            base=str(base),
            drop_system=True,
            finish_reasons=(),
            eval_fraction=0.25,
            max_steps=args.steps,
            per_device_train_batch_size=4,
            learning_rate=1e-3,
            max_length=160,
            logging_steps=10,
            progress=False,
            kd_alpha=args.kd_alpha,
        )
    )
    t2 = time.perf_counter()
    report = evaluate_student(
        EvalConfig(
            db=db,
            adapter=result.out,
            out=tmp / "eval.json",
            max_new_tokens=args.new_tokens,
            limit=args.eval_limit,
        )
    )
    t3 = time.perf_counter()
    print(
        f"teacher: {args.prompts} prompts in {t1 - t0:.0f}s; train: {args.steps} steps in "
        f"{t2 - t1:.0f}s (kd_alpha={args.kd_alpha}, mapped positions "
        f"{result.metrics['kd_mapped_positions']}); eval: {report['n_prompts']} held-out "
        f"prompts in {t3 - t2:.0f}s"
    )
    print(f"{'metric':20s} {'base':>8s} {'student':>8s}")
    for name in (
        "token_f1",
        "rouge_l",
        "exact_match",
        "format_adherence",
        "length_ratio",
        "teacher_token_loss",
    ):
        b, s = report["base"][name], report["student"][name]
        print(f"{name:20s} {b:8.3f} {s:8.3f}")
    gain = report["student"]["token_f1"] / max(report["base"]["token_f1"], 1e-9)
    print(
        f"ratio student/base token_f1: {gain:.2f}  "
        f"({'student agrees more' if gain > 1 else 'NO gain'})"
    )
    for ex in report["examples"][:2]:
        print(json.dumps({k: ex[k] for k in ("prompt", "teacher", "base", "student")})[:400])
    print(f"report: {tmp / 'eval.json'}")


if __name__ == "__main__":
    main()
