"""The code verifier's sandbox: each runaway is contained, reported, and leaves nothing behind."""

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import stillroom.curate._sandbox as sandbox
from stillroom.curate import (
    CodeVerifier,
    ConfigError,
    SandboxLimits,
    SandboxUnavailableError,
    extract_code,
    isolation,
    sandbox_problem,
)
from tests.curate.sandbox_leaks import one_sandbox_file_at_a_time, sandbox_processes  # noqa: F401

pytestmark = pytest.mark.skipif(bool(sandbox_problem()), reason=sandbox_problem() or "-")

LIMITS = SandboxLimits(wall_s=4, cpu_s=2, memory_mb=256, max_procs=16)
V = CodeVerifier(LIMITS)
TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0"
ADD = "def add(a, b):\n    return a + b\n"


def test_a_right_and_a_wrong_solution():
    assert V.verify("", f"Here it is:\n```python\n{ADD}```", TESTS).passed
    verdict = V.verify("", "def add(a, b):\n    return a - b\n", TESTS)
    assert not verdict.passed and verdict.reason.startswith("a test failed")
    assert (verdict.verifier, verdict.version) == ("code", "1")


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        ("fork bomb", "import os\nwhile True:\n    os.fork()\n", "process limit"),
        ("infinite loop", "while True:\n    pass\n", "CPU limit"),
        ("sleeping forever", "import time\ntime.sleep(600)\n", "timeout after 4 s"),
        ("large allocation", "block = bytearray(4 * 1024**3)\n", "memory limit"),
        (
            "network call",
            "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)\n",
            "network unreachable",
        ),
        ("print flood", "while True:\n    print('x' * 100000)\n", "file size limit"),
    ],
)
def test_runaway_code_is_contained_and_reported(name, body, reason):
    # On a loaded machine a loop may get a third of a core: give the CPU limit the wall time
    # to be reached (2 CPU seconds within 30 s) rather than the 4 s timeout firing first.
    verifier = CodeVerifier(replace(LIMITS, wall_s=30)) if name == "infinite loop" else V
    verdict = verifier.verify("", ADD + body, TESTS)
    assert not verdict.passed, name
    assert verdict.reason.startswith(reason), (name, verdict.reason)
    assert sandbox_processes() == [], f"{name} left processes behind"


def test_a_fork_bomb_that_hides_its_children_is_still_cleaned_up():
    body = "import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(600)\n"
    verdict = V.verify("", ADD + body, TESTS)
    assert verdict.reason.startswith("timeout")
    assert sandbox_processes() == []


def test_code_runs_unprivileged_in_fresh_namespaces():
    probe = (
        "import os\n"
        "caps = [l for l in open('/proc/self/status') if l.startswith('CapEff')][0].split()[1]\n"
        "print(os.getppid(), os.getuid(), os.getcwd(), int(caps, 16), os.statvfs('/').f_flag & 1)\n"
    )
    result = sandbox.run_sandboxed({"main.py": probe}, "main.py", LIMITS)
    ppid, uid, cwd, caps, read_only = result.stdout.split()
    assert int(ppid) == 1  # PID 1 is the sandbox's init; the code is its child
    assert int(uid) == (65534 if os.geteuid() == 0 else 0)  # nobody, or a user namespace's root
    assert int(caps) == 0 and int(read_only) == 1
    assert "stillroom-sandbox-" in cwd and not os.path.exists(cwd)  # removed afterwards


def _fake_unshare(folder: Path) -> None:
    """An `unshare` that makes every namespace but a mount namespace, as a strict container."""
    real = shutil.which("unshare")
    (folder / "unshare").write_text(
        '#!/bin/sh\nfor arg in "$@"; do\n  if [ "$arg" = --mount ]; then\n'
        '    echo "unshare: unshare failed: Operation not permitted" >&2; exit 1\n  fi\ndone\n'
        f'exec {real} "$@"\n'
    )
    (folder / "unshare").chmod(0o755)


def test_no_mount_namespace_fails_closed_and_names_it(tmp_path, monkeypatch):
    _fake_unshare(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert isolation() is None
    with pytest.raises(SandboxUnavailableError) as caught:
        V.verify("", ADD, TESTS)
    message = str(caught.value)
    assert "a mount namespace (unshare: unshare failed: Operation not permitted)" in message
    assert "refusing to run code unconfined" in message


def test_no_setpriv_fails_closed_and_names_it(tmp_path, monkeypatch):
    for tool in ("unshare", "prlimit"):
        (tmp_path / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxUnavailableError, match=r"no sandbox here: no `setpriv`"):
        V.verify("", ADD, TESTS)


def test_limits_are_checked():
    with pytest.raises(ConfigError, match=r"SandboxLimits\.write_mb must be > 0"):
        SandboxLimits(write_mb=0)
    with pytest.raises(ConfigError, match=r"SandboxLimits\.max_files must be >= 16"):
        SandboxLimits(max_files=8)


def test_extract_code_takes_the_last_block():
    text = "```python\nx = 1\n```\nbetter:\n```py\nx = 2\n```"
    assert extract_code(text) == "x = 2\n"
    assert extract_code("   ") is None
