"""End to end: harvest enforces policies against a real loopback server and a real DuckDB.

Refusals happen before any request reaches the server (it counts zero), ``accept`` is
recorded in the run record, an export mixing teachers carries every teacher's
obligations, and a policy's daily cap stops a run and resumes on the next UTC day.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

import stillroom.harvest.testing as testing
from stillroom import harvest
from stillroom.policies import (
    PolicyAmbiguous,
    PolicyNeedsAcceptance,
    PolicyNotFound,
    PolicyRefused,
    get_policy,
)

DAY1 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY2 = datetime(2026, 11, 26, 0, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def fake():
    with testing.FakeProvider() as server:
        yield server


def _prompts(tag: str, n: int) -> list[dict]:
    return [{"id": f"{tag}-{i}", "prompt": f"{tag} question {i}"} for i in range(n)]


def _run(fake, db: Path, model: str, *, n: int = 3, tag: str | None = None, now=DAY1, **kwargs):
    cfg = harvest.HarvestConfig(
        prompts=_prompts(tag or model, n),
        db=db,
        base_url=fake.base_url,
        model=model,
        max_tokens=16,
        concurrency=4,
        **kwargs,
    )
    return harvest.run_harvest(cfg, progress=False, now=lambda: now)


def _total(fake) -> int:
    return fake.stats()["total"]


@pytest.mark.parametrize(
    ("model", "kwargs", "error", "words"),
    [
        ("gpt-4o-mini", {}, PolicyRefused, "compete with OpenAI"),
        ("claude-3-5-haiku-latest", {"accept": ["anthropic"]}, PolicyRefused, "D.4"),
        ("gemini-2.5-flash", {}, PolicyRefused, "Use Restrictions"),
        ("gemma-3-4b-it", {}, PolicyNeedsAcceptance, "--accept gemma"),
        (
            "meta-llama/Llama-3.1-8B-Instruct",
            {"accept": ["gemma"]},
            PolicyNeedsAcceptance,
            "“Llama”",
        ),
        (
            "Ministral-8B-Instruct-2410",
            {"accept": ["mistral-research"]},
            PolicyNeedsAcceptance,
            "--purpose",
        ),
        ("some-unknown-model", {}, PolicyNotFound, "no policy covers"),
        ("deepseek-r1:8b", {}, PolicyAmbiguous, "several policies"),
    ],
)
def test_refusal_sends_zero_requests(tmp_path: Path, fake, model, kwargs, error, words) -> None:
    before = _total(fake)
    db = tmp_path / "h.duckdb"
    with pytest.raises(error) as err:
        _run(fake, db, model, **kwargs)
    assert words in str(err.value)
    assert _total(fake) == before, "a refused run must not reach the server"
    assert not db.exists(), "a refused run must not even create the database"


def test_accept_lets_the_run_through_and_is_recorded(tmp_path: Path, fake) -> None:
    db = tmp_path / "h.duckdb"
    result = _run(fake, db, "gemma-3-4b-it", accept=["gemma"], purpose="evaluate a tutor bot")
    assert result.completed == 3 and result.stopped_reason is None
    con = duckdb.connect(str(db), read_only=True)
    try:
        (policy_json,) = con.execute("SELECT policy FROM runs").fetchone()
        rows = con.execute("SELECT DISTINCT policy_id, policy_hash FROM completions").fetchall()
    finally:
        con.close()
    record = json.loads(policy_json)
    assert record["policy_id"] == "gemma" and record["accepted"] is True
    assert record["purpose"] == "evaluate a tutor bot"
    assert datetime.fromisoformat(record["accepted_at"]).tzinfo is not None
    assert record["user"]
    assert any("governed by these terms" in s for s in record["accepted_conditions"])
    assert rows == [("gemma", get_policy("gemma").file_hash)]


def test_mixed_teacher_export_card_lists_every_teachers_obligations(tmp_path: Path, fake) -> None:
    db = tmp_path / "mixed.duckdb"
    _run(fake, db, "meta-llama/Llama-3.1-8B-Instruct", n=2, accept=["llama-3.1"])
    _run(fake, db, "gemma-2-9b-it", n=2, accept=["gemma"])
    _run(fake, db, "Ministral-8B-Instruct-2410", n=2, accept=["mistral-research"], purpose="study")
    out = harvest.export_dataset(db, tmp_path / "out" / "data.jsonl", format="jsonl")
    card = Path(out.card_path).read_text(encoding="utf-8")
    for needle in (
        "`llama-3.1`",
        "`gemma`",
        "`mistral-research`",
        "Built with Llama",
        "Llama 3.1 is licensed under the Llama 3.1 Community License",
        "Gemma is provided under and subject to the Gemma Terms of Use",
        "Name a distributed model starting with **Llama**",
        "non-commercial research only",
        "### Conflicts",  # Gemma's propagating terms vs a research-only source
        get_policy("gemma").file_hash,
    ):
        assert needle in card, needle
    rows = [json.loads(line) for line in (tmp_path / "out" / "data.jsonl").read_text().splitlines()]
    assert {r["policy_id"] for r in rows} == {"llama-3.1", "gemma", "mistral-research"}


CAPPED = """\
id = "capped"
name = "A teacher with a published daily cap"
verdict = "allowed"

[terms]
title = "Capped Teacher Terms"
url = "https://example.com/capped-terms"
read = 2026-11-25

[[clauses]]
section = "4"
text = "You may make at most three requests per day."

[[covers]]
models = ["capped-teacher"]

[limits]
rpd = 3
"""


def test_policy_daily_cap_stops_and_resumes_next_day(tmp_path: Path, fake, monkeypatch) -> None:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "capped.toml").write_text(CAPPED, encoding="utf-8")
    monkeypatch.setenv("STILLROOM_POLICY_PATH", str(policy_dir))
    db, before = tmp_path / "cap.duckdb", _total(fake)

    first = _run(fake, db, "capped-teacher", n=5)
    assert (first.completed, first.stopped_reason) == (3, "daily_cap")
    same_day = _run(fake, db, "capped-teacher", n=5)
    assert (same_day.completed, same_day.requests, same_day.stopped_reason) == (0, 0, "daily_cap")
    next_day = _run(fake, db, "capped-teacher", n=5, now=DAY2)
    assert (next_day.already_done, next_day.completed, next_day.stopped_reason) == (3, 2, None)

    assert _total(fake) - before == 5  # every prompt asked exactly once across the three runs
    per_prompt = fake.stats()["per_prompt"]
    assert all(per_prompt[f"capped-teacher question {i}"] == 1 for i in range(5))


def test_tighter_user_cap_wins_over_the_policys(tmp_path: Path, fake, monkeypatch) -> None:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "capped.toml").write_text(CAPPED, encoding="utf-8")
    monkeypatch.setenv("STILLROOM_POLICY_PATH", str(policy_dir))
    result = _run(fake, tmp_path / "u.duckdb", "capped-teacher", n=5, tag="tight", rpd=2)
    assert (result.completed, result.stopped_reason) == (2, "daily_cap")
