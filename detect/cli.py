"""``stillroom detect ...``: a thin Typer shell over the ``detect`` library."""

import typer

app = typer.Typer(help="detect", no_args_is_help=True)
