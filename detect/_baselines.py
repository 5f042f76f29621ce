"""Per-account baselines from the literature, adapted to LLM prompts, as scikit-learn estimators.

* :class:`PradaDetector` (Juuti et al., 2019): for each account, the distance from every new
  query to its nearest earlier query; benign streams give roughly normal distances, extraction
  streams do not.  The account is flagged when the Shapiro-Wilk statistic ``W`` of those
  distances falls below ``delta``.
* :class:`SeatDetector` (Zhang et al., 2021): counts pairs of an account's queries that are
  near-duplicates in the encoder space; the account is flagged when it has at least
  ``pair_threshold`` such pairs.

Queries are embedded with hashed TF-IDF (word 1-2 grams, L2-normalised), learned in ``fit``.
``X`` is a traffic DataFrame with ``account_id`` and ``prompt`` (``timestamp`` orders the
queries when present).  ``predict``/``decision_function`` return a ``pandas.Series`` indexed
by account id, one value per account, so the baselines sit next to ``stillroom.detect.scan`` in a bench.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.utils.validation import check_is_fitted

from stillroom.detect.errors import DetectError


class _HashedTfidfAccounts(BaseEstimator):
    """Shared plumbing: validate traffic, learn IDF, yield each account's query vectors."""

    n_features: int
    max_queries: int
    min_queries: int

    def fit(self, X: pd.DataFrame, y=None):
        frame = _traffic(X)
        self.vectorizer_ = HashingVectorizer(
            n_features=self.n_features, ngram_range=(1, 2), alternate_sign=False, norm=None
        )
        self.tfidf_ = TfidfTransformer().fit(self.vectorizer_.transform(frame["prompt"]))
        return self

    def _per_account(self, X: pd.DataFrame):
        check_is_fitted(self, "tfidf_")
        frame = _traffic(X)
        if "timestamp" in frame:
            frame = frame.assign(_t=pd.to_datetime(frame["timestamp"], utc=True, errors="coerce"))
            frame = frame.sort_values(["account_id", "_t"], kind="stable")
        else:
            frame = frame.sort_values("account_id", kind="stable")
        frame = frame.groupby("account_id", sort=True).head(self.max_queries)
        vectors = self.tfidf_.transform(self.vectorizer_.transform(frame["prompt"])).tocsr()
        codes, accounts = pd.factorize(frame["account_id"], sort=True)
        bounds = np.searchsorted(codes, np.arange(len(accounts) + 1))
        for k, account in enumerate(accounts):
            yield account, vectors[bounds[k] : bounds[k + 1]]

    def decision_function(self, X: pd.DataFrame) -> pd.Series:
        """Per-account suspicion in [0, 1] (higher = more suspicious)."""
        scores = {a: self._score(v) for a, v in self._per_account(X)}
        return pd.Series(scores, name="score", dtype=float).rename_axis("account_id")

    def predict(self, X: pd.DataFrame) -> pd.Series:
        """Per-account flag (bool Series indexed by account id)."""
        return self._flag(self.decision_function(X)).rename("flagged")

    def fit_predict(self, X: pd.DataFrame, y=None) -> pd.Series:
        return self.fit(X).predict(X)


class PradaDetector(_HashedTfidfAccounts):
    """PRADA: Shapiro-Wilk normality of successive nearest-query distances, per account.

    Parameters
    ----------
    delta:
        Flag an account when ``W < delta``.  The score is ``1 - W``.
    min_queries:
        Accounts with fewer queries are never flagged (the test needs a sample).
    max_queries:
        Only an account's first ``max_queries`` queries are tested (bounds the O(n^2) cost).
    n_features:
        Hashing dimension of the TF-IDF embedding.
    """

    def __init__(
        self,
        delta: float = 0.9,
        min_queries: int = 20,
        max_queries: int = 1500,
        n_features: int = 2**18,
    ):
        self.delta = delta
        self.min_queries = min_queries
        self.max_queries = max_queries
        self.n_features = n_features

    def _score(self, vectors) -> float:
        from scipy.stats import shapiro

        n = vectors.shape[0]
        if n < max(3, self.min_queries):
            return 0.0
        sims = (vectors @ vectors.T).toarray()
        sims[np.triu_indices(n)] = -np.inf  # only earlier queries count
        nearest = np.sqrt(np.clip(2.0 - 2.0 * sims[1:].max(axis=1), 0.0, None))
        if np.ptp(nearest) < 1e-12:  # constant distances: as far from normal as it gets
            return 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = float(shapiro(nearest).statistic)
        return 1.0 - w

    def _flag(self, scores: pd.Series) -> pd.Series:
        return scores > 1.0 - self.delta


class SeatDetector(_HashedTfidfAccounts):
    """SEAT: number of near-duplicate query pairs per account.

    Parameters
    ----------
    similarity:
        Cosine similarity at or above which two queries count as a similar pair.
    pair_threshold:
        Flag an account with at least this many similar pairs.
    min_queries, max_queries, n_features:
        As for :class:`PradaDetector`.
    """

    def __init__(
        self,
        similarity: float = 0.9,
        pair_threshold: int = 50,
        min_queries: int = 2,
        max_queries: int = 1500,
        n_features: int = 2**18,
    ):
        self.similarity = similarity
        self.pair_threshold = pair_threshold
        self.min_queries = min_queries
        self.max_queries = max_queries
        self.n_features = n_features

    def similar_pairs(self, X: pd.DataFrame) -> pd.Series:
        """Per-account count of query pairs with cosine similarity >= ``similarity``."""
        counts = {}
        for account, vectors in self._per_account(X):
            if vectors.shape[0] < self.min_queries:
                counts[account] = 0
                continue
            sims = (vectors @ vectors.T).tocoo()
            counts[account] = int(((sims.data >= self.similarity) & (sims.row < sims.col)).sum())
        return pd.Series(counts, name="similar_pairs", dtype=np.int64).rename_axis("account_id")

    def decision_function(self, X: pd.DataFrame) -> pd.Series:
        """Similar pairs relative to the threshold, squashed to [0, 1)."""
        pairs = self.similar_pairs(X).astype(float)
        return (pairs / (pairs + self.pair_threshold)).rename("score")

    def _flag(self, scores: pd.Series) -> pd.Series:
        return scores >= 0.5  # pairs >= pair_threshold


def _traffic(X) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise DetectError(
            f"baseline detectors expect a pandas DataFrame of traffic rows, got {type(X).__name__}"
        )
    missing = [c for c in ("account_id", "prompt") if c not in X.columns]
    if missing:
        raise DetectError(
            f"traffic is missing column(s) {', '.join(missing)} (have: {', '.join(map(str, X.columns))})"
        )
    cols = [c for c in ("account_id", "prompt", "timestamp") if c in X.columns]
    frame = X[cols].dropna(subset=["account_id", "prompt"])
    return frame.assign(
        prompt=frame["prompt"].astype(str), account_id=frame["account_id"].astype(str)
    )
