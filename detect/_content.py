"""Content signals as scikit-learn estimators, applied to a capped sample of prompts per account.

* :class:`PromptIntentClassifier` scores prompts as ``none`` / ``reasoning`` (demands the
  model's reasoning) / ``grading`` (rubric or judge prompts); fitted by default on the seed
  corpus in :mod:`stillroom.detect._lexicon`.
* :class:`MinHashSignatures` turns prompts into MinHash signatures of word shingles; LSH band
  keys from them find near-duplicate prompts and shared templates across accounts.
* :class:`TopicClusters` clusters prompts into capability topics (hashed TF-IDF + k-means) so
  each account's coverage (how concentrated its traffic is on a few capabilities) is measured.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.cluster import MiniBatchKMeans
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import SGDClassifier
from sklearn.utils.validation import check_is_fitted

from stillroom.detect._lexicon import intent_seed_corpus

_MERSENNE = (1 << 61) - 1


class PromptIntentClassifier(ClassifierMixin, BaseEstimator):
    """Linear classifier over hashed n-grams: ``none`` / ``reasoning`` / ``grading``.

    Parameters
    ----------
    n_features : width of the hashing space.
    analyzer : ``"word"`` (the default) or ``"char_wb"`` (character n-grams inside word
        boundaries, e.g. ``ngram_range=(3, 5)``: more robust to inflection and compounding,
        but about 5x slower to vectorise, which the default scan's speed target cannot pay;
        ``bench/detect_quality.py`` scores both).
    ngram_range : n-gram range (characters or words, per ``analyzer``).
    alpha : L2 regularisation of the SGD logistic model.
    random_state : seed of the SGD shuffling.

    ``fit(X, y)`` with ``X=None`` fits on the built-in seed corpus.
    """

    def __init__(
        self, n_features=2**18, analyzer="word", ngram_range=(1, 2), alpha=1e-4, random_state=0
    ):
        self.n_features = n_features
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.alpha = alpha
        self.random_state = random_state

    def _vectorizer(self) -> HashingVectorizer:
        return HashingVectorizer(
            n_features=self.n_features,
            analyzer=self.analyzer,
            ngram_range=self.ngram_range,
            alternate_sign=False,
            lowercase=True,
        )

    def fit(self, X=None, y=None):
        if X is None:
            X, y = intent_seed_corpus()
        if y is None:
            raise ValueError("PromptIntentClassifier.fit needs labels y (or X=None for seeds)")
        self.vectorizer_ = self._vectorizer()
        self.model_ = SGDClassifier(
            loss="log_loss",
            alpha=self.alpha,
            max_iter=50,
            tol=None,
            random_state=self.random_state,
        ).fit(self.vectorizer_.transform(list(X)), list(y))
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.model_.predict_proba(self.vectorizer_.transform(list(X)))

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class MinHashSignatures(TransformerMixin, BaseEstimator):
    """MinHash signatures of word ``shingle``-grams (hashed), ``n_perm`` permutations.

    ``transform`` returns a ``(n_prompts, n_perm)`` uint64 array; prompts with fewer words than
    a shingle get a signature of their whole text.  Rows that share an LSH band (see
    :func:`lsh_band_keys`) are near-duplicates: same template, different slot.
    """

    def __init__(self, n_perm=32, shingle=3, n_features=2**24, random_state=0):
        self.n_perm = n_perm
        self.shingle = shingle
        self.n_features = n_features
        self.random_state = random_state

    def fit(self, X=None, y=None):
        rng = np.random.default_rng(self.random_state)
        self.a_ = rng.integers(1, _MERSENNE, self.n_perm, dtype=np.uint64)
        self.b_ = rng.integers(0, _MERSENNE, self.n_perm, dtype=np.uint64)
        self.vectorizer_ = HashingVectorizer(
            n_features=self.n_features,
            analyzer="word",
            ngram_range=(self.shingle, self.shingle),
            alternate_sign=False,
            norm=None,
            binary=True,
            token_pattern=r"(?u)\b\w+\b",
        )
        self.fallback_ = HashingVectorizer(
            n_features=self.n_features,
            analyzer="word",
            ngram_range=(1, self.shingle),
            alternate_sign=False,
            norm=None,
            binary=True,
            token_pattern=r"(?u)\b\w+\b",
        )
        return self

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "a_")
        texts = [str(t).lower() for t in X]
        shingles = self.vectorizer_.transform(texts).tocsr()
        empty = np.flatnonzero(np.diff(shingles.indptr) == 0)
        if len(empty):
            shingles = shingles.tolil()
            fallback = self.fallback_.transform([texts[i] for i in empty]).tolil()
            for row, i in enumerate(empty):
                shingles.rows[i] = fallback.rows[row]
                shingles.data[i] = fallback.data[row]
            shingles = shingles.tocsr()
        return _minhash(shingles.indptr, shingles.indices.astype(np.uint64), self.a_, self.b_)


def _minhash(indptr, indices, a, b) -> np.ndarray:
    n = len(indptr) - 1
    out = np.full((n, len(a)), np.iinfo(np.uint64).max, dtype=np.uint64)
    nonempty = np.flatnonzero(np.diff(indptr) > 0)
    if len(indices) == 0:
        return out
    starts = indptr[nonempty]
    for k in range(len(a)):
        hashed = (a[k] * indices + b[k]) % np.uint64(_MERSENNE)
        out[nonempty, k] = np.minimum.reduceat(hashed, starts)
    return out


def lsh_band_keys(signatures: np.ndarray, bands: int = 8) -> np.ndarray:
    """Hash each band of rows of ``signatures`` into one int64 key: ``(n, bands)``."""
    n, perms = signatures.shape
    rows = perms // bands
    keys = np.empty((n, bands), dtype=np.int64)
    for band in range(bands):
        block = np.ascontiguousarray(signatures[:, band * rows : (band + 1) * rows])
        keys[:, band] = (
            pd.util.hash_array(block.view(f"V{block.itemsize * rows}").ravel()).view(np.int64)
            ^ band
        )
    return keys


class TopicClusters(TransformerMixin, BaseEstimator):
    """Capability topics: hashed TF-IDF of words then mini-batch k-means with ``n_topics``."""

    def __init__(self, n_topics=24, n_features=2**16, max_fit=5000, random_state=0):
        self.n_topics = n_topics
        self.n_features = n_features
        self.max_fit = max_fit
        self.random_state = random_state

    def _vectors(self, X):
        return self.tfidf_.transform(self.vectorizer_.transform([str(t) for t in X]))

    def fit(self, X, y=None):
        texts = [str(t) for t in X]
        rng = np.random.default_rng(self.random_state)
        if len(texts) > self.max_fit:
            texts = [texts[i] for i in rng.choice(len(texts), self.max_fit, replace=False)]
        self.vectorizer_ = HashingVectorizer(
            n_features=self.n_features, alternate_sign=False, stop_words="english"
        )
        self.tfidf_ = TfidfTransformer().fit(self.vectorizer_.transform(texts))
        k = max(1, min(self.n_topics, len(texts)))
        self.kmeans_ = MiniBatchKMeans(
            n_clusters=k, random_state=self.random_state, n_init=3, batch_size=2048
        ).fit(self._vectors(texts))
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "kmeans_")
        return self.kmeans_.predict(self._vectors(X))

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "kmeans_")
        return self.kmeans_.transform(self._vectors(X))
