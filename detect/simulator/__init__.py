"""The traffic simulator: labelled schema-v1 logs for tests, benchmarks and demos.

It lives apart from the detector: no module of ``detect`` imports it.  ``simulate`` writes
benign users, hard negatives (including a benign look-alike for every behaviour the detector
scores, and products whose answers derive from text their users supply) and campaigns
(machine-paced ones and extraction at a person's pace), with ground truth naming each
account's kind, campaign and family.  Families are split into training and held-out ones
(see :mod:`stillroom.detect.simulator._families` and ``_kind_families``); ``world="frozen"``
writes the pre-issue-26 simulator unchanged.  ``public_index_prompts`` gives the half of the
dataset pools the simulator never samples (a provider's public-sets index), and
``reword_traffic`` rewrites every system prompt and user agent of a log.
"""

from stillroom.detect.simulator._families import GRADING_FAMILIES, REASONING_FAMILIES, Phrasing
from stillroom.detect.simulator._kinds import FROZEN_KINDS, HELD_OUT_KINDS, KINDS
from stillroom.detect.simulator._reword import (
    rename_user_agent,
    reword_system_prompt,
    reword_table,
    reword_traffic,
)
from stillroom.detect.simulator._score import FOUND_SHARE, read_truth, score_against_truth
from stillroom.detect.simulator._simulate import (
    CAMPAIGNS,
    HARD_NEGATIVES,
    WORLDS,
    SimulationResult,
    simulate,
    truth_path_for,
)
from stillroom.detect.simulator._split import public_index_prompts, split_of

__all__ = [
    "CAMPAIGNS",
    "FOUND_SHARE",
    "FROZEN_KINDS",
    "GRADING_FAMILIES",
    "HARD_NEGATIVES",
    "HELD_OUT_KINDS",
    "KINDS",
    "REASONING_FAMILIES",
    "WORLDS",
    "Phrasing",
    "SimulationResult",
    "public_index_prompts",
    "read_truth",
    "rename_user_agent",
    "reword_system_prompt",
    "reword_table",
    "reword_traffic",
    "score_against_truth",
    "simulate",
    "split_of",
    "truth_path_for",
]
