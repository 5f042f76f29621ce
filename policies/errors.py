"""Errors raised by ``policies``; all derive from :class:`PoliciesError`.

Every refusal is an error a user can act on, so each message says what to do
next: pass ``--policy``, pass ``--accept``, or write a policy file.
"""

from __future__ import annotations

from pathlib import Path

from stillroom._core.errors import StillroomError


class PoliciesError(StillroomError):
    """Base class of every error ``policies`` raises on purpose."""


class PolicyFileError(PoliciesError):
    """A policy file is malformed; the message names the file and the field."""

    def __init__(self, path: Path | str, field: str | None, problem: str) -> None:
        self.path = Path(path)
        self.field = field
        self.problem = problem
        where = f"{self.path}: field '{field}'" if field else f"{self.path}"
        super().__init__(f"{where}: {problem}")


class PolicyNotFound(PoliciesError):
    """No policy with that id, or none matches the endpoint and model."""


class PolicyAmbiguous(PoliciesError):
    """Several policies match the endpoint and model; the user must pick one."""


class PolicyMismatch(PoliciesError):
    """The policy named with ``--policy`` does not cover an endpoint another policy covers."""


class PolicyRefused(PoliciesError):
    """The policy refuses this run before any request (the message quotes the clause).

    Raised as such when the terms forbid training on the outputs for every purpose;
    its subclass :class:`PolicyNeedsAcceptance` when they allow it only on conditions
    the run has not yet accepted.
    """


class PolicyNeedsAcceptance(PolicyRefused):
    """The terms allow training only on conditions the run has not accepted (or without
    the declared purpose those conditions need)."""
