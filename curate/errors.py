"""Errors raised by ``curate``; all derive from :class:`CurateError`."""

from stillroom._core.errors import StillroomError


class CurateError(StillroomError):
    """Base class of every error ``curate`` raises on purpose."""


class ConfigError(CurateError):
    """A curation setting (threshold, n-gram size, sample count) is out of range."""


class InputFormatError(CurateError):
    """A JSONL input line is not a JSON object or lacks a required field (names file and line)."""


class SandboxUnavailableError(CurateError):
    """No process isolation is available, so code is not run (the code verifier fails closed)."""


class UnknownVerifierError(CurateError):
    """A verifier name that no registered verifier answers to."""


class JudgeIncompleteError(CurateError):
    """The judge's harvest run stopped with grading prompts unanswered (a cap, a long wait);
    its replies are stored, and running the same curation again resumes it."""
