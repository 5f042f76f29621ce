"""Start-up benchmark: ``stillroom --help``, each ``stillroom <pkg> --help``, and the time
from starting ``stillroom harvest run`` to its first request arriving at a loopback server.

Targets: every ``--help`` <= 1.0 s, first request <= 1.5 s. Each figure is the median of
``--repeat`` fresh processes, printed beside a bare ``python -c pass`` run in the same
process (the interpreter's own start-up on this machine, under the same load) and the
difference between them (what stillroom's imports cost).

    .venv/bin/python bench/startup.py [--repeat 7] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "stillroom.cli"]
PACKAGES = ("harvest", "policies", "train", "detect", "teacher")
HELP_TARGET_S = 1.0
FIRST_REQUEST_TARGET_S = 1.5


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


def wall(argv: list[str]) -> float:
    """Seconds from spawning ``argv`` to its exit (output discarded; it must succeed)."""
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def first_request(repeat: int) -> list[float]:
    """Seconds from spawning ``harvest run`` to the fake provider counting its first request."""
    from stillroom.harvest.testing import FakeProvider

    times = []
    with tempfile.TemporaryDirectory() as tmp, FakeProvider() as fake:
        prompts = Path(tmp) / "p.jsonl"
        prompts.write_text("".join(json.dumps({"prompt": f"q {i}"}) + "\n" for i in range(20)))
        for i in range(repeat):
            seen = fake.stats()["total"]
            argv = [*CLI, "harvest", "run", "--prompts", str(prompts),
                    "--db", str(Path(tmp) / f"h{i}.duckdb"), "--base-url", fake.base_url,
                    "--model", "m", "--policy", "self-hosted", "--no-progress"]  # fmt: skip
            start = time.perf_counter()
            proc = subprocess.Popen(argv, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL)
            while fake.stats()["total"] == seen and proc.poll() is None:
                time.sleep(0.002)
            times.append(time.perf_counter() - start)
            if proc.wait(60) != 0:
                raise SystemExit(f"harvest run exited {proc.returncode}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="fresh processes per figure")
    parser.add_argument("--quick", action="store_true", help="3 processes per figure")
    args = parser.parse_args()
    repeat = 3 if args.quick else args.repeat

    wall([*CLI, "--help"])  # warm the file cache and .pyc files first
    rows: list[tuple[str, list[float], float | None]] = [
        ("python -c pass", [wall([sys.executable, "-c", "pass"]) for _ in range(repeat)], None)
    ]
    for cmd in ([], *([p] for p in PACKAGES)):
        label = " ".join(["stillroom", *cmd, "--help"])
        rows.append((label, [wall([*CLI, *cmd, "--help"]) for _ in range(repeat)], HELP_TARGET_S))
    rows.append(
        ("stillroom harvest run: 1st request", first_request(repeat), FIRST_REQUEST_TARGET_S)
    )

    base = statistics.median(rows[0][1])
    print(f"start-up, median of {repeat} fresh processes ({os.cpu_count()} cores, load shared)")
    print(f"{'command':<38} {'median s':>9} {'min s':>7} {'- python':>9} {'x python':>9}  target")
    failed = []
    for label, times, target in rows:
        med = statistics.median(times)
        verdict = "" if target is None else ("ok" if med <= target else "MISSED")
        if verdict == "MISSED":
            failed.append(label)
        print(
            f"{label:<38} {med:>9.3f} {min(times):>7.3f} {med - base:>9.3f} {med / base:>9.1f}"
            f"  {f'<= {target:.1f} s {verdict}' if target else ''}"
        )
    if failed:
        print(f"missed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
