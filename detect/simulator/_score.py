"""Scoring a detector's flags against the simulator's ground truth (the one scorer: the
demo and ``bench/detect_quality.py`` both use it).

A true campaign counts as *found* when at least :data:`FOUND_SHARE` of its accounts are
flagged; that is "campaigns found" everywhere (``matched/true``), never the number of
campaigns a report lists (one true campaign split in two would count twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

FOUND_SHARE = 0.8


def read_truth(path: str | Path) -> Any:
    """The truth file (``<stem>.truth.csv``) as a pandas DataFrame indexed by ``account_id``."""
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, dtype=str).set_index("account_id")


def score_against_truth(truth: Any, flagged: Any, kinds: Sequence[str] = ()) -> dict[str, Any]:
    """Recall, precision, benign and all-negative false-positive rates of ``flagged`` (a
    boolean pandas Series by account id; accounts absent count as not flagged), the share
    flagged of each of ``kinds``, and the campaigns found: ``campaigns_matched`` of
    ``campaigns_true`` (also as the string ``campaigns_found``, ``"6/7"``)."""
    j = truth.assign(flagged=flagged.reindex(truth.index).fillna(False).astype(bool))
    campaign = j.label == "campaign"
    n_flagged = int(j.flagged.sum())
    out: dict[str, Any] = {
        "recall": j.loc[campaign, "flagged"].mean() if campaign.any() else None,
        "benign_fpr": j.loc[j.label == "benign", "flagged"].mean(),
        "all_negative_fpr": j.loc[~campaign, "flagged"].mean(),
        "precision": (j.flagged & campaign).sum() / n_flagged if n_flagged else None,
    }
    for kind in kinds:
        out[kind] = j.loc[j.kind == kind, "flagged"].mean()
    per_campaign = j[campaign].groupby("campaign_id")["flagged"].mean()
    matched, true = int((per_campaign >= FOUND_SHARE).sum()), len(per_campaign)
    out |= {"campaigns_found": f"{matched}/{true}", "campaigns_matched": matched,
            "campaigns_true": true}  # fmt: skip
    return out
