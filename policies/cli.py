"""``stillroom policies ...``: a thin Typer shell over the ``policies`` library."""

import typer

app = typer.Typer(help="policies", no_args_is_help=True)
