"""Re-export: :class:`StillroomError` lives in :mod:`stillroom_core.errors`."""

from stillroom_core.errors import StillroomError

__all__ = ["StillroomError"]
