"""The one CLI error edge: one-line library errors (exit 1), Ctrl-C exits 130, in every CLI."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from stillroom._core import StillroomError
from stillroom._core.cli_edge import INTERRUPTED, FriendlyErrors, run_app


def _app(exc: BaseException) -> typer.Typer:
    app = typer.Typer(cls=FriendlyErrors)

    @app.command()
    def boom() -> None:
        raise exc

    @app.command()
    def fine() -> None:
        typer.echo("ok")

    return app


def test_a_library_error_is_one_line_and_exit_1():
    res = CliRunner().invoke(_app(StillroomError("db.duckdb: no such\nharvest database")), ["boom"])
    assert res.exit_code == 1
    assert res.output == "Error: db.duckdb: no such; harvest database\n"


def test_ctrl_c_exits_130_with_one_line():
    res = CliRunner().invoke(_app(KeyboardInterrupt()), ["boom"])
    assert (res.exit_code, res.output) == (130, INTERRUPTED + "\n")


def test_other_errors_propagate():
    res = CliRunner().invoke(_app(RuntimeError("a bug")), ["boom"])
    assert res.exit_code == 1 and isinstance(res.exception, RuntimeError)


def test_run_app_exits_with_the_edge_codes(monkeypatch, capsys):
    for exc, code in ((StillroomError("bad"), 1), (KeyboardInterrupt(), 130)):
        monkeypatch.setattr("sys.argv", ["prog", "boom"])
        with pytest.raises(SystemExit) as exit_:
            run_app(_app(exc))
        assert exit_.value.code == code
        assert capsys.readouterr().err.count("\n") == 1


def test_every_cli_uses_the_edge():
    """The root, each package's group inside it, and the standalone ``python -m`` apps."""
    from stillroom.cli import app as root_app
    from stillroom.curate.cli import app as curate_app
    from stillroom.harvest.cli import app as harvest_app
    from stillroom.train.cli import app as train_app

    root = typer.main.get_command(root_app)
    assert isinstance(root, FriendlyErrors)
    groups = {name: cmd for name, cmd in root.commands.items() if name != "demo"}
    assert set(groups) == {"harvest", "policies", "train", "curate", "detect", "teacher"}
    assert all(isinstance(cmd, FriendlyErrors) for cmd in groups.values())
    for app in (harvest_app, train_app, curate_app):
        assert isinstance(typer.main.get_command(app), FriendlyErrors)
