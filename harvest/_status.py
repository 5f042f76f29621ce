"""``harvest_status``: done / failed / pending, tokens, 429s and throughput of a database."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stillroom.harvest._batch_store import spend_summary
from stillroom.harvest._completions import connect
from stillroom.harvest._store import utcnow


@dataclass
class HarvestStatus:
    """A snapshot of one harvest database (``to_dict()`` is what ``--json`` prints)."""

    db: str
    planned: int
    done: int
    failed: int
    pending: int
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    requests: int
    rate_limited: int
    requests_today: int
    runs: int
    teachers: dict[str, int] = field(default_factory=dict)
    policies: dict[str, int] = field(default_factory=dict)
    failure_reasons: dict[str, int] = field(default_factory=dict)
    last_run: dict[str, Any] | None = None

    last_busy_run: dict[str, Any] | None = None
    spend_usd: float | None = None  # every answer at its run's prices (batch runs: batch)
    est_spend_usd: float | None = None  # worst case reserved for submitted batches
    batches: dict[str, int] = field(default_factory=dict)  # batch files by state
    # answers cut at --max-tokens (finish == "length"), in all and by run id (every run)
    length_stops: int = 0
    length_stops_by_run: dict[str, int] = field(default_factory=dict)
    reasoning_kinds: dict[str, int] = field(default_factory=dict)  # full / summary / none

    @property
    def throughput(self) -> float | None:
        """Completions a second of the last run that completed anything."""
        run = self.last_busy_run
        if not run or not run.get("elapsed_s"):
            return None
        return run["completed"] / run["elapsed_s"]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["throughput_per_s"] = round(self.throughput, 2) if self.throughput else None
        return data


def _one(con, sql: str, params: list | None = None) -> Any:
    return con.execute(sql, params or []).fetchone()[0]


def harvest_status(db_path: Path | str) -> HarvestStatus:
    """Read a database without changing it (it must not be open by a running harvest)."""
    con = connect(Path(db_path), read_only=True)
    try:
        done = _one(con, "SELECT count(*) FROM answers")
        failed = _one(con, "SELECT count(*) FROM failures")
        pending = _one(
            con,
            "SELECT count(*) FROM tasks t WHERE NOT EXISTS (SELECT 1 FROM answers a "
            "WHERE a.idempotency_key = t.idempotency_key) AND NOT EXISTS (SELECT 1 FROM "
            "failures f WHERE f.idempotency_key = t.idempotency_key)",
        )
        tokens = con.execute(
            "SELECT coalesce(sum(prompt_tokens),0), coalesce(sum(completion_tokens),0), "
            "coalesce(sum(reasoning_tokens),0) FROM answers"
        ).fetchone()
        runs = con.execute(
            "SELECT count(*), coalesce(sum(requests),0), coalesce(sum(rate_limited),0) FROM runs"
        ).fetchone()
        runs_sql = (
            "SELECT run_id, status, stopped_reason, message, started_at, finished_at, "
            "completed, failed, requests, rate_limited, elapsed_s, learned_limits "
            "FROM runs {} ORDER BY started_at DESC LIMIT 1"
        )
        last = con.execute(runs_sql.format("")).fetchone()
        busy = con.execute(runs_sql.format("WHERE completed > 0")).fetchone()
        return HarvestStatus(
            db=str(db_path),
            planned=_one(con, "SELECT count(*) FROM tasks"),
            done=done,
            failed=failed,
            pending=pending,
            prompt_tokens=int(tokens[0]),
            completion_tokens=int(tokens[1]),
            reasoning_tokens=int(tokens[2]),
            runs=int(runs[0]),
            requests=int(runs[1]),
            rate_limited=int(runs[2]),
            requests_today=int(
                _one(
                    con,
                    "SELECT coalesce(sum(requests), 0) FROM daily_requests WHERE day = ?",
                    [utcnow().date()],
                )
            ),
            teachers=_counts(con, "SELECT teacher_model, count(*) FROM answers GROUP BY 1"),
            policies=_counts(con, "SELECT policy_id, count(*) FROM answers GROUP BY 1"),
            failure_reasons=_counts(
                con,
                "SELECT reason, count(*) FROM failures GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
            ),
            last_run=_last_run(last),
            last_busy_run=_last_run(busy),
            **spend_summary(con),
            **_truncation(con),
        )
    finally:
        con.close()


def _truncation(con) -> dict[str, Any]:
    """Length stops per run, and the reasoning kinds (a file from before migration 5,
    opened read-only, has no ``finish``: its raw ``finish_reason`` says)."""
    columns = {
        name
        for (name,) in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'answers'"
        ).fetchall()
    }
    is_length = "a.finish = 'length'" if "finish" in columns else "a.finish_reason = 'length'"
    by_run = _counts(
        con,
        f"SELECT r.run_id, count(a.idempotency_key) FROM runs r LEFT JOIN answers a "
        f"ON a.run_id = r.run_id AND {is_length} GROUP BY 1 ORDER BY min(r.started_at)",
    )
    kinds = (
        _counts(con, "SELECT coalesce(reasoning_kind, 'none'), count(*) FROM answers GROUP BY 1")
        if "reasoning_kind" in columns
        else {}
    )
    total = _one(con, f"SELECT count(*) FROM answers a WHERE {is_length}")
    return {"length_stops": int(total), "length_stops_by_run": by_run, "reasoning_kinds": kinds}


def _counts(con, sql: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in con.execute(sql).fetchall()}


def _last_run(row: tuple | None) -> dict[str, Any] | None:
    if row is None:
        return None
    keys = (
        "run_id", "status", "stopped_reason", "message", "started_at", "finished_at",
        "completed", "failed", "requests", "rate_limited", "elapsed_s", "learned_limits",
    )  # fmt: skip
    out = dict(zip(keys, row, strict=True))
    for key in ("started_at", "finished_at"):
        out[key] = out[key].isoformat() if out[key] else None
    out["learned_limits"] = json.loads(out["learned_limits"]) if out["learned_limits"] else None
    return out
