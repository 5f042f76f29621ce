"""A malformed policy file gets an error naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from stillroom.policies import (
    PoliciesError,
    PolicyFileError,
    get_policy,
    load_policies,
    load_policy_file,
    shipped_policy_files,
)


def _shipped_text(policy_id: str) -> str:
    path = next(p for p in shipped_policy_files() if p.stem == policy_id)
    return path.read_text(encoding="utf-8")


def _broken(tmp_path: Path, policy_id: str, old: str, new: str) -> Path:
    text = _shipped_text(policy_id)
    assert old in text
    path = tmp_path / f"{policy_id}.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("policy_id", "old", "new", "field", "problem"),
    [
        ("llama-3.1", 'verdict = "conditional"', 'verdict = "maybe"', "verdict", "must be one of"),
        (
            "llama-3.1",
            'name_prefix = "Llama"',
            'name_prefx = "Llama"',
            "conditions.name_prefx",
            "unknown field",
        ),
        (
            "llama-3.1",
            "mau_limit = 700000000",
            "mau_limit = -5",
            "conditions.mau_limit",
            "positive integer",
        ),
        (
            "llama-3.1",
            "ship_license = true",
            'ship_license = "yes"',
            "conditions.ship_license",
            "true or false",
        ),
        ("gemma", 'id = "gemma"', 'id = "gemma-x"', "id", "must equal the file name"),
        ("gemma", "read = 2026-11-25", 'read = "last tuesday"', "terms.read", "YYYY-MM-DD"),
        (
            "gemma",
            'url = "https://ai.google.dev/gemma/terms"',
            'url = "ai.google.dev"',
            "terms.url",
            "http(s) URL",
        ),
        ("gemma", 'section = "1.1(e)"\n', "", "clauses[0].section", "is required"),
        ("gemma", 'models = ["*gemma*"]', "models = []", "covers[0]", "name hosts or models"),
        (
            "openai",
            "usd_per_mtok_out = 0.60",
            'usd_per_mtok_out = "cheap"',
            "prices[0].usd_per_mtok_out",
            "number",
        ),
        (
            "openai",
            'hosts = ["api.openai.com"]',
            'hosts = "api.openai.com"',
            "covers[0].hosts",
            "list of",
        ),
    ],
)
def test_malformed_file_names_file_and_field(
    tmp_path: Path, policy_id: str, old: str, new: str, field: str, problem: str
) -> None:
    path = _broken(tmp_path, policy_id, old, new)
    with pytest.raises(PolicyFileError) as err:
        load_policy_file(path)
    assert err.value.path == path
    assert err.value.field == field
    assert str(path) in str(err.value)
    assert f"field '{field}'" in str(err.value)
    assert problem in str(err.value)


def test_conditional_without_conditions_is_rejected(tmp_path: Path, policy_file) -> None:
    path = policy_file(tmp_path, "needs-something", verdict="conditional")
    with pytest.raises(PolicyFileError, match=r"field 'conditions'.*at least one condition"):
        load_policy_file(path)


def test_missing_clauses_and_terms(tmp_path: Path) -> None:
    path = tmp_path / "bare.toml"
    path.write_text('id = "bare"\nname = "Bare"\nverdict = "allowed"\n', encoding="utf-8")
    with pytest.raises(PolicyFileError, match=r"bare.toml: field 'terms': is required"):
        load_policy_file(path)


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('id = "broken"\nname = "x\n', encoding="utf-8")
    with pytest.raises(PolicyFileError) as err:
        load_policy_file(path)
    assert str(path) in str(err.value) and "not valid TOML" in str(err.value)
    assert "line 2" in str(err.value)


def test_user_directory_adds_policies_after_shipped(user_dir: Path, policy_file) -> None:
    policy_file(user_dir, "my-teacher", extra='[[covers]]\nmodels = ["my-teacher-*"]\n')
    policies = load_policies()
    assert policies["my-teacher"].source == user_dir / "my-teacher.toml"
    assert not policies["my-teacher"].shipped
    assert policies["gemma"].shipped


def test_user_file_replaces_shipped_one_of_same_id(user_dir: Path, policy_file) -> None:
    policy_file(
        user_dir, "openai", verdict="allowed", clause="Written authorization on file, ref 42."
    )
    policy = get_policy("openai")
    assert policy.verdict == "allowed" and not policy.shipped
    assert "ref 42" in policy.clause


def test_malformed_user_file_fails_loading_naming_it(user_dir: Path, policy_file) -> None:
    policy_file(user_dir, "typo", extra='[limits]\nrpm = "lots"\n')
    with pytest.raises(PolicyFileError, match=r"typo.toml: field 'limits.rpm'"):
        load_policies()


def test_duplicate_ids_across_user_dirs(tmp_path: Path, monkeypatch, policy_file) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    policy_file(a, "dup")
    policy_file(b, "dup")
    monkeypatch.setenv("STILLROOM_POLICY_PATH", f"{a}{__import__('os').pathsep}{b}")
    with pytest.raises(PolicyFileError, match=r"also defined by"):
        load_policies()


def test_policy_path_must_name_directories(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STILLROOM_POLICY_PATH", str(tmp_path / "nope"))
    with pytest.raises(PoliciesError, match=r"STILLROOM_POLICY_PATH names .*nope"):
        load_policies()
