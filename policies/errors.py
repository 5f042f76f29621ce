"""Errors raised by ``policies``; all derive from :class:`PoliciesError`."""

from stillroom.errors import StillroomError


class PoliciesError(StillroomError):
    """Base class of every error ``policies`` raises on purpose."""
