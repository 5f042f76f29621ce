"""The CLI: help without torch, flags into TrainConfig, library errors as one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from stillroom.cli import app
from tests.train.conftest import make_harvest_db, row

runner = CliRunner()


def said(result) -> str:
    """What the user sees: output, or the one-line error the root CLI raises."""
    return result.output + (str(result.exception) if result.exception else "")


def test_import_and_help_do_not_load_torch() -> None:
    code = (
        "import sys, train, stillroom.train.cli\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(stillroom.train.cli.app, ['sft', '--help'])\n"
        "assert r.exit_code == 0 and '--kd-alpha' in r.output, r.output\n"
        "heavy = [m for m in ('torch', 'trl', 'transformers', 'peft', 'datasets') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_root_cli_mounts_train() -> None:
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    assert "sft" in result.output and "eval" in result.output


def test_missing_database_is_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", "sft", "--db", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "none.duckdb: no such harvest database" in said(result)
    assert "Traceback" not in result.output


def test_no_rows_after_filters_via_cli_and_toml(tmp_path: Path) -> None:
    db = make_harvest_db(tmp_path / "h.duckdb", [row("a", "Q?", "cut off", finish_reason="length")])
    toml = tmp_path / "t.toml"
    toml.write_text(f'db = "{db}"\nout = "{tmp_path / "o"}"\nreasoning = "drop"\n')
    result = runner.invoke(app, ["train", "sft", "--config", str(toml)])
    assert result.exit_code == 1 and "no rows left after filters" in said(result)
    result = runner.invoke(
        app, ["train", "sft", "--config", str(toml), "--finish-reason", "length", "--kd-alpha", "3"]
    )
    assert result.exit_code == 1 and "kd_alpha" in said(result)


def test_db_and_out_are_required(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "sft", "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 1 and "--db and --out are required" in said(result)


def test_eval_needs_an_adapter(tmp_path: Path) -> None:
    db = make_harvest_db(tmp_path / "h.duckdb", [row("a", "Q?", "A.")])
    result = runner.invoke(
        app,
        [
            "train",
            "eval",
            "--db",
            str(db),
            "--adapter",
            str(tmp_path),
            "--out",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 1 and "no adapter_config.json" in said(result)


def test_python_m_train_prints_one_line_errors(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stillroom.train",
            "sft",
            "--db",
            str(tmp_path / "n.duckdb"),
            "--out",
            "o",
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'n.duckdb'}: no such harvest database"
    ]


def test_finish_reason_flag() -> None:
    from stillroom.train.cli import _finish_reasons

    assert _finish_reasons(None) is None  # the config's default (stop) stays
    assert _finish_reasons(["stop", "length"]) == ("stop", "length")
    assert _finish_reasons(["any"]) == ()  # keep every finish reason


def test_sft_options_are_train_config_fields() -> None:
    """Every TrainConfig field has one `train sft` option of its type, defaulting to None
    (so the config's default applies), and every option but --config/--quiet is a field."""
    import dataclasses
    import types
    import typing

    import typer

    from stillroom.train import TrainConfig
    from stillroom.train.cli import CLI_ONLY_FIELDS, FIELD_OF_OPTION, NOT_FIELDS

    command = typer.main.get_command(app).commands["train"].commands["sft"]
    options = {p.name: p for p in command.params if p.name not in NOT_FIELDS}
    field_of = {name: FIELD_OF_OPTION.get(name, name) for name in options}
    hints = typing.get_type_hints(TrainConfig)
    assert sorted(field_of.values()) == sorted(
        f.name for f in dataclasses.fields(TrainConfig) if f.name not in CLI_ONLY_FIELDS
    )
    for name, param in options.items():
        assert param.default is None, name
        option_type = param.type_descriptor.annotation  # what the flag parses to
        hint = hints[field_of[name]]
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        field_types = [a for a in typing.get_args(hint) if a is not type(None)] if union else [hint]
        if typing.get_origin(option_type) is list:  # a repeatable flag for a tuple field
            assert param.multiple, name
            assert any(typing.get_origin(t) is tuple for t in field_types), name
        else:
            assert option_type in field_types, (name, option_type, field_types)
