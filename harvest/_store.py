"""The harvest DuckDB file: opening (one writer), migrations, batched writes, queries."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from stillroom.harvest._completions import CompletionRow, completions_arrow, connect
from stillroom.harvest._migrations import FAILURE_COLUMNS, MIGRATIONS
from stillroom.harvest.errors import HarvestError

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


def _sql_string(value: str) -> str:
    """``value`` as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class RunCounters:
    """A run's counters as of one write (totals), and the requests the day has not counted."""

    run_id: str
    requests: int
    completed: int
    failed: int
    rate_limited: int
    prompt_tokens: int
    completion_tokens: int
    day: date
    uncounted_requests: int

    def sql(self) -> list[str]:
        """The statements that store them (every value an int, a date or our run id)."""
        statements = [
            f"UPDATE runs SET requests = {int(self.requests)}, completed = {int(self.completed)}, "
            f"failed = {int(self.failed)}, rate_limited = {int(self.rate_limited)}, "
            f"prompt_tokens = {int(self.prompt_tokens)}, "
            f"completion_tokens = {int(self.completion_tokens)} "
            f"WHERE run_id = {_sql_string(self.run_id)}"
        ]
        if self.uncounted_requests:
            statements.append(count_requests_sql(self.day, self.uncounted_requests))
        return statements


def count_requests_sql(day: date, requests: int) -> str:
    """The statement adding ``requests`` sent on ``day`` to the daily count (``--rpd``)."""
    return (
        f"INSERT INTO daily_requests VALUES (DATE '{day.isoformat()}', {int(requests)}) "
        "ON CONFLICT (day) DO UPDATE SET requests = daily_requests.requests + excluded.requests"
    )


class Store:
    """The single writer of one harvest database."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = connect(self.path)
        # Batches are small: DuckDB's worker threads only contend with the event loop for
        # the cores (a flush takes ~2x longer with them on 2 cores under load).
        self.con.execute("SET threads = 1")
        self.migrate()
        self.failed_keys = self.keys("failures")  # answers replace these rows

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

    def length_stops(self, run_id: str) -> int:
        """How many of a run's answers stopped at ``--max-tokens``."""
        sql = "SELECT count(*) FROM answers WHERE run_id = ? AND finish = 'length'"
        return int(self.con.execute(sql, [run_id]).fetchone()[0])

    def spend_for_policy(
        self,
        policy_id: str,
        *,
        usd_per_mtok_in: float | None,
        usd_per_mtok_out: float | None,
        usd_per_mtok_cached_in: float | None = None,
    ) -> float:
        """What this policy's stored answers cost, each at the prices its run recorded (batch
        prices for batch runs), else at the prices given; cached input at the cached price
        where one was recorded or given."""
        row = self.con.execute(
            "SELECT coalesce(sum(((coalesce(a.prompt_tokens, 0) - cached) * p_in "
            "+ cached * coalesce(p_cached, p_in) + coalesce(a.completion_tokens, 0) * p_out) "
            "/ 1e6), 0) FROM (SELECT *, CASE WHEN p_cached IS NULL THEN 0 ELSE "
            "least(coalesce(cached_input_tokens, 0), coalesce(prompt_tokens, 0)) END AS cached "
            "FROM (SELECT *, coalesce(r.p_in_run, $price_in, 0) AS p_in, "
            "coalesce(r.p_out_run, $price_out, 0) AS p_out, CASE WHEN r.p_in_run IS NULL "
            "THEN $price_cached ELSE r.p_cached_run END AS p_cached "
            "FROM answers LEFT JOIN (SELECT run_id, "
            "TRY_CAST(json_extract(config, '$.limits.usd_per_mtok_in') AS DOUBLE) AS p_in_run, "
            "TRY_CAST(json_extract(config, '$.limits.usd_per_mtok_out') AS DOUBLE) AS p_out_run, "
            "TRY_CAST(json_extract(config, '$.limits.usd_per_mtok_cached_in') AS DOUBLE) "
            "AS p_cached_run FROM runs) r USING (run_id) WHERE policy_id = $policy_id)) a",
            {"price_in": usd_per_mtok_in, "price_out": usd_per_mtok_out,
             "price_cached": usd_per_mtok_cached_in, "policy_id": policy_id},
        ).fetchone()  # fmt: skip
        return float(row[0])

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
            "prompts_source, policy_id, policy_hash, policy, config, planned, pid, api) "
            "VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                record.get("api", "chat"),
            ],
        )
        keys, prompt_ids, samples = [], [], []
        for key, prompt_id, sample_index in tasks:
            keys.append(key)
            prompt_ids.append(prompt_id)
            samples.append(sample_index)
        if keys:
            # Lists as parameters, unnested by DuckDB: no pyarrow (and the pandas that
            # DuckDB's Arrow scan imports) before the first request goes out.
            con.execute(
                "INSERT OR IGNORE INTO tasks SELECT unnest($k), unnest($p), "
                "unnest($s)::INTEGER, $r, $t",
                {"k": keys, "p": prompt_ids, "s": samples, "r": run_id, "t": utcnow()},
            )

    def write_batch(
        self,
        answers: Sequence[CompletionRow],
        failures: Sequence[tuple],
        counters: RunCounters | None,
    ) -> None:
        """One transaction: answers, failures and, when given, the run's counters.

        DuckDB plans every statement for ~0.5-1 ms whatever its size, as long as inserting a
        batch of 30 answers; so the caller passes ``counters`` only now and then (see
        ``Engine``), and the whole transaction is one script.
        """
        con = self.con
        script = ["BEGIN"]
        if answers:
            con.register("batch", completions_arrow(answers))
            # Plain INSERT (OR IGNORE costs ~2x): keys are unique in a run's plan, done keys
            # are never planned again, and one process holds the file.
            script.append("INSERT INTO answers SELECT * FROM batch")
            if any(row.idempotency_key in self.failed_keys for row in answers):  # --retry-failed
                script.append(
                    "DELETE FROM failures WHERE idempotency_key IN (SELECT idempotency_key FROM batch)"
                )
        if failures:
            con.register("fbatch", _arrow(FAILURE_COLUMNS, failures, _FAILURE_TYPES))
            script.append(
                "DELETE FROM failures WHERE idempotency_key IN (SELECT idempotency_key FROM fbatch)"
            )
            script.append("INSERT INTO failures SELECT * FROM fbatch")
        if counters is not None:
            script.extend(counters.sql())
        script.append("COMMIT")
        try:
            con.execute(";\n".join(script))
            self.failed_keys.difference_update(row.idempotency_key for row in answers)
            self.failed_keys.update(row[0] for row in failures)
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # a failed statement may have ended it
                con.execute("ROLLBACK")
            raise
        finally:
            if answers:
                con.unregister("batch")
            if failures:
                con.unregister("fbatch")

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
