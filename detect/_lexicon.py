"""Phrases that mark distillation prompts: demands for the model's reasoning, grading rubrics.

Two uses: regular expressions DuckDB applies to every row at ingest (fast, exact rates), and a
small seed corpus the :class:`stillroom.detect.PromptIntentClassifier` learns from, so that paraphrases
the expressions miss still score (applied to a per-account sample of prompts).
"""

from __future__ import annotations

import itertools

# Demands to expose the model's full / internal reasoning (not a casual "step by step?").
# A prompt matches when it names the reasoning itself in a possessive demand (STRONG), or
# when it names the reasoning (OBJECT) and demands it be laid out (DEMAND): both parts have
# common paraphrases and a few non-English forms, since campaigns rotate wording.
_STRONG = (
    r"\b(your|its) (own )?((complete|full|entire|whole|internal|hidden|detailed|private) )*"
    r"(chain[- ]of[- ]thought|thought process|reasoning (process|trace|steps))"
    r"|(internal|hidden|private) reasoning|intermediate (step|reasoning)|reasoning verbatim"
    r"|<think(ing)?>|(articulate|reconstruct|lay out|write out|spell out)[a-z, ]{0,40}reasoning"
    r"|(all|every one) of your (reasoning|steps|thoughts)"
)
_OBJECT = (
    r"reasoning|thought process|chain[- ]of[- ]thought|\binferences?\b|\bdeductions?\b"
    r"|\bderivation|\brationale\b|intermediate (steps?|computations?)|logic connecting"
    r"|how you (reach|arrive|get)|razonamiento|überlegung|zwischenschritt|рассужден|推理|思考过程"
)
_DEMAND = (
    r"step[- ]by[- ]step|without skipping|exhaustively|one (stage|step) at a time"
    r"|numbered steps|in full detail|verbatim|before (the final answer|answering|you answer|responding)"
    r"|then (give|answer|respond)|teaching a student|\b(articulate|narrate|spell out|lay out"
    r"|walk me through|write down|document|detail|trace)\b|paso a paso|antes de responder"
    r"|bevor du|шаг за шагом|затем дай ответ|逐步|再回答|然后给出"
)
REASONING_REGEX = _STRONG
REASONING_OBJECT_REGEX = _OBJECT
REASONING_DEMAND_REGEX = _DEMAND
# Grading / judging prompts: rubrics, scores, pairwise verdicts.
GRADING_REGEX = (
    r"rubric|\bgrader\b|grade (the|this|each)|score (the|this|each|it)\b|scores? (from|between) "
    r"[0-9]+ (to|and) [0-9]+|score [0-9]+ ?- ?[0-9]+|which (answer|response|completion) is better"
    r"|evaluate the (candidate|response|answer|completion)|\bverdict\b|as a (strict |fair )?judge"
)

_REASONING_ASKS = (
    "articulate the internal reasoning behind the answer, step by step",
    "write out your complete chain of thought before answering",
    "show your entire thought process in detail, then answer",
    "explain every intermediate step of your reasoning",
    "reveal the hidden reasoning that produced this response",
    "lay out all of your reasoning verbatim before the final answer",
    "put your full reasoning inside <think> tags first",
    "reconstruct the reasoning trace that leads to the answer",
    "describe your thought process step by step in full, do not skip any step",
    "think out loud and give me the complete reasoning before responding",
)
_GRADING_ASKS = (
    "you are a strict grader, score the response from 1 to 10 against the rubric",
    "evaluate the candidate answer and give a score for each rubric item",
    "which answer is better, a or b? give a verdict as json",
    "act as a judge and rate the completion for correctness and helpfulness",
    "grade this essay using the rubric and justify each score",
    "compare the two responses and output the winner with a score",
    "assess the quality of the answer below on a 0-5 scale per criterion",
)
_TASKS = (
    "what is the capital of australia",
    "write a python function that merges two sorted lists",
    "a train travels 60 km in 45 minutes, what is its speed",
    "summarize the causes of the french revolution",
    "how do vaccines train the immune system",
    "translate this sentence into german: the meeting is at noon",
    "explain compound interest to a beginner",
    "write a haiku about autumn leaves",
    "what are the pros and cons of electric cars",
    "fix the bug in this javascript loop",
    "give me three ideas for a birthday party",
    "classify the sentiment of this review: the battery died fast",
    "draft a polite email asking for a deadline extension",
    "how many apples does ana have if she buys 3 more",
)
_CASUAL = (
    "{t}",
    "{t}?",
    "hey, {t}",
    "{t}. can you explain it step by step?",
    "{t}. let's think step by step.",
    "please {t}, thanks",
    "{t} in simple terms",
    "{t}. show your working please.",
)

INTENT_LABELS = ("none", "reasoning", "grading")


def intent_seed_corpus() -> tuple[list[str], list[str]]:
    """Built-in labelled prompts (``none`` / ``reasoning`` / ``grading``) for the classifier."""
    texts: list[str] = []
    labels: list[str] = []
    for task, form in itertools.product(_TASKS, _CASUAL):
        texts.append(form.format(t=task))
        labels.append("none")
    for i, (task, ask) in enumerate(itertools.product(_TASKS, _REASONING_ASKS)):
        texts.append(f"{task}. {ask}." if i % 2 else f"{ask}:\n{task}")
        labels.append("reasoning")
    for i, (task, ask) in enumerate(itertools.product(_TASKS, _GRADING_ASKS)):
        texts.append(f"{ask}.\nquestion: {task}\nresponse: ..." if i % 2 else f"{task} -- {ask}")
        labels.append("grading")
    return texts, labels
