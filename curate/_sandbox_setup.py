"""The sandbox's filesystem view, built inside its fresh namespaces before any code runs.

:mod:`stillroom.curate._sandbox` runs this file's source as ``python -I -B -c SOURCE ARGS``
as root of a new mount namespace (the real root, or root of a new user namespace) and PID 1
of a new PID namespace. It imports nothing from stillroom. In order, it

1. makes every mount private, so nothing mounted here propagates to the host;
2. makes the whole tree read-only, every mount under ``/`` included (``mount_setattr`` with
   ``AT_RECURSIVE``: this namespace's copies of the mounts; the host's stay as they were);
3. mounts one tmpfs, capped in bytes (``size=``) and in files and directories
   (``nr_inodes=``), on ``<control>/jail``; makes in it the working directory and four
   scratch directories (mode 1777), binds those over ``/tmp``, ``/var/tmp``, ``/run/lock``
   and ``/dev/shm`` and the working directory over ``<control>``'s own path, and copies the
   input files from ``<control>/in`` into it, owned by the uid the code will run as;
4. execs the rest of its arguments (``setpriv``, which drops uid and capabilities, then the
   sandbox's init).

Arguments: ``STATUS_FD CONTROL WRITE_BYTES MAX_FILES UID GID -- COMMAND...``. A failure is
written to ``STATUS_FD`` as ``setup-failed: <what>: <why>`` and ends the run (exit 125)
before any code has run; when the namespace ends, so does everything mounted in it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys

MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = -100, 0x8000, 1
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (Linux 5.12+)
SCRATCH = {"tmp": "/tmp", "var_tmp": "/var/tmp", "run_lock": "/run/lock", "shm": "/dev/shm"}
FAILED = 125


class SetupError(Exception):
    """One step of the setup failed; the message says which and why."""


class _MountAttr(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in ("set", "clr", "propagation", "userns")]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _check(rc: int, what: str) -> None:
    if rc != 0:
        raise SetupError(f"{what}: {os.strerror(ctypes.get_errno())}")


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None):
    args = (_bytes(source), target.encode(), _bytes(fstype), ctypes.c_ulong(flags), _bytes(data))
    return _libc.mount(*args)


def seal_host() -> None:
    """Private propagation, then every mount of this namespace read-only."""
    _check(_mount(None, "/", None, MS_REC | MS_PRIVATE, None), "private mount propagation")
    attr = _MountAttr(set=MOUNT_ATTR_RDONLY)
    rc = _libc.syscall(
        ctypes.c_long(SYS_MOUNT_SETATTR),
        ctypes.c_int(AT_FDCWD),
        b"/",
        ctypes.c_uint(AT_RECURSIVE),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    _check(rc, "read-only remount of / and every mount under it (mount_setattr, Linux 5.12+)")


def build_jail(control: str, write_bytes: int, max_files: int, uid: int, gid: int) -> None:
    """The capped tmpfs, its directories bound into place; the working directory becomes cwd."""
    jail = os.path.join(control, "jail")
    options = f"size={write_bytes},nr_inodes={max_files},mode=0755"
    rc = _mount("tmpfs", jail, "tmpfs", MS_NOSUID | MS_NODEV, options)
    _check(rc, f"tmpfs ({options}) on {jail}")
    os.chdir(jail)  # relative names below stay valid once the binds hide the jail's path
    os.mkdir("work", 0o700)
    os.chown("work", uid, gid)
    inputs = os.path.join(control, "in")
    for name in os.listdir(inputs):
        shutil.copyfile(os.path.join(inputs, name), os.path.join("work", name))
        os.chown(os.path.join("work", name), uid, gid)
    for name, target in SCRATCH.items():
        os.mkdir(name)
        os.chmod(name, 0o1777)
        if os.path.isdir(target):  # a host without /run/lock has nothing there to cover
            _check(_mount(name, target, None, MS_BIND, None), f"tmpfs bind over {target}")
    if not os.path.isdir(control):  # hidden under the new /tmp: make its path again there
        os.makedirs(control, 0o755)
    _check(_mount("work", control, None, MS_BIND, None), f"working directory on {control}")
    os.chdir(control)


def main(argv: list[str]) -> None:
    status_fd, control, write_bytes, max_files, uid, gid = argv[:6]
    command = argv[7:]
    try:
        seal_host()
        build_jail(control, int(write_bytes), int(max_files), int(uid), int(gid))
        os.execv(command[0], command)
    except (SetupError, OSError) as error:
        os.write(int(status_fd), f"setup-failed: {error}".encode())
        os._exit(FAILED)


if __name__ == "__main__":
    main(sys.argv[1:])
