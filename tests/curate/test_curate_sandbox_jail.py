"""Hostile answers against the sandbox's filesystem jail: each is contained, reported in its
verdict's reason, and leaves the host's world-writable directories as it found them, run by
this process (root here: ``namespaces+nobody``) and by an unprivileged user (a user namespace)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stillroom.curate import CodeVerifier, SandboxLimits, sandbox_problem
from tests.curate.sandbox_leaks import one_sandbox_file_at_a_time, sandbox_processes  # noqa: F401

pytestmark = pytest.mark.skipif(bool(sandbox_problem()), reason=sandbox_problem() or "-")

NOBODY = 65534
MARK = "stillroom-hostile"
SHM_KEY = 0x5717A  # a System V shared-memory key no one else uses
LIMITS = SandboxLimits(wall_s=4, cpu_s=2, memory_mb=256, max_procs=16, write_mb=16, max_files=512)
TESTS = "assert add(2, 3) == 5"
ADD = "def add(a, b):\n    return a + b\n"
# What the jail covers with its own tmpfs: a host file there is invisible to the code.
JAILED = (Path("/tmp"), Path("/var/tmp"), Path("/run/lock"), Path("/dev/shm"))


def _target_parent() -> Path:
    """A host folder the code can see and reach (not under a folder the jail covers; every
    ancestor searchable by anyone) and this process may write: the checkout's test folder,
    or /var/lib where the checkout itself lies under /tmp (a fresh clone in CI)."""
    for folder in (Path(__file__).resolve().parent, Path("/var/lib")):
        seen = [folder, *folder.parents]
        if any(j in seen for j in JAILED) or not os.access(folder, os.W_OK):
            continue
        if all(f.stat().st_mode & 0o001 for f in seen):
            return folder
    pytest.skip(
        "no host folder outside the jailed ones that the sandbox's uid can reach",
        allow_module_level=True,
    )


# A host file anyone may write, outside the world-writable directories: only the read-only
# view of the filesystem stands between it and the code.
TARGET_DIR = _target_parent() / f".{MARK}-{os.getpid()}"


def _fill(where: str) -> str:
    return (
        "i = 0\nwhile True:\n"
        f"    with open(f'{where}/{MARK}-{{i}}', 'wb') as f:\n"
        "        f.write(b'x' * 4 * 1024 * 1024)\n"
        "    i += 1\n"
    )


HOSTILE = {
    "fill /dev/shm": (_fill("/dev/shm"), "write limit: wrote past the 16 MB it may write"),
    "fill /tmp": (_fill("/tmp"), "write limit: wrote past the 16 MB it may write"),
    "fill the working directory": (_fill("."), "write limit: wrote past the 16 MB it may write"),
    "many small files": (
        f"i = 0\nwhile True:\n    open(f'/var/tmp/{MARK}-{{i}}', 'w').close()\n    i += 1\n",
        "file limit: made more than the 512 files it may",
    ),
    "a file held open past the timeout, by a child in its own session": (
        f"import os, time\nheld = open('/tmp/{MARK}-held', 'w')\nheld.write('x')\nheld.flush()\n"
        "if os.fork() == 0:\n    os.setsid()\ntime.sleep(600)\n",
        "timeout after 4 s (killed)",
    ),
    "write through a symlink planted in the working directory": (
        f"import os\nos.symlink('{TARGET_DIR}/target', 'link')\n"
        "with open('link', 'w') as f:\n    f.write('owned')\n",
        "write outside the sandbox refused (read-only file system)",
    ),
    "System V and POSIX shared memory left behind": (
        f"import ctypes\nassert ctypes.CDLL(None).shmget({SHM_KEY}, 1 << 20, 0o1666) >= 0\n"
        f"with open('/dev/shm/{MARK}-posix', 'wb') as f:\n    f.write(b'x' * 4096)\n",
        "",  # passes its tests; what it made must still be gone
    ),
}


@pytest.fixture(scope="module", autouse=True)
def host_target():
    TARGET_DIR.mkdir(mode=0o755)
    (TARGET_DIR / "target").write_text("host")
    (TARGET_DIR / "target").chmod(0o666)
    TARGET_DIR.chmod(0o755)
    yield TARGET_DIR / "target"
    shutil.rmtree(TARGET_DIR)


def _host_state() -> tuple[dict[str, int], set[str]]:
    """Entries of the host's world-writable directories (path -> owner), and SysV shm keys."""
    entries = {}
    for folder in ("/tmp", "/var/tmp", "/run/lock", "/dev/shm"):
        if os.path.isdir(folder):
            for entry in os.scandir(folder):
                try:
                    entries[entry.path] = entry.stat(follow_symlinks=False).st_uid
                except FileNotFoundError:  # another process's file, gone meanwhile
                    continue
    lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return entries, {line.split()[0] for line in lines}


