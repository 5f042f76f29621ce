"""Exact, regex and multiple-choice verifiers: short answers compared without any arithmetic."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stillroom.curate._math import extract_final_answer
from stillroom.curate._text import normalise
from stillroom.curate._verdict import Verdict, failed, passed
from stillroom.curate.errors import ConfigError


def _final_span(answer: str) -> str:
    found = extract_final_answer(answer, last_number_fallback=False, numeric=False)
    return found[0] if found else answer


@dataclass(frozen=True)
class ExactVerifier:
    """The final answer (after ``####``/``\\boxed{}``/"the answer is", else the whole response)
    equals the reference, ignoring case, whitespace and a trailing full stop."""

    name: str = "exact"
    version: str = "1"

    def verify(self, prompt: str, answer: str, reference: Any) -> Verdict:
        got = normalise(_final_span(answer)).rstrip(".")
        want = normalise(str(reference)).rstrip(".")
        if got == want:
            return passed(self, got)
        return failed(self, f"expected {want!r}, got {got[:80]!r}", got)


@dataclass(frozen=True)
class RegexVerifier:
    """The reference is a regular expression that must match somewhere in the final answer
    (``fullmatch=True``: all of it)."""

    fullmatch: bool = False
    name: str = "regex"
    version: str = "1"

    def verify(self, prompt: str, answer: str, reference: Any) -> Verdict:
        try:
            pattern = re.compile(str(reference), re.IGNORECASE | re.DOTALL)
        except re.error as exc:
            raise ConfigError(f"reference is not a valid regex: {reference!r} ({exc})") from exc
        span = _final_span(answer).strip()
        hit = pattern.fullmatch(span) if self.fullmatch else pattern.search(span)
        if hit:
            return passed(self, hit.group(0))
        return failed(self, f"{span[:80]!r} does not match /{reference}/", span)


_CHOICE_PATTERNS = (
    re.compile(r"(?:answer|choice|option)\s*(?:is|:)?\s*\(?([A-J])\)?(?![A-Za-z])", re.IGNORECASE),
    re.compile(r"\\boxed\{\s*\(?([A-J])\)?\s*\}"),
    re.compile(r"^\s*\(?([A-J])\)?(?:[.):]|\s*$)", re.MULTILINE),
)


@dataclass(frozen=True)
class ChoiceVerifier:
    """Multiple choice: the letter the response settles on (its last "answer is (B)", boxed
    letter, or a line that is just a letter) equals the reference letter. A response that
    names two different letters in its final statement fails as ambiguous."""

    name: str = "choice"
    version: str = "1"

    def verify(self, prompt: str, answer: str, reference: Any) -> Verdict:
        want = str(reference).strip().strip("()").upper()
        if not re.fullmatch(r"[A-J]", want):
            raise ConfigError(
                f"a multiple-choice reference must be a letter A-J, got {reference!r}"
            )
        for pattern in _CHOICE_PATTERNS:
            letters = [m.group(1).upper() for m in pattern.finditer(answer)]
            if letters:
                got = letters[-1]
                if got == want:
                    return passed(self, got)
                return failed(self, f"expected {want}, got {got}", got)
        return failed(self, "no choice letter found")
