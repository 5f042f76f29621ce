"""Every benchmark in its quick mode, one after another (``make bench``).

Each bench prints its own figures and its ratio against a baseline run in the same
process; this runs them as separate processes, shows their output as it comes, and ends
with one line per bench: exit status and wall time. ``--full`` runs each with its own
defaults instead (tens of minutes on 2 cores), ``--only NAME...`` picks some.

    .venv/bin/python bench/run_all.py [--only startup harvest_overhead] [--full] [--list]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# name -> the arguments of its quick mode (a few minutes at most each on 2 cores)
QUICK: dict[str, list[str]] = {
    "startup": ["--quick"],
    "harvest_overhead": ["--n", "1000", "--repeat", "1"],
    "harvest_pacing": ["--seconds", "10"],
    "harvest_batch": ["--n", "10000"],
    "detect_speed": ["--rows", "200000"],
    "detect_quality": ["--seeds", "1000", "--scale", "0.5"],
    "detect_scale": ["--rows", "200000"],
    "detect_incremental": ["--scale", "0.3"],
    "curate_verifier_rates": [],
    "curate_speed": ["--rows", "100000", "--baseline-rows", "2000", "--datasketch-rows", "20000"],
    "curate_sandbox_overhead": ["--runs", "5"],
    "curate_scale": ["--rows", "50000", "--prefix-rows", "10000"],
    "curate_sketch_profile": ["--rows", "20000"],
    "curate_task_search": ["--n", "8"],
    "curate_answer_dedup": [
        "--workdir",
        "/tmp/stillroom-bench-answer-dedup",
        "--prompts",
        "8",
        "--samples",
        "3",
        "--max-tokens",
        "48",
    ],
    "curate_three_way": [
        "--workdir",
        "/tmp/stillroom-bench-three-way",
        "--samples",
        "1",
        "--epochs",
        "1",
    ],
    "train_throughput": ["--steps", "4", "--repeats", "1"],
    "train_context_distill": ["--prompts", "16", "--steps", "6", "--eval-limit", "4"],
    "train_onpolicy": ["--quick"],
    "teacher_scoring": ["--texts", "2", "--prompts-per-text", "1"],
    "teacher_throughput": ["--prompts", "4", "--max-tokens", "32"],
    "llama_builds": ["--repeats", "1"],
    "demo_behaviour": ["--prompts", "6", "--max-tokens", "32"],
    "demo_walltime": ["--quick"],
}


def run(name: str, args: list[str], timeout: float) -> tuple[int | str, float]:
    """Run ``bench/<name>.py`` with ``args``; (exit status or 'timeout', seconds)."""
    print(f"\n=== {name} {' '.join(args)}", flush=True)
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}
    start = time.perf_counter()
    try:
        status: int | str = subprocess.run(
            [sys.executable, str(HERE / f"{name}.py"), *args], cwd=ROOT, env=env, timeout=timeout
        ).returncode
    except subprocess.TimeoutExpired:
        status = "timeout"
    return status, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(QUICK), metavar="NAME")
    parser.add_argument("--full", action="store_true", help="each bench's own defaults")
    parser.add_argument("--list", action="store_true", help="print the benches and stop")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per bench")
    args = parser.parse_args()
    if args.list:
        for name, quick in QUICK.items():
            print(f"{name:<24} {' '.join(quick)}")
        return
    results = []
    for name in args.only or list(QUICK):
        results.append((name, *run(name, [] if args.full else QUICK[name], args.timeout)))
    print("\n=== summary")
    for name, status, seconds in results:
        print(f"{name:<24} {'ok' if status == 0 else f'FAILED ({status})':<14} {seconds:7.1f} s")
    if any(status != 0 for _, status, _ in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
