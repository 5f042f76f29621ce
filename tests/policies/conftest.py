"""Fixtures for the policies tests: a clean STILLROOM_POLICY_PATH and a policy-file writer."""

from __future__ import annotations

from pathlib import Path

import pytest

MINIMAL = """\
id = "{id}"
name = "Test teacher {id}"
verdict = "{verdict}"

[terms]
title = "Test Terms"
url = "https://example.com/terms"
read = 2026-11-25

[[clauses]]
section = "1.2"
text = "{clause}"
{extra}
"""


@pytest.fixture(autouse=True)
def _no_user_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STILLROOM_POLICY_PATH", raising=False)


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on STILLROOM_POLICY_PATH."""
    d = tmp_path / "my-policies"
    d.mkdir()
    monkeypatch.setenv("STILLROOM_POLICY_PATH", str(d))
    return d


def write_policy(
    directory: Path,
    policy_id: str,
    *,
    verdict: str = "allowed",
    clause: str = "You may train on outputs.",
    extra: str = "",
) -> Path:
    """Write a small valid policy file (plus ``extra`` TOML) and return its path."""
    path = directory / f"{policy_id}.toml"
    path.write_text(
        MINIMAL.format(id=policy_id, verdict=verdict, clause=clause, extra=extra), encoding="utf-8"
    )
    return path


@pytest.fixture
def policy_file():
    """The :func:`write_policy` helper, as a fixture."""
    return write_policy
