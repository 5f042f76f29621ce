"""One installed name: every module lives under ``stillroom``, and nothing else is on the path.

The packages' folders sit at the top of the repository and the packaging maps them into the
namespace, so a stale reference to an old top-level name (``harvest``, ``train``...) would
still import from a checkout, as a second copy of the same module. These tests run from the
repository root, where those folders are importable, and fail on any such import; the wheel
test runs beside a user's own ``train.py`` and ``detect/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OLD_NAMES = ("harvest", "train", "detect", "policies", "curate", "stillroom_core")
PACKAGES = ("harvest", "policies", "curate", "train", "detect", "_core")

_IMPORT_ALL = """
import importlib, json, pkgutil, sys
import stillroom
names = ["stillroom"]
for sub in PACKAGES + ("",):
    pkg = importlib.import_module("stillroom." + sub if sub else "stillroom")
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if info.name.rsplit(".", 1)[1] == "__main__":  # runs a command when imported
            continue
        importlib.import_module(info.name)
        names.append(info.name)
files = {}
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None)
    if path and name.split(".")[0] == "stillroom":
        files.setdefault(path, []).append(name)
old = sorted(m for m in sys.modules if m.split(".")[0] in OLD_NAMES)
twice = {path: mods for path, mods in files.items() if len(mods) > 1}
print("RESULT " + json.dumps({"imported": names, "old": old, "twice": twice}))
"""


def test_every_module_imports_under_stillroom_and_no_old_name_is_loaded():
    """Imports every ``stillroom.*`` module from the repository root, where ``harvest/``,
    ``train/``... are importable as top-level names, and finds none of them loaded."""
    code = f"OLD_NAMES = {OLD_NAMES!r}\nPACKAGES = {PACKAGES!r}\n" + _IMPORT_ALL
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.rsplit("RESULT ", 1)[1])
    imported = set(result["imported"])
    # the probe reached every package and the modules a search for `import` would miss
    for name in (
        "stillroom.harvest.testing",
        "stillroom.harvest.cli",
        "stillroom.train.cli",
        "stillroom.detect.simulator",
        "stillroom.curate._judge",
        "stillroom.policies._loader",
        "stillroom._core.lazy",
        "stillroom.teacher",
    ):
        assert name in imported
    assert result["old"] == []
    assert result["twice"] == {}  # no module loaded under two names (two Store classes)


def test_package_data_resolves_under_the_new_names():
    from importlib import resources

    from stillroom.policies import load_policies, shipped_policy_files

    assert set(load_policies()) >= {"openai", "smollm2"}
    assert len(list(shipped_policy_files())) >= 10

    assert resources.files("stillroom.detect").joinpath("assets", "report.js").is_file()
    assert resources.files("stillroom.train").joinpath("accelerate", "fsdp.yaml").is_file()
    assert resources.files("stillroom").joinpath("data", "prompts.jsonl").is_file()


def test_python_dash_m_stillroom_runs_the_cli():
    proc = subprocess.run(
        [sys.executable, "-m", "stillroom", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "harvest" in proc.stdout and "detect" in proc.stdout


def _user_project(where: Path) -> Path:
    """A user's repository with a ``train.py`` and a ``detect/`` of its own (and the other
    old names), each raising on import."""
    where.mkdir()
    for name in ("train", "harvest", "curate"):
        (where / f"{name}.py").write_text(f"raise ImportError('the user\\'s own {name}.py')\n")
    for name in ("detect", "policies", "stillroom_core"):
        (where / name).mkdir()
        (where / name / "__init__.py").write_text(f"raise ImportError('the user\\'s {name}/')\n")
    return where


@pytest.mark.slow
def test_wheel_from_a_fresh_clone_has_one_top_level_name_and_ignores_user_modules(tmp_path):
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs a git checkout to clone")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(dist), str(clone)],
        check=True, timeout=300,
    )  # fmt: skip
    (wheel,) = dist.glob("stillroom-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        entries = zf.namelist()
        top_level_txt = next(n for n in entries if n.endswith(".dist-info/top_level.txt"))
        declared = zf.read(top_level_txt).decode().split()
    tops = {e.split("/")[0] for e in entries if not e.split("/")[0].endswith(".dist-info")}
    assert tops == {"stillroom"}
    assert declared == ["stillroom"]
    for data in ("stillroom/policies/openai.toml", "stillroom/detect/assets/report.js",
                 "stillroom/train/accelerate/fsdp.yaml", "stillroom/data/prompts.jsonl",
                 "stillroom/_core/lazy.py", "stillroom/__main__.py",
                 "stillroom/harvest/fixtures/anthropic/message_thinking.json"):  # fmt: skip
        assert data in entries
    # every module of the checkout is in the wheel (a new subpackage must be listed in
    # pyproject's `packages`, or the wheel silently lacks it)
    tracked = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout.split()
    folders = {"stillroom": "stillroom", **{p: f"stillroom/{p}" for p in PACKAGES[:-1]}}
    expected = {
        folders[path.split("/")[0]] + path[len(path.split("/")[0]) :]
        for path in tracked
        if path.split("/")[0] in folders
    }
    assert expected - set(entries) == set()

    # A fresh environment holding only the wheel; its dependencies are the ones installed
    # for this test run, reached through a plain path entry (no site dir, so the editable
    # install of the checkout is not there).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True, timeout=300,
    )  # fmt: skip
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    user = _user_project(tmp_path / "user-repo")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [str(python), "-c", "import stillroom; print(stillroom.__file__)"],
        cwd=user, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv)  # the wheel, not the checkout
    help_ = subprocess.run(
        [str(python), "-m", "stillroom", "--help"],
        cwd=user, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert help_.returncode == 0, help_.stderr
    assert "harvest" in help_.stdout
    imports = subprocess.run(
        [str(python), "-c",
         "import stillroom.train, stillroom.detect, stillroom.harvest, stillroom.policies, "
         "stillroom.curate; from stillroom.policies import load_policies; "
         "print(len(load_policies()))"],
        cwd=user, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert imports.returncode == 0, imports.stderr
    assert int(imports.stdout) >= 10
