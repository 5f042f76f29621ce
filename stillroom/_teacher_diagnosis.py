"""Why the embedded teacher died, in words a user can act on.

llama.cpp built with ``-march=native`` (pip's default when it compiles llama-cpp-python)
segfaults on AVX-512/AMX CPUs at the first multi-token decode, and a wheel built on one
CPU can die with SIGILL on another that lacks its instructions. So a teacher that died
from a signal is reported with the signal, the CPU features the llama.cpp build uses
(``llama_print_system_info()``), the ones this CPU lacks, and the command that rebuilds
llama-cpp-python portably (:data:`PORTABLE_CMAKE_ARGS`, the flags ``make setup`` passes).
"""

from __future__ import annotations

import platform
import re
import signal
import sys
from pathlib import Path

#: What ``make setup`` passes to CMake (its ``LLAMA_CMAKE_ARGS``; a test keeps them equal).
PORTABLE_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
#: For a CPU without AVX2 (the portable build needs it): a build for that CPU alone.
NATIVE = "-DGGML_NATIVE=ON"
#: llama.cpp's names for the CPU features it was built for -> the /proc/cpuinfo flag.
CPU_FLAGS = {
    "SSE3": "pni",
    "SSSE3": "ssse3",
    "AVX": "avx",
    "AVX2": "avx2",
    "F16C": "f16c",
    "FMA": "fma",
    "BMI2": "bmi2",
    "AVX_VNNI": "avx_vnni",
    "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16",
    "AMX_INT8": "amx_int8",
}
#: Signals a bad llama.cpp build dies from (bad kernel, instruction the CPU lacks).
CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGILL, signal.SIGBUS, signal.SIGFPE})


def llama_system_info() -> str | None:
    """``llama_cpp.llama_print_system_info()`` as text; None without llama-cpp-python."""
    try:
        import llama_cpp
    except ImportError:
        return None
    info = llama_cpp.llama_print_system_info()
    return (info.decode(errors="replace") if isinstance(info, bytes) else str(info)).strip()


def build_features(info: str) -> list[str]:
    """The features a llama.cpp build reports as on (``"AVX2 = 1"`` -> ``"AVX2"``)."""
    return re.findall(r"\b([A-Z][A-Z0-9_]*) = 1\b", info)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """This CPU's flags from ``/proc/cpuinfo``; None where there is no such file or line."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    match = re.search(r"^flags\s*:(.*)$", text, re.M)
    return set(match.group(1).split()) if match else None


def missing_cpu_features(info: str, flags: set[str]) -> list[str]:
    """The features the build uses that the CPU lacks (each would die with SIGILL)."""
    return [f for f in build_features(info) if f in CPU_FLAGS and CPU_FLAGS[f] not in flags]


def rebuild_command(cmake_args: str = PORTABLE_CMAKE_ARGS) -> str:
    """The pip command that replaces the installed llama-cpp-python with a build for
    ``cmake_args`` (default: the portable one)."""
    try:
        from importlib.metadata import version

        pinned = f"llama-cpp-python=={version('llama-cpp-python')}"
    except Exception:  # not installed: any version will do
        pinned = "llama-cpp-python"
    return (
        f'CMAKE_ARGS="{cmake_args}" {sys.executable} -m pip install '
        f"--force-reinstall --no-cache-dir --no-deps {pinned}"
    )


def describe_exit(returncode: int) -> str:
    """``-11`` -> ``"was killed by SIGSEGV (exit status -11)"``; ``1`` -> ``"exited with status 1"``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name} (exit status {returncode})"
    return f"exited with status {returncode}"


def build_diagnosis(
    returncode: int | None = None,
    info: str | None = None,
    cpuinfo: Path = Path("/proc/cpuinfo"),
) -> str:
    """What llama.cpp reports (``info``; default: the installed build's), what this CPU
    lacks, and the fix; "" for an exit that is not a crash (see :data:`CRASH_SIGNALS`)."""
    if returncode is not None and -returncode not in {int(s) for s in CRASH_SIGNALS}:
        return ""
    info = info if info is not None else llama_system_info()
    if info is None:
        return ""
    lines = [f"llama.cpp reports: {info}"]
    flags = cpu_flags(cpuinfo)
    missing = missing_cpu_features(info, flags) if flags is not None else []
    native = [f for f in build_features(info) if re.match(r"AVX512|AMX", f)]
    if missing:
        lines.append(f"this CPU lacks {', '.join(missing)}, which the build uses")
    elif native:
        lines.append(
            f"a native build: its {', '.join(native)} kernels crash on AVX-512/AMX CPUs "
            "at the first multi-token decode"
        )
    else:
        lines.append("the build is already portable (AVX2, no AVX-512/AMX kernels)")
    if missing and "AVX2" in missing:
        lines.append(f"fix: rebuild llama-cpp-python for this CPU: {rebuild_command(NATIVE)}")
    else:
        lines.append(f"fix: rebuild llama-cpp-python portably: {rebuild_command()}")
    return "\n".join(lines)


def cpu_mismatch(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """Why the installed llama.cpp cannot run on this CPU, or None when it can (or we cannot tell).

    On x86 it needs AVX2 (the portable build) and every feature the build was compiled for.
    """
    if platform.machine().lower() not in {"x86_64", "amd64", "i686", "i386"}:
        return None
    info, flags = llama_system_info(), cpu_flags(cpuinfo)
    if info is None or flags is None:
        return None
    missing = missing_cpu_features(info, flags)
    if not missing:
        return None
    # without AVX2 the portable build cannot run either: build for this CPU alone
    args = NATIVE if "AVX2" in missing else PORTABLE_CMAKE_ARGS
    return (
        f"this CPU lacks {', '.join(missing)}, which the installed llama.cpp was built for "
        f"(it would die with SIGILL); llama.cpp reports: {info}; "
        f"fix: rebuild llama-cpp-python for this CPU: {rebuild_command(args)}"
    )
