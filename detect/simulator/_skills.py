"""Tasks of many types, for a sweep of skills that never asks for reasoning.

A skill family is a set of task types with their own wording; the training and held-out
families share no task type, so a detector tuned on one never saw the other's asks.
"""

from __future__ import annotations

import numpy as np

from stillroom.detect.simulator._kind_families import choose
from stillroom.detect.simulator._words import _CODE_TASKS, _LANGS, _TOPICS

_WORDS = ("serendipity", "ephemeral", "ubiquitous", "cogent", "laconic", "candid", "arcane")
_CITIES = ("Lisbon", "Nairobi", "Osaka", "Quito", "Tallinn", "Perth", "Montreal", "Cairo")
_SENTS = (
    "the meeting was moved because nobody had read the report",
    "she said the package arrived broken and wants her money back",
    "our team shipped the feature two weeks early",
    "i dont think this policy will work for small shops",
    "the hotel was clean but the staff ignored us",
)

_TRAINING_SKILLS = {
    "poem": ("Write a short poem about {t}.", "A limerick about {t}, please."),
    "classify": ("Is this positive, negative or neutral: '{s}'", "Label the tone of: {s}"),
    "translate": ("Translate into French: {s}", "How do you say '{s}' in Spanish?"),
    "sql": ("Write a SQL query that finds the top 5 customers by revenue in {c}.",),
    "code": ("Could you code something in {lang} that {task}?",),
    "define": ("What does '{w}' mean? Use it in a sentence.",),
    "brainstorm": ("Give me 5 names for a podcast about {t}.", "Ideas for a blog post on {t}?"),
    "rewrite": ("Make this sound more formal: {s}", "Rewrite for a child: {s}"),
    "facts": ("What is {c} known for?", "Tell me three facts about {t}."),
    "regex": ("Regex that matches a date like 2026-01-05 in {lang}?",),
    "email": ("Draft a polite email declining an invitation about {t}.",),
    "outline": ("Outline a 5-minute talk on {t}.",),
}
_HELD_OUT_SKILLS = {
    "analogy": ("Complete the analogy: hot is to cold as {w} is to what?",),
    "riddle": ("Make up a riddle whose answer is {c}.",),
    "convert": ("Convert {k} miles to kilometres and {k} pounds to kilograms.",),
    "legal_plain": ("Explain in plain words what 'force majeure' means for {t}.",),
    "recipe_scale": ("Scale a recipe for 4 people up to {k} people: 200 g flour, 2 eggs.",),
    "proofread": ("Fix the spelling and grammar: {s}",),
    "dialogue": ("Write a two-line dialogue between a barista and a customer in {c}.",),
    "fr_summary": ("Résume en une phrase : {s}",),
    "de_question": ("Was ist der Unterschied zwischen {t} und {w}?",),
    "timeline": ("Put these in order: invention of the printing press, {t}, the moon landing.",),
}
SKILL_FAMILIES = {
    "everyday_en": ("training", _TRAINING_SKILLS),
    "assorted_held_out": ("held_out", _HELD_OUT_SKILLS),
}


def _one(options, i: int):
    return options[i % len(options)]


def skill_tasks(rng: np.random.Generator, n: int, split: str) -> tuple[str, np.ndarray]:
    """``n`` tasks cycling through the task types of one ``split`` family."""
    name, skills = choose(rng, SKILL_FAMILIES, split)
    kinds = list(skills)
    order = rng.permutation(n) % len(kinds)  # every type, evenly: a sweep
    draws = rng.integers(0, 1 << 20, (n, 6)).tolist()
    out = []
    for kind, d in zip(order.tolist(), draws, strict=True):
        templates = skills[kinds[kind]]
        out.append(
            _one(templates, d[0]).format(
                t=_one(_TOPICS, d[1]),
                s=_one(_SENTS, d[2]),
                c=_one(_CITIES, d[3]),
                w=_one(_WORDS, d[4]),
                lang=_one(_LANGS, d[5]),
                task=_one(_CODE_TASKS, d[1] >> 7),
                k=d[5] % 90 + 2,
            )
        )
    return name, np.asarray(out, dtype=object)