def _leaks(before, after, sandbox_uid: int) -> list[str]:
    """What the run left: marked entries, new entries of the sandbox's uid, our shm key.
    (Other processes on the machine come and go in /tmp; only ours count.)"""
    new = {p: uid for p, uid in after[0].items() if p not in before[0]}
    found = [p for p, uid in after[0].items() if MARK in p]
    found += [p for p, uid in new.items() if uid == sandbox_uid and uid != os.geteuid()]
    if str(SHM_KEY) in after[1]:
        found.append(f"System V segment {SHM_KEY}")
    return found


def _check(verdict_passed: bool, reason: str, expected: str) -> None:
    if expected:
        assert not verdict_passed and reason.startswith(expected), reason
    else:
        assert verdict_passed, reason


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_answer_is_contained_reported_and_leaves_nothing(name, host_target):
    body, expected = HOSTILE[name]
    before = _host_state()
    verdict = CodeVerifier(LIMITS).verify("", ADD + body, TESTS)
    _check(verdict.passed, verdict.reason, expected)
    assert _leaks(before, _host_state(), NOBODY) == []
    assert sandbox_processes() == [], f"{name} left processes behind"
    assert host_target.read_text() == "host"


_AS_USER = """\
import json, sys
from stillroom.curate import CodeVerifier, SandboxLimits, SandboxUnavailableError, isolation
limits = SandboxLimits(**json.loads(sys.argv[1]))
out = {"isolation": isolation(), "verdicts": {}}
try:
    for name, body in json.loads(sys.argv[2]).items():
        verdict = CodeVerifier(limits).verify("", body, "assert add(2, 3) == 5")
        out["verdicts"][name] = [verdict.passed, verdict.reason]
except SandboxUnavailableError as error:
    out["unavailable"] = str(error)
print(json.dumps(out))
"""


def _as_nobody(*args: str) -> subprocess.CompletedProcess:
    drop = ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"]
    return subprocess.run(
        [*drop, sys.executable, *args], capture_output=True, text=True, cwd="/", timeout=300
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="runs as a normal user already: tests above cover it")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="no setpriv to become a normal user")
def test_as_a_normal_user_hostile_answers_are_contained_or_refused(host_target):
    if _as_nobody("-c", "import stillroom.curate").returncode != 0:
        pytest.skip(f"uid {NOBODY} cannot run {sys.executable} with this checkout importable")
    limits = {k: getattr(LIMITS, k) for k in LIMITS.__dataclass_fields__}
    bodies = {name: ADD + body for name, (body, _) in HOSTILE.items()}
    before = _host_state()
    done = _as_nobody("-c", _AS_USER, json.dumps(limits), json.dumps(bodies))
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    if "unavailable" in out:  # no unprivileged user namespaces here: it must say so and refuse
        assert "namespace" in out["unavailable"] and "refusing" in out["unavailable"]
        return
    assert out["isolation"][0] == "user-namespace"
    for name, (_, expected) in HOSTILE.items():
        _check(*out["verdicts"][name], expected)
    assert _leaks(before, _host_state(), NOBODY) == []
    assert sandbox_processes() == []
    assert host_target.read_text() == "host"
