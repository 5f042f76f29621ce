"""Running untrusted Python in a contained subprocess, or refusing to.

Containment, all of it required (there is no "best effort" mode):

- **new PID and network namespaces** (``unshare --pid --net --fork --kill-child``): the code
  sees no network interface but a down loopback, and when the namespace's first process dies
  the kernel kills every process in it, so nothing it forked outlives the run;
- **an unprivileged uid**: as root the child drops to ``nobody`` (65534) inside the namespace,
  because root ignores ``RLIMIT_NPROC``; as a normal user a user namespace is used instead;
- **rlimits**: address space, CPU seconds, process count, file size, open files, no core dumps;
- **a wall-clock timeout**, after which the whole process group is killed;
- **a temporary working directory**, removed afterwards, with output captured to files there
  (capped by the file-size limit, so a print loop cannot fill the parent's memory).

It does not hide the host's world-readable files; it is a guard against accidents and
runaway code in training data, not a jail for hostile code. When neither way of isolating
works (no ``unshare``, namespaces forbidden in a container), :func:`run_sandboxed` raises
:class:`~stillroom.curate.errors.SandboxUnavailableError` rather than run the code unconfined.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from stillroom.curate.errors import ConfigError, SandboxUnavailableError

NOBODY = 65534


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may use. Defaults fit a unit-test-sized program."""

    wall_s: float = 10.0
    cpu_s: int = 5
    memory_mb: int = 512
    max_procs: int = 32
    file_mb: int = 8
    open_files: int = 64

    def __post_init__(self) -> None:
        for field in ("wall_s", "cpu_s", "memory_mb", "max_procs", "file_mb", "open_files"):
            if getattr(self, field) <= 0:
                raise ConfigError(f"SandboxLimits.{field} must be > 0, got {getattr(self, field)}")


@dataclass(frozen=True)
class SandboxResult:
    """How a run ended: ``ok`` is a clean exit 0; ``reason`` says why not otherwise."""

    ok: bool
    reason: str
    returncode: int | None
    timed_out: bool
    wall_s: float
    stdout: str
    stderr: str
    isolation: str


def _candidates() -> list[str]:
    # The code needs only the standard library, and this process's interpreter may sit in a
    # directory the unprivileged uid cannot enter (pyenv under /root), so try the system one too.
    found = [getattr(sys, "_base_executable", ""), sys.executable, "/usr/bin/python3"]
    found.append(shutil.which("python3") or "")
    return [p for p in dict.fromkeys(found) if p and os.path.exists(p)]


def _prefix(mode: str) -> list[str]:
    base = ["unshare", "--pid", "--net", "--fork", "--kill-child"]
    if mode == "namespaces+nobody":
        return [*base, "--setuid", str(NOBODY), "--setgid", str(NOBODY)]
    return [*base[:1], "--user", "--map-root-user", *base[1:]]


def _probe(mode: str, python: str) -> bool:
    probe = [
        *_prefix(mode),
        python,
        "-I",
        "-c",
        "import os, socket; print(os.getpid(), os.getuid())",
    ]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=20, cwd="/")
    except (OSError, subprocess.TimeoutExpired):
        return False
    if done.returncode != 0:
        return False
    pid, uid = (int(x) for x in done.stdout.split())
    return pid == 1 and uid == (NOBODY if mode == "namespaces+nobody" else 0)


@functools.cache
def isolation() -> tuple[str, str] | None:
    """``(mode, interpreter)`` that runs contained, or None when no isolation works here.

    ``mode`` is ``"namespaces+nobody"`` as root and ``"user-namespace"`` otherwise; the probe
    checks that the child really is PID 1 of a new namespace under the expected uid.
    """
    if shutil.which("unshare") is None or shutil.which("prlimit") is None:
        return None
    mode = "namespaces+nobody" if os.geteuid() == 0 else "user-namespace"
    for python in _candidates():
        if _probe(mode, python):
            return mode, python
    return None


def _prlimit(limits: SandboxLimits) -> list[str]:
    # prlimit (util-linux, beside unshare) sets the limits and execs: no preexec_fn, which is
    # unsafe in a process with threads (DuckDB, tokenizers).
    mem, files = limits.memory_mb * 1024 * 1024, limits.file_mb * 1024 * 1024
    return [
        "prlimit",
        f"--as={mem}",
        f"--cpu={limits.cpu_s}:{limits.cpu_s + 1}",
        f"--nproc={limits.max_procs}",
        f"--fsize={files}",
        f"--nofile={limits.open_files}",
        "--core=0",
    ]


