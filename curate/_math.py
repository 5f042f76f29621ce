"""Math final answers: find the final answer in a response and compare it with a reference.

Where the final answer is, in order of trust:

1. the last GSM8K ``#### ...`` line;
2. the last ``\\boxed{...}`` (braces balanced, ``\\fbox`` too);
3. the last "final answer is / the answer is / answer:" phrase, up to the end of its clause;
4. otherwise, if ``last_number_fallback`` (the default), the last number in the response.

A span that states two different numbers (``#### 72 or 24``) is ambiguous and fails. The
reference is read the same way, so a full GSM8K solution (``... #### 72``) or a bare ``72``
both work. Numbers compare exactly as fractions, or within ``rel_tol``/``abs_tol`` when the
two differ only by rounding (``33.33`` against ``100/3`` needs ``rel_tol=1e-3``).

``backend="math-verify"`` hands spans that are not plain numbers (``\\sqrt{2}``, ``x+1``) to
HuggingFace's ``math-verify`` (the ``curate`` extra), imported only then.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from stillroom.curate._numbers import format_number, numbers_in, parse_number
from stillroom.curate._verdict import Verdict, failed, passed
from stillroom.curate.errors import ConfigError

_HASHES = re.compile(r"####\s*([^\n]*)")
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_PHRASE = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:|=|would be|will be)\s*:?\s*",
    re.IGNORECASE,
)
# Where the clause after "the answer is" ends: a line break, a sentence stop, a semicolon,
# a comma that is not a thousands separator, or a "because"/"since" explanation.
_CLAUSE_END = re.compile(r"\n|\.(?:\s|$)|;|,(?!\d{3})|\s(?:because|since|as|which)\s", re.I)


def _last_boxed(text: str) -> str | None:
    starts = [m.end() for m in _BOXED.finditer(text)]
    if not starts:
        return None
    start = starts[-1]
    depth = 1
    for pos in range(start, len(text)):
        if text[pos] == "{":
            depth += 1
        elif text[pos] == "}":
            depth -= 1
            if depth == 0:
                return text[start:pos]
    return None  # unbalanced: the response was cut off inside the box


def extract_final_answer(
    text: str, *, last_number_fallback: bool = True, numeric: bool = True
) -> tuple[str, str] | None:
    """``(span, where)`` of the final answer, ``where`` one of hashes/boxed/phrase/last-number.

    ``numeric=False`` (for text answers) accepts an answer phrase whose clause holds no number.
    """
    hashes = _HASHES.findall(text)
    if hashes and hashes[-1].strip():
        return hashes[-1].strip(), "hashes"
    boxed = _last_boxed(text)
    if boxed is not None and boxed.strip():
        return boxed.strip(), "boxed"
    phrases = list(_PHRASE.finditer(text))
    if phrases:
        rest = text[phrases[-1].end() :]
        end = _CLAUSE_END.search(rest)
        span = (rest[: end.start()] if end else rest).strip()
        if span and (numbers_in(span) or not numeric):
            return span, "phrase"
    if last_number_fallback:
        matches = numbers_in(text)
        if matches:
            return format_number(matches[-1]), "last-number"
    return None


def _close(a: Fraction, b: Fraction, rel_tol: float, abs_tol: float) -> bool:
    return a == b or math.isclose(float(a), float(b), rel_tol=rel_tol, abs_tol=abs_tol)


@dataclass(frozen=True)
class MathVerifier:
    """Checks a response's final numeric answer against a reference (see the module doc)."""

    rel_tol: float = 1e-6
    abs_tol: float = 1e-9
    last_number_fallback: bool = True
    backend: str = "builtin"
    name: str = "math"
    version: str = "1"

    def __post_init__(self) -> None:
        if self.rel_tol < 0 or self.abs_tol < 0:
            raise ConfigError(
                f"tolerances must be >= 0, got rel_tol={self.rel_tol}, abs_tol={self.abs_tol}"
            )
        if self.backend not in ("builtin", "math-verify"):
            raise ConfigError(f"backend must be 'builtin' or 'math-verify', got {self.backend!r}")

    def reference_value(self, reference: Any) -> Fraction | str:
        if isinstance(reference, int | float | Fraction):
            return Fraction(reference)
        text = str(reference).strip()
        if "####" in text or _BOXED.search(text):  # a worked solution: read its final answer
            found = extract_final_answer(text, last_number_fallback=False)
            text = found[0] if found else ""
        if not text:
            raise ConfigError(f"reference {reference!r} states no final answer")
        value = parse_number(text)
        return value if value is not None else text

    def verify(self, prompt: str, answer: str, reference: Any) -> Verdict:
        expected = self.reference_value(reference)
        found = extract_final_answer(answer, last_number_fallback=self.last_number_fallback)
        if found is None:
            return failed(self, "no final answer found")
        span, where = found
        got = parse_number(span)
        if got is None or isinstance(expected, str):
            return self._symbolic(span, where, expected)
        if _close(got, expected, self.rel_tol, self.abs_tol):
            return passed(self, format_number(got))
        return failed(
            self, f"expected {format_number(expected)}, got {format_number(got)} ({where})", span
        )

    def _symbolic(self, span: str, where: str, expected: Fraction | str) -> Verdict:
        if self.backend != "math-verify":
            why = "states several numbers" if len(numbers_in(span)) > 1 else "is not a number"
            return failed(self, f"final answer {span!r} ({where}) {why}", span)
        from math_verify import parse, verify  # the curate extra; heavy (sympy, antlr)

        gold_text = expected if isinstance(expected, str) else format_number(expected)
        gold, pred = parse(f"${gold_text}$"), parse(f"${span}$")
        if pred and verify(gold, pred):
            return passed(self, span)
        return failed(self, f"expected {gold_text}, got {span!r} ({where}, math-verify)", span)
