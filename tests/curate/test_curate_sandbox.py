"""The code verifier's sandbox: each runaway is contained, reported, and leaves nothing behind."""

import os
from pathlib import Path

import pytest

import stillroom.curate._sandbox as sandbox
from stillroom.curate import (
    CodeVerifier,
    SandboxLimits,
    SandboxUnavailableError,
    extract_code,
    isolation,
)

pytestmark = pytest.mark.skipif(isolation() is None, reason="no namespaces here (fails closed)")

LIMITS = SandboxLimits(wall_s=4, cpu_s=2, memory_mb=256, max_procs=16)
V = CodeVerifier(LIMITS)
TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0"
ADD = "def add(a, b):\n    return a + b\n"


def _sandbox_processes() -> list[str]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
            cmd = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if b".init.py" in cmd or b"harness.py" in cmd:
            found.append(text.splitlines()[0])
    return found


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
    verdict = V.verify("", ADD + body, TESTS)
    assert not verdict.passed, name
    assert verdict.reason.startswith(reason), (name, verdict.reason)
    assert _sandbox_processes() == [], f"{name} left processes behind"


def test_a_fork_bomb_that_hides_its_children_is_still_cleaned_up():
    body = "import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(600)\n"
    verdict = V.verify("", ADD + body, TESTS)
    assert verdict.reason.startswith("timeout")
    assert _sandbox_processes() == []


def test_code_runs_unprivileged_in_fresh_namespaces():
    probe = "import os, socket\nprint(os.getpid(), os.getuid(), os.getcwd())\n"
    result = sandbox.run_sandboxed({"main.py": probe}, "main.py", LIMITS)
    pid, uid, cwd = result.stdout.split()
    assert int(pid) > 1  # PID 1 is the sandbox's init; the code is its child
    assert int(uid) != 0
    assert "stillroom-sandbox-" in cwd and not os.path.exists(cwd)  # removed afterwards


def test_no_isolation_fails_closed(monkeypatch):
    monkeypatch.setattr(sandbox, "isolation", lambda: None)
    with pytest.raises(SandboxUnavailableError, match="refusing to run code"):
        V.verify("", ADD, TESTS)


def test_extract_code_takes_the_last_block():
    text = "```python\nx = 1\n```\nbetter:\n```py\nx = 2\n```"
    assert extract_code(text) == "x = 2\n"
    assert extract_code("   ") is None
