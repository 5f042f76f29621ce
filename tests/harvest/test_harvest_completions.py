"""The stored-answer contract: row, migrations, writer, reader, busy store, one owner each."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from stillroom.harvest import (
    CompletionRow,
    DatabaseBusyError,
    HarvestError,
    export_dataset,
    harvest_status,
    load_prompts,
    prompt_key,
    read_completions,
    render_assistant,
    write_completions,
)
from stillroom.harvest._completions import COLUMNS
from stillroom.harvest._migrations import MIGRATIONS
from stillroom.harvest._store import Store
from stillroom.train import TrainDataError, load_dataset

ROOT = Path(__file__).resolve().parents[2]


def answer(prompt_id: str, sample_index: int = 0, **fields) -> CompletionRow:
    base = CompletionRow(
        idempotency_key=f"{prompt_id}:{sample_index}",
        prompt_id=prompt_id,
        sample_index=sample_index,
        messages='[{"role": "user", "content": "Q ' + prompt_id + '?"}]',
        system_prompt=None,
        content=f"A {prompt_id}.{sample_index}",
        reasoning=None,
        top_logprobs='[{"token": "A", "logprob": -0.5, "bytes": [65], "top_logprobs": []}]',
        finish_reason="stop",
        prompt_tokens=7,
        completion_tokens=3,
        reasoning_tokens=None,
        teacher_model="served",
        requested_model="asked",
        policy_id="self-hosted",
        policy_hash="f" * 64,
        created_at=datetime(2026, 1, 1, 12, 0, sample_index),
        request_params='{"model":"asked"}',
        request_id="req",
        latency_ms=1.5,
        run_id="run-1",
        attempts=1,
    )
    return replace(base, **fields)


def test_table_and_view_have_exactly_the_rows_columns(tmp_path: Path) -> None:
    Store(tmp_path / "h.duckdb").close()
    con = duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True)
    table = [r[0] for r in con.execute("DESCRIBE answers").fetchall()]
    view = [r[0] for r in con.execute("DESCRIBE completions").fetchall()]
    versions = [
        v for (v,) in con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
    ]
    con.close()
    assert table == list(COLUMNS)
    assert sorted(view) == sorted(COLUMNS)
    assert versions == [v for v, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_write_then_read_round_trips_typed_rows(tmp_path: Path) -> None:
    rows = [answer("b", 1), answer("a", 0, finish_reason="length"), answer("b", 0)]
    db = write_completions(tmp_path / "h.duckdb", rows)
    assert read_completions(db) == [rows[1], rows[2], rows[0]]  # prompt_id, sample_index
    assert read_completions(db, {"finish_reason": ["stop"]}) == [rows[2], rows[0]]
    assert read_completions(db, {"prompt_id": []}) == []
    no_logprobs = read_completions(db, order_by=("created_at", "prompt_id"), with_logprobs=False)
    assert [r.top_logprobs for r in no_logprobs] == [None, None, None]
    with pytest.raises(HarvestError, match="no column 'prompt'"):
        read_completions(db, {"prompt": ["x"]})


def test_a_file_from_before_migration_2_reads_attempts_as_none(tmp_path: Path) -> None:
    db = write_completions(tmp_path / "h.duckdb", [answer("a")])
    con = duckdb.connect(str(db))
    con.execute("CREATE OR REPLACE VIEW completions AS SELECT * EXCLUDE (attempts) FROM answers")
    con.close()
    (row,) = read_completions(db)
    assert row == answer("a", attempts=None)


def test_not_a_harvest_is_said_so(tmp_path: Path) -> None:
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).execute("CREATE TABLE t (x INT)").close()
    with pytest.raises(HarvestError, match=r"other\.duckdb: no `completions` view"):
        read_completions(other)
    with pytest.raises(HarvestError, match=r"none\.duckdb: no such harvest database"):
        read_completions(tmp_path / "none.duckdb")


_HOLD = """
import sys, time
from stillroom.harvest._store import Store
store = Store(sys.argv[1])
print("holding", flush=True)
time.sleep(120)
"""


def test_a_store_held_by_another_process_is_reported_busy_naming_it(tmp_path: Path) -> None:
    db = write_completions(tmp_path / "h.duckdb", [answer("a")])
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(db)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        who = rf"in use by process {holder.pid} \(.*python.*-c.*\)"
        with pytest.raises(DatabaseBusyError, match=who):
            export_dataset(db, tmp_path / "x.jsonl")
        with pytest.raises(DatabaseBusyError, match=who):
            harvest_status(db)
        with pytest.raises(TrainDataError, match=who) as busy:
            load_dataset(db)
            assert isinstance(busy.value.__cause__, DatabaseBusyError)
        assert not (tmp_path / "x.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    assert len(read_completions(db)) == 1  # free again, nothing lost


def test_render_assistant_modes() -> None:
    assert render_assistant("A", "R", "think") == {
        "role": "assistant",
        "content": "<think>\nR\n</think>\n\nA",
    }
    assert render_assistant("A", "R", "field") == {
        "role": "assistant",
        "content": "A",
        "reasoning_content": "R",
    }
    assert render_assistant("A", None, "field")["reasoning_content"] is None
    assert render_assistant("A", None, "template") == {"role": "assistant", "content": "A"}
    assert render_assistant("A", "R", "template")["reasoning_content"] == "R"
    assert render_assistant("A", "R", "drop") == {"role": "assistant", "content": "A"}
    assert render_assistant("A", None, "think") == {"role": "assistant", "content": "A"}
    with pytest.raises(HarvestError, match="unknown reasoning mode 'inline'"):
        render_assistant("A", "R", "inline")


def test_a_prompt_without_an_id_is_named_by_its_prompt_key() -> None:
    (prompt,) = load_prompts([{"prompt": "What is 2+2?"}], system="Be brief.")
    assert prompt.id == prompt_key(prompt.messages)[:24]
    assert prompt_key([{"role": "user", "content": "é", "name": "x"}]) == prompt_key(
        [{"content": "é", "role": "user"}]
    )


def test_each_concept_has_one_definition() -> None:
    """`git grep` in code: one row, one think parser, one renderer, one prompt hash."""
    sources = {
        p: p.read_text(encoding="utf-8")
        for d in ("harvest", "train", "detect", "policies", "stillroom", "stillroom._core")
        for p in (ROOT / d).rglob("*.py")
    }
    patterns = {
        "row": r"^class CompletionRow\b",
        "split_think": r"^def split_think\(",
        "think renderer": r"<think>\\n\{",
        "prompt key": r"^def prompt_key\(",
    }
    for concept, pattern in patterns.items():
        found = [p for p, text in sources.items() if re.search(pattern, text, re.MULTILINE)]
        assert [p.relative_to(ROOT).as_posix() for p in found] == ["harvest/_completions.py"], (
            concept
        )
