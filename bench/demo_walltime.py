"""Demo wall time, per step, against its budget (20 min full, 5 min ``--quick`` on 2 cores).

    .venv/bin/python bench/demo_walltime.py --quick      # ~3-5 min
    .venv/bin/python bench/demo_walltime.py              # the full demo, ~15-20 min

Runs :func:`stillroom.demo.run_demo` in a fresh temporary directory (the converted base model
in ``~/.cache/stillroom`` is reused; the first run ever converts it once, ~1 min) and prints
each step's wall time, the total, and the ratio of the total to the budget (< 1 is within it).
It also prints the figures the demo measured (teacher tokens/s during harvest, behaviour and
agreement of base and student), so one run gives the README's demo numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from rich.console import Console

from stillroom.demo import run_demo

BUDGET_S = {"quick": 5 * 60, "full": 20 * 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"stillroom-demo-{mode}-"))
    console = Console(quiet=True)
    load_before = os.getloadavg()
    result = run_demo(workdir, quick=args.quick, console=console, progress=False)
    total = result.timings_s["total"]
    print(f"demo {mode} on {os.cpu_count()} cores, workdir {workdir}; load average "
          f"{load_before[0]:.1f} before, {os.getloadavg()[1]:.1f} over the last 5 min after")  # fmt: skip
    print(f"  {'step':10s} {'wall':>9s} {'CPU':>9s}  (self + children; quiet wall >= CPU / cores)")
    for step, seconds in result.timings_s.items():
        print(f"  {step:10s} {seconds:7.1f} s {result.cpu_s.get(step, 0):7.1f} s")
    print(f"total {total:.0f} s = {total / 60:.1f} min; budget {BUDGET_S[mode] / 60:.0f} min; "
          f"ratio {total / BUDGET_S[mode]:.2f}")  # fmt: skip
    s = result.summary
    figures = {
        "torch_threads": s.get("torch_threads"),
        "harvest_tokens": s["harvest"]["completion_tokens"],
        "harvest_tokens_per_s": s["harvest"]["tokens_per_s"],
        "teacher_behaviour": s["teacher"]["behaviour"],
        "base": {k: s["base"].get(k) for k in ("behaviour", "token_f1", "rouge_l")},
        "student": {k: s["student"].get(k) for k in ("behaviour", "token_f1", "rouge_l")},
        "curation": {k: s["curation"][k] for k in ("rows", "paired", "trained", "harvest")}
        if "curation" in s
        else None,
        "detect": s["detect"],
    }
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
