"""Does verifying the teacher's answers help the student? base / unverified / verified, measured.

The task, chosen with bench/curate_task_search.py: "What is A + B?" with A in 1..25 and B in
1..9 (225 prompts). The embedded SmolLM2-135M teacher answers with a few-shot system prompt
at temperature 0.8, ``--samples`` answers per prompt, through the real harvest. Then:

1. curate: set "verified" keeps one verified answer per prompt (math verifier against the
   reference A+B); set "unverified" keeps the first answer per prompt, unchecked. Answer
   dedup is off (a short answer like "12" is right for many prompts);
2. train two LoRA students without the system prompt, on the same number N of training
   rows: ``--curated verified`` and ``--curated unverified --max-rows N`` (prompt ids are
   shuffled, so the first N rows are a random N), same steps and settings;
3. ``train eval --task math`` on the held-out half of the prompts (split by prompt): base
   and students greedy, teacher = its stored first sample (sampled, with the few-shot
   system prompt the students do not get). Wilson 95% intervals; exact McNemar between
   each pair of models.

Prints the three-way table. Each stage reuses what a previous run in the same ``--workdir``
finished (the harvest resumes; a trained adapter and an eval.json are kept), so a run that
was stopped can be run again. Run (about 40 min on 2 shared cores, most of it training):

    .venv/bin/python bench/curate_three_way.py --workdir /tmp/three-way
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from curate import CurateConfig, SamplingConfig, curate_store, mcnemar_exact, wilson_interval

FEW_SHOT = "Answer with the number only.\nQ: What is 2 + 3?\nA: 5\nQ: What is 4 + 1?\nA: 5"


def prompts(seed: int = 0) -> tuple[list[dict], dict[str, str]]:
    pairs = [(a, b) for a in range(1, 26) for b in range(1, 10)]
    random.Random(seed).shuffle(pairs)
    rows = [{"id": f"p{i:03d}", "prompt": f"What is {a} + {b}?"} for i, (a, b) in enumerate(pairs)]
    return rows, {f"p{i:03d}": str(a + b) for i, (a, b) in enumerate(pairs)}


def harvest(db: Path, rows: list[dict], samples: int, max_tokens: int) -> dict:
    from harvest import HarvestConfig, run_harvest
    from stillroom.teacher import POLICY_ID, TeacherConfig, serve_teacher

    with serve_teacher(TeacherConfig(logits_all=False)) as teacher:
        run = run_harvest(
            HarvestConfig(
                prompts=rows, db=db, base_url=teacher.base_url, model=teacher.model,
                policy=POLICY_ID, purpose="stillroom bench: curation three-way", system=FEW_SHOT,
                max_tokens=max_tokens, temperature=0.8, samples=samples, concurrency=4,
                request_timeout=300.0,
            ),
            progress=False,
        )  # fmt: skip
    return {"answers": run.completed, "failed": run.failed, "elapsed_s": round(run.elapsed_s, 1)}


def train(db: Path, out: Path, curated: str, max_rows: int | None, epochs: float) -> dict:
    from train import TrainConfig, train_sft

    if (out / "metrics.json").exists():  # trained by an earlier run
        m = json.loads((out / "metrics.json").read_text())
        return {
            "rows": m["data"]["train_rows"],
            "steps": m["global_step"],
            "train_loss": m.get("train_loss"),
        }

    result = train_sft(
        TrainConfig(
            db=db, out=out, curated=curated, max_rows=max_rows, drop_system=True,
            reasoning="drop", finish_reasons=("stop", "length"), eval_fraction=0.5, seed=0,
            num_train_epochs=epochs, per_device_train_batch_size=8, learning_rate=5e-4,
            lr_scheduler_type="constant_with_warmup", warmup=0.1, max_length=128,
            logging_steps=5, progress=False, name=f"add-{curated}",
        )
    )  # fmt: skip
    m = result.metrics
    return {
        "rows": m["data"]["train_rows"],
        "steps": m["global_step"],
        "train_loss": m.get("train_loss"),
    }


def evaluate(db: Path, adapter: Path, refs: Path, max_tokens: int) -> dict:
    from train import EvalConfig, evaluate_student

    if (adapter / "eval.json").exists():  # evaluated by an earlier run
        return json.loads((adapter / "eval.json").read_text())["task"]

    return evaluate_student(
        EvalConfig(db=db, adapter=adapter, out=adapter / "eval.json", task="math",
                   references=refs, max_new_tokens=max_tokens, batch_size=16)
    )["task"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=12)
    parser.add_argument("--epochs", type=float, default=3.0)
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    db, refs_path = work / "harvest.duckdb", work / "references.jsonl"
    rows, refs = prompts()
    refs_path.write_text(
        "".join(json.dumps({"id": k, "answer": v}) + "\n" for k, v in refs.items())
    )
    t0 = time.monotonic()
    print("harvest:", harvest(db, rows, args.samples, args.max_tokens), flush=True)

    one = SamplingConfig(keep="one")
    v = curate_store(
        db, "verified", references=refs, config=CurateConfig(answer_dedup=None, sampling=one)
    )
    u = curate_store(
        db,
        "unverified",
        references=refs,
        config=CurateConfig(verifier=None, answer_dedup=None, sampling=one),
    )
    print(
        "curate verified:",
        v.summary["by_stage"],
        "| unverified:",
        u.summary["by_stage"],
        flush=True,
    )

    tv = train(db, work / "verified", "verified", None, args.epochs)
    n = tv["rows"]
    tu = train(db, work / "unverified", "unverified", n, args.epochs)
    print("train verified:", tv, "| unverified:", tu, flush=True)
    ev = evaluate(db, work / "verified", refs_path, args.max_tokens)
    eu = evaluate(db, work / "unverified", refs_path, args.max_tokens)

    table = {
        "base (greedy, no system prompt)": ev["verdicts"]["base"],
        f"student, {n} unverified answers": eu["verdicts"]["student"],
        f"student, {n} verified answers": ev["verdicts"]["student"],
        "teacher (stored first sample, T=0.8, few-shot system)": ev["verdicts"]["teacher"],
    }
    print(f"\nheld-out prompts: {len(ev['verdicts']['base'])} (verifier {ev['verifier']})")
    for name, verdicts in table.items():
        k, total = sum(x["passed"] for x in verdicts), len(verdicts)
        low, high = wilson_interval(k, total)
        print(f"  {name:56s} {k:3d}/{total} = {k / total:5.1%}  95% [{low:.3f}, {high:.3f}]")
    names = list(table)
    print("paired (exact McNemar):")
    for i in range(3):
        for j in range(i + 1, 3):
            a, b = table[names[i]], table[names[j]]
            only_a = sum(x["passed"] and not y["passed"] for x, y in zip(a, b, strict=True))
            only_b = sum(y["passed"] and not x["passed"] for x, y in zip(a, b, strict=True))
            print(
                f"  {names[i][:30]:30s} vs {names[j][:30]:30s} only-first {only_a:3d}, only-second {only_b:3d}, p = {mcnemar_exact(only_a, only_b):.3g}"
            )
    print(f"total {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
