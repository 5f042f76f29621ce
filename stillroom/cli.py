"""The ``stillroom`` command line: a thin shell over the library.

Each package contributes a Typer sub-app from its own ``cli`` module; library
errors (:class:`stillroom.StillroomError`) become friendly one-line messages
here, at the edge, and nowhere else.
"""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from stillroom.errors import StillroomError


class _FriendlyErrors(TyperGroup):
    """Turns a library error into ``Error: ...`` and exit status 1, no traceback."""

    def invoke(self, ctx):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except StillroomError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(1) from exc


app = typer.Typer(
    name="stillroom",
    cls=_FriendlyErrors,
    help="Black-box API distillation (harvest, policies, train) and its detection (detect).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from detect.cli import app as detect_app
    from harvest.cli import app as harvest_app
    from policies.cli import app as policies_app
    from train.cli import app as train_app

    app.add_typer(harvest_app, name="harvest")
    app.add_typer(policies_app, name="policies")
    app.add_typer(train_app, name="train")
    app.add_typer(detect_app, name="detect")
    try:
        from stillroom.teacher_cli import app as teacher_app
    except ImportError:  # lands with the embedded-teacher issue
        teacher_app = None
    if teacher_app is not None:
        app.add_typer(teacher_app, name="teacher")
    try:
        from stillroom.demo_cli import demo
    except ImportError:  # lands with the demo issue
        demo = None
    if demo is not None:
        app.command("demo")(demo)


_register()


def main() -> None:
    """Entry point of the ``stillroom`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
