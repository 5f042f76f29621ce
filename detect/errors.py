"""Errors raised by ``detect``; all derive from :class:`DetectError`."""

from stillroom.errors import StillroomError


class DetectError(StillroomError):
    """Base class of every error ``detect`` raises on purpose."""
