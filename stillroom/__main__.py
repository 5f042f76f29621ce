"""``python -m stillroom ...``: the same command line as the ``stillroom`` script."""

from stillroom.cli import main

main()
