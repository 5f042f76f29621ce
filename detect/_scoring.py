"""Scoring communities as candidate campaigns, with thresholds calibrated without labels.

Each signal (reasoning demands, grading prompts, logprob probing) is a count of requests.
``fit`` learns each signal's background rate from the bulk of accounts (the pooled rate of
accounts at or below the 90th percentile of their own rates, floored), and the significance
thresholds: a one-sided binomial test at family-wise level ``alpha`` with a Bonferroni
correction for the number of communities (and, for a lone account, the number of accounts).
A community is scored as a whole by pooling its members' counts, so many accounts that each
stay below any per-account threshold still add up.  Logprob probing only counts for traffic
paced like a machine (a large share of requests in the 6 quietest hours of the day).

Content alone is not enough: evaluation harnesses and LLM-as-judge runs send the same kind of
prompts.  A reasoning or grading signal must be corroborated by campaign behaviour: traffic
paced round the clock, or a coordinated group of ``min_accounts`` or more, or the signal kept
up over ``min_signal_days`` distinct days (a benchmark run is a burst, a harvest persists).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binom
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

SIGNALS = ("reasoning", "grading", "logprob")
REQUIRED = (
    "requests",
    "quiet_share",
    "community",
    *(f"{s}_requests" for s in SIGNALS),
    *(f"{s}_days" for s in SIGNALS),
)


MAX_LOG10_P = 1000.0  # beyond double precision anyway; keeps the report finite JSON


def log_significance(hits, n, p0) -> np.ndarray:
    """``-log10`` of the binomial tail P(X >= hits | n, p0), elementwise."""
    hits = np.asarray(hits, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore"):
        tail = binom.logsf(hits - 1, n, p0) / np.log(10)
    return np.where(hits > 0, np.minimum(-tail, MAX_LOG10_P), 0.0)


class CampaignDetector(BaseEstimator):
    """Flags accounts whose community (or who alone) carries significant distillation signals.

    Parameters
    ----------
    alpha : family-wise false-alarm level of the significance tests.
    min_rate : a signal must be at least this share of the group's requests (effect size).
    min_hits : and at least this many requests.
    member_min_rate, member_min_log10p : a member of a flagged community is flagged only if
        its own rate of the community's signal reaches ``member_min_rate`` and is itself
        significant at ``10**-member_min_log10p`` (uncorrected), so linked bystanders are not.
    quiet_min : share of requests in the 6 quietest hours that makes traffic machine-paced.
    rate_floor : smallest background rate used in the tests.
    min_accounts : a community this large counts as coordinated.
    min_signal_days : days with the signal that make it persistent.
    strong_link : a member without signals of its own is still flagged when its summed link
        weight to members that do carry them (optional column ``evidence_link``) reaches this.

    ``X`` is a DataFrame with one row per account and the columns in ``REQUIRED``.
    """

    def __init__(
        self,
        alpha=0.01,
        min_rate=0.05,
        min_hits=5,
        member_min_rate=0.02,
        member_min_log10p=2.0,
        quiet_min=0.1,
        rate_floor=0.002,
        min_accounts=3,
        min_signal_days=4,
        strong_link=2.0,
    ):
        self.alpha = alpha
        self.min_rate = min_rate
        self.min_hits = min_hits
        self.member_min_rate = member_min_rate
        self.member_min_log10p = member_min_log10p
        self.quiet_min = quiet_min
        self.rate_floor = rate_floor
        self.min_accounts = min_accounts
        self.min_signal_days = min_signal_days
        self.strong_link = strong_link

    def fit(self, X: pd.DataFrame, y=None):
        _check_columns(X)
        n = X["requests"].to_numpy(float)
        self.background_ = {}
        for signal in SIGNALS:
            hits = X[f"{signal}_requests"].to_numpy(float)
            rate = hits / np.maximum(n, 1)
            bulk = rate <= np.quantile(rate, 0.9)
            pooled = hits[bulk].sum() / max(n[bulk].sum(), 1.0)
            self.background_[signal] = float(max(self.rate_floor, pooled))
        self.n_communities_ = int(X["community"].nunique())
        self.n_accounts_ = len(X)
        self.community_threshold_ = float(-np.log10(self.alpha / max(1, self.n_communities_)))
        self.account_threshold_ = float(-np.log10(self.alpha / max(1, self.n_accounts_)))
        return self

    def _evidence(self, hits, n, quiet, days, size, threshold, corroborate=True) -> np.ndarray:
        """Score in [0, 1) per row and signal (0.5 = at the threshold; 0 = guard failed)."""
        scores = []
        for i, signal in enumerate(SIGNALS):
            k = hits[:, i]
            sig = log_significance(k, n, self.background_[signal])
            ok = (k >= self.min_hits) & (k >= self.min_rate * n)
            machine = quiet >= self.quiet_min
            if signal == "logprob":
                ok &= machine
            elif corroborate:
                ok &= machine | (size >= self.min_accounts) | (days[:, i] >= self.min_signal_days)
            scores.append(np.where(ok, sig / (sig + threshold), 0.0))
        return np.vstack(scores).T

    def assign(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per account: ``score``, ``flagged``, ``signal``, ``group`` (community id or -1) and
        ``content_score`` (the account's own evidence before any corroboration)."""
        check_is_fitted(self, "background_")
        _check_columns(X)
        cols = [f"{s}_requests" for s in SIGNALS]
        days = [f"{s}_days" for s in SIGNALS]
        requests = X["requests"].to_numpy(float)
        own = self._evidence(
            X[cols].to_numpy(float),
            requests,
            X["quiet_share"].fillna(0).to_numpy(float),
            X[days].to_numpy(float),
            np.ones(len(X)),
            self.account_threshold_,
        )
        content = self._evidence(
            X[cols].to_numpy(float),
            requests,
            X["quiet_share"].fillna(0).to_numpy(float),
            X[days].to_numpy(float),
            np.ones(len(X)),
            self.account_threshold_,
            corroborate=False,
        ).max(axis=1)
        weighted = X.assign(qw=X["quiet_share"].fillna(0) * X["requests"], size=1)
        groups = weighted.groupby("community")
        pooled = groups[[*cols, "requests", "qw", "size"]].sum().join(groups[days].max())
        com = self._evidence(
            pooled[cols].to_numpy(float),
            pooled["requests"].to_numpy(float),
            (pooled["qw"] / pooled["requests"].clip(lower=1)).to_numpy(float),
            pooled[days].to_numpy(float),
            pooled["size"].to_numpy(float),
            self.community_threshold_,
        )
        com = com[pooled.index.get_indexer(X["community"])]
        own_rates = X[cols].to_numpy(float) / np.maximum(requests, 1)[:, None]
        own_sig = np.vstack(
            [
                log_significance(X[c].to_numpy(float), requests, self.background_[s])
                for c, s in zip(cols, SIGNALS, strict=True)
            ]
        ).T
        linked = X.get("evidence_link", pd.Series(0.0, index=X.index)).fillna(0).to_numpy(float)
        member_ok = (com >= 0.5) & (
            ((own_rates >= self.member_min_rate) & (own_sig >= self.member_min_log10p))
            | (linked >= self.strong_link)[:, None]
        )
        member_score = np.where(member_ok, com, 0.0)
        best = np.maximum(member_score, own)
        score = best.max(axis=1)
        flagged = score >= 0.5
        return pd.DataFrame(
            {
                "score": score,
                "flagged": flagged,
                "signal": np.asarray(SIGNALS, dtype=object)[best.argmax(axis=1)],
                "group": np.where(flagged, X["community"].to_numpy(), -1),
                "content_score": content,
            },
            index=X.index,
        )

    def seeds(self, X: pd.DataFrame, min_log10p: float = 1.3, min_hits: int = 2) -> pd.Index:
        """Accounts whose own counts lean suspicious (uncorrected ``p < 10**-min_log10p``):
        the starting points of the coordination graph."""
        check_is_fitted(self, "background_")
        n = X["requests"].to_numpy(float)
        lean = np.zeros(len(X), dtype=bool)
        for signal in SIGNALS:
            k = X[f"{signal}_requests"].to_numpy(float)
            sig = log_significance(k, n, self.background_[signal])
            lean |= (k >= min_hits) & (sig >= min_log10p)
        return X.index[lean]

    def score_samples(self, X: pd.DataFrame) -> np.ndarray:
        return self.assign(X)["score"].to_numpy()

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.assign(X)["flagged"].to_numpy()

    def fit_predict(self, X: pd.DataFrame, y=None) -> np.ndarray:
        return self.fit(X).predict(X)


def _check_columns(X) -> None:
    if not isinstance(X, pd.DataFrame):
        raise TypeError("CampaignDetector expects a pandas DataFrame of account features")
    missing = [c for c in REQUIRED if c not in X.columns]
    if missing:
        raise ValueError(f"CampaignDetector: missing columns {missing}")
