"""The ``stillroom`` command line: a thin shell over the library.

Each package contributes a Typer sub-app from its own ``cli`` module; library errors
(:class:`stillroom._core.StillroomError`) become one-line messages at the one edge,
:mod:`stillroom._core.cli_edge`, and nowhere else. Every ``cli`` module imports only typer,
rich and its own light modules at the top: heavy libraries (scikit-learn, scipy, torch,
transformers, trl, the openai SDK) load inside the command that needs them, so
``stillroom --help`` starts in well under a second (``bench/startup.py``).
"""

from __future__ import annotations

import typer

from stillroom._core.cli_edge import FriendlyErrors, run_app

app = typer.Typer(
    name="stillroom",
    cls=FriendlyErrors,
    help="Black-box API distillation (harvest, policies, train) and its detection (detect).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from stillroom.curate.cli import app as curate_app
    from stillroom.demo_cli import demo
    from stillroom.detect.cli import app as detect_app
    from stillroom.harvest.cli import app as harvest_app
    from stillroom.policies.cli import app as policies_app
    from stillroom.teacher_cli import app as teacher_app
    from stillroom.train.cli import app as train_app

    app.add_typer(harvest_app, name="harvest")
    app.add_typer(policies_app, name="policies")
    app.add_typer(train_app, name="train")
    app.add_typer(curate_app, name="curate")
    app.add_typer(detect_app, name="detect")
    app.add_typer(teacher_app, name="teacher")
    app.command("demo")(demo)


_register()


def main() -> None:
    """Entry point of the ``stillroom`` console script."""
    run_app(app)


if __name__ == "__main__":  # pragma: no cover
    main()
