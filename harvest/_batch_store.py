"""Batch state in the harvest database: files of work, their batches, and which keys they hold.

Tables ``batch_files`` and ``batch_items`` come from migration 2 (``stillroom.harvest._migrations``).
A file of work moves through states, each stored before the step that follows it, so a
process killed anywhere resumes from the last stored one:

``prepared`` (its keys are assigned; nothing sent) -> ``uploaded`` (``input_file_id``)
-> ``creating`` (the intent: the metadata about to be sent with ``POST /v1/batches``)
-> ``submitted`` (``batch_id``; ``batch_status`` follows the provider's) -> ``ingested``
(every result stored). Message Batches have no upload: ``prepared`` -> ``creating``
(``metadata`` holds the intent: ``intent_at`` and the request count,
``stillroom.harvest._batch_adopt``), and each key's ``custom_id`` is stored in
``batch_items`` (migration 6). ``batch-file`` files are ``written`` instead of uploaded. A
``prepared`` file whose requests this plan no longer makes is ``abandoned``.

A file's ``file_key`` is ``<sha256>.<n>``: the n-th file with that content (a batch that
expired having answered nothing is submitted again with the same bytes). A key belongs to
at most one *live* file (any state but ``ingested`` / ``abandoned``), so
no work is ever submitted twice; keys a finished file did not answer are planned again.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb

from stillroom.harvest._batch_files import BatchInput
from stillroom.harvest._store import count_requests_sql, utcnow

LIVE = ("prepared", "uploaded", "creating", "submitted", "written")
_COLUMNS = (
    "file_key", "sha256", "run_id", "mode", "requests", "state", "input_file_id", "batch_id",
    "batch_status", "output_file_id", "error_file_id", "request_counts", "metadata", "est_usd",
    "spent_usd", "path", "message",
)  # fmt: skip


@dataclass
class BatchFileRow:
    """One row of ``batch_files``."""

    file_key: str
    sha256: str
    run_id: str
    mode: str
    requests: int
    state: str
    input_file_id: str | None
    batch_id: str | None
    batch_status: str | None
    output_file_id: str | None
    error_file_id: str | None
    request_counts: dict[str, int] | None
    metadata: dict[str, str] | None
    est_usd: float | None
    spent_usd: float | None
    path: str | None
    message: str | None


class BatchStore:
    """Reads and writes ``batch_files``/``batch_items`` on the run's one connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def files(self, *, live_only: bool = True) -> list[BatchFileRow]:
        where = f"WHERE state IN {LIVE}" if live_only else ""
        rows = self.con.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM batch_files {where} ORDER BY rowid"
        ).fetchall()
        out = []
        for row in rows:
            data = dict(zip(_COLUMNS, row, strict=True))
            for key in ("request_counts", "metadata"):
                data[key] = json.loads(data[key]) if data[key] else None
            out.append(BatchFileRow(**data))
        return out

    def keys_of(self, file_key: str) -> set[str]:
        rows = self.con.execute(
            "SELECT idempotency_key FROM batch_items WHERE file_key = ?", [file_key]
        ).fetchall()
        return {k for (k,) in rows}

    def keys_by_custom_id(self, file_key: str) -> dict[str, str]:
        """custom_id -> idempotency key, for one file's results."""
        rows = self.con.execute(
            "SELECT coalesce(custom_id, idempotency_key), idempotency_key FROM batch_items "
            "WHERE file_key = ?",
            [file_key],
        ).fetchall()
        return dict(rows)

    def batch_ids(self) -> set[str]:
        """Every batch id this database has recorded (any file, any state)."""
        rows = self.con.execute(
            "SELECT batch_id FROM batch_files WHERE batch_id IS NOT NULL"
        ).fetchall()
        return {b for (b,) in rows}

    def live_keys(self) -> set[str]:
        rows = self.con.execute(
            "SELECT i.idempotency_key FROM batch_items i JOIN batch_files f USING (file_key) "
            f"WHERE f.state IN {LIVE}"
        ).fetchall()
        return {k for (k,) in rows}

    def submissions(self) -> Counter[str]:
        """How many files each key has been in (its batch attempts)."""
        rows = self.con.execute(
            "SELECT idempotency_key, count(*) FROM batch_items i JOIN batch_files f "
            "USING (file_key) WHERE f.state <> 'abandoned' GROUP BY 1"
        ).fetchall()
        return Counter(dict(rows))

    def prepare(
        self,
        files: Sequence[BatchInput],
        *,
        run_id: str,
        mode: str,
        est_usd: Sequence[float],
        paths: Sequence[str | None] | None = None,
        state: str = "prepared",
    ) -> list[str]:
        """Assign the files' keys in one transaction; returns each file's ``file_key``."""
        import pyarrow as pa

        con, now = self.con, utcnow()
        seen = Counter(sha for (sha,) in con.execute("SELECT sha256 FROM batch_files").fetchall())
        paths = paths or [None] * len(files)
        file_keys = []
        con.execute("BEGIN")
        try:
            for file, est, path in zip(files, est_usd, paths, strict=True):
                file_key = f"{file.sha256}.{seen[file.sha256]}"
                seen[file.sha256] += 1
                file_keys.append(file_key)
                con.execute(
                    "INSERT INTO batch_files (file_key, sha256, run_id, mode, requests, bytes, "
                    "state, est_usd, path, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [file_key, file.sha256, run_id, mode, file.requests, len(file.content),
                     state, est, path, now, now],
                )  # fmt: skip
                ids = file.custom_ids or file.keys
                table = pa.table({"k": file.keys, "f": [file_key] * file.requests, "c": ids})
                con.register("new_items", table)
                con.execute(
                    "INSERT INTO batch_items (idempotency_key, file_key, custom_id) "
                    "SELECT k, f, c FROM new_items"
                )
                con.unregister("new_items")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        return file_keys

    def update(self, file_key: str, **fields: Any) -> None:
        """Set columns of one file (dicts stored as JSON) and its ``updated_at``."""
        for key in ("request_counts", "metadata"):
            if key in fields and fields[key] is not None:
                fields[key] = json.dumps(fields[key])
        names = ", ".join(f"{name} = ?" for name in fields)
        self.con.execute(
            f"UPDATE batch_files SET {names}, updated_at = ? WHERE file_key = ?",
            [*fields.values(), utcnow(), file_key],
        )

    def mark_uploaded(self, file_key: str, input_file_id: str, *, day: date) -> None:
        """An uploaded file, its requests added to ``day``'s count (``--rpd``) in the same
        transaction: every file that reaches ``POST /v1/batches`` is counted exactly once."""
        self._counted(file_key, day, state="uploaded", input_file_id=input_file_id)

    def mark_creating(self, file_key: str, intent: dict[str, Any], *, day: date) -> None:
        """A file about to be created with no upload first (Message Batches): the intent
        stored and its requests counted for ``day``, in one transaction."""
        self._counted(file_key, day, state="creating", metadata=intent)

    def _counted(self, file_key: str, day: date, **fields: Any) -> None:
        requests = self.con.execute(
            "SELECT requests FROM batch_files WHERE file_key = ?", [file_key]
        ).fetchone()[0]
        self.con.execute("BEGIN")
        try:
            self.update(file_key, **fields)
            self.con.execute(count_requests_sql(day, requests))
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def record_batch(self, file_key: str, batch: dict[str, Any], **fields: Any) -> None:
        """Store what the provider said about a file's batch."""
        self.update(
            file_key,
            batch_id=batch["id"],
            batch_status=batch["status"],
            output_file_id=batch.get("output_file_id"),
            error_file_id=batch.get("error_file_id"),
            request_counts=batch.get("request_counts"),
            **fields,
        )

    def cancellable_ids(self) -> list[str]:
        """As :func:`submitted_batch_ids`, on this store's open connection."""
        return [b for (b,) in self.con.execute(_CANCELLABLE).fetchall()]

    def set_run_spend(
        self, run_id: str, *, mode: str, est_usd: float | None, spent_usd: float | None
    ) -> None:
        self.con.execute(
            "UPDATE runs SET mode = ?, est_spend_usd = ?, spend_usd = ? WHERE run_id = ?",
            [mode, est_usd, spent_usd, run_id],
        )


