"""A jail for Python code taken from untrusted teacher answers, or a refusal to run it.

What the code gets, all of it required (there is no "best effort" mode):

- **new PID, network, IPC and mount namespaces** (``unshare --mount --pid --net --ipc --fork
  --kill-child``): no network but a down loopback; no System V or POSIX IPC object it makes
  outlives the namespace; when the namespace's first process dies the kernel kills every
  process in it, so nothing it forked outlives the run;
- **a private, read-only view of the filesystem**: every mount read-only (this namespace's
  copies; the host's are untouched, and mount propagation is private), except one tmpfs
  capped at ``write_mb`` megabytes and ``max_files`` files and directories, which holds the
  working directory and is bound over ``/tmp``, ``/var/tmp``, ``/run/lock`` and ``/dev/shm``.
  Everything the code writes goes there, and is gone with the namespace;
- **an unprivileged uid and no capabilities** (``setpriv``, no new privileges): as root the
  code runs as ``nobody`` (65534), because root ignores ``RLIMIT_NPROC``; as a normal user,
  as root of a user namespace mapped to that user, with every capability dropped;
- **rlimits**: address space, CPU seconds, process count, file size, open files, no core
  dumps;
- **a wall-clock timeout**, after which the whole process group is killed, and the sandbox
  waits until the kernel has taken every process down;
- output captured to files outside the jail, each capped by the file-size limit.

What it is not: a virtual machine. The code shares the host's kernel (a kernel bug is an
escape), can read every world-readable file and see the host's processes in ``/proc``, and
the limits are per run, not per curation. It holds code that is broken, runaway or written
to misbehave in the ways ``tests/curate/test_curate_sandbox.py`` tries. When a part of it
cannot be made here (no ``unshare``/``prlimit``/``setpriv``, a container that forbids a
namespace), :func:`run_sandboxed` raises
:class:`~stillroom.curate.errors.SandboxUnavailableError` naming the missing part, rather
than run the code unconfined.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from stillroom.curate import _sandbox_setup
from stillroom.curate._sandbox_reasons import reason_for
from stillroom.curate.errors import ConfigError, SandboxUnavailableError

NOBODY = 65534
AS_ROOT, AS_USER = "namespaces+nobody", "user-namespace"
_SETUP = Path(_sandbox_setup.__file__).read_text()


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may use. Defaults fit a unit-test-sized program.

    ``write_mb`` and ``max_files`` cap everything it writes (working directory, ``/tmp``,
    ``/var/tmp``, ``/run/lock``, ``/dev/shm`` together; the sandbox's own few files and
    directories count); ``file_mb`` caps each file, captured output included.
    """

    wall_s: float = 10.0
    cpu_s: int = 5
    memory_mb: int = 512
    max_procs: int = 32
    file_mb: int = 8
    open_files: int = 64
    write_mb: int = 64
    max_files: int = 4096

    def __post_init__(self) -> None:
        for field in (*self.__dataclass_fields__,):
            if getattr(self, field) <= 0:
                raise ConfigError(f"SandboxLimits.{field} must be > 0, got {getattr(self, field)}")
        if self.max_files < 16:
            raise ConfigError(
                f"SandboxLimits.max_files must be >= 16 (the sandbox's own files and "
                f"directories count), got {self.max_files}"
            )


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


@dataclass(frozen=True)
class _Tools:
    unshare: str
    prlimit: str
    setpriv: str


def _candidates() -> list[str]:
    # The code needs only the standard library, and this process's interpreter may sit in a
    # directory the unprivileged uid cannot enter (pyenv under /root), so try the system one too.
    found = [getattr(sys, "_base_executable", ""), sys.executable, "/usr/bin/python3"]
    found.append(shutil.which("python3") or "")
    return [p for p in dict.fromkeys(found) if p and os.path.exists(p)]


def _prlimit(tools: _Tools, limits: SandboxLimits) -> list[str]:
    # prlimit (util-linux, beside unshare) sets the limits and execs: no preexec_fn, which is
    # unsafe in a process with threads (DuckDB, tokenizers).
    mem, files = limits.memory_mb * 1024 * 1024, limits.file_mb * 1024 * 1024
    return [
        tools.prlimit,
        f"--as={mem}",
        f"--cpu={limits.cpu_s}:{limits.cpu_s + 1}",
        f"--nproc={limits.max_procs}",
        f"--fsize={files}",
        f"--nofile={limits.open_files}",
        "--core=0",
    ]


