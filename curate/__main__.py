"""``python -m stillroom.curate ...``: the curate commands without the root CLI."""

from stillroom._core.cli_edge import run_app
from stillroom.curate.cli import app

run_app(app, prog_name="python -m stillroom.curate")
