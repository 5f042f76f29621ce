"""Reading, filtering and splitting a harvest (no torch needed)."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from stillroom import policies
from stillroom.harvest import prompt_key
from stillroom.train import (
    PolicyForbidsTraining,
    TrainConfig,
    TrainConfigError,
    TrainDataError,
    load_dataset,
    split_by_prompt,
)
from stillroom.train._data import build_examples
from tests.train.conftest import SYSTEM, capital_rows, make_harvest_db, row


def test_split_never_puts_a_prompt_on_both_sides(tmp_path: Path) -> None:
    rng = random.Random(7)
    rows = []
    for i in range(60):
        system = rng.choice([SYSTEM, "Be brief.", None])
        # the same user prompt under several prompt_ids and samples
        user = f"question {rng.randrange(25)}"
        for s in range(rng.randrange(1, 4)):
            rows.append(row(f"id{i}", user, f"answer {i}.{s}", system=system, sample_index=s))
    db = make_harvest_db(tmp_path / "h.duckdb", rows)
    for drop_system in (False, True):
        for seed in range(5):
            data = load_dataset(db, drop_system=drop_system, eval_fraction=0.3, seed=seed)
            train_keys = {prompt_key(e.prompt) for e in data.train}
            eval_keys = {prompt_key(e.prompt) for e in data.eval}
            assert train_keys and eval_keys
            assert not train_keys & eval_keys
            train_prompts = {json.dumps(e.prompt) for e in data.train}
            assert not train_prompts & {json.dumps(e.prompt) for e in data.eval}
            assert len(data.train) + len(data.eval) == data.counts["kept"]


def test_split_is_deterministic_and_seeded(capitals_db: Path) -> None:
    a = load_dataset(capitals_db, eval_fraction=0.3, seed=1)
    b = load_dataset(capitals_db, eval_fraction=0.3, seed=1)
    c = load_dataset(capitals_db, eval_fraction=0.3, seed=2)
    assert [e.prompt_id for e in a.eval] == [e.prompt_id for e in b.eval]
    assert {e.prompt_id for e in a.eval} != {e.prompt_id for e in c.eval}


def test_split_keeps_both_sides_non_empty() -> None:
    examples, _ = build_examples(
        capital_rows(2), db=Path("x"), reasoning="drop", drop_system=False, finish_reasons=None
    )
    train, held = split_by_prompt(examples, eval_fraction=0.01, seed=0)
    assert len(train) == 1 and len(held) == 1
    train, held = split_by_prompt(examples, eval_fraction=0.0, seed=0)
    assert len(train) == 2 and held == []


def test_filters_count_what_they_drop(tmp_path: Path) -> None:
    rows = capital_rows(4)
    rows.append(row("cut", "Long?", "It is a long story and", finish_reason="length"))
    rows.append(row("empty", "Say nothing", "   "))
    rows.append(row("p0", "What is the capital of France?", rows[0].content, sample_index=1))
    db = make_harvest_db(tmp_path / "h.duckdb", rows)
    data = load_dataset(db, eval_fraction=0.0)
    assert data.counts == {
        "rows": 7,
        "dropped_finish_reason": 1,
        "dropped_empty": 1,
        "dropped_duplicate": 1,
        "dropped_policy_forbidden": 0,
        "kept": 4,
    }
    everything = load_dataset(db, eval_fraction=0.0, finish_reasons=())
    assert everything.counts["kept"] == 5


def test_reasoning_modes_and_drop_system(tmp_path: Path) -> None:
    db = make_harvest_db(
        tmp_path / "h.duckdb", [row("r", "2+2?", "4", reasoning="Two plus two is four.")]
    )
    think = load_dataset(db, reasoning="think", eval_fraction=0).train[0]
    assert think.target_text == "<think>\nTwo plus two is four.\n</think>\n\n4"
    assert think.prompt[0] == {"role": "system", "content": SYSTEM}
    drop = load_dataset(db, reasoning="drop", drop_system=True, eval_fraction=0).train[0]
    assert drop.target_text == "4"
    assert [m["role"] for m in drop.prompt] == ["user"]
    templ = load_dataset(db, reasoning="template", eval_fraction=0).train[0]
    assert templ.completion[0]["reasoning_content"] == "Two plus two is four."


def test_rows_whose_policy_forbids_training_are_refused(tmp_path: Path, monkeypatch) -> None:
    rows = [*capital_rows(3), row("x", "Hi?", "Hello there.", policy_id="no-training")]
    db = make_harvest_db(tmp_path / "h.duckdb", rows)

    def fake_obligations(ids):
        return policies.Obligations(
            policy_ids=tuple(sorted(ids)), training_forbidden=frozenset({"no-training"})
        )

    monkeypatch.setattr(policies, "obligations", fake_obligations)
    data = load_dataset(db, eval_fraction=0.0)
    assert data.counts["dropped_policy_forbidden"] == 1
    assert all(e.policy_id == "self-hosted" for e in data.train)
    only_forbidden = make_harvest_db(tmp_path / "f.duckdb", rows[-1:])
    with pytest.raises(PolicyForbidsTraining, match="no-training"):
        load_dataset(only_forbidden)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TrainDataError, match=r"nope\.duckdb: no such harvest database"):
        load_dataset(tmp_path / "nope.duckdb")


def test_empty_database_is_a_clear_error(tmp_path: Path) -> None:
    db = make_harvest_db(tmp_path / "empty.duckdb", [])
    with pytest.raises(TrainDataError, match="has no rows"):
        load_dataset(db)


def test_database_without_view_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "other.duckdb"
    duckdb.connect(str(db)).execute("CREATE TABLE t (x INT)").close()
    with pytest.raises(TrainDataError, match="completions"):
        load_dataset(db)
    text = tmp_path / "notes.duckdb"
    text.write_text("not a database")
    with pytest.raises(TrainDataError, match=r"notes\.duckdb"):
        load_dataset(text)


def test_no_rows_after_filters_is_a_clear_error(tmp_path: Path) -> None:
    db = make_harvest_db(tmp_path / "h.duckdb", [row("a", "Q?", "partial", finish_reason="length")])
    with pytest.raises(
        TrainDataError, match=r"no rows left after filters.*dropped_finish_reason=1"
    ):
        load_dataset(db)


def test_bad_messages_json_names_the_row(tmp_path: Path) -> None:
    bad = replace(row("broken", "Q?", "A."), messages=json.dumps({"role": "user"}))
    db = make_harvest_db(tmp_path / "h.duckdb", [bad])
    with pytest.raises(TrainDataError, match=r"prompt_id='broken'.*messages"):
        load_dataset(db)


def test_config_validation_and_toml(tmp_path: Path) -> None:
    with pytest.raises(TrainConfigError, match="reasoning"):
        TrainConfig(db="a", out="b", reasoning="maybe")
    with pytest.raises(TrainConfigError, match="kd_alpha"):
        TrainConfig(db="a", out="b", kd_alpha=2)
    with pytest.raises(TrainConfigError, match="packing"):
        TrainConfig(db="a", out="b", kd_alpha=0.5, packing=True)
    toml = tmp_path / "train.toml"
    toml.write_text('[train]\ndb = "h.duckdb"\nout = "run"\nlora_r = 4\nmax_steps = 7\n')
    cfg = TrainConfig.from_toml(toml, max_steps=3, out=None)
    assert (cfg.lora_r, cfg.max_steps, cfg.out) == (4, 3, Path("run"))
    toml.write_text('db = "h.duckdb"\nout = "run"\nlora_rank = 4\n')
    with pytest.raises(TrainConfigError, match=r"train.toml: unknown key\(s\) lora_rank"):
        TrainConfig.from_toml(toml)
