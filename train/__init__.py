"""train package."""

from train.errors import TrainError

__all__ = ["TrainError"]
