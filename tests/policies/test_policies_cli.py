"""``stillroom policies list | show | check | match`` through the root CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from stillroom.cli import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, ["policies", *args])


def _error_text(result) -> str:
    """The one-line error, whether the root CLI printed it or the runner caught it."""
    return result.output + (str(result.exception) if result.exception else "")


def test_list() -> None:
    result = _run("list")
    assert result.exit_code == 0, result.output
    for pid in ("openai", "gemma", "llama-3.1", "self-hosted"):
        assert pid in result.output


def test_list_json_includes_user_policies(user_dir: Path, policy_file) -> None:
    policy_file(user_dir, "mine", extra='[[covers]]\nmodels = ["mine-*"]\n')
    result = _run("list", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(result.output)}
    assert rows["mine"]["shipped"] is False and rows["gemma"]["shipped"] is True
    assert len(rows) == 16


def test_show() -> None:
    result = _run("show", "llama-3.3")
    assert result.exit_code == 0, result.output
    assert "Llama 3.3 Community License Agreement" in result.output
    assert "1.b.i" in result.output and "conditional" in result.output


def test_show_json_and_toml() -> None:
    data = json.loads(_run("show", "gemma", "--json").output)
    assert data["conditions"]["license_propagates"] is True
    assert data["clauses"][0]["section"] == "1.1(e)"
    toml = _run("show", "gemma", "--toml").output
    assert toml.startswith("# Readings of published terms") and 'id = "gemma"' in toml


def test_show_unknown() -> None:
    result = _run("show", "nope")
    assert result.exit_code != 0
    assert "unknown policy 'nope'" in _error_text(result)


def test_check_ok(tmp_path: Path, policy_file) -> None:
    path = policy_file(tmp_path, "fine")
    result = _run("check", str(path))
    assert result.exit_code == 0, result.output
    assert "ok" in result.output and "fine (allowed)" in result.output


def test_check_malformed_names_file_and_field(tmp_path: Path, policy_file) -> None:
    path = policy_file(tmp_path, "bad", verdict="sometimes")
    result = _run("check", str(path))
    assert result.exit_code != 0
    assert f"{path}: field 'verdict'" in _error_text(result)


def test_match_single() -> None:
    result = _run("match", "--base-url", "http://localhost:8000/v1", "--model", "gemma-2-9b-it")
    assert result.exit_code == 0, result.output
    assert "-> gemma" in result.output and "--accept gemma" in result.output


def test_match_non_compete_explains() -> None:
    """openai is conditional on non_compete (docs/policies.md): match says harvest refuses
    without --accept and a declared --purpose, and quotes the clause."""
    result = _run("match", "--base-url", "https://api.openai.com/v1", "--model", "gpt-4o")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "harvest refuses without --accept openai and --purpose TEXT" in out
    assert "may not compete" in out and "compete with OpenAI" in out


def test_match_forbidden_explains(user_dir, policy_file) -> None:
    policy_file(
        user_dir, "no-training", verdict="forbidden", clause="No training on outputs, ever.",
        extra='[[covers]]\nmodels = ["walled-*"]\n',
    )  # fmt: skip
    result = _run("match", "--base-url", "http://localhost:8000/v1", "--model", "walled-7b")
    assert result.exit_code == 0, result.output
    assert "harvest refuses: the terms forbid" in result.output
    assert "No training on outputs, ever." in result.output


def test_match_none_and_ambiguous_fail_with_candidates() -> None:
    none = _run("match", "--base-url", "http://localhost:8000/v1", "--model", "mystery")
    assert none.exit_code != 0 and "no policy covers" in _error_text(none)
    two = _run("match", "--base-url", "http://localhost:8000/v1", "--model", "deepseek-r1:8b")
    assert two.exit_code != 0 and "several policies cover" in _error_text(two)


def test_match_json() -> None:
    result = _run("match", "--base-url", "http://h/v1", "--model", "deepseek-r1:8b", "--json")
    data = json.loads(result.output)
    assert [m["id"] for m in data["matches"]] == ["deepseek-r1", "llama-3.1"]
