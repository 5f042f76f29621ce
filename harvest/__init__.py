"""harvest package."""

from harvest.errors import HarvestError

__all__ = ["HarvestError"]
