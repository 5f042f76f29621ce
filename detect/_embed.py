"""Prompt embeddings for the content evidence: one packaged model, three budgets.

:class:`PromptEmbedder` turns prompts into unit vectors.  Backends, all from the packaged
all-MiniLM-L6-v2 (:mod:`stillroom._core`, loaded offline; nothing is downloaded):

* ``"static"`` (default): the model's own word-piece embedding table, mean-pooled over a
  prompt's first ``max_tokens`` tokens, then the log's common components removed (the mean
  and the top ``remove_components`` principal directions of the prompts ``fit`` saw, as in
  SIF embeddings).  Thousands of prompts per second on one core, so a scan embeds its whole
  capped sample.
* ``"minilm"``: the full transformer (sentence-transformers), on at most ``budget`` prompts
  (the rest fall back to ``"static"``); about 190 prompts/s on 2 cores.
* ``"hashing"``: hashed word TF-IDF, randomly projected; used when the model package (or
  ``tokenizers`` / ``safetensors``) is missing, so a scan never needs it.

``backend_`` says which one ran.  Vectors are float32, unit length (zero rows stay zero).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

BACKENDS = ("static", "minilm", "hashing")


class PromptEmbedder(TransformerMixin, BaseEstimator):
    """Unit-length prompt vectors (see the module docstring for the backends)."""

    def __init__(self, backend="static", max_tokens=64, remove_components=2, budget=2000, dim=256):
        self.backend = backend
        self.max_tokens = max_tokens
        self.remove_components = remove_components
        self.budget = budget
        self.dim = dim

    def fit(self, X, y=None):
        if self.backend not in BACKENDS:
            raise ValueError(f"PromptEmbedder.backend must be one of {BACKENDS}")
        texts = [str(t) for t in X]
        self.backend_ = self.backend if _static_parts() is not None else "hashing"
        if self.backend_ == "hashing":
            from sklearn.feature_extraction.text import HashingVectorizer

            self.vectorizer_ = HashingVectorizer(n_features=2**12, alternate_sign=False)
            rng = np.random.default_rng(0)
            self.projection_ = rng.standard_normal((2**12, int(self.dim))).astype(np.float32)
            raw = self._hashed(texts)
        else:
            raw = self._static_raw(texts)
        self._raw_seen = raw
        self.mean_ = raw.mean(axis=0) if len(raw) else np.zeros(raw.shape[1], np.float32)
        k = min(int(self.remove_components), max(0, len(raw) - 1))
        if k:
            centred = raw - self.mean_
            self.components_ = _top_components(centred.T @ centred, k)
        else:
            self.components_ = np.zeros((0, raw.shape[1]), np.float32)
        return self

    def fit_transform(self, X, y=None) -> np.ndarray:
        texts = [str(t) for t in X]
        self.fit(texts)
        return self._finish(texts, self._raw_seen)

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "mean_")
        texts = [str(t) for t in X]
        raw = self._hashed(texts) if self.backend_ == "hashing" else self._static_raw(texts)
        return self._finish(texts, raw)

    def _finish(self, texts: list[str], raw: np.ndarray) -> np.ndarray:
        vectors = raw - self.mean_
        vectors -= (vectors @ self.components_.T) @ self.components_
        if self.backend_ == "minilm" and len(texts):
            head = min(len(texts), int(self.budget))
            vectors[:head] = self._transformer().encode(
                texts[:head], batch_size=64, normalize_embeddings=True
            )
        return _unit(vectors)

    def _static_raw(self, texts: list[str]) -> np.ndarray:
        """Mean word-piece vectors, each distinct text embedded once (a log repeats its
        templates, evaluation items and retries)."""
        codes, distinct = _distinct(texts)
        return self._static_distinct(distinct)[codes]

    def _static_distinct(self, texts: list[str]) -> np.ndarray:
        tokenizer, table = _static_parts()
        width = int(self.max_tokens) + 2
        tokenizer.enable_truncation(width)
        tokenizer.enable_padding(length=width, pad_id=0)
        encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
        encoded = encode(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64).reshape(len(texts), width)
        # word pieces only: no [CLS] / [SEP] / padding (ids 0, 101, 102 in this vocabulary)
        mask = (ids != 0) & (ids != 101) & (ids != 102)
        from scipy.sparse import csr_matrix

        weights = mask / np.maximum(mask.sum(axis=1), 1)[:, None]
        rows = np.repeat(np.arange(len(texts)), width)
        pooling = csr_matrix(
            (weights.ravel().astype(np.float32), (rows, ids.ravel())),
            shape=(len(texts), table.shape[0]),
        )
        return np.asarray(pooling @ table, dtype=np.float32)

    def _hashed(self, texts: list[str]) -> np.ndarray:
        codes, distinct = _distinct(texts)
        sparse = self.vectorizer_.transform(distinct)
        return np.asarray(sparse @ self.projection_, dtype=np.float32)[codes]

    def _transformer(self):
        if not hasattr(self, "transformer_"):
            from stillroom._core import find_minilm_path, load_sentence_transformer

            self.transformer_ = load_sentence_transformer(find_minilm_path())
            self.transformer_.max_seq_length = int(self.max_tokens)
        return self.transformer_


def _top_components(cov: np.ndarray, k: int, iterations: int = 50) -> np.ndarray:
    """The top ``k`` eigenvectors of a small symmetric matrix by power iteration with
    deflation (``k`` rows; cheaper and steadier than a full LAPACK solve on a busy host)."""
    cov = cov.astype(np.float64)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(k):
        v = rng.standard_normal(len(cov))
        for _ in range(iterations):
            v = cov @ v
            v /= np.linalg.norm(v) or 1.0
        out.append(v)
        cov = cov - (v @ cov @ v) * np.outer(v, v)
    return np.asarray(out, dtype=np.float32)


_STATIC: dict = {}


def _static_parts():
    """(tokenizer, word-piece table) of the packaged model, loaded once; None if missing."""
    if "parts" not in _STATIC:
        _STATIC["parts"] = None
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer

            from stillroom._core import find_minilm_path
        except ImportError:
            return None
        path = find_minilm_path()
        if path is not None:
            weights = load_file(str(path / "model.safetensors"))
            table = next(v for k, v in weights.items() if k.endswith("word_embeddings.weight"))
            _STATIC["parts"] = (
                Tokenizer.from_file(str(path / "tokenizer.json")),
                table.astype(np.float32),
            )
    return _STATIC["parts"]


def _distinct(texts: list[str]) -> tuple[np.ndarray, list[str]]:
    """``(codes, distinct)``: ``texts[i] == distinct[codes[i]]``."""
    import pandas as pd

    codes, distinct = pd.factorize(pd.Series(texts, dtype=object))
    return codes, [str(t) for t in distinct]


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
