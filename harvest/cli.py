"""``stillroom harvest ...``: a thin Typer shell over the ``harvest`` library."""

import typer

app = typer.Typer(help="harvest", no_args_is_help=True)
