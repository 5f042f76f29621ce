"""The installed llama.cpp is the portable build `make setup` makes (AVX2, FMA, F16C).

A native build segfaults on AVX-512/AMX CPUs at the first multi-token decode (llama.cpp's
AMX matmul path), and a wheel built natively on one CPU can SIGILL on another, so
`make setup` passes `LLAMA_CMAKE_ARGS` and never reuses a wheel built with other flags.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_llama_cpp_has_no_avx512_or_amx_kernels():
    llama_cpp = pytest.importorskip("llama_cpp")
    info = llama_cpp.llama_print_system_info()
    info = info.decode() if isinstance(info, bytes) else info
    assert "AVX2 = 1" in info, info
    for feature in ("AVX512", "AMX"):
        assert not re.search(rf"{feature}\w* = 1", info), info


def test_make_setup_builds_llama_cpp_portably():
    makefile = (ROOT / "Makefile").read_text()
    flags = re.search(r"^LLAMA_CMAKE_ARGS := (.*)$", makefile, re.M).group(1).split()
    assert "-DGGML_NATIVE=OFF" in flags
    assert {"-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON"} <= set(flags)
    assert not [f for f in flags if re.match(r"-DGGML_(AVX512|AMX)\w*=ON", f)]
    # the wheel is built with those flags into a folder keyed by them, never from pip's cache
    assert re.search(
        r'CMAKE_ARGS="\$\(LLAMA_CMAKE_ARGS\)" \$\(BIN\)/pip wheel [^\n]*--no-cache-dir', makefile
    )


def test_the_crash_report_suggests_the_flags_make_setup_passes():
    from stillroom._teacher_diagnosis import PORTABLE_CMAKE_ARGS, rebuild_command

    makefile = (ROOT / "Makefile").read_text()
    flags = re.search(r"^LLAMA_CMAKE_ARGS := (.*)$", makefile, re.M).group(1).strip()
    assert flags == PORTABLE_CMAKE_ARGS
    assert rebuild_command().startswith(f'CMAKE_ARGS="{flags}" ')
