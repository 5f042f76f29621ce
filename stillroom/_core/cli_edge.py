"""The one error edge of every stillroom command line.

Library code raises :class:`~stillroom._core.errors.StillroomError` subclasses with messages
a user can act on; only here do they become output: one ``Error: ...`` line on stderr and
exit status 1, no traceback. Ctrl-C (``KeyboardInterrupt``) exits 130, the shell's code for
SIGINT, after one line saying so; the library has already left its store consistent (a
harvest commits whole batches and marks its run interrupted on the way out).

Every Typer app uses :class:`FriendlyErrors` as its group class, and every ``main()`` is
:func:`run_app`, so ``stillroom harvest ...``, ``python -m stillroom.harvest.cli`` and ``python -m
train`` behave alike.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from stillroom._core.errors import StillroomError

INTERRUPTED = "Interrupted; run the same command again to resume."
SIGINT_EXIT = 130


class FriendlyErrors(TyperGroup):
    """A Typer group whose library errors print as one line (exit 1) and Ctrl-C exits 130."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except StillroomError as exc:
            typer.echo(f"Error: {one_line(exc)}", err=True)
            raise typer.Exit(1) from exc
        except KeyboardInterrupt as exc:
            typer.echo(INTERRUPTED, err=True)
            raise typer.Exit(SIGINT_EXIT) from exc


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on a single line (its lines joined with ``"; "``)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def run_app(app: typer.Typer, prog_name: str | None = None) -> None:
    """Run ``app`` as a program; exits with 0, 1 (a library error), 2 (usage) or 130 (Ctrl-C).

    :class:`FriendlyErrors` handles errors raised inside a command; this catches what
    escapes it (an interrupt while click parses arguments, before any command runs).
    """
    try:
        app(prog_name=prog_name)
    except KeyboardInterrupt:
        typer.echo(INTERRUPTED, err=True)
        raise SystemExit(SIGINT_EXIT) from None