def _namespaces(tools: _Tools, mode: str) -> list[str]:
    user = ["--user", "--map-root-user"] if mode == AS_USER else []
    flags = ["--mount", "--propagation", "private", "--pid", "--net", "--ipc"]
    return [tools.unshare, *user, *flags, "--fork", "--kill-child"]


def _drop(tools: _Tools, mode: str) -> list[str]:
    uid = ["--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"]
    caps = ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    return [tools.setpriv, *(uid if mode == AS_ROOT else []), *caps]


# PID 1 of the namespace: the kernel shields it from its own signals (a SIGKILL or SIGXCPU it
# raises is ignored), so the code runs as its child and this records how that child ended,
# with what the jail had left, on a descriptor the code does not inherit.
_INIT = """\
import os, subprocess, sys
status, entry = int(sys.argv[2]), sys.argv[3]
code = subprocess.call([sys.executable, "-I", "-B", entry])
left = os.statvfs(".")
os.write(status, f"{code} {left.f_bavail * left.f_frsize} {left.f_favail}".encode())
"""


def _command(tools: _Tools, mode: str, python: str, control: Path, limits: SandboxLimits,
             status_fd: int, entry: str) -> list[str]:  # fmt: skip
    uid = NOBODY if mode == AS_ROOT else 0
    sizes = [str(limits.write_mb * 1024 * 1024), str(limits.max_files), str(uid), str(uid)]
    setup = [python, "-I", "-B", "-c", _SETUP, str(status_fd), str(control), *sizes, "--"]
    init = [python, "-I", "-B", "-c", _INIT, "stillroom-sandbox-init", str(status_fd), entry]
    return [*_prlimit(tools, limits), *_namespaces(tools, mode), *setup, *_drop(tools, mode), *init]


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


