"""The CLI's import graph: listing commands loads no heavy library (timings: bench/startup.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What the commands load inside themselves, never at start-up (the guide's heavy imports,
# the data libraries that cost a quarter second each, and what detect and train may add:
# graph, MinHash and embedding libraries).
HEAVY = (
    "sklearn",
    "scipy",
    "torch",
    "transformers",
    "trl",
    "peft",
    "datasets",
    "accelerate",
    "openai",
    "pandas",
    "pyarrow",
    "numpy",
    "networkx",
    "datasketch",
    "rensa",
    "pyspark",
    "sqlglot",
    "sentence_transformers",
    "math_verify",
    "sympy",
)

_PROBE = """
import json, sys
import stillroom.cli
loaded = {"import": sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)}
for args in (["--help"], *([name, "--help"] for name in COMMANDS)):
    try:
        stillroom.cli.app(args, prog_name="stillroom")
    except SystemExit as exit_:
        assert exit_.code in (0, None), (args, exit_.code)
    loaded[" ".join(args)] = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
print("\\nRESULT " + json.dumps(loaded))
"""

COMMANDS = ("harvest", "policies", "train", "curate", "detect", "teacher", "demo")


def test_cli_start_up_and_every_help_load_no_heavy_library():
    code = f"HEAVY = {HEAVY!r}\nCOMMANDS = {COMMANDS!r}\n" + _PROBE
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.rsplit("RESULT ", 1)[1])
    assert set(loaded) == {"import", "--help", *(f"{c} --help" for c in COMMANDS)}
    assert loaded == {key: [] for key in loaded}


def test_every_package_imports_without_the_cli_layer():
    """The packages import their errors and names without the CLI, the teacher or the demo:
    besides the packages themselves, only ``stillroom`` (the root error) and ``stillroom._core``."""
    code = (
        "import json, sys\n"
        "import stillroom.harvest, stillroom.policies, stillroom.train, stillroom.detect\n"
        "import stillroom.curate\n"
        "import stillroom.harvest.errors, stillroom.train.errors, stillroom.detect.errors\n"
        "import stillroom.policies.errors, stillroom.curate.errors, stillroom.train._base\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'stillroom')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    packages = {"harvest", "policies", "train", "detect", "curate", "_core"}
    assert "stillroom.harvest.errors" in loaded  # the probe ran
    outside = [m for m in loaded if m != "stillroom" and m.split(".")[1] not in packages]
    assert outside == []


def test_the_root_error_class_is_one_class():
    import stillroom
    from stillroom import detect, harvest, policies, train
    from stillroom._core import StillroomError

    assert stillroom.StillroomError is StillroomError
    for base in (harvest.HarvestError, train.TrainError, detect.DetectError):
        assert issubclass(base, StillroomError)
    assert issubclass(policies.PoliciesError, StillroomError)


def test_make_bench_runs_every_bench():
    """bench/run_all.py (``make bench``) has a quick mode for every bench file there is."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_all", ROOT / "bench" / "run_all.py")
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    benches = {p.stem for p in (ROOT / "bench").glob("*.py") if not p.stem.startswith("_")}
    benches -= {"run_all"}  # and the benches' shared helpers (``bench/_corpora.py``)
    assert set(run_all.QUICK) == benches
    assert "bench/run_all.py" in (ROOT / "Makefile").read_text()
