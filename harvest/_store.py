"""The harvest DuckDB file: opening (one writer), migrations, batched writes, queries."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from harvest._migrations import ANSWER_COLUMNS, FAILURE_COLUMNS, MIGRATIONS
from harvest.errors import DatabaseBusyError, HarvestError

_ANSWER_TYPES = {
    "sample_index": "int32",
    "prompt_tokens": "int32",
    "completion_tokens": "int32",
    "reasoning_tokens": "int32",
    "attempts": "int32",
    "latency_ms": "float64",
    "created_at": "ts",
}
_FAILURE_TYPES = {
    "sample_index": "int32",
    "status": "int32",
    "attempts": "int32",
    "failed_at": "ts",
}


def utcnow() -> datetime:
    """Now in UTC, naive (DuckDB TIMESTAMP has no zone; every stored time is UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _arrow(columns: Sequence[str], rows: Sequence[tuple], types: dict[str, str]):
    import pyarrow as pa

    kinds = {"int32": pa.int32(), "float64": pa.float64(), "ts": pa.timestamp("us")}
    arrays = {}
    for i, name in enumerate(columns):
        values = [row[i] for row in rows]
        arrays[name] = pa.array(values, type=kinds.get(types.get(name, ""), pa.string()))
    return pa.table(arrays)


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the file; a lock held by another process becomes :class:`DatabaseBusyError`."""
    if read_only and not path.exists():
        raise HarvestError(f"{path}: no such harvest database")
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" not in text.lower():
            raise HarvestError(f"{path}: cannot open the database ({text})") from None
        pid = re.search(r"PID (\d+)", text)
        who = f"process {pid.group(1)}" if pid else "another process"
        raise DatabaseBusyError(
            f"{path} is in use by {who} (a harvest run holds it open for writing); "
            "wait for it to finish or use another --db file"
        ) from None


class Store:
    """The single writer of one harvest database."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = connect(self.path)
        self.migrate()

    def close(self) -> None:
        self.con.close()

    def migrate(self) -> None:
        con = self.con
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)"
        )
        done = {v for (v,) in con.execute("SELECT version FROM schema_migrations").fetchall()}
        newest = max(v for v, _ in MIGRATIONS)
        if done and max(done) > newest:
            raise HarvestError(
                f"{self.path} was written by a newer harvest (schema {max(done)} > {newest})"
            )
        for version, sql in MIGRATIONS:
            if version in done:
                continue
            con.execute("BEGIN")
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?)", [version, utcnow()])
            con.execute("COMMIT")

    # -- reads -------------------------------------------------------------------------
    def keys(self, table: str) -> set[str]:
        return {k for (k,) in self.con.execute(f"SELECT idempotency_key FROM {table}").fetchall()}

    def requests_on(self, day: date) -> int:
        row = self.con.execute(
            "SELECT requests FROM daily_requests WHERE day = ?", [day]
        ).fetchone()
        return int(row[0]) if row else 0

    def tokens_for_policy(self, policy_id: str) -> tuple[int, int]:
        row = self.con.execute(
            "SELECT coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0) "
            "FROM answers WHERE policy_id = ?",
            [policy_id],
        ).fetchone()
        return int(row[0]), int(row[1])

    # -- writes ------------------------------------------------------------------------
    def start_run(self, run_id: str, record: dict[str, Any], tasks: Iterable[tuple]) -> None:
        con = self.con
        con.execute("BEGIN")
        try:
            self._insert_run(run_id, record, tasks)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def _insert_run(self, run_id: str, record: dict[str, Any], tasks: Iterable[tuple]) -> None:
        con = self.con
        con.execute(
            "INSERT INTO runs (run_id, started_at, status, base_url, requested_model, "
            "prompts_source, policy_id, policy_hash, policy, config, planned, pid) "
            "VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                utcnow(),
                record["base_url"],
                record["model"],
                record["prompts_source"],
                record["policy_id"],
                record["policy_hash"],
                json.dumps(record["policy"]),
                json.dumps(record["config"]),
                record["planned"],
                os.getpid(),
            ],
        )
        rows = [(k, p, s, run_id, utcnow()) for k, p, s in tasks]
        if rows:
            import pyarrow as pa

            table = pa.table(
                {
                    "k": [r[0] for r in rows],
                    "p": [r[1] for r in rows],
                    "s": pa.array([r[2] for r in rows], pa.int32()),
                    "r": [run_id] * len(rows),
                    "t": pa.array([r[4] for r in rows], pa.timestamp("us")),
                }
            )
            con.register("new_tasks", table)
            con.execute("INSERT OR IGNORE INTO tasks SELECT * FROM new_tasks")
            con.unregister("new_tasks")

    def write_batch(
        self,
        answers: Sequence[tuple],
        failures: Sequence[tuple],
        *,
        run_id: str,
        requests: int,
        rate_limited: int,
        day: date,
    ) -> None:
        """One transaction: answers, failures, the day's request count, the run's counters."""
        con = self.con
        con.execute("BEGIN")
        try:
            if answers:
                con.register("batch", _arrow(ANSWER_COLUMNS, answers, _ANSWER_TYPES))
                con.execute("INSERT OR IGNORE INTO answers SELECT * FROM batch")
                con.execute(
                    "DELETE FROM failures WHERE idempotency_key IN (SELECT idempotency_key FROM batch)"
                )
            if failures:
                con.register("fbatch", _arrow(FAILURE_COLUMNS, failures, _FAILURE_TYPES))
                con.execute(
                    "DELETE FROM failures WHERE idempotency_key IN (SELECT idempotency_key FROM fbatch)"
                )
                con.execute("INSERT INTO failures SELECT * FROM fbatch")
            if requests:
                con.execute(
                    "INSERT INTO daily_requests VALUES (?, ?) ON CONFLICT (day) "
                    "DO UPDATE SET requests = daily_requests.requests + excluded.requests",
                    [day, requests],
                )
            tokens_in = sum(a[9] or 0 for a in answers)
            tokens_out = sum(a[10] or 0 for a in answers)
            con.execute(
                "UPDATE runs SET requests = requests + ?, completed = completed + ?, "
                "failed = failed + ?, rate_limited = rate_limited + ?, "
                "prompt_tokens = prompt_tokens + ?, completion_tokens = completion_tokens + ? "
                "WHERE run_id = ?",
                [
                    requests,
                    len(answers),
                    len(failures),
                    rate_limited,
                    tokens_in,
                    tokens_out,
                    run_id,
                ],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            for name in ("batch", "fbatch"):
                with contextlib.suppress(Exception):  # not registered in this batch
                    con.unregister(name)

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        stopped_reason: str | None,
        message: str | None,
        elapsed_s: float,
        learned: dict[str, Any],
    ) -> None:
        self.con.execute(
            "UPDATE runs SET finished_at = ?, status = ?, stopped_reason = ?, message = ?, "
            "elapsed_s = ?, learned_limits = ? WHERE run_id = ?",
            [utcnow(), status, stopped_reason, message, elapsed_s, json.dumps(learned), run_id],
        )
