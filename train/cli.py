"""``stillroom train ...``: a thin Typer shell over the ``train`` library."""

import typer

app = typer.Typer(help="train", no_args_is_help=True)
