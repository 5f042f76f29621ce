"""Options with a fixed set of values are choices: ``--help`` lists them, a typo fails (exit 2)
before any work; the two meanings of a reference field have two names."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from stillroom.cli import app

WIDE = {"COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}


def _help(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def test_help_lists_the_values_of_every_choice():
    harvest = _help("harvest", "run")
    assert "sync|batch|batch-file" in harvest
    assert "openai|groq|cerebras|anthropic|none" in harvest
    for option, words in (("--max-tokens", "Most tokens"), ("--temperature", "temperature")):
        line = next(row for row in harvest.splitlines() if option in row)
        assert words in line, line
    scan = _help("detect", "scan")
    assert "duckdb|spark" in scan and "static|minilm|hashing" in scan
    simulate = _help("detect", "simulate")
    assert "frozen|current" in simulate and "training|held_out" in simulate


@pytest.mark.parametrize(("option", "typo"), [("--mode", "bacth"), ("--limits-profile", "opnai")])
def test_a_harvest_typo_fails_before_any_work(tmp_path, option, typo):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    db = tmp_path / "h.duckdb"
    result = CliRunner().invoke(app, [
        "harvest", "run", "--prompts", str(prompts), "--db", str(db),
        "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--policy", "self-hosted",
        option, typo,
    ], env=WIDE)  # fmt: skip
    assert result.exit_code == 2, result.output
    assert f"'{typo}' is not one of" in result.output
    assert not db.exists()


def test_a_detect_engine_typo_fails_before_reading_anything(tmp_path):
    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        app, ["detect", "scan", str(tmp_path / "absent.parquet"), "--out", str(out),
              "--engine", "sprak"], env=WIDE,
    )  # fmt: skip
    assert result.exit_code == 2 and "'sprak' is not one of" in result.output
    assert not out.exists()


def test_curate_jsonl_reads_the_row_reference_field_by_its_own_name(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"id": i, "prompt": f"What is 2 plus {i}?",
                                        "answer": f"#### {2 + i}", "gold": str(2 + i)}) + "\n"
                            for i in range(3)))  # fmt: skip
    for name, args in (("new", ["--row-reference-field", "gold"]),
                       ("old", ["--reference-field", "gold"])):  # fmt: skip
        result = CliRunner().invoke(
            app, ["curate", "jsonl", str(rows), "--out", str(tmp_path / name), *args]
        )
        assert result.exit_code == 0, result.output
        assert "kept 3 of 3 rows" in result.output
        assert ("deprecated" in result.output) is (name == "old")
    run_help = _help("curate", "run")
    jsonl_help = _help("curate", "jsonl")
    assert "Field of --references" in run_help and "--row-reference-field" not in run_help
    assert "Field of each row" in jsonl_help
    assert "--reference-field " not in jsonl_help  # the old spelling is hidden there
