"""A declared purpose under a non-compete policy, from harvest to the dataset and model cards.

``openai`` is ``conditional`` on ``non_compete`` (docs/policies.md). A run with
``--accept openai --purpose TEXT`` goes through against a real loopback server into a real
DuckDB file; the acceptance (user, time, purpose) is recorded with the run and reaches the
dataset card and the student's model card beside the clause it was accepted under.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stillroom import harvest
from stillroom.harvest import testing
from stillroom.policies import (
    PolicyNeedsAcceptance,
    acceptances_from_records,
    get_policy,
    obligations,
)
from stillroom.train._card import write_card
from stillroom.train._data import load_dataset

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
PURPOSE = "an internal ticket classifier, not a chat model"


@pytest.fixture(scope="module")
def fake():
    with testing.FakeProvider() as server:
        yield server


def _harvest(fake, db: Path, **kwargs) -> harvest.RunResult:
    cfg = harvest.HarvestConfig(
        prompts=[{"id": f"t-{i}", "prompt": f"Classify ticket {i}."} for i in range(4)],
        db=db,
        base_url=fake.base_url,
        model="gpt-4o-mini",
        max_tokens=16,
        concurrency=2,
        **kwargs,
    )
    return harvest.run_harvest(cfg, progress=False, now=lambda: NOW)


def test_accept_without_purpose_is_refused_before_any_request(tmp_path: Path, fake) -> None:
    before = fake.stats()["total"]
    with pytest.raises(PolicyNeedsAcceptance, match="--purpose") as err:
        _harvest(fake, tmp_path / "h.duckdb", accept=["openai"])
    assert "compete with OpenAI" in str(err.value)
    assert fake.stats()["total"] == before
    assert not (tmp_path / "h.duckdb").exists()


def test_declared_purpose_reaches_dataset_card_and_model_card(tmp_path: Path, fake) -> None:
    db = tmp_path / "h.duckdb"
    result = _harvest(fake, db, accept=["openai"], purpose=PURPOSE)
    assert result.completed == 4

    accepted = harvest.read_acceptances(db)
    assert [(a.policy_id, a.purpose, a.accepted_at) for a in accepted] == [
        ("openai", PURPOSE, NOW.isoformat())
    ]
    assert accepted[0].user and "compete with OpenAI" in accepted[0].clause

    export = harvest.export_dataset(db, tmp_path / "out" / "data.jsonl")
    dataset_card = Path(export.card_path).read_text(encoding="utf-8")
    for card in (dataset_card, _model_card(tmp_path, db)):
        section = card[card.index("### `openai`") :]
        clause_at = section.index("compete with OpenAI")
        accepted_at = section.index(f"Accepted by `{accepted[0].user}` at {NOW.isoformat()}")
        assert clause_at < accepted_at, "the acceptance sits beside the clause"
        assert f"declared purpose: “{PURPOSE}”" in section
        assert f"Keep to the declared purpose: “{PURPOSE}”" in card
        assert "It may not compete with the providers of openai." in card


def _model_card(tmp_path: Path, db: Path) -> str:
    """The card train writes for a student of this harvest (the same calls train_sft makes
    after its trainer finishes; training itself is covered in tests/train)."""
    data = load_dataset(db, eval_fraction=0.25)
    assert data.policy_ids == ("openai",) and data.counts["dropped_policy_forbidden"] == 0
    out = tmp_path / "student"
    out.mkdir()
    card, _ = write_card(
        out,
        name="ticket-classifier",
        base="SmolLM2-135M-Instruct",
        base_dir=tmp_path,
        db=db,
        data_summary=data.summary(),
        metrics={},
        config={},
        obligations=obligations(data.policy_ids, acceptances=data.acceptances),
    )
    return card.read_text(encoding="utf-8")


def test_acceptances_from_records_skips_unaccepted_and_names_bad_json() -> None:
    gemma = get_policy("gemma")
    records = [
        {"policy_id": "smollm2", "accepted": False},
        json.dumps(
            {"policy_id": "gemma", "accepted": True, "purpose": "p", "clause": gemma.clause}
        ),
        None,
    ]
    (only,) = acceptances_from_records(records)
    assert (only.policy_id, only.purpose) == ("gemma", "p")
    ob = obligations(["smollm2"], acceptances=[only])
    assert ob.acceptances == ()  # acceptances of policies not in the data are left out
    with pytest.raises(Exception, match="run record 1: field 'policy' is not JSON"):
        acceptances_from_records([None, "{not json"])