def _wait(tools: _Tools, mode: str, python: str, control: Path, limits: SandboxLimits,
          entry: str) -> tuple[int, bool]:  # fmt: skip
    """Run the sandbox over ``control``, where its output and status go: (exit, timed out)."""
    with (
        (control / ".stdout").open("wb") as out,
        (control / ".stderr").open("wb") as err,
        (control / ".status").open("wb") as status,
    ):
        proc = subprocess.Popen(
            _command(tools, mode, python, control, limits, status.fileno(), entry),
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            pass_fds=(status.fileno(),),
            env={"PATH": "/usr/bin:/bin", "HOME": str(control), "LANG": "C.UTF-8"},
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
    return proc.returncode, timed_out


def _outcome(control: Path, mode: str, returncode: int, timed_out: bool, wall: float,
             limits: SandboxLimits) -> SandboxResult:  # fmt: skip
    """The result from the files the run left in ``control``."""
    status = (control / ".status").read_text(errors="replace")
    if status.startswith("setup-failed: "):
        raise SandboxUnavailableError(f"the sandbox could not be set up: {status[14:]}")
    stderr = _tail(control / ".stderr")
    fields = status.split()
    code, left = None, None
    if timed_out:
        pass
    elif len(fields) == 3 and all(f.lstrip("-").isdigit() for f in fields):
        code, left = int(fields[0]), (int(fields[1]), int(fields[2]))
    else:
        stderr += f"\nsandbox init exited {returncode}"
    ok = code == 0
    reason = "" if ok else reason_for(code, stderr, timed_out, limits, left)
    return SandboxResult(
        ok, reason, code, timed_out, wall, _tail(control / ".stdout"), stderr, mode
    )


def _launch(tools: _Tools, mode: str, python: str, files: dict[str, str], entry: str,
            limits: SandboxLimits) -> SandboxResult:  # fmt: skip
    control = Path(tempfile.mkdtemp(prefix="stillroom-sandbox-"))
    try:
        (control / "in").mkdir()
        (control / "jail").mkdir()
        for name, text in files.items():
            (control / "in" / name).write_text(text)
        start = time.monotonic()
        returncode, timed_out = _wait(tools, mode, python, control, limits, entry)
        return _outcome(control, mode, returncode, timed_out, time.monotonic() - start, limits)
    finally:
        shutil.rmtree(control, ignore_errors=True)


_PROBE = """\
import json, os, socket
where = [p for p in ("/tmp", "/var/tmp", "/run/lock", "/dev/shm", ".") if os.path.isdir(p)]
sizes = {p: os.statvfs(p).f_blocks * os.statvfs(p).f_frsize for p in where}
print(json.dumps({"ppid": os.getppid(), "uid": os.getuid(), "sizes": sizes,
    "interfaces": [name for _, name in socket.if_nameindex()],
    "root_read_only": bool(os.statvfs("/").f_flag & os.ST_RDONLY)}))
"""


def _probe(tools: _Tools, mode: str, python: str) -> str:
    """'' when the whole sandbox works with ``python``, else what is wrong."""
    limits = SandboxLimits(wall_s=20)
    try:
        result = _launch(tools, mode, python, {"probe.py": _PROBE}, "probe.py", limits)
    except SandboxUnavailableError as error:
        return str(error)
    if not result.ok:
        return f"the probe with {python} failed: {result.reason}"
    seen = json.loads(result.stdout)
    uid = NOBODY if mode == AS_ROOT else 0
    expected = {"ppid": 1, "uid": uid, "interfaces": ["lo"], "root_read_only": True}
    wrong = {k: seen[k] for k, v in expected.items() if seen[k] != v}
    too_big = {p: s for p, s in seen["sizes"].items() if s > limits.write_mb * 1024 * 1024}
    if wrong or too_big or "." not in seen["sizes"]:
        return f"the probe with {python} saw {wrong or too_big or seen}, expected {expected}"
    return ""


def _missing_namespace(tools: _Tools, mode: str) -> str:
    """Which namespace ``unshare`` cannot make here, or ''."""
    user = ["--user", "--map-root-user"] if mode == AS_USER else []
    kinds = {"user": [], "mount": ["--mount"], "PID": ["--pid", "--fork"], "network": ["--net"],
             "IPC": ["--ipc"]}  # fmt: skip
    for kind, flags in kinds.items():
        if kind == "user" and not user:
            continue
        try:
            done = subprocess.run([tools.unshare, *user, *flags, "true"], capture_output=True,
                                  text=True, timeout=20, cwd="/")  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"a {kind} namespace ({error})"
        if done.returncode != 0:
            return f"a {kind} namespace ({(done.stderr.strip() or 'refused')[-200:]})"
    return ""


@functools.cache
def _find(unshare: str | None, euid: int) -> tuple[str, str] | str:
    tools = [unshare, shutil.which("prlimit"), shutil.which("setpriv")]
    if not all(tools):
        names = ["unshare", "prlimit", "setpriv"]
        return "no " + ", ".join(f"`{n}`" for n, t in zip(names, tools, strict=True) if not t)
    found = _Tools(*tools)  # type: ignore[arg-type]
    mode = AS_ROOT if euid == 0 else AS_USER
    problems = []
    for python in _candidates():
        problem = _probe(found, mode, python)
        if not problem:
            return mode, python
        problems.append(problem)
    problem = "; ".join(dict.fromkeys(problems)) or "no Python interpreter to run"
    return _missing_namespace(found, mode) or problem


def isolation(unshare: str = "unshare") -> tuple[str, str] | None:
    """``(mode, interpreter)`` that runs contained, or None when the sandbox cannot be made here.

    ``mode`` is ``"namespaces+nobody"`` as root and ``"user-namespace"`` otherwise. The probe
    runs a program through the whole sandbox and checks that it is a child of PID 1 of a new
    namespace, under the expected uid, sees only loopback, a read-only ``/`` and capped
    scratch space. ``unshare`` is looked up on ``PATH``; the answer is cached per path.
    """
    found = _find(shutil.which(unshare), os.geteuid())
    return found if isinstance(found, tuple) else None


def sandbox_problem(unshare: str = "unshare") -> str:
    """'' when code can be sandboxed here, else why not (what is missing), for a refusal."""
    found = _find(shutil.which(unshare), os.geteuid())
    if isinstance(found, tuple):
        return ""
    return (
        f"no sandbox here: {found}. The code verifier needs `unshare` with mount, PID, IPC and "
        "network namespaces (as root, or as a normal user with unprivileged user namespaces), "
        "`prlimit` and `setpriv`; refusing to run code unconfined"
    )


def run_sandboxed(
    files: dict[str, str],
    entry: str,
    limits: SandboxLimits | None = None,
    *,
    unshare: str = "unshare",
) -> SandboxResult:
    """Write ``files`` into a fresh jail and run ``python -I entry`` there, contained."""
    found = _find(shutil.which(unshare), os.geteuid())
    if isinstance(found, str):
        raise SandboxUnavailableError(sandbox_problem(unshare))
    tools = _Tools(*(shutil.which(t) or t for t in (unshare, "prlimit", "setpriv")))
    mode, python = found
    return _launch(tools, mode, python, files, entry, limits or SandboxLimits())
