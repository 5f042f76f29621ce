"""Re-export: the embedded-model lookup lives in :mod:`stillroom._core.embedded_model`."""

from stillroom._core.embedded_model import SMOLLM2_GGUF_NAME, SMOLLM2_PACKAGE, find_smollm2_gguf

__all__ = ["SMOLLM2_GGUF_NAME", "SMOLLM2_PACKAGE", "find_smollm2_gguf"]
