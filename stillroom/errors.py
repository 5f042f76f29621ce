"""Re-export: :class:`StillroomError` lives in :mod:`stillroom._core.errors`."""

from stillroom._core.errors import StillroomError

__all__ = ["StillroomError"]
