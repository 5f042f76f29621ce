"""The traffic simulator: labelled schema-v1 logs for tests, benchmarks and demos.

It lives apart from the detector: no module of ``detect`` imports it.  ``simulate`` writes
benign users, hard negatives (including a benign look-alike for every behaviour the detector
scores) and campaigns of seven kinds, with ground truth naming each campaign's phrasing
family (see :mod:`stillroom.detect.simulator._families`).
"""

from stillroom.detect.simulator._families import GRADING_FAMILIES, REASONING_FAMILIES, Phrasing
from stillroom.detect.simulator._score import FOUND_SHARE, read_truth, score_against_truth
from stillroom.detect.simulator._simulate import (
    CAMPAIGNS,
    HARD_NEGATIVES,
    SimulationResult,
    simulate,
    truth_path_for,
)

__all__ = [
    "CAMPAIGNS",
    "FOUND_SHARE",
    "GRADING_FAMILIES",
    "HARD_NEGATIVES",
    "REASONING_FAMILIES",
    "Phrasing",
    "SimulationResult",
    "read_truth",
    "score_against_truth",
    "simulate",
    "truth_path_for",
]
