"""stillroom: black-box API distillation and its detection.

The work is done by four packages that sit beside this one: ``harvest``,
``policies``, ``train`` and ``detect``. This package holds what they share: the
root error type, the ``stillroom`` command line, the embedded teacher and the demo.
"""

from stillroom_core.errors import StillroomError

__all__ = ["StillroomError"]
__version__ = "0.1.0"
