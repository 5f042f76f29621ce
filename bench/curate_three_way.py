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

Prints the three-way table. The logic lives in :mod:`stillroom._demo_curation`, which
``stillroom demo`` runs too. Each stage reuses what a previous run in the same ``--workdir``
finished (the harvest resumes; a trained adapter and an eval.json are kept), so a run that
was stopped can be run again. Run (about 40 min on 2 shared cores, most of it training):

    .venv/bin/python bench/curate_three_way.py --workdir /tmp/three-way
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from stillroom._demo_curation import CurationSettings, run_curation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=12)
    parser.add_argument("--epochs", type=float, default=3.0)
    args = parser.parse_args()
    t0 = time.monotonic()
    settings = CurationSettings(
        samples=args.samples, max_tokens=args.max_tokens, epochs=args.epochs
    )
    f = run_curation(args.workdir, settings)
    print("harvest:", f["harvest"], "| trained:", f["trained"])
    for name, summary in f["curated"].items():
        print(f"curate {name}:", summary["by_stage"])
    print(f"\nheld-out prompts: {f['held_out_prompts']} (verifier {f['verifier']})")
    for name, r in f["rows"].items():
        low, high = r["wilson95"]
        print(f"  {name:56s} {r['passed']:3d}/{r['n']} = {r['accuracy']:5.1%}  "
              f"95% [{low:.3f}, {high:.3f}]")  # fmt: skip
    print("paired (exact McNemar):")
    for p in f["paired"]:
        print(f"  {p['a'][:30]:30s} vs {p['b'][:30]:30s} only-first {p['only_a']:3d}, "
              f"only-second {p['only_b']:3d}, p = {p['p_value']:.3g}")  # fmt: skip
    print(f"total {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
