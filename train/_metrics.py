"""Agreement between a generation and the teacher's answer (pure Python, no torch)."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from stillroom.harvest import split_think

_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")

METRIC_NAMES = (
    "token_f1",
    "rouge_l",
    "exact_match",
    "length_ratio",
    "format_adherence",
    "teacher_token_loss",
)


def answer_and_reasoning(text: str) -> tuple[str, str | None]:
    """``(answer, reasoning)`` of a generation or target: harvest's ``split_think``, the
    answer trimmed."""
    answer, reasoning = split_think(text)
    return answer.strip(), reasoning


def normalize_tokens(text: str) -> list[str]:
    """SQuAD-style: lower case, no punctuation or articles, split on whitespace."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return text.split()


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize_tokens(prediction), normalize_tokens(reference)
    if not pred and not ref:
        return 1.0
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure on lower-cased whitespace tokens."""
    pred, ref = prediction.lower().split(), reference.lower().split()
    if not pred and not ref:
        return 1.0
    lcs = _lcs(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_tokens(prediction) == normalize_tokens(reference))


def length_ratio(prediction: str, reference: str) -> float | None:
    """Words in the prediction over words in the reference (``None`` for an empty reference)."""
    ref = len(reference.split())
    return len(prediction.split()) / ref if ref else None


def format_adherence(generation: str, target: str) -> float:
    """1 when the generation has the target's reasoning format: a well-formed leading
    ``<think>`` block and a non-empty answer where the target has one, no think tags and a
    non-empty answer where it has none."""
    _, target_reasoning = answer_and_reasoning(target)
    answer, reasoning = answer_and_reasoning(generation)
    if target_reasoning is not None:
        return float(reasoning is not None and bool(answer))
    return float("<think>" not in generation and "</think>" not in generation and bool(answer))


def score(generation: str, target: str) -> dict[str, float | None]:
    """Per-example agreement of one generation with the teacher's target text."""
    answer, _ = answer_and_reasoning(generation)
    reference, _ = answer_and_reasoning(target)
    return {
        "token_f1": token_f1(answer, reference),
        "rouge_l": rouge_l(answer, reference),
        "exact_match": exact_match(answer, reference),
        "length_ratio": length_ratio(answer, reference),
        "format_adherence": format_adherence(generation, target),
    }


def mean_scores(per_example: Sequence[dict[str, float | None]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name in ("token_f1", "rouge_l", "exact_match", "length_ratio", "format_adherence"):
        values = [s[name] for s in per_example if s.get(name) is not None]
        out[name] = sum(values) / len(values) if values else None
    return out
