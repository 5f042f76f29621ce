"""The two settings of ``bench/train_onpolicy.py``: prompts held out by family, and the metrics.

- **context**: families are the sources of ``chat.jsonl.gz`` (``../shared/corpora``): students
  train on prompts of ``TRAIN_FAMILIES``; measured on unseen prompts of those families
  (in-family) and on the other families (held-out family). Built-in fallback: two wordings.
- **addition**: "What is A + B?" (the curation story's task). The teacher is the story's
  verified-SFT student, merged; students train on additions the teacher never saw, and are
  measured on other additions in the same wording (in-family) and in another wording,
  "How much is A plus B?" (held-out family).
"""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path
from typing import Any

TRAIN_FAMILIES = ("hh-rlhf/harmless-base", "lmsys-chat-1000")
OTHER_WORDING = "How much is {a} plus {b}?"


# -- context distillation --------------------------------------------------------------------
def context_families(
    corpora: Path | None, n_train: int, n_eval: int, seed: int = 0
) -> tuple[list[str], dict[str, list[str]], str]:
    """(train texts, {"in-family": [...], "held-out family": [...]}, where they came from)."""
    path = None if corpora is None else corpora / "chat.jsonl.gz"
    rng = random.Random(seed)
    if path is not None and path.is_file():
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        rows = [r for r in rows if 10 < len(r["text"].strip()) < 120]
        inside = [r["text"].strip() for r in rows if r["source"] in TRAIN_FAMILIES]
        outside = [r["text"].strip() for r in rows if r["source"] not in TRAIN_FAMILIES]
        rng.shuffle(inside)
        rng.shuffle(outside)
        where = (f"{path}: train families {', '.join(TRAIN_FAMILIES)}; held-out families "
                 f"the others ({len(outside)} prompts of 10-120 characters)")  # fmt: skip
    else:
        topics = ["the sea", "maps", "parrots", "gold", "storms", "ships", "islands", "rum"]
        inside = [f"Tell me one fact about {topics[i % 8]} (#{i})." for i in range(200)]
        outside = [f"What should a beginner know about {topics[i % 8]}? ({i})" for i in range(99)]
        where = f"built-in prompts ({path} not found): two wordings as the two families"
    evals = {"in-family": inside[n_train : n_train + n_eval], "held-out family": outside[:n_eval]}
    return inside[:n_train], evals, where


def context_metrics(model, tok, teacher, texts, system, new_tokens, seed=0) -> dict:
    """Reverse KL to the teacher-with-prompt (4 samples at T=1 per prompt, bootstrap 95%)
    and pirate rate (greedy, "arr"/"matey", Wilson 95%)."""
    import numpy as np
    import torch

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
        _, tids = render_teacher(tok, teacher_messages(msgs, system))
        comps = sample(model, tok, pids, k=4, max_new_tokens=new_tokens, temperature=1.0,
                       seed=sample_seed(seed, "bench", text))  # fmt: skip
        ls = completion_logprobs(model, tok.pad_token_id, [(pids, c) for c in comps])
        lt = completion_logprobs(teacher, tok.pad_token_id, [(tids, c) for c in comps])
        kls.append(
            float(np.mean([np.mean(np.subtract(s, t)) for s, t in zip(ls, lt, strict=True)]))
        )
        with torch.no_grad():
            out = model.generate(input_ids=torch.tensor([pids]), max_new_tokens=24,
                                 do_sample=False, pad_token_id=tok.pad_token_id)  # fmt: skip
        answer = tok.decode(out[0, len(pids) :], skip_special_tokens=True).lower()
        pirate += "arr" in answer or "matey" in answer
    boots = np.random.default_rng(seed).choice(kls, size=(2000, len(kls))).mean(axis=1)
    return {
        "reverse_kl": float(np.mean(kls)),
        "kl_ci95": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))],
        "pirate": pirate,
        "n": len(texts),
        "pirate_ci95": list(wilson_interval(pirate, len(texts))),
    }


# -- the addition task ----------------------------------------------------------------------
def addition_teacher(work: Path, quick: bool) -> tuple[Path, list[dict], dict[str, str]]:
    """The curation story's verified-SFT student, merged (``work/verified/merged``): its
    harvest, curation and training as ``stillroom demo --quick`` runs them (kept when done).
    Returns (merged dir, the teacher's prompts, every addition's reference)."""
    from dataclasses import replace

    from stillroom._demo_curation import (
        QUICK_CURATION,
        addition_prompts,
        curate_sets,
        harvest_additions,
        train_on,
    )

    s = replace(QUICK_CURATION, prompts=16, samples=1, max_steps=2) if quick else QUICK_CURATION
    work.mkdir(parents=True, exist_ok=True)
    rows, refs = addition_prompts(s.prompts)
    db = work / "harvest.duckdb"
    if not (work / "verified" / "merged").is_dir():
        harvest_additions(db, rows, s, progress=False)
        curate_sets(db, refs, unverified=False)
        train_on(db, work / "verified", "verified", None, s, merge=True)
    return work / "verified" / "merged", rows, addition_prompts(225)[1]


def addition_split(
    teacher_rows: list[dict], n_train: int, n_eval: int
) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
    """Train texts from additions the teacher never saw; evaluation (text, reference) pairs
    on other unseen additions, in the task's wording and in :data:`OTHER_WORDING`."""
    from stillroom._demo_curation import addition_prompts

    seen = {r["prompt"] for r in teacher_rows}
    unseen = [r["prompt"] for r in addition_prompts(225)[0] if r["prompt"] not in seen]
    train, held = unseen[:n_train], unseen[n_train : n_train + n_eval]
    pairs = [tuple(map(int, re.findall(r"\d+", t))) for t in held]
    evals = {
        "in-family": [(t, str(a + b)) for t, (a, b) in zip(held, pairs, strict=True)],
        "held-out family": [(OTHER_WORDING.format(a=a, b=b), str(a + b)) for a, b in pairs],
    }
    return train, evals


def greedy_answers(model, tok, texts: list[str], max_new_tokens: int = 12) -> list[str]:
    """Greedy answers without a system prompt, batched (left padding)."""
    import torch

    tok.padding_side = "left"
    out: list[str] = []
    for start in range(0, len(texts), 16):
        batch = [
            tok.apply_chat_template([{"role": "user", "content": t}], tokenize=False,
                                    add_generation_prompt=True)
            for t in texts[start : start + 16]
        ]  # fmt: skip
        enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id)  # fmt: skip
        width = enc["input_ids"].shape[1]
        out += [tok.decode(g[width:], skip_special_tokens=True) for g in gen]
    return out


def addition_verdicts(model, tok, pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The math verifier's verdict on each greedy answer (as ``train eval --task math``)."""
    from stillroom.curate import MathVerifier

    verifier = MathVerifier()
    answers = greedy_answers(model, tok, [t for t, _ in pairs])
    return [
        {"passed": bool(verifier.verify(t, a, ref).passed), "answer": a}
        for (t, ref), a in zip(pairs, answers, strict=True)
    ]
