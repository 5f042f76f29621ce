"""What the code verifier's jail costs per answer, and what a /dev/shm filler leaves behind.

Runs the same small program (a solution and its asserts) ``--runs`` times through
``stillroom.curate.run_sandboxed`` (mount, PID, network and IPC namespaces, the read-only view
with its capped tmpfs, setpriv, rlimits) and, as the baseline in the same process, through a
plain unconfined ``python -I`` subprocess; prints median and minimum wall time of each and
their ratio. Then runs the answer that issue #28 found filling ``/dev/shm`` (40 files of 8 MB)
with the default limits and prints its reason and the host's ``Shmem`` before and after (other
processes on the machine move that figure too). Run:

    .venv/bin/python bench/curate_sandbox_overhead.py --runs 20
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from stillroom.curate import SandboxLimits, isolation, run_sandboxed

FILES = {
    "solution.py": "def add(a, b):\n    return a + b\n",
    "main.py": "import sys\nsys.path.insert(0, '.')\nfrom solution import add\nassert add(2, 3) == 5\n",
}
SHM_FILLER = "for i in range(40):\n    open(f'/dev/shm/x{i}', 'wb').write(b'x' * 8 * 1024 * 1024)\n"


def _unconfined(python: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for name, text in FILES.items():
            (Path(folder) / name).write_text(text)
        subprocess.run([python, "-I", "-B", "main.py"], cwd=folder, check=True)


def _sandboxed(python: str) -> None:
    result = run_sandboxed(FILES, "main.py")
    if not result.ok:
        raise SystemExit(f"the sandboxed run failed: {result.reason}")


def _shmem_mb() -> int:
    return int(re.search(r"Shmem:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    found = isolation()
    if found is None:
        raise SystemExit("no sandbox here (see stillroom.curate.sandbox_problem())")
    mode, python = found
    times: dict[str, list[float]] = {"unconfined python -I": [], f"sandboxed ({mode})": []}
    for _ in range(args.runs):  # interleaved, so machine load falls on both alike
        for name, run in zip(times, (_unconfined, _sandboxed), strict=True):
            start = time.perf_counter()
            run(python)
            times[name].append(time.perf_counter() - start)
    for name, values in times.items():
        print(f"{name:32s} median {statistics.median(values):.3f} s  min {min(values):.3f} s")
    base, jail = (statistics.median(v) for v in times.values())
    print(f"ratio sandboxed / unconfined (median): {jail / base:.2f}")
    before = _shmem_mb()
    result = run_sandboxed({"main.py": SHM_FILLER}, "main.py", SandboxLimits())
    print(
        f"/dev/shm filler: {result.reason!r}; host Shmem {before} MB before, {_shmem_mb()} MB after"
    )


if __name__ == "__main__":
    main()
