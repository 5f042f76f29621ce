"""detect package."""

from detect.errors import DetectError

__all__ = ["DetectError"]
