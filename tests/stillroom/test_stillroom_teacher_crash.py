"""A teacher that dies is named at once: the signal, the CPU features, the fix, its log.

The crash is faked by ``fake_teacher.py``, a real child process that kills itself with
SIGSEGV (as a native llama.cpp build does on an AVX-512/AMX CPU); the real llama.cpp
server's own self-test is checked on the real teacher.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from stillroom._teacher_diagnosis import (
    PORTABLE_CMAKE_ARGS,
    build_diagnosis,
    cpu_flags,
    cpu_mismatch,
    describe_exit,
    missing_cpu_features,
)
from stillroom.teacher import TeacherConfig, TeacherError, TeacherExited, TeacherServer
from tests.stillroom.conftest import needs_teacher
from tests.stillroom.fake_teacher import BUILD, LAST_WORDS, seconds_since_crash

ROOT = Path(__file__).resolve().parents[2]
FAKE = Path(__file__).with_name("fake_teacher.py")
AMX_BUILD = "CPU : SSE3 = 1 | AVX2 = 1 | FMA = 1 | AVX512 = 1 | AMX_INT8 = 1 | OPENMP = 1 | "


def fake(mode: str) -> list[str]:
    return [sys.executable, str(FAKE), mode]


def test_exit_statuses_are_named():
    assert describe_exit(-11) == "was killed by SIGSEGV (exit status -11)"
    assert describe_exit(-4) == "was killed by SIGILL (exit status -4)"
    assert describe_exit(1) == "exited with status 1"


def test_features_the_cpu_lacks_are_the_builds_minus_its_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu pni avx avx2 fma\n\nprocessor\t: 1\n")
    flags = cpu_flags(cpuinfo)
    assert flags == {"fpu", "pni", "avx", "avx2", "fma"}
    assert missing_cpu_features(AMX_BUILD, flags) == ["AVX512", "AMX_INT8"]
    assert missing_cpu_features(AMX_BUILD, flags | {"avx512f", "amx_int8"}) == []
    assert cpu_flags(tmp_path / "missing") is None


def test_a_cpu_without_the_builds_features_is_refused_before_start(tmp_path):
    pytest.importorskip("llama_cpp")
    if os.uname().machine not in ("x86_64", "AMD64"):
        pytest.skip("x86 only")
    assert cpu_mismatch() is None  # the installed build runs on this machine
    old_cpu = tmp_path / "cpuinfo"
    old_cpu.write_text("flags\t\t: fpu pni ssse3 avx\n")
    problem = cpu_mismatch(old_cpu)
    assert "this CPU lacks AVX2" in problem and "SIGILL" in problem
    assert 'CMAKE_ARGS="-DGGML_NATIVE=ON"' in problem and "--force-reinstall" in problem


def test_a_crash_is_diagnosed_with_llama_cpps_features_and_the_fix(tmp_path):
    amx_cpu = tmp_path / "cpuinfo"
    amx_cpu.write_text("flags\t\t: pni avx avx2 fma avx512f amx_int8\n")
    diagnosis = build_diagnosis(-11, AMX_BUILD, amx_cpu)
    assert f"llama.cpp reports: {AMX_BUILD}" in diagnosis
    assert "a native build: its AVX512, AMX_INT8 kernels crash" in diagnosis
    assert f'fix: rebuild llama-cpp-python portably: CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}"' in (
        diagnosis
    )
    old_cpu = tmp_path / "old"
    old_cpu.write_text("flags\t\t: pni avx\n")
    diagnosis = build_diagnosis(-4, AMX_BUILD, old_cpu)
    assert "this CPU lacks AVX2, FMA, AVX512, AMX_INT8" in diagnosis
    assert 'for this CPU: CMAKE_ARGS="-DGGML_NATIVE=ON"' in diagnosis
    assert build_diagnosis(1, AMX_BUILD) == ""  # a Python error is not a build problem


def test_the_installed_portable_build_is_said_to_be_portable():
    pytest.importorskip("llama_cpp")
    diagnosis = build_diagnosis(-11)
    assert "llama.cpp reports: CPU : " in diagnosis and "AVX2 = 1" in diagnosis
    assert "the build is already portable" in diagnosis


def test_a_crash_during_start_up_names_the_signal_and_the_log():
    server = TeacherServer(TeacherConfig(command=fake("start"), startup_timeout_s=60))
    with pytest.raises(TeacherExited) as caught:
        server.start()
    assert caught.value.returncode == -11
    message = str(caught.value)
    assert "was killed by SIGSEGV (exit status -11) during start-up" in message
    # the build the server process reported (not this interpreter's), and the fix
    assert f"llama.cpp reports: {BUILD.strip()}" in message
    assert f'fix: rebuild llama-cpp-python portably: CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}"' in message
    assert re.search(
        rf"ends with:\nllama\.cpp: .*\nfake teacher: crash at [\d.]+\n{LAST_WORDS}$", message
    )
    assert not server.running


def test_a_clean_stop_removes_the_temporary_log_and_a_crash_keeps_it():
    with TeacherServer(TeacherConfig(command=fake("chat"), startup_timeout_s=60)) as server:
        log = server._log_path
        assert log.exists()
    assert not log.exists()  # stopped cleanly: nothing left in the temp folder
    crashed = TeacherServer(TeacherConfig(command=fake("start"), startup_timeout_s=60))
    with pytest.raises(TeacherExited) as caught:
        crashed.start()
    kept = crashed._log_path
    assert str(kept) in str(caught.value) and LAST_WORDS in kept.read_text()
    kept.unlink()


def test_work_against_a_teacher_that_dies_stops_at_once():
    """A client that would retry for minutes is cancelled as soon as the server dies."""
    with TeacherServer(TeacherConfig(command=fake("chat"), startup_timeout_s=60)) as server:
        asked = []

        async def keep_asking() -> None:
            async with httpx.AsyncClient(timeout=30) as client:
                while True:
                    asked.append(1)
                    try:
                        await client.post(f"{server.base_url}/chat/completions", json={})
                    except httpx.TransportError:
                        await asyncio.sleep(120)  # a harvest's back-off

        with pytest.raises(TeacherExited, match=r"killed by SIGSEGV .* while serving") as caught:
            server.run_while_alive(keep_asking())
        assert seconds_since_crash(caught.value.log_tail) < 5 and asked == [1]
        assert LAST_WORDS in caught.value.log_tail


def test_teacher_serve_reports_a_crash_at_once():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stillroom.cli",
            "teacher",
            "serve",
            "--port",
            "0",
            "--server-command",
            f"{sys.executable} {FAKE} ready",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip  (without the report, serve would serve until killed)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "teacher ready" in proc.stdout
    assert "was killed by SIGSEGV (exit status -11) while serving" in proc.stderr
    assert LAST_WORDS in proc.stderr
    assert seconds_since_crash(proc.stderr) < 10  # at once, give or take Python's exit


def test_a_command_must_name_a_program():
    with pytest.raises(TeacherError, match="command"):
        TeacherConfig(command=[])


@needs_teacher
@pytest.mark.slow
@pytest.mark.teacher
def test_the_real_teacher_decodes_a_chat_answer_before_it_reports_ready(teacher):
    log = teacher.log_tail(lines=500)
    assert "llama.cpp: CPU : " in log
    assert "self-test: " in log and " prompt tokens decoded, " in log
