"""Whom content evidence counts for: the account masks of the scorer's intent gates.

A task asker sends mostly fresh, self-contained tasks (not supplied content to transform, not
one template filled again and again, not the same prompts repeated) and wants long answers
(the model's own work written out). Content links join only task askers; a recurring ask of
how to answer counts for them and, where a person's short chat between the pulls dilutes the
ratio over every row, for accounts whose rows that carry the ask want long answers. Every line
is a definition or the log's own median, never a value fitted on labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Intent gates (shares of the account's sampled prompts; definitions, not fitted values):
# fresh self-contained tasks, not answers derived from text the request carries, not one
# template filled again and again, not the same prompts repeated (an evaluation rerun).
TASK_MIN_FRESH = 0.5
PRODUCT_SUPPLIED = 0.5
TEMPLATED = 0.5


def asks_tasks(X: pd.DataFrame, default: bool) -> np.ndarray:
    """Per account: its sampled prompts are mostly fresh self-contained tasks, not supplied
    content to transform, not a template filled again and again, not repeated prompts.
    ``default`` where the intent columns are absent (no evidence either way)."""
    if "fresh_share" not in X:
        return np.full(len(X), default)
    out = np.ones(len(X), dtype=bool)
    if "fresh_share" in X:
        out &= X["fresh_share"].fillna(0).to_numpy(float) >= TASK_MIN_FRESH
    if "supplied_share" in X:
        out &= X["supplied_share"].fillna(0).to_numpy(float) < PRODUCT_SUPPLIED
    for col in ("template_rate", "duplicate_rate"):
        if col in X:
            out &= X[col].fillna(0).to_numpy(float) < TEMPLATED
    return out


def products(X: pd.DataFrame) -> np.ndarray:
    """Most sampled prompts carry the text the answer is made from (False without the column)."""
    if "supplied_share" not in X:
        return np.zeros(len(X), dtype=bool)
    return X["supplied_share"].fillna(0).to_numpy(float) >= PRODUCT_SUPPLIED


def wants_long(X: pd.DataFrame, median_ratio: float | None = None) -> np.ndarray:
    """Asks for long answers: completion tokens per prompt token at or above the log's
    median (the model's own work written out, not a label, a score or a benchmark's short
    answer); True where the log has no token counts."""
    if "token_ratio" not in X or X["token_ratio"].isna().all():
        return np.ones(len(X), dtype=bool)
    ratio = X["token_ratio"].astype(float)
    line = ratio.median() if median_ratio is None else median_ratio
    return (ratio >= line).fillna(False).to_numpy()


def task_askers(X: pd.DataFrame, median_ratio: float | None = None) -> np.ndarray:
    """Accounts asking fresh self-contained tasks for long answers (see :func:`asks_tasks`
    and :func:`wants_long`): the only ones content links may join."""
    return asks_tasks(X, default=False) & wants_long(X, median_ratio)


def wrap_askers(X: pd.DataFrame, median_ratio: float | None = None) -> np.ndarray:
    """Accounts a recurring ask counts for: task askers (:func:`task_askers`), or accounts
    asking fresh tasks whose rows holding a first or last sentence beside a task
    (``segment_token_ratio``) get answers as long as the log's median account's such rows
    or longer: a person's short chat between the pulls dilutes the ratio over every row."""
    out = task_askers(X, median_ratio)
    if "segment_token_ratio" in X and X["segment_token_ratio"].notna().any():
        seg = X["segment_token_ratio"].astype(float)
        out = out | (asks_tasks(X, default=False) & (seg >= seg.median()).to_numpy())
    return out
