"""Content signals per account, from a capped, deterministic sample of each account's prompts.

The estimators in :mod:`stillroom.detect._content` run on at most ``cap`` prompts per account (and a
global budget), never on every row, so text work stays bounded however large the log is.
Returns per-account columns plus the near-duplicate template groups the graph links on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from stillroom.detect._content import (
    MinHashSignatures,
    PromptIntentClassifier,
    TopicClusters,
    lsh_band_keys,
)

_SAMPLE_SQL = """
SELECT account_id, prompt, phash FROM (
  SELECT account_id, prompt, phash,
         row_number() OVER (PARTITION BY account_id ORDER BY ord, prompt) AS rn
  FROM part_sample
) WHERE rn <= {cap} ORDER BY account_id, rn
"""


def sample_prompts(engine, *, cap: int, budget: int) -> pd.DataFrame:
    """Up to ``cap`` prompts per account (fewer when accounts x cap exceeds ``budget``): the
    first in the ``stable_hash`` sampling order of the union of the account-day samples
    (``part_sample``, each the first ``cap`` of its day), so exactly the window rows' first."""
    accounts = int(engine.scalar("SELECT count(DISTINCT account_id) FROM part_totals"))
    per_account = max(2, min(cap, budget // max(1, accounts)))
    return engine.frame(_SAMPLE_SQL.format(cap=int(per_account)))


def content_signals(
    sample: pd.DataFrame,
    *,
    intent: PromptIntentClassifier,
    n_topics: int = 24,
    bands: int = 8,
    min_template_prompts: int = 3,
    random_state: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-account content columns and ``(account_id, value)`` shared-template memberships.

    Columns: ``intent_reasoning`` / ``intent_grading`` (share of sampled prompts the classifier
    puts in that class), ``topic_top_share`` (share of the sample in the account's main topic)
    and ``topics`` (distinct topics in the sample).
    """
    if sample.empty:
        empty = pd.DataFrame(
            columns=["intent_reasoning", "intent_grading", "topic_top_share", "topics"]
        )
        return empty, pd.DataFrame(columns=["account_id", "value"])
    texts = sample["prompt"].tolist()
    # each distinct prompt read once (accounts and days repeat prompts): every estimator
    # below reads one prompt at a time, so the rows' results are the distinct ones' spread
    codes, distinct = pd.factorize(sample["prompt"], use_na_sentinel=False)
    distinct = distinct.tolist()
    proba = intent.predict_proba(distinct)[codes]
    classes = list(intent.classes_)
    frame = pd.DataFrame({"account_id": sample["account_id"].to_numpy()})
    frame["intent_reasoning"] = proba[:, classes.index("reasoning")] >= 0.5
    frame["intent_grading"] = proba[:, classes.index("grading")] >= 0.5
    topics = TopicClusters(n_topics=n_topics, random_state=random_state).fit(texts)
    frame["topic"] = topics.predict(distinct)[codes]
    grouped = frame.groupby("account_id", sort=True)
    out = grouped[["intent_reasoning", "intent_grading"]].mean()
    topic_counts = frame.groupby(["account_id", "topic"]).size()
    out["topic_top_share"] = topic_counts.groupby(level=0).max() / grouped.size()
    out["topics"] = topic_counts.groupby(level=0).size()
    signatures = MinHashSignatures(n_perm=bands * 4).fit().transform(distinct)[codes]
    templates = shared_templates(
        sample, bands=bands, min_prompts=min_template_prompts, signatures=signatures
    )
    return out, templates


def shared_templates(
    sample: pd.DataFrame, *, bands: int = 8, min_prompts: int = 3, signatures=None
) -> pd.DataFrame:
    """Template groups (MinHash LSH, band collisions chained) an account uses habitually.

    Prompts sharing any LSH band are joined into one group.  Identical prompts many users
    happen to send are not a template, so a group must hold ``min_prompts`` distinct texts;
    an account belongs to a group when at least two of its sampled prompts fall in it, and
    only groups with two or more such accounts are returned (``account_id, value``).
    ``signatures``: the prompts' MinHash signatures, when already computed.
    """
    if signatures is None:
        signatures = MinHashSignatures(n_perm=bands * 4).fit().transform(sample["prompt"].tolist())
    keys = lsh_band_keys(signatures, bands=bands)
    n = len(sample)
    _, key_ids = np.unique(keys.ravel(), return_inverse=True)
    prompt_of = np.repeat(np.arange(n), bands)
    graph = coo_matrix(
        (np.ones(len(prompt_of)), (prompt_of, key_ids + n)), shape=(n + key_ids.max() + 1,) * 2
    )
    _, labels = connected_components(graph, directed=False)
    frame = pd.DataFrame(
        {
            "account_id": sample["account_id"].to_numpy(),
            "phash": sample["phash"].to_numpy(),
            "value": labels[:n],
        }
    )
    distinct = frame.groupby("value")["phash"].nunique()
    frame = frame[frame["value"].isin(distinct.index[distinct >= min_prompts])]
    uses = frame.groupby(["value", "account_id"]).size()
    uses = uses[uses >= 2].reset_index()[["account_id", "value"]]
    accounts = uses.groupby("value")["account_id"].transform("size")
    members = uses[accounts >= 2].copy()
    members["value"] = "t" + members["value"].astype(str)
    return members.reset_index(drop=True)
