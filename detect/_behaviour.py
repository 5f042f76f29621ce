"""What an account does, as yes/no behaviours read off its features (no words involved).

* ``pacing``: machine pacing: inter-arrival gaps as regular as a memoryless dispatcher's
  (coefficient of variation near 1 or below; people's sessions give 2 and more) with enough
  requests to tell, or a round-the-clock share of traffic in the 6 quietest hours of the day.
* ``output_heavy``: output-heavy economics: at least ``top_share`` of requests ask for
  ``max_tokens`` near the top the API allows (feature ``max_tokens_top_share``: half the log's
  largest, at least 2,048), or, where the log has no ``max_tokens``, a completion/prompt
  token ratio beyond the bulk's 95th percentile.
* ``logprob_harvest``: top_logprobs asked on a large share of requests, machine-paced.

Each behaviour alone is legitimate somewhere (queue workers, writing apps, researchers); the
detector counts a behaviour as evidence only when a group of accounts shows it far beyond its
background rate, beside coordination or a second behaviour (see :mod:`stillroom.detect._scoring`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

BEHAVIOURS = ("pacing", "output_heavy", "logprob_harvest")
BEHAVIOUR_TEXT = {
    "pacing": "machine-paced (regular gaps or round the clock)",
    "output_heavy": "output-heavy (max_tokens near the top)",
    "logprob_harvest": "harvests top_logprobs, machine-paced",
    "reasoning": "demands the model's full reasoning",
    "grading": "asks to grade or judge responses",
}


@dataclass(frozen=True)
class BehaviourParams:
    """Thresholds of the behaviours (principled defaults, not tuned per log)."""

    min_requests: int = 30
    max_gap_cv: float = 1.3
    quiet_share: float = 0.1
    min_output_requests: int = 10
    top_share: float = 0.25
    ratio_quantile: float = 0.95
    logprob_rate: float = 0.3


def behaviour_flags(accounts: pd.DataFrame, params: BehaviourParams) -> pd.DataFrame:
    """``b_pacing``, ``b_output_heavy``, ``b_logprob_harvest`` (bool) per account."""
    enough = accounts["requests"] >= params.min_requests
    gap_cv = accounts["gap_cv"].astype(float)
    quiet = accounts["quiet_share"].astype(float).fillna(0.0)
    pacing = enough & ((gap_cv <= params.max_gap_cv) | (quiet >= params.quiet_share))
    top_share = accounts["max_tokens_top_share"].astype(float)
    if top_share.notna().any():
        heavy = top_share >= params.top_share
    else:
        ratio = accounts["token_ratio"].astype(float)
        heavy = ratio >= ratio.quantile(params.ratio_quantile) if ratio.notna().any() else False
        heavy = pd.Series(heavy, index=accounts.index).fillna(False)
    logprob = accounts["logprob_rate"].astype(float).fillna(0.0) >= params.logprob_rate
    return pd.DataFrame(
        {
            "b_pacing": pacing.fillna(False).astype(bool),
            "b_output_heavy": ((accounts["requests"] >= params.min_output_requests) & heavy)
            .fillna(False)
            .astype(bool),
            "b_logprob_harvest": (enough & logprob & pacing).fillna(False).astype(bool),
        },
        index=accounts.index,
    )
