"""How alike must two answers be to count as one? The answer-dedup threshold, measured.

1. Real answers: the embedded SmolLM2-135M teacher (llama.cpp, ``--temperature``, 0.8 by
   default) answers ``--prompts`` of the shipped prompts (taken evenly across the file:
   Vicuna, self-instruct, GSM8K) ``--samples`` times each, as a harvest in ``--workdir``
   (reused when run again).
2. Labelled pairs. Near-duplicates, made from each real answer (seeded):
   - ``reformat``: the same words with markdown, line breaks and punctuation changed;
   - ``edit 2.5%`` / ``edit 5%``: that share of its words substituted, deleted or repeated;
   - ``trim``: its last sentence dropped (answers of two sentences or more);
   and distinct answers: every pair of samples of one prompt that are not equal after
   normalisation (independent samples of a sampled teacher, not edits of each other), and,
   harder, ``spliced`` pairs: sample A against the first half of A's words followed by the
   second half of sample B's (a sample that says the same thing for half its length, then
   something else, as low-temperature samples do).
3. For each threshold: ``stillroom.curate.find_duplicates`` on each pair (MinHash, 128 permutations,
   LSH, as curation runs it): recall per kind, false positives among the distinct pairs, and
   what share of the real answers curation's answer dedup (per prompt) drops.

    .venv/bin/python bench/curate_answer_dedup.py --workdir /tmp/answer-dedup
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from itertools import combinations
from pathlib import Path

from stillroom.curate import DedupConfig, find_duplicates
from stillroom.curate._text import normalise, shingles

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
FILLERS = ("really", "also", "just", "very", "then", "so", "quite", "still")


def harvest(workdir: Path, prompts: int, samples: int, max_tokens: int, temperature: float) -> Path:
    from stillroom.harvest import HarvestConfig, run_harvest
    from stillroom.teacher import POLICY_ID, TeacherConfig, serve_teacher

    lines = (ROOT / "stillroom/data/prompts.jsonl").read_text().splitlines()
    step = max(1, len(lines) // prompts)
    rows = [json.loads(line) for line in lines[::step][:prompts]]
    db = workdir / f"answers-t{temperature}.duckdb"
    with serve_teacher(TeacherConfig(logits_all=False)) as teacher:
        run = run_harvest(
            HarvestConfig(
                prompts=[{"id": r["id"], "prompt": r["prompt"]} for r in rows], db=db,
                base_url=teacher.base_url, model=teacher.model, policy=POLICY_ID,
                purpose="stillroom: measuring answer dedup", max_tokens=max_tokens,
                temperature=temperature, samples=samples, concurrency=2, request_timeout=300.0,
            ),
            progress=False,
        )  # fmt: skip
    print(f"harvest: {run.completed} new answers, {run.already_done} already stored")
    return db


def reformat(text: str, rng: random.Random) -> str:
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    out = [f"- **{s}**" if rng.random() < 0.5 else f"* {s}" for s in sentences]
    return "\n\n".join(out).replace(",", ";")


def edit(text: str, share: float, rng: random.Random) -> str:
    tokens = text.split()
    for _ in range(max(1, round(share * len(tokens)))):
        i = rng.randrange(len(tokens))
        kind = rng.randrange(3)
        if kind == 0:
            tokens[i] = rng.choice(FILLERS)
        elif kind == 1 and len(tokens) > 1:
            del tokens[i]
        else:
            tokens.insert(i, tokens[i])
    return " ".join(tokens)


def trim(text: str) -> str | None:
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    return " ".join(sentences[:-1]) if len(sentences) >= 2 else None


def splice(a: str, b: str) -> str:
    x, y = a.split(), b.split()
    return " ".join(x[: len(x) // 2] + y[len(y) // 2 :])


def jaccard(a: str, b: str) -> float:
    x, y = set(shingles(a, 3)), set(shingles(b, 3))
    return len(x & y) / len(x | y) if x | y else 1.0


def flagged(a: str, b: str, threshold: float) -> bool:
    return 1 in find_duplicates([a, b], ["a", "b"], DedupConfig(near_threshold=threshold), "answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/stillroom-answer-dedup"))
    parser.add_argument("--prompts", type=int, default=40)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.8)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    db = harvest(args.workdir, args.prompts, args.samples, args.max_tokens, args.temperature)
    from stillroom.harvest import read_completions

    answers: dict[str, list[str]] = {}
    for row in read_completions(db, with_logprobs=False):
        answers.setdefault(row.prompt_id, []).append(row.content or "")
    texts = [t for group in answers.values() for t in group if t.strip()]
    words = sorted(len(t.split()) for t in texts)
    print(
        f"{len(texts)} real answers to {len(answers)} prompts, median {words[len(words) // 2]} words"
    )

    rng = random.Random(0)
    pairs: dict[str, list[tuple[str, str]]] = {"reformat": [], "edit 2.5%": [], "edit 5%": [],
                                              "trim": []}  # fmt: skip
    for text in texts:
        pairs["reformat"].append((text, reformat(text, rng)))
        pairs["edit 2.5%"].append((text, edit(text, 0.025, rng)))
        pairs["edit 5%"].append((text, edit(text, 0.05, rng)))
        if (short := trim(text)) is not None:
            pairs["trim"].append((text, short))
    distinct = [
        (a, b)
        for group in answers.values()
        for a, b in combinations(group, 2)
        if normalise(a) != normalise(b)
    ]
    spliced = [(a, splice(a, b)) for a, b in distinct]
    identical = sum(
        normalise(a) == normalise(b) for g in answers.values() for a, b in combinations(g, 2)
    )
    print(
        f"{len(distinct)} distinct sample pairs of one prompt ({identical} identical pairs left out)"
    )
    for kind, got in {**pairs, "distinct": distinct, "spliced": spliced}.items():
        sims = sorted(jaccard(a, b) for a, b in got)
        if sims:
            print(f"  3-gram Jaccard, {kind:9s}: median {sims[len(sims) // 2]:.2f}, "
                  f"10th pct {sims[len(sims) // 10]:.2f}, max {sims[-1]:.2f}")  # fmt: skip

    print("\n| threshold | " + " | ".join(f"{k} ({len(v)})" for k, v in pairs.items())
          + f" | distinct flagged ({len(distinct)}) | spliced flagged ({len(spliced)})"
          " | precision | real answers dropped |")  # fmt: skip
    print("|---" * (len(pairs) + 5) + "|")
    examples = []
    for t in THRESHOLDS:
        hits = {k: sum(flagged(a, b, t) for a, b in v) for k, v in pairs.items()}
        false = [(a, b) for a, b in distinct if flagged(a, b, t)]
        if t == min(THRESHOLDS):
            examples = false[:2]
        halves = sum(flagged(a, b, t) for a, b in spliced)
        tp = sum(hits.values())
        precision = tp / (tp + len(false) + halves) if tp + len(false) + halves else 1.0
        dropped = sum(
            len(find_duplicates(g, [str(i) for i in range(len(g))], DedupConfig(near_threshold=t)))
            for g in answers.values()
        )
        cells = " | ".join(f"{hits[k] / len(v):.0%}" for k, v in pairs.items() if v)
        print(f"| {t} | {cells} | {len(false)} | {halves} | {precision:.3f} | {dropped} / {len(texts)} = "
              f"{dropped / len(texts):.1%} |")  # fmt: skip
    for a, b in examples:
        same = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(a))
        print(f"\ndistinct pair flagged at {min(THRESHOLDS)} (Jaccard {jaccard(a, b):.2f}, "
              f"{len(a)} and {len(b)} chars, the same for the first {same}):\n"
              f"  A: ...{a[same : same + 120]!r}\n  B: ...{b[same : same + 120]!r}")  # fmt: skip
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
