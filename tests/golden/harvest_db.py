"""A deterministic harvest database for the golden files (``tests/golden/*.jsonl|json``).

The golden files were written by the code as it was *before* issue 10 moved the answer row,
the reader, ``split_think``, the prompt key and the reasoning renderer into one module: the
train/eval split of existing adapters and the bytes of an export must not move. Rows go in
with plain SQL (column names spelled out) so the builder does not depend on the writer it
checks. Rewrite the files only for an intended change: ``python -m tests.golden.harvest_db``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REASONING_EXPORT = ("field", "think", "drop")
SYSTEMS = ("You are terse.", None, "Réponds en français.", "")
USERS = (
    "What is the capital of France?",
    "¿Cuál es la capital de España?",
    "東京はどこですか？",
    "Count to three.",
    "Say hello.",
    "What is 2+2?",
    "Name a colour.",
    "Define entropy in one line.",
    "Why is the sky blue?",
    "List three fruits.",
    "Translate 'cat' to German.",
    "What sound does a dog make?",
)


def _row(i: int, s: int) -> dict[str, Any]:
    user = USERS[i % len(USERS)]
    system = SYSTEMS[i % len(SYSTEMS)]
    messages = ([{"role": "system", "content": system}] if system is not None else []) + [
        {"role": "user", "content": user}
    ]
    content = f"Answer {i}.{s} to «{user}»"
    reasoning = None
    if i % 3 == 0:
        reasoning = f"  thinking about {i} step {s}\n  then answering  "
    if i % 7 == 2:
        content = f"<think>\ninline thought {i}\n</think>\n\n{content}"
    if i % 11 == 5:
        content = "   "  # empty once stripped
    if i % 9 == 4 and s == 1:
        content = f"Answer {i}.0 to «{user}»"  # a duplicate of sample 0
    finish = ("stop", "stop", "length", "stop", None)[(i + s) % 5]
    logprobs = None
    if i % 4 == 1:
        logprobs = [
            {"token": "A", "logprob": -0.1, "bytes": [65], "top_logprobs": [
                {"token": "A", "logprob": -0.1, "bytes": [65]},
                {"token": "É", "logprob": -2.5, "bytes": [195, 137]},
            ]},
        ]  # fmt: skip
    created = datetime(2026, 1, 2, 3, 4, 5) + timedelta(seconds=(i * 7 + s) % 23)
    return {
        "idempotency_key": hashlib.sha256(f"{i}:{s}".encode()).hexdigest(),
        "prompt_id": f"p{i:02d}" if i % 10 != 9 else f"alias-of-p{i - 1:02d}",
        "sample_index": s,
        "messages": json.dumps(messages, ensure_ascii=False),
        "system_prompt": system,
        "content": content,
        "reasoning": reasoning,
        "top_logprobs": json.dumps(logprobs) if logprobs is not None else None,
        "finish_reason": finish,
        "prompt_tokens": 10 + i,
        "completion_tokens": 5 + s,
        "reasoning_tokens": 3 if reasoning else None,
        "teacher_model": "teacher-a" if i % 2 else "teacher-b",
        "requested_model": "teacher",
        "policy_id": "self-hosted",
        "policy_hash": "ab" * 32,
        "created_at": created,
        "request_params": json.dumps({"max_tokens": 64, "model": "teacher", "temperature": 0.7}),
        "request_id": f"req-{i}-{s}",
        "latency_ms": 12.5 + i,
        "run_id": "run-golden",
        "attempts": 1,
    }


def rows() -> list[dict[str, Any]]:
    return [_row(i, s) for i in range(30) for s in range(1 + i % 3)]


def build(path: Path) -> Path:
    """Create ``path`` with harvest's migrations and the golden rows (and one run record)."""
    import duckdb

    from stillroom.harvest._store import Store

    Store(path).close()  # the schema, through harvest's numbered migrations
    con = duckdb.connect(str(path))
    try:
        for r in rows():
            names = ", ".join(r)
            marks = ", ".join("?" for _ in r)
            con.execute(f"INSERT INTO answers ({names}) VALUES ({marks})", list(r.values()))
        con.execute(
            "INSERT INTO runs (run_id, started_at, status, base_url, requested_model, "
            "policy_id, policy_hash) VALUES ('run-golden', TIMESTAMP '2026-01-02 03:00:00', "
            "'finished', 'http://127.0.0.1:8080/v1', 'teacher', 'self-hosted', ?)",
            ["ab" * 32],
        )
    finally:
        con.close()
    return path


def split_cases() -> list[dict[str, Any]]:
    cases = []
    for reasoning in ("think", "drop", "template"):
        for drop_system in (False, True):
            for seed in (0, 1, 2):
                for eval_fraction in (0.1, 0.3):
                    cases.append(
                        {"reasoning": reasoning, "drop_system": drop_system, "seed": seed,
                         "eval_fraction": eval_fraction, "finish_reasons": ["stop"]}
                    )  # fmt: skip
    cases.append({"reasoning": "think", "drop_system": False, "seed": 0, "eval_fraction": 0.2,
                  "finish_reasons": []})  # fmt: skip
    return cases


def split_of(db: Path, case: dict[str, Any]) -> dict[str, Any]:
    """Membership (prompt_id, sample_index) of each side, and a digest of the records."""
    from stillroom.train import load_dataset

    data = load_dataset(
        db,
        reasoning=case["reasoning"],
        drop_system=case["drop_system"],
        finish_reasons=tuple(case["finish_reasons"]),
        eval_fraction=case["eval_fraction"],
        seed=case["seed"],
        with_logprobs=True,
    )

    def side(examples) -> dict[str, Any]:
        records = [e.to_record(with_logprobs=True) for e in examples]
        blob = json.dumps(records, sort_keys=True, ensure_ascii=False).encode()
        return {
            "members": [[e.prompt_id, e.sample_index] for e in examples],
            "records_sha256": hashlib.sha256(blob).hexdigest(),
        }

    return {**case, "counts": data.counts, "train": side(data.train), "eval": side(data.eval)}


def export_bytes(db: Path, tmp: Path, reasoning: str) -> bytes:
    from stillroom.harvest import export_dataset

    out = tmp / f"export-{reasoning}.jsonl"
    export_dataset(db, out, reasoning=reasoning)
    return out.read_bytes()


def main() -> None:  # pragma: no cover - rewrites the golden files
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        db = build(Path(tmp) / "golden.duckdb")
        for mode in REASONING_EXPORT:
            (HERE / f"export_{mode}.jsonl").write_bytes(export_bytes(db, Path(tmp), mode))
        splits = [split_of(db, case) for case in split_cases()]
        (HERE / "split.json").write_text(json.dumps(splits, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":  # pragma: no cover
    main()
