"""The split of existing adapters and the bytes of an export do not move (golden files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.golden.harvest_db import (
    HERE,
    REASONING_EXPORT,
    build,
    export_bytes,
    split_cases,
    split_of,
)


@pytest.fixture(scope="module")
def golden_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("golden") / "golden.duckdb")


@pytest.mark.parametrize("mode", REASONING_EXPORT)
def test_export_bytes_are_unchanged(golden_db: Path, tmp_path: Path, mode: str) -> None:
    assert export_bytes(golden_db, tmp_path, mode) == (HERE / f"export_{mode}.jsonl").read_bytes()


def test_train_eval_split_membership_is_unchanged(golden_db: Path) -> None:
    golden = json.loads((HERE / "split.json").read_text())
    assert [{k: g[k] for k in split_cases()[0]} for g in golden] == split_cases()
    for case, expected in zip(split_cases(), golden, strict=True):
        assert split_of(golden_db, case) == expected, case
