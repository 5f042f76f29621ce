"""The root of every error stillroom raises on purpose.

Each package has its own ``errors.py`` whose base class derives from
:class:`StillroomError`; the CLI edge (:mod:`stillroom._core.cli_edge`) turns any of them
into a one-line message (and exit status 1) and lets everything else propagate.
"""


class StillroomError(Exception):
    """An error a user can act on: bad input, a refused policy, a missing file."""
