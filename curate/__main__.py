"""``python -m curate ...``: the curate commands without the root CLI."""

import typer

from curate.cli import app
from curate.errors import CurateError


def main() -> None:
    try:
        app(standalone_mode=False)
    except CurateError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise SystemExit(1) from exc


main()
