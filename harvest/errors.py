"""Errors raised by ``harvest``; all derive from :class:`HarvestError`."""

from stillroom.errors import StillroomError


class HarvestError(StillroomError):
    """Base class of every error ``harvest`` raises on purpose."""
