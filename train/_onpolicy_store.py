"""The on-policy run's DuckDB store: samples (written before they are scored) and scores.

Numbered migrations (append only) in ``schema_migrations``, as harvest's store does. A rerun
reads back the samples of an unfinished step instead of sampling again, and every score by
its idempotency key instead of asking again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stillroom.train.errors import TrainDataError

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE onpolicy_samples (
            kind VARCHAR NOT NULL,          -- train | heldout-base | heldout-student
            step INTEGER NOT NULL,
            prompt VARCHAR NOT NULL,        -- prompt id
            k INTEGER NOT NULL,             -- sample index of that prompt
            prompt_ids INTEGER[] NOT NULL,  -- the student's rendered prompt
            token_ids INTEGER[] NOT NULL,   -- the sampled completion
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (kind, step, prompt, k)
        );
        CREATE TABLE onpolicy_scores (
            idempotency_key VARCHAR PRIMARY KEY,  -- sha256 over (teacher, rendered text)
            teacher VARCHAR NOT NULL,
            logprobs DOUBLE[] NOT NULL,           -- per completion token; NULL = unaligned
            mismatches INTEGER NOT NULL,
            prompt_tokens INTEGER NOT NULL,       -- the teacher's usage.prompt_tokens
            created_at TIMESTAMP NOT NULL
        );
        CREATE TABLE onpolicy_requests (
            sent_at TIMESTAMP NOT NULL,
            teacher VARCHAR NOT NULL,
            purpose VARCHAR NOT NULL,             -- probe | score | heldout
            requests INTEGER NOT NULL,
            prompt_tokens INTEGER NOT NULL
        );
        CREATE TABLE onpolicy_runs (
            started_at TIMESTAMP NOT NULL,
            policy JSON,
            config JSON
        );
        """,
    ),
]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class OnPolicyStore:
    """One open store; ``close()`` it (or use it as a context manager)."""

    def __init__(self, path: Path) -> None:
        import duckdb

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path))
        except duckdb.Error as exc:
            raise TrainDataError(f"{self.path}: cannot open the on-policy store ({exc})") from exc
        self.migrate()

    def __enter__(self) -> OnPolicyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def migrate(self) -> None:
        con = self.con
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at TIMESTAMP)"
        )
        done = {v for (v,) in con.execute("SELECT version FROM schema_migrations").fetchall()}
        newest = max(v for v, _ in MIGRATIONS)
        if done and max(done) > newest:
            raise TrainDataError(f"{self.path}: written by a newer stillroom (schema {max(done)})")
        for version, sql in MIGRATIONS:
            if version not in done:
                con.execute("BEGIN")
                con.execute(sql)
                con.execute("INSERT INTO schema_migrations VALUES (?, ?)", [version, _now()])
                con.execute("COMMIT")

    def record_run(self, policy: dict[str, Any], config: dict[str, Any]) -> None:
        self.con.execute(
            "INSERT INTO onpolicy_runs VALUES (?, ?, ?)",
            [_now(), json.dumps(policy), json.dumps(config, default=str)],
        )

    # -- samples -----------------------------------------------------------------------
    def samples(self, kind: str, step: int) -> list[tuple[str, int, list[int], list[int]]]:
        """(prompt, k, prompt_ids, token_ids) of one step, in prompt order then k."""
        rows = self.con.execute(
            "SELECT prompt, k, prompt_ids, token_ids FROM onpolicy_samples "
            "WHERE kind = ? AND step = ? ORDER BY created_at, prompt, k",
            [kind, step],
        ).fetchall()
        return [(p, k, list(a), list(b)) for p, k, a, b in rows]

    def add_samples(
        self, kind: str, step: int, rows: Sequence[tuple[str, int, list[int], list[int]]]
    ) -> None:
        """All samples of one step in one transaction (before any of them is scored)."""
        now = _now()
        self.con.execute("BEGIN")
        self.con.executemany(
            "INSERT INTO onpolicy_samples VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(kind, step, p, k, a, b, now) for p, k, a, b in rows],
        )
        self.con.execute("COMMIT")

    # -- scores ------------------------------------------------------------------------
    def score(self, key: str) -> dict[str, Any] | None:
        row = self.con.execute(
            "SELECT logprobs, mismatches, prompt_tokens FROM onpolicy_scores "
            "WHERE idempotency_key = ?",
            [key],
        ).fetchone()
        if row is None:
            return None
        return {"logprobs": list(row[0]), "mismatches": row[1], "prompt_tokens": row[2]}

    def add_score(self, key: str, teacher: str, score: dict[str, Any]) -> None:
        self.con.execute(
            "INSERT OR IGNORE INTO onpolicy_scores VALUES (?, ?, ?, ?, ?, ?)",
            [key, teacher, score["logprobs"], score["mismatches"], score["prompt_tokens"], _now()],
        )

    def add_requests(self, teacher: str, purpose: str, requests: int, tokens: int) -> None:
        if requests:
            self.con.execute(
                "INSERT INTO onpolicy_requests VALUES (?, ?, ?, ?, ?)",
                [_now(), teacher, purpose, requests, tokens],
            )

    def requests_on(self, day: Any) -> int:
        """Requests sent to any teacher on this UTC day (the daily cap survives reruns)."""
        row = self.con.execute(
            "SELECT coalesce(sum(requests), 0) FROM onpolicy_requests WHERE CAST(sent_at AS DATE) = ?",
            [day],
        ).fetchone()
        return int(row[0])

    def totals(self, purpose: str | None = None) -> tuple[int, int]:
        """(requests of any purpose, prompt tokens of scoring requests) over every run;
        ``purpose``: only ``score`` (training samples) or ``heldout`` requests."""
        where = "purpose <> 'probe'" if purpose is None else "purpose = ?"
        row = self.con.execute(
            "SELECT coalesce(sum(requests), 0), "
            f"coalesce(sum(prompt_tokens) FILTER (WHERE {where}), 0) FROM onpolicy_requests",
            [] if purpose is None else [purpose],
        ).fetchone()
        return int(row[0]), int(row[1])

    def last_config(self) -> dict[str, Any] | None:
        row = self.con.execute(
            "SELECT config FROM onpolicy_runs ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
        return json.loads(row[0]) if row else None
