"""Errors raised by ``train``; all derive from :class:`TrainError`."""

from stillroom.errors import StillroomError


class TrainError(StillroomError):
    """Base class of every error ``train`` raises on purpose."""
