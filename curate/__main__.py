"""``python -m curate ...``: the curate commands without the root CLI."""

from curate.cli import app
from stillroom_core.cli_edge import run_app

run_app(app, prog_name="python -m curate")
