"""What a verification left behind, shared by the sandbox test files.

The two files check the host's /tmp and process table, so they must not run at once under
``pytest -n 2``: :func:`one_sandbox_file_at_a_time` serialises them with a lock file. Within
that, a sandbox tree counts as left behind when it is orphaned or still under this process.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module", autouse=True)
def one_sandbox_file_at_a_time() -> Iterator[None]:
    """Hold an exclusive lock while this module's sandbox tests run (another worker waits)."""
    lock = Path(tempfile.gettempdir()) / "stillroom-sandbox-tests.lock"
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _parent(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


def _is_sandbox(cmd: bytes) -> bool:
    return b"stillroom-sandbox-init" in cmd or b"harness.py" in cmd


def sandbox_processes() -> list[str]:
    """Sandbox processes left behind: their tree's top is orphaned (its parent is init or
    gone) or still a child of this process."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        pid = int(cmdline.parent.name)
        cmd = _cmdline(pid)
        if not _is_sandbox(cmd):
            continue
        top = pid
        while _is_sandbox(_cmdline(_parent(top))):
            top = _parent(top)
        if _parent(top) in (0, 1, os.getpid()):
            found.append(cmd.decode(errors="replace")[:80])
    return found
