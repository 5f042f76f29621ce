"""Every kind the simulator writes and its label, for the frozen and the current world."""

from __future__ import annotations

from stillroom.detect.simulator import _kind_families as kf
from stillroom.detect.simulator._families import GRADING_FAMILIES, REASONING_FAMILIES
from stillroom.detect.simulator._human import HUMAN_CAMPAIGNS
from stillroom.detect.simulator._kind_families import PRODUCT_KINDS, held_out_kinds
from stillroom.detect.simulator._simulate import CAMPAIGNS
from stillroom.detect.simulator._skills import SKILL_FAMILIES

FROZEN_HARD_NEGATIVES = (
    "templated_app",
    "eval_harness",
    "agent",
    "enterprise_nat",
    "logprob_researcher",
    "carrier_nat",
    "shared_template_app",
    "batch_job",
    "longform_app",
    "tutoring_app",
)
# kind -> label ("benign", "hard_negative" or "campaign") in the pre-issue-26 world
FROZEN_KINDS = {
    "benign": "benign",
    **dict.fromkeys(FROZEN_HARD_NEGATIVES, "hard_negative"),
    **dict.fromkeys(CAMPAIGNS, "campaign"),
}
# the current world adds content products (benign) and person-paced extraction
KINDS = {
    **FROZEN_KINDS,
    **dict.fromkeys(PRODUCT_KINDS, "hard_negative"),
    **dict.fromkeys(HUMAN_CAMPAIGNS, "campaign"),
}
# kinds written only by held-out generation: no tuning may see them
HELD_OUT_KINDS = held_out_kinds()


def family_splits() -> dict[str, set[str]]:
    """Every family name of every table -> the splits it is in (one each, by design)."""
    tables = [
        REASONING_FAMILIES,
        GRADING_FAMILIES,
        kf.PRODUCT_SYSTEM,
        kf.PRODUCT_PACING,
        kf.HUMAN_PACING,
        kf.HUMAN_POOLS,
        kf.HUMAN_WORDING,
        kf.LINK_CONSTRUCTIONS,
        SKILL_FAMILIES,
        *kf.PRODUCT_WORDING.values(),
    ]
    out: dict[str, set[str]] = {}
    for table in tables:
        for name, (split, _) in table.items():
            out.setdefault(name, set()).add(split)
    return out