# PID 1 of the namespace: the kernel shields it from its own signals (a SIGKILL or SIGXCPU it
# raises is ignored), so the code runs as its child and this records how that child ended.
_INIT = """\
import subprocess, sys
code = subprocess.call([sys.executable, "-I", "-B", sys.argv[1]])
with open(".status", "w") as status:
    status.write(str(code))
"""

_STDERR_REASONS = (
    ("MemoryError", "memory limit (MemoryError)"),
    ("Cannot allocate memory", "memory limit (ENOMEM)"),
    ("Resource temporarily unavailable", "process limit (fork refused)"),
    ("BlockingIOError", "process limit (fork refused)"),
    ("File too large", "file size limit"),
    ("Network is unreachable", "network unreachable"),
    ("Temporary failure in name resolution", "network unreachable (no DNS)"),
    ("Name or service not known", "network unreachable (no DNS)"),
)


def _reason(returncode: int, stderr: str, timed_out: bool, limits: SandboxLimits) -> str:
    if timed_out:
        return f"timeout after {limits.wall_s:g} s (killed)"
    if returncode < 0 or returncode > 128:
        sig = -returncode if returncode < 0 else returncode - 128
        if sig == signal.SIGXCPU:
            return f"CPU limit ({limits.cpu_s} s)"
        if sig == signal.SIGXFSZ:
            return f"file size limit ({limits.file_mb} MB)"
        try:
            return f"killed by {signal.Signals(sig).name}"
        except ValueError:
            return f"killed by signal {sig}"
    for needle, reason in _STDERR_REASONS:
        if needle in stderr:
            return reason
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return f"exit {returncode}" + (f": {last[:200]}" if last else "")


def _group_members(group: int) -> list[int]:
    """Processes still in the run's process group or session (the namespace's, once killed)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and group in (int(fields[2]), int(fields[3])):
            found.append(int(stat.parent.name))
    return found


def _reap(group: int, timeout: float = 5.0) -> None:
    """Kill what is left of the group and wait until the kernel has taken it all down."""
    deadline = time.monotonic() + timeout
    while (left := _group_members(group)) and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
        time.sleep(0.02)
    if left:
        raise SandboxUnavailableError(
            f"sandboxed processes {left[:5]} survived SIGKILL for {timeout:g} s"
        )


def _tail(path: Path, limit: int = 4000) -> str:
    data = path.read_bytes() if path.exists() else b""
    return data[-limit:].decode("utf-8", errors="replace")


def run_sandboxed(
    files: dict[str, str], entry: str, limits: SandboxLimits | None = None
) -> SandboxResult:
    """Write ``files`` into a fresh directory and run ``python -I entry`` there, contained."""
    limits = limits or SandboxLimits()
    found = isolation()
    if found is None:
        raise SandboxUnavailableError(
            "no process isolation available (needs `unshare` with PID and network namespaces, "
            "as root or with user namespaces); refusing to run code unconfined"
        )
    mode, python = found
    workdir = Path(tempfile.mkdtemp(prefix="stillroom-sandbox-"))
    try:
        for name, text in {**files, ".init.py": _INIT}.items():
            (workdir / name).write_text(text)
        if mode == "namespaces+nobody":
            for path in [workdir, *workdir.iterdir()]:
                os.chown(path, NOBODY, NOBODY)
        out_path, err_path = workdir / ".stdout", workdir / ".stderr"
        start = time.monotonic()
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(
                [*_prlimit(limits), *_prefix(mode), python, "-I", "-B", ".init.py", entry],
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env={"PATH": "/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8"},
                start_new_session=True,
            )
            timed_out = False
            try:
                proc.wait(timeout=limits.wall_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)  # --kill-child takes the namespace down
                proc.wait()
            _reap(proc.pid)
        wall = time.monotonic() - start
        stderr = _tail(err_path)
        status = workdir / ".status"
        code = int(status.read_text()) if status.exists() and not timed_out else None
        if code is None and not timed_out:
            timed_out, stderr = False, stderr + f"\nsandbox init exited {proc.returncode}"
        ok = code == 0
        return SandboxResult(
            ok=ok,
            reason=""
            if ok
            else _reason(code if code is not None else -9, stderr, timed_out, limits),
            returncode=code,
            timed_out=timed_out,
            wall_s=wall,
            stdout=_tail(out_path),
            stderr=stderr,
            isolation=mode,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
