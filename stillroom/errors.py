"""The root of every error stillroom raises on purpose.

Each package has its own ``errors.py`` whose base class derives from
:class:`StillroomError`; the command line turns any of them into a one-line
message (and exit status 1) at the edge, and lets everything else propagate.
"""


class StillroomError(Exception):
    """An error a user can act on: bad input, a refused policy, a missing file."""
