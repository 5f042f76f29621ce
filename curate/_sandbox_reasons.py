"""Why a sandboxed run failed, in words: a signal, a limit it hit, or its last stderr line."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stillroom.curate._sandbox import SandboxLimits

_STDERR_REASONS = (
    ("MemoryError", "memory limit (MemoryError)"),
    ("Cannot allocate memory", "memory limit (ENOMEM)"),
    ("Resource temporarily unavailable", "process limit (fork refused)"),
    ("BlockingIOError", "process limit (fork refused)"),
    ("File too large", "file size limit"),
    ("Read-only file system", "write outside the sandbox refused (read-only file system)"),
    ("Network is unreachable", "network unreachable"),
    ("Temporary failure in name resolution", "network unreachable (no DNS)"),
    ("Name or service not known", "network unreachable (no DNS)"),
)


def _signal_reason(sig: int, limits: SandboxLimits) -> str:
    if sig == signal.SIGXCPU:
        return f"CPU limit ({limits.cpu_s} s)"
    if sig == signal.SIGXFSZ:
        return f"file size limit ({limits.file_mb} MB)"
    try:
        return f"killed by {signal.Signals(sig).name}"
    except ValueError:
        return f"killed by signal {sig}"


def _space_reason(limits: SandboxLimits, left: tuple[int, ...] | None) -> str:
    """ENOSPC in the jail's tmpfs: out of inodes (too many files) or out of bytes."""
    if left and len(left) == 2 and left[1] == 0:
        return f"file limit: made more than the {limits.max_files} files it may (no space left)"
    return f"write limit: wrote past the {limits.write_mb} MB it may write (no space left)"


def reason_for(
    returncode: int | None,
    stderr: str,
    timed_out: bool,
    limits: SandboxLimits,
    left: tuple[int, ...] | None = None,
) -> str:
    """``left`` is what the jail had free when the code ended: (bytes, files), when known."""
    if timed_out:
        return f"timeout after {limits.wall_s:g} s (killed)"
    code = -9 if returncode is None else returncode
    if code < 0 or code > 128:
        return _signal_reason(-code if code < 0 else code - 128, limits)
    if "No space left on device" in stderr:
        return _space_reason(limits, left)
    for needle, reason in _STDERR_REASONS:
        if needle in stderr:
            return reason
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return f"exit {code}" + (f": {last[:200]}" if last else "")