def spend_summary(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """For ``harvest status``: actual spend (every answer at its run's prices: batch prices
    for batch runs), the worst case reserved for submitted batches, and files by state."""
    has_cached = con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'answers' "
        "AND column_name = 'cached_input_tokens'"
    ).fetchone()[0]  # a file from before migration 5, opened read-only, has none
    cached = (
        "CASE WHEN p_cached IS NULL THEN 0 ELSE "
        "least(coalesce(a.cached_input_tokens, 0), coalesce(a.prompt_tokens, 0)) END"
        if has_cached
        else "0"
    )
    actual = con.execute(
        f"SELECT sum(((coalesce(a.prompt_tokens, 0) - {cached}) * p_in + {cached} "
        f"* coalesce(p_cached, p_in) + coalesce(a.completion_tokens, 0) * p_out) / 1e6), "
        "count(p_in) FROM answers a JOIN (SELECT run_id, "
        "TRY_CAST(json_extract(config, '$.limits.usd_per_mtok_in') AS DOUBLE) AS p_in, "
        "TRY_CAST(json_extract(config, '$.limits.usd_per_mtok_out') AS DOUBLE) AS p_out, "
        "TRY_CAST(json_extract(config, '$.limits.usd_per_mtok_cached_in') AS DOUBLE) AS p_cached "
        "FROM runs) r USING (run_id)"
    ).fetchone()
    out: dict[str, Any] = {"spend_usd": actual[0] if actual[1] else None}
    has_batches = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'batch_files'"
    ).fetchone()[0]
    if not has_batches:
        return {**out, "est_spend_usd": None, "batches": {}}
    est = con.execute(
        "SELECT sum(est_usd) FROM batch_files WHERE mode = 'batch' AND est_usd > 0 "
        "AND (input_file_id IS NOT NULL OR metadata IS NOT NULL)"  # reserved: sent or about to be
    ).fetchone()[0]
    states = con.execute(
        "SELECT state || coalesce(' ' || batch_status, ''), count(*) FROM batch_files "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return {**out, "est_spend_usd": est, "batches": {k: int(v) for k, v in states}}


# batches that may still run and are known to be this database's (an adopted batch is
# not, until its results confirm it: cancelling a look-alike would cancel someone else's)
_CANCELLABLE = (
    "SELECT batch_id FROM batch_files WHERE state = 'submitted' AND batch_id IS NOT NULL "
    "AND json_extract(metadata, '$.adopted') IS NULL ORDER BY rowid"
)


def submitted_batch_ids(db: Any) -> list[str]:
    """The ids of a database's batches that may still run (read-only; for ``harvest
    cancel`` of batches that carry no metadata). A database a run holds cannot be read."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(_CANCELLABLE).fetchall()
    finally:
        con.close()
    return [b for (b,) in rows]
