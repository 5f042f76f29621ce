"""The LLM-judge interface: a verifier that asks a model whether an answer is right.

A judge is any callable ``ask(prompt) -> str`` (a teacher behind harvest's paced, policy-
checked client, or a local model); :class:`JudgeVerifier` builds the grading prompt, reads a
``VERDICT: PASS`` / ``VERDICT: FAIL`` line from the reply, and fails closed on anything else.
Wiring a judge through harvest's resumable machinery is not built yet.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from curate._verdict import Verdict, failed, passed

JUDGE_TEMPLATE = """You are grading an answer against a reference.
Reference answer:
{reference}

Answer to grade:
{answer}

Is the answer correct and consistent with the reference? Reply with one short reason, then a
last line that is exactly `VERDICT: PASS` or `VERDICT: FAIL`."""

_VERDICT = re.compile(r"VERDICT:\s*(PASS|FAIL)\b", re.IGNORECASE)


@dataclass(frozen=True)
class JudgeVerifier:
    """``ask`` sends one prompt to the judge model and returns its reply text."""

    ask: Callable[[str], str]
    judge_model: str
    template: str = JUDGE_TEMPLATE
    name: str = "judge"
    version: str = "1"

    def verify(self, answer: str, reference: Any) -> Verdict:
        reply = self.ask(self.template.format(reference=reference, answer=answer))
        found = _VERDICT.findall(reply)
        label = f"{self.judge_model}"
        if not found:
            return failed(self, f"judge {label} gave no VERDICT line", reply[-200:])
        if found[-1].upper() == "PASS":
            return passed(self, reply[-200:])
        reason = reply.strip().splitlines()[0][:200] if reply.strip() else "judge said FAIL"
        return failed(self, f"judge {label}: {reason}", reply[-200:])
