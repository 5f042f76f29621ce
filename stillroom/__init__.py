"""stillroom: black-box API distillation and its detection.

Everything installs under this one name. The work is done by five packages:
``stillroom.harvest``, ``stillroom.policies``, ``stillroom.curate``, ``stillroom.train`` and
``stillroom.detect``; ``stillroom._core`` holds what they share. Their folders sit at the
top of the repository (``harvest/``, ``policies/``, ...) and the packaging maps them here
(``[tool.setuptools.package-dir]`` in ``pyproject.toml``). This module imports only the
root error type, so ``import stillroom.detect`` stays cheap; the command line, the embedded
teacher and the demo live in ``stillroom.cli``, ``stillroom.teacher`` and ``stillroom.demo``.
"""

from stillroom._core.errors import StillroomError

__all__ = ["StillroomError"]
__version__ = "0.1.0"
