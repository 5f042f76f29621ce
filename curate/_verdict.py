"""The verdict every verifier returns: passed or not, by whom (name, version), and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Verdict:
    """One verifier's judgement of one answer.

    ``reason`` is empty when the answer passed and says what went wrong when it did not
    (``"no final answer found"``, ``"expected 72, got 27"``, ``"timeout after 5.0 s"``).
    ``extracted`` is what the verifier read out of the answer (the final number, the chosen
    letter, the code block), kept so that a drop can be audited.
    """

    passed: bool
    verifier: str
    version: str
    reason: str = ""
    extracted: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Verifier(Protocol):
    """Anything with a ``name``, a ``version`` and ``verify(prompt, answer, reference) ->
    Verdict``: ``prompt`` is the question the answer replies to (the last user message), which
    a rule verifier may ignore and a judge must see."""

    name: str
    version: str

    def verify(self, prompt: str, answer: str, reference: Any) -> Verdict: ...


def passed(verifier: Verifier, extracted: str | None = None) -> Verdict:
    return Verdict(True, verifier.name, verifier.version, "", extracted)


def failed(verifier: Verifier, reason: str, extracted: str | None = None) -> Verdict:
    return Verdict(False, verifier.name, verifier.version, reason, extracted)
