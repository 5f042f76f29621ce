"""Scoring communities as candidate campaigns, with thresholds calibrated without labels.

Each signal (reasoning demands, grading prompts, logprob probing) is a count of requests.
``fit`` learns each signal's background rate from the bulk of accounts (the pooled rate of
accounts at or below the 90th percentile of their own rates, floored), and the significance
thresholds: a one-sided binomial test at family-wise level ``alpha`` with a Bonferroni
correction for the number of communities (and, for a lone account, the number of accounts).
A community is scored as a whole by pooling its members' counts, so many accounts that each
stay below any per-account threshold still add up.  Logprob probing only counts for traffic
paced like a machine (a large share of requests in the 6 quietest hours of the day).

Content is never the only gate, and never a required one.  Evaluation harnesses, tutoring
apps and LLM-as-judge runs send the same kind of prompts, so a reasoning or grading signal
counts only beside campaign behaviour: a round-the-clock share (benchmark runs come in regular
bursts in office hours, so regular gaps alone do not corroborate), or a community of
``min_accounts`` or more that shares infrastructure (shared wording alone is the same
evidence twice).

Behaviour alone can flag a group.  The groups are linked accounts that act alike (column
``behaviour_community``); in each, every behaviour of :mod:`stillroom.detect._behaviour` (machine pacing,
output-heavy economics, logprob harvesting) is tested as the count of members showing it
against its background share among ungrouped accounts, needs a majority of members, and the
behaviours' evidence together must clear the Bonferroni-corrected threshold.  The group must
also share infrastructure (column ``infra_group``: its median member sits in a component of
``min_accounts`` or more linked by IPs, payment or org ids or synchronised activity, each
weighted by the artifact's purity, so a carrier NAT shared by hundreds of unrelated users links
nobody).  Content found in the group raises its score and is named in its evidence.  A member
is flagged when it shows a significant behaviour of its group and shares infrastructure itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binom
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from stillroom.detect._askers import (
    TASK_MIN_FRESH,
    asks_tasks,
    products,
    task_askers,
    wrap_askers,
)
from stillroom.detect._behaviour import BEHAVIOURS

SIGNALS = ("reasoning", "grading", "logprob", "shared", "wrapped")
OPTIONAL_SIGNALS = ("shared", "wrapped")  # a missing column counts as zero
REQUIRED = (
    "requests",
    "quiet_share",
    "community",
    *(f"{s}_requests" for s in SIGNALS if s not in OPTIONAL_SIGNALS),
)
# Coverage of a task space: a group's prompts spread over topics at least half as widely as
# the log's typical account's (a product's template narrows them; a share of the log's own
# median, not a fitted value).
COVERAGE_SPREAD = 0.5


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
        strong_link=2.0,
        behaviour_floor=0.01,
        behaviour_majority=0.5,
    ):
        self.alpha = alpha
        self.min_rate = min_rate
        self.min_hits = min_hits
        self.member_min_rate = member_min_rate
        self.member_min_log10p = member_min_log10p
        self.quiet_min = quiet_min
        self.rate_floor = rate_floor
        self.min_accounts = min_accounts
        self.strong_link = strong_link
        self.behaviour_floor = behaviour_floor
        self.behaviour_majority = behaviour_majority

    def fit(self, X: pd.DataFrame, y=None):
        _check_columns(X)
        n = X["requests"].to_numpy(float)
        self.background_ = {}
        counts = _counts(X)
        for i, signal in enumerate(SIGNALS):
            hits = counts[:, i]
            rate = hits / np.maximum(n, 1)
            bulk = rate <= np.quantile(rate, 0.9)
            pooled = hits[bulk].sum() / max(n[bulk].sum(), 1.0)
            self.background_[signal] = float(max(self.rate_floor, pooled))
        ratio = X["token_ratio"].astype(float) if "token_ratio" in X else pd.Series(dtype=float)
        self.median_ratio_ = float(ratio.median()) if ratio.notna().any() else 0.0
        spread = X["spread"].astype(float) if "spread" in X else pd.Series(dtype=float)
        self.median_spread_ = float(spread.median()) if spread.notna().any() else np.nan
        flags = _behaviours(X)
        # background: accounts outside any group of min_accounts (campaigns sit in groups);
        # all accounts where nothing is grouped yet
        size = X.groupby("community")["requests"].transform("size")
        bulk = flags[size < self.min_accounts] if (size < self.min_accounts).any() else flags
        self.behaviour_background_ = {
            b: float(max(self.behaviour_floor, bulk[b].mean())) for b in BEHAVIOURS
        }
        self.n_communities_ = int(X["community"].nunique())
        self.n_accounts_ = len(X)
        self.community_threshold_ = float(-np.log10(self.alpha / max(1, self.n_communities_)))
        self.account_threshold_ = float(-np.log10(self.alpha / max(1, self.n_accounts_)))
        return self

    def _evidence(
        self,
        hits,
        n,
        quiet,
        size,
        threshold,
        corroborate=True,
        coord=True,
        tasks=False,
        shared=False,
        product=False,
        askers=False,
    ) -> np.ndarray:
        """Score in [0, 1) per row and signal (0.5 = at the threshold; 0 = guard failed).

        Reasoning and grading asks count beside machine pacing, beside a coordinated group
        (``coord``: shared infrastructure or shared rare prompts), or when the prompts are
        fresh self-contained tasks (``tasks``): a person pulling reasoning on dataset
        questions between ordinary chat.  Neither counts for a product (``product``: most
        prompts carry the text the answer is made from; an ask inside a user's document is
        the user's, not the requester's).  Shared rare prompts count only for a group linked
        by them whose members ask tasks (``shared``); logprobs only machine-paced.  A
        recurring instruction wrapped around different tasks (``wrapped``, an ask read from
        structure, in any language) counts only for accounts asking fresh tasks for long
        answers (``askers``), however they are paced: a product's or a harness's template
        recurs too."""
        scores = []
        machine = quiet >= self.quiet_min
        group = size >= self.min_accounts
        for i, signal in enumerate(SIGNALS):
            k = hits[:, i]
            sig = log_significance(k, n, self.background_[signal])
            ok = (k >= self.min_hits) & (k >= self.min_rate * n)
            if signal == "logprob":
                ok &= machine
            elif signal == "shared":
                ok &= group & shared  # a lone account is never coordinated by itself
            elif signal == "wrapped":
                ok &= np.asarray(askers, dtype=bool) & ~np.asarray(product, dtype=bool)
            else:
                ok &= ~np.asarray(product, dtype=bool)
                if corroborate:
                    ok &= machine | (group & coord) | tasks
            scores.append(np.where(ok, sig / (sig + threshold), 0.0))
        return np.vstack(scores).T

    def _pool(self, X: pd.DataFrame, by: str, infra: str) -> pd.DataFrame:
        """Members' counts summed per group ``by``; ``infra`` / ``content`` = the median
        member's infrastructure / shared-prompt component size; ``tasks`` = members asking
        fresh tasks (see :func:`asks_tasks`)."""
        cols = [f"{s}_requests" for s in SIGNALS]
        frame = X.assign(qw=X["quiet_share"].fillna(0) * X["requests"], size=1)
        frame[cols] = _counts(X)
        frame[list(BEHAVIOURS)] = _behaviours(X).to_numpy()
        frame["tasks"] = task_askers(X, self.median_ratio_)
        frame["supplied"] = products(X)
        frame["infra"] = X[infra].fillna(1.0) if infra in X else np.inf
        frame["content"] = X["content_group"].fillna(1.0) if "content_group" in X else 1.0
        # on a content link at all (shared rare prompts or a shared source), asker or not:
        # a rubric farm's members ask short graded answers, yet draw from one source
        on_link = X["on_content_link"] if "on_content_link" in X else frame["shared_requests"] > 0
        frame["sourced"] = on_link.fillna(False).astype(bool)
        for col in ("spread", "fresh_share"):
            frame[col] = X[col].astype(float) if col in X else np.nan
        groups = frame.groupby(X[by].to_numpy())
        summed = [*cols, "requests", "qw", "size", "tasks", "supplied", "sourced", *BEHAVIOURS]
        pooled = groups[summed].sum()
        return pooled.join(groups[["infra", "content", "spread", "fresh_share"]].median())

    def _pooled_evidence(self, pooled: pd.DataFrame, corroborate: bool = True) -> np.ndarray:
        cols = [f"{s}_requests" for s in SIGNALS]
        content = pooled["content"].to_numpy(float) >= self.min_accounts
        tasks = pooled["tasks"].to_numpy(float) >= 0.5 * pooled["size"].to_numpy(float)
        return self._evidence(
            pooled[cols].to_numpy(float),
            pooled["requests"].to_numpy(float),
            (pooled["qw"] / pooled["requests"].clip(lower=1)).to_numpy(float),
            pooled["size"].to_numpy(float),
            self.community_threshold_,
            corroborate=corroborate,
            # linked by what they ask corroborates only accounts asking fresh tasks: evaluation
            # harnesses share a benchmark's items too, in one template, again and again
            coord=(pooled["infra"].to_numpy(float) >= self.min_accounts) | (content & tasks),
            shared=content & tasks,
            product=pooled["supplied"].to_numpy(float) >= 0.5 * pooled["size"].to_numpy(float),
            askers=tasks,
        )

    def assign(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per account: ``score``, ``flagged``, ``signal`` (the deciding content signal, or
        ``behaviour``), ``group`` (community id or -1), ``content_score`` (the account's own
        content evidence before any corroboration) and ``families`` (the deciding evidence
        families of its behaviour group, comma-separated)."""
        check_is_fitted(self, "background_")
        _check_columns(X)
        requests = X["requests"].to_numpy(float)
        hits = _counts(X)
        quiet = X["quiet_share"].fillna(0).to_numpy(float)
        ones = np.ones(len(X))
        args = (hits, requests, quiet, ones, self.account_threshold_)
        askers = task_askers(X, self.median_ratio_)
        wrap = wrap_askers(X, self.median_ratio_)  # whom a recurring ask counts for
        own = self._evidence(
            *args, tasks=asks_tasks(X, default=False), product=products(X), askers=wrap
        )
        # an account in a component of accounts linked by what they ask (shared rare prompts
        # or a shared source), asking fresh tasks for long answers itself: its own shared
        # count is tested against the bulk's, whatever community the graph put it in
        if "content_group" in X:
            linked_by_content = X["content_group"].fillna(1.0).to_numpy(float)
            alone = self._evidence(
                hits,
                requests,
                quiet,
                linked_by_content,
                self.account_threshold_,
                shared=task_askers(X, self.median_ratio_),
                product=products(X),
            )
            at = SIGNALS.index("shared")
            own[:, at] = np.maximum(own[:, at], alone[:, at])
        content = self._evidence(*args, corroborate=False, product=products(X), askers=wrap).max(
            axis=1
        )
        pooled = self._pool(X, "community", "infra_group")
        com = self._pooled_evidence(pooled)[pooled.index.get_indexer(X["community"])]
        own_rates = hits / np.maximum(requests, 1)[:, None]
        own_sig = np.vstack(
            [
                log_significance(hits[:, i], requests, self.background_[s])
                for i, s in enumerate(SIGNALS)
            ]
        ).T
        linked = X.get("evidence_link", pd.Series(0.0, index=X.index)).fillna(0).to_numpy(float)
        own_content = (own_rates >= self.member_min_rate) & (own_sig >= self.member_min_log10p)
        strong = linked >= self.strong_link
        member_ok = (com >= 0.5) & (own_content | strong[:, None])
        # shared rare prompts make a member only if it asks fresh tasks for long answers itself
        member_ok[:, SIGNALS.index("shared")] &= askers
        member_ok[:, SIGNALS.index("wrapped")] &= wrap
        best = np.maximum(np.where(member_ok, com, 0.0), own)
        content_best = best.max(axis=1)
        by = "behaviour_community" if "behaviour_community" in X else "community"
        b_pooled = self._pool(X, by, "infra_group")
        behaviour = self._community_behaviour(b_pooled)
        at = b_pooled.index.get_indexer(X[by])
        flags = _behaviours(X)
        shows = np.zeros(len(X), dtype=bool)
        for b in BEHAVIOURS:
            shows |= flags[b].to_numpy() & behaviour[f"sig_{b}"].to_numpy()[at]
        # a member shares infrastructure itself: sitting in a campaign's proxy /24 is not enough
        shares = X["infra_group"].fillna(1).to_numpy(float) >= 2 if "infra_group" in X else True
        b_score = np.where(shows & shares, behaviour["score"].to_numpy()[at], 0.0)
        score = np.maximum(content_best, b_score)
        flagged = score >= 0.5
        by_behaviour = b_score > content_best
        signal = np.asarray(SIGNALS, dtype=object)[best.argmax(axis=1)]
        signal = np.where(by_behaviour, "behaviour", signal)
        # one group id space: content communities as they are, behaviour groups after them
        offset = int(X["community"].max()) + 1 if len(X) else 0
        group = np.where(by_behaviour, X[by].to_numpy() + offset, X["community"].to_numpy())
        return pd.DataFrame(
            {
                "score": score,
                "flagged": flagged,
                "signal": signal,
                "group": np.where(flagged, group, -1),
                "content_score": content,
                "families": behaviour["families"].to_numpy()[at],
            },
            index=X.index,
        )

    def _community_behaviour(self, pooled: pd.DataFrame) -> pd.DataFrame:
        """Per group: which behaviours are significant, its families and behaviour score."""
        size = pooled["size"].to_numpy(float)
        content = self._pooled_evidence(pooled, corroborate=False).max(axis=1) >= 0.5
        out = pd.DataFrame(index=pooled.index)
        total = np.zeros(len(pooled))
        behaviours = np.zeros(len(pooled), dtype=int)
        names = []
        for b in BEHAVIOURS:
            k = pooled[b].to_numpy(float)
            sig = log_significance(k, size, self.behaviour_background_[b])
            ok = (
                (sig >= self.member_min_log10p)
                & (k >= self.behaviour_majority * size)
                & (size >= self.min_accounts)
            )
            out[f"sig_{b}"] = ok
            total += np.where(ok, sig, 0.0)
            behaviours += ok
            names.append(np.where(ok, b, ""))
        # independent tests add up; together they must clear the corrected threshold
        enough = total >= self.community_threshold_
        infra = (pooled["infra"].to_numpy(float) >= self.min_accounts) & (size >= self.min_accounts)
        names.append(np.where(infra, "coordination", ""))
        names.append(np.where(content, "content", ""))
        # pacing, volume and token economics never decide alone: the group must also carry
        # evidence of what it asks (reasoning, grading, logprobs, shared prompts or sources)
        tasks = pooled["tasks"].to_numpy(float) >= 0.5 * size
        sourced = self._sourced_coverage(pooled)
        names.append(np.where((tasks | sourced) & ~content, "coverage", ""))
        names.append(np.where(sourced & ~content, "shared source", ""))
        campaign = (behaviours >= 1) & enough & infra & (content | sourced)
        total = total + np.where(content, self.community_threshold_, 0.0)  # content adds weight
        threshold = self.community_threshold_
        out["score"] = np.where(campaign, 0.5 + 0.5 * total / (total + 4 * threshold), 0.0)
        out["families"] = [", ".join(x for x in parts if x) for parts in zip(*names, strict=True)]
        return out

    def _sourced_coverage(self, pooled: pd.DataFrame) -> np.ndarray:
        """Per group: evidence of intent with no ask read at all.  Most members draw their
        prompts from a source other accounts draw from too (shared-source or shared-prompt
        links), the group's prompts are mostly fresh tasks, not its users' supplied text, and
        they cover a task space (median topic spread at least ``COVERAGE_SPREAD`` of the log's
        median account's: a product's one template narrows it)."""
        size = pooled["size"].to_numpy(float)
        spread = pooled["spread"].to_numpy(float)
        wide = spread >= COVERAGE_SPREAD * self.median_spread_ if self.median_spread_ > 0 else 0
        return (
            (pooled["sourced"].to_numpy(float) >= 0.5 * size)
            & (pooled["fresh_share"].fillna(0).to_numpy(float) >= TASK_MIN_FRESH)
            & (pooled["supplied"].to_numpy(float) < 0.5 * size)
            & np.asarray(wide, dtype=bool)
        )

    def seeds(self, X: pd.DataFrame, min_log10p: float = 1.3, min_hits: int = 2) -> pd.Index:
        """Accounts whose own counts lean suspicious (uncorrected ``p < 10**-min_log10p``):
        the starting points of the coordination graph."""
        check_is_fitted(self, "background_")
        n = X["requests"].to_numpy(float)
        lean = np.zeros(len(X), dtype=bool)
        counts = _counts(X)
        for i, signal in enumerate(SIGNALS):
            k = counts[:, i]
            sig = log_significance(k, n, self.background_[signal])
            lean |= (k >= min_hits) & (sig >= min_log10p)
        return X.index[lean]

    def score_samples(self, X: pd.DataFrame) -> np.ndarray:
        return self.assign(X)["score"].to_numpy()

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.assign(X)["flagged"].to_numpy()

    def fit_predict(self, X: pd.DataFrame, y=None) -> np.ndarray:
        return self.fit(X).predict(X)


def _counts(X: pd.DataFrame) -> np.ndarray:
    """The signal counts of ``X`` in ``SIGNALS`` order (zeros for an absent optional one)."""
    return np.column_stack(
        [
            X[f"{s}_requests"].to_numpy(float) if f"{s}_requests" in X else np.zeros(len(X))
            for s in SIGNALS
        ]
    )


def _behaviours(X: pd.DataFrame) -> pd.DataFrame:
    """The behaviour flags of ``X`` (all False where a column is absent)."""
    return pd.DataFrame(
        {
            b: X[f"b_{b}"].fillna(False).astype(bool)
            if f"b_{b}" in X
            else pd.Series(False, index=X.index)
            for b in BEHAVIOURS
        },
        index=X.index,
    )


def _check_columns(X) -> None:
    if not isinstance(X, pd.DataFrame):
        raise TypeError("CampaignDetector expects a pandas DataFrame of account features")
    missing = [c for c in REQUIRED if c not in X.columns]
    if missing:
        raise ValueError(f"CampaignDetector: missing columns {missing}")
