"""stillroom._core: what every stillroom package may import, and nothing heavy.

``harvest``, ``policies``, ``train``, ``detect`` and the ``stillroom`` CLI package all sit
above this one; it imports none of them. It holds:

- :class:`StillroomError` (``errors``), the root of every error raised on purpose;
- :func:`find_smollm2_gguf` (``embedded_model``), where the embedded default model lives;
- :func:`find_minilm_path` and :func:`load_sentence_transformer` (``sentence_model``), the
  packaged all-MiniLM-L6-v2, loaded offline;
- the one CLI error edge (``cli_edge``): one-line errors, Ctrl-C exits 130;
- :func:`lazy_exports` (``lazy``), how a package re-exports names without importing them;
- :func:`byte_decoder` (``byte_level``), GPT-2's byte-level BPE alphabet reversed (train's KD
  alignment and the teacher's scoring route both read token bytes through it).
"""

from stillroom._core.byte_level import byte_decoder
from stillroom._core.embedded_model import SMOLLM2_GGUF_NAME, SMOLLM2_PACKAGE, find_smollm2_gguf
from stillroom._core.errors import StillroomError
from stillroom._core.sentence_model import find_minilm_path, load_sentence_transformer

__all__ = [
    "SMOLLM2_GGUF_NAME",
    "SMOLLM2_PACKAGE",
    "StillroomError",
    "byte_decoder",
    "find_minilm_path",
    "find_smollm2_gguf",
    "load_sentence_transformer",
]
