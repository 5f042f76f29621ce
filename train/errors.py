"""Errors raised by ``train``; all derive from :class:`TrainError`."""

from stillroom._core.errors import StillroomError


class TrainError(StillroomError):
    """Base class of every error ``train`` raises on purpose."""


class TrainConfigError(TrainError):
    """A config field (flag or TOML key) has a bad value; the message names the field."""


class TrainDataError(TrainError):
    """The harvest database cannot give training rows (missing, empty, all filtered out)."""


class BaseModelError(TrainError):
    """The base model cannot be found, read or converted."""


class PolicyForbidsTraining(TrainDataError):
    """Every row left comes from a teacher whose terms forbid training on its outputs."""


class TeacherScoringError(TrainError):
    """The teacher cannot score the student's tokens (refused up front, before training)."""


class TeacherNoLogprobs(TeacherScoringError):
    """The teacher returns no per-token log-probabilities of a given text (closed APIs)."""


class TeacherTokenizerMismatch(TeacherScoringError):
    """The teacher tokenises a probe text differently from the student."""


__all__ = [
    "BaseModelError",
    "PolicyForbidsTraining",
    "TeacherNoLogprobs",
    "TeacherScoringError",
    "TeacherTokenizerMismatch",
    "TrainConfigError",
    "TrainDataError",
    "TrainError",
]
