"""The split record train writes and eval reads: no silent defaults (no torch needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stillroom.train import TrainConfig, TrainConfigError
from stillroom.train._evaluate import EvalConfig, held_out
from stillroom.train._split import SplitRecord


def test_record_round_trips_and_eval_holds_out_what_training_held_out(capitals_db: Path, tmp_path):
    cfg = TrainConfig(db=capitals_db, out=tmp_path, eval_fraction=0.3, seed=4, reasoning="drop")
    record = SplitRecord.of(cfg)
    (tmp_path / "adapter").mkdir()
    (tmp_path / "train_config.json").write_text(
        json.dumps(cfg.to_dict() | {"split": record.to_dict()})
    )
    read, _ = SplitRecord.beside(tmp_path / "adapter")
    assert read == record
    trained = record.load(capitals_db)
    evaluated = held_out(EvalConfig(db=capitals_db, adapter=tmp_path, out=tmp_path / "r"), read)
    assert {e.prompt_id for e in evaluated} == {e.prompt_id for e in trained.eval}


def test_a_file_written_before_the_record_is_read_from_its_top_level(tmp_path: Path) -> None:
    cfg = TrainConfig(db="h.duckdb", out=tmp_path, seed=3, drop_system=True)
    (tmp_path / "train_config.json").write_text(json.dumps(cfg.to_dict()))
    assert SplitRecord.beside(tmp_path)[0] == SplitRecord.of(cfg)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("seed"), "lacks field 'seed'"),
        (lambda d: d.update(eval_fraction="0.1"), "'eval_fraction' = '0.1' is invalid"),
        (lambda d: d.update(finish_reasons="stop"), "'finish_reasons' = 'stop' is invalid"),
    ],
)
def test_a_missing_or_mistyped_field_is_an_error_naming_it(tmp_path: Path, change, message):
    split = SplitRecord.of(TrainConfig(db="h", out=tmp_path)).to_dict()
    change(split)
    (tmp_path / "train_config.json").write_text(json.dumps({"split": split}))
    with pytest.raises(TrainConfigError, match=rf"train_config.json: .*{message}"):
        SplitRecord.beside(tmp_path)


def test_without_a_file_the_defaults_are_train_configs(tmp_path: Path) -> None:
    cfg = TrainConfig(db="h", out="o")
    assert SplitRecord.beside(tmp_path)[0] == SplitRecord.of(cfg)
