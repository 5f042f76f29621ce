"""Verifiers by name, for the command line and stored configs: ``math``, ``exact``, ``regex``,
``choice``, ``code``, ``judge`` (an LLM asked through harvest)."""

from __future__ import annotations

from typing import Any

from stillroom.curate._code import CodeVerifier
from stillroom.curate._judge import HarvestJudge
from stillroom.curate._match import ChoiceVerifier, ExactVerifier, RegexVerifier
from stillroom.curate._math import MathVerifier
from stillroom.curate._verdict import Verifier
from stillroom.curate.errors import ConfigError, UnknownVerifierError

VERIFIERS: dict[str, type] = {
    "math": MathVerifier,
    "exact": ExactVerifier,
    "regex": RegexVerifier,
    "choice": ChoiceVerifier,
    "code": CodeVerifier,
    "judge": HarvestJudge,
}


def get_verifier(name: str, **options: Any) -> Verifier:
    """A verifier by name, with its dataclass options (``rel_tol=1e-3`` for ``math``)."""
    try:
        cls = VERIFIERS[name]
    except KeyError:
        known = ", ".join(sorted(VERIFIERS))
        raise UnknownVerifierError(f"unknown verifier {name!r} (known: {known})") from None
    try:
        return cls(**options)
    except TypeError as exc:  # a missing or unknown option
        raise ConfigError(f"verifier {name!r}: {exc}") from None
