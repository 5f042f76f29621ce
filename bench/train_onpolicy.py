"""On-policy distillation vs ``train sft`` (with and without sparse KD) at equal teacher tokens.

The students start from the base (SmolLM2-135M-Instruct) and learn from one teacher served
by ``stillroom teacher serve --backend transformers``; each arm spends the same teacher tokens
as the teacher's ``usage`` reports them: the prefill of every scoring request (on-policy),
prompt + output of every harvested answer (SFT; the sparse-KD arm, ``train sft --kd-alpha``,
learns from the same answers and the top-k log-probabilities the teacher returned with them).
See ``bench/_onpolicy_arms.py``.

- ``--setting context``: context distillation. The teacher is the base with the pirate
  system prompt; the students get no prompt. Prompts held out by family: the students train
  on two sources of ``chat.jsonl.gz`` and are measured on unseen prompts of those sources
  (in-family) and on the other sources (held-out family): reverse KL to the
  teacher-with-prompt (4 samples at T=1 per prompt, bootstrap 95%) and pirate rate (Wilson).
- ``--setting addition``: the teacher is the curation story's verified-SFT student, merged
  (it beats the base); students train on additions the teacher never saw and are measured on
  other additions in the same wording and in another ("How much is A plus B?"): accuracy
  (math verifier, greedy) with Wilson 95% intervals, exact McNemar between every pair.

    nice -n 10 .venv/bin/python bench/train_onpolicy.py [--setting both] [--train-prompts 64] \
        [--eval-prompts 40] [--per-step 8] [--samples 2] [--new-tokens 32] [--threads 1] \
        [--kd-alpha 0.5]
    .venv/bin/python bench/train_onpolicy.py --quick      # bench/run_all.py: tiny sizes
    .venv/bin/python bench/train_onpolicy.py --setting addition --teacher-only  # base vs teacher
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _corpora import add_corpora_option
from _onpolicy_arms import ArmSettings, run_arms, token_line
from _onpolicy_tasks import (
    addition_split,
    addition_teacher,
    addition_verdicts,
    context_families,
    context_metrics,
)
from train_context_distill import SYSTEM


def _student(base: Path, adapter: Path | None):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    return (PeftModel.from_pretrained(model, adapter) if adapter else model).eval()


def context(args, s: ArmSettings, work: Path) -> dict:
    from transformers import AutoTokenizer

    from stillroom.train import resolve_base

    base = resolve_base(None)
    train, evals, where = context_families(args.corpora, args.train_prompts, args.eval_prompts)
    print(f"[context] prompts: {where}; {len(train)} train, "
          + ", ".join(f"{len(v)} {k}" for k, v in evals.items()), flush=True)  # fmt: skip
    arms = run_arms(base, SYSTEM, train, work / "context", s)
    print("[context]", token_line(arms), flush=True)
    tok, teacher = AutoTokenizer.from_pretrained(base), _student(base, None)
    table = {}
    for name, adapter in {"base": None, **arms["adapters"]}.items():
        model = teacher if adapter is None else _student(base, adapter)
        table[name] = {
            family: context_metrics(model, tok, teacher, texts, SYSTEM, s.new_tokens)
            for family, texts in evals.items()
        }
    print(f"{'student':10s} {'family':16s} {'reverse KL [95% CI]':28s} pirate [Wilson 95%]")
    for name, by in table.items():
        for family, m in by.items():
            kl = f"{m['reverse_kl']:.3f} [{m['kl_ci95'][0]:.3f}, {m['kl_ci95'][1]:.3f}]"
            pr = f"{m['pirate']}/{m['n']} [{m['pirate_ci95'][0]:.2f}, {m['pirate_ci95'][1]:.2f}]"
            print(f"{name:10s} {family:16s} {kl:28s} {pr}")
    print("on-policy per-step training KL:", [round(v, 3) for v in arms["per_step_kl"]])
    return {"where": where, "tokens": arms["tokens"], "table": table,
            "onpolicy_steps": arms["onpolicy_steps"], "sft_rows": arms["sft_rows"]}  # fmt: skip


def addition(args, s: ArmSettings, work: Path) -> dict:
    from transformers import AutoTokenizer

    from stillroom._demo_curation import score_rows
    from stillroom.train import resolve_base

    base = resolve_base(None)
    t0 = time.perf_counter()
    teacher_dir, teacher_rows, _ = addition_teacher(work / "teacher", args.quick)
    print(f"[addition] teacher: verified-SFT student merged at {teacher_dir} "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
    train, evals = addition_split(teacher_rows, args.train_prompts, args.eval_prompts)
    models = {"base": (base, None), "teacher (merged verified student)": (teacher_dir, None)}
    arms = {"tokens": None, "onpolicy_steps": 0, "sft_rows": 0}
    if not args.teacher_only:  # --teacher-only: does the teacher beat the base? (no arms)
        arms = run_arms(teacher_dir, None, train, work / "addition", s)
        print("[addition]", token_line(arms), flush=True)
        models |= {name: (base, adapter) for name, adapter in arms["adapters"].items()}
    tok = AutoTokenizer.from_pretrained(base)
    verdicts = {family: {} for family in evals}
    for name, (model_dir, adapter) in models.items():
        model = _student(model_dir, adapter)
        for family, pairs in evals.items():
            verdicts[family][name] = addition_verdicts(model, tok, pairs)
    out = {"tokens": arms["tokens"], "onpolicy_steps": arms["onpolicy_steps"],
           "sft_rows": arms["sft_rows"], "train_prompts": len(train), "families": {}}  # fmt: skip
    for family, by in verdicts.items():
        scored = score_rows(by)  # Wilson per model, exact McNemar per pair
        out["families"][family] = scored
        print(f"[addition] {family}: {len(evals[family])} prompts")
        for name, r in scored["rows"].items():
            lo, hi = r["wilson95"]
            print(f"  {name:36s} {r['passed']:3d}/{r['n']} = {r['accuracy']:5.1%}  "
                  f"95% [{lo:.3f}, {hi:.3f}]")  # fmt: skip
        for p in scored["paired"]:
            print(f"  McNemar {p['a']} vs {p['b']}: only-first {p['only_a']}, "
                  f"only-second {p['only_b']}, p = {p['p_value']:.3g}")  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=("context", "addition", "both"), default="both")
    parser.add_argument("--train-prompts", type=int, default=64)
    parser.add_argument("--eval-prompts", type=int, default=40)
    parser.add_argument("--per-step", type=int, default=8)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--kd-alpha", type=float, default=0.5,
                        help="the sparse-KD arm's weight (0: no KD arm)")  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (bench/run_all.py)")
    parser.add_argument("--teacher-only", action="store_true",
                        help="addition: build the teacher, score it and the base only")  # fmt: skip
    add_corpora_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.train_prompts, args.eval_prompts = 6, 2
        args.per_step, args.new_tokens = 2, 8
    s = ArmSettings(per_step=args.per_step, samples=args.samples, new_tokens=args.new_tokens,
                    threads=args.threads, sft_epochs=1.0 if args.quick else 3.0,
                    sft_warmup=0.0 if args.quick else 0.03,
                    kd_alpha=args.kd_alpha,
                    max_steps=2 if args.quick else None)  # fmt: skip

    import torch

    torch.set_num_threads(args.threads)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="train-opd-"))
    print(f"work dir {work}; {vars(args)}", flush=True)
    results, t0 = {}, time.perf_counter()
    if args.setting in ("context", "both"):
        results["context"] = context(args, s, work)
    if args.setting in ("addition", "both"):
        # answers are a number: the curation story's 12 tokens
        results["addition"] = addition(args, replace(s, new_tokens=min(s.new_tokens, 12)), work)
    print(f"total {time.perf_counter() - t0:.0f} s")
    record = {"args": {k: str(v) for k, v in vars(args).items()}, "settings": asdict(s)}
    (work / "bench.json").write_text(json.dumps(record | results, indent=1, default=str))


if __name__ == "__main__":
    main()
