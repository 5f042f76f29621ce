"""Curation as one stage on the harvest store: a named curated set, resumable.

:func:`curate_store` reads the answers through the harvest contract
(``stillroom.harvest.read_completions``), curates them (:func:`stillroom.curate.curate_rows`) and writes, in the
tables of migration 4:

- ``curation_verdicts``: every verdict as soon as it is made (flushed every ``flush_every``),
  keyed by answer, verifier name, version, options and reference, so a curation killed half
  way, or a second curation with the same verifier, does not verify those answers again;
- ``curation_decisions``: a keep or drop (stage, reason, the row or benchmark item matched)
  for every answer of the store;
- ``curation_prompts``: per prompt (its key), samples, passed, pass rate and pass@k;
- ``curations``: the set's name, config, benchmark files, summary and a fingerprint of the
  store when it ran, so that training on it can tell when the harvest has grown since.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stillroom.curate._decontam import BenchmarkItem
from stillroom.curate._pipeline import CurateConfig, CurationRow, curate_rows
from stillroom.curate._spill import ScaleConfig
from stillroom.curate._verdict import Verdict
from stillroom.curate.errors import CurateError


@dataclass(frozen=True)
class StoreCuration:
    """What :func:`curate_store` did."""

    name: str
    rows: int
    kept: int
    summary: dict[str, Any]
    store_fingerprint: str
    verdicts_reused: int
    verdicts_new: int
    path: str = "memory"  # or "disk": streamed in chunks (curate._store_scale)
    # disk: per stage, (chunks a killed run had finished, chunks this run did)
    chunks: dict[str, tuple[int, int]] = field(default_factory=dict)


def _digest(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def store_fingerprint(con: Any) -> tuple[int, str]:
    """``(answers, digest)``: the count and a hash of every answer's key and content."""
    count, digest = con.execute(
        "SELECT count(*), md5(coalesce(string_agg(idempotency_key || ':' || md5(content), ',' "
        "ORDER BY idempotency_key), '')) FROM answers"
    ).fetchall()[0]
    return int(count), str(digest)


def _curation_rows(references: Mapping[str, Any] | None):
    """A function turning harvest rows into :class:`CurationRow` s."""
    from stillroom.harvest import prompt_key

    def convert(batch: Sequence[Any]) -> list[CurationRow]:
        out = []
        for row in batch:
            chat = row.chat()
            users = [m.get("content", "") for m in chat if m.get("role") == "user"]
            reference = references.get(str(row.prompt_id)) if references is not None else None
            out.append(
                CurationRow(
                    row.idempotency_key,
                    prompt_key(chat),
                    users[-1] if users else "",
                    row.content or "",
                    reference,
                )
            )
        return out

    return convert


class _VerdictLog:
    """Stored verdicts for one verifier identity; new ones buffered and flushed in batches."""

    def __init__(
        self,
        con: Any,
        verifier: str,
        version: str,
        options: dict,
        flush_every: int,
        keys: Sequence[str] | None = None,
    ):
        """``keys``: read the stored verdicts of these answers only (one chunk's)."""
        self.con, self.verifier, self.version = con, verifier, version
        self.options_hash = _digest(options)
        self.flush_every = flush_every
        self.pending: list[tuple] = []
        self.reused = self.new = 0
        sql = (
            "SELECT idempotency_key, reference_hash, passed, reason, extracted "
            "FROM curation_verdicts WHERE verifier = ? AND version = ? AND options_hash = ?"
        )
        reader = con.cursor()  # a connection of its own: the chunk's keys registered there
        if keys is not None:
            import pyarrow as pa

            reader.register("chunk_keys", pa.table({"k": pa.array(list(keys), pa.string())}))
            sql += " AND idempotency_key IN (SELECT k FROM chunk_keys)"
        self.stored = {
            (key, ref): Verdict(bool(ok), verifier, version, reason or "", extracted)
            for key, ref, ok, reason, extracted in reader.execute(
                sql, [verifier, version, self.options_hash]
            ).fetchall()
        }
        reader.close()

    def lookup(self, row: CurationRow) -> Verdict | None:
        found = self.stored.get((row.row_id, _digest(str(row.reference))))
        self.reused += found is not None
        return found

    def record(self, row: CurationRow, verdict: Verdict) -> None:
        from stillroom.harvest._store import utcnow

        self.new += 1
        self.pending.append(
            (row.row_id, verdict.verifier, verdict.version, self.options_hash,
             _digest(str(row.reference)), verdict.passed, verdict.reason, verdict.extracted, utcnow())
        )  # fmt: skip
        if len(self.pending) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        self.con.execute("BEGIN")
        self.con.executemany(
            "INSERT OR REPLACE INTO curation_verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self.pending,
        )
        self.con.execute("COMMIT")
        self.pending = []


def curate_store(
    db: str | Path,
    name: str,
    *,
    references: Mapping[str, Any] | None = None,
    config: CurateConfig | None = None,
    benchmarks: Sequence[BenchmarkItem] = (),
    benchmark_files: Sequence[str] = (),
    flush_every: int = 32,
    scale: ScaleConfig | None = None,
    progress: Any = None,
    spark: Any = None,
) -> StoreCuration:
    """Curate every answer of the harvest ``db`` into the curated set ``name`` (re-running
    the same name replaces its decisions and reuses its stored verdicts).

    ``scale`` chooses the path by the answers' size (:meth:`ScaleConfig.choose`): in memory,
    or streamed in chunks through the out-of-core dedup (``curate._store_scale``), where a
    killed run resumes from its last finished chunk; ``progress(stage, chunk, first_row, rows)``
    is called as each chunk is recorded. ``spark`` (a SparkSession) runs the disk path's
    dedup joins on Spark, and implies the disk path."""
    from stillroom.curate._store_scale import discard_scaled, finish_scaled, run_scaled
    from stillroom.harvest import iter_completions
    from stillroom.harvest._completions import connect
    from stillroom.harvest._store import Store, utcnow

    config, scale = config or CurateConfig(), scale or ScaleConfig()
    if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise CurateError(f"curated set name {name!r}: use letters, digits, '-', '_' or '.'")
    db = Path(db)
    judge_db = config.verifier_options.get("db") if config.verifier == "judge" else None
    if judge_db is not None and Path(judge_db).resolve() == db.resolve():
        raise CurateError(f"{db}: the judge's replies need a file of their own (not the harvest)")
    probe = connect(db, read_only=True)  # a missing or foreign file says so, and is not migrated
    try:
        first = next(iter_completions(probe, 1), None)
    finally:
        probe.close()
    if first is None:
        raise CurateError(f"{db}: no answers to curate (nothing harvested yet)")
    store = Store(db)  # the single writer; applies the curation migrations where missing
    con = store.con
    try:
        count, digest = store_fingerprint(con)
        text = con.execute("SELECT sum(strlen(content)) FROM answers").fetchall()[0][0] or 0
        path = "disk" if spark is not None else scale.choose(int(text))
        stamp = [json.dumps(config.as_dict(), default=str), json.dumps(list(benchmark_files))]
        before = con.execute(
            "SELECT status, config, benchmarks, store_fingerprint FROM curations WHERE name = ?",
            [name],
        ).fetchall()
        resume = bool(before) and list(before[0]) == ["running", *stamp, digest]
        con.execute(
            "INSERT OR REPLACE INTO curations (name, status, started_at, config, benchmarks, "
            "store_rows, store_fingerprint) VALUES (?, 'running', ?, ?, ?, ?, ?)",
            [name, utcnow(), *stamp, count, digest],
        )
        log_for = _verdict_logs(con, config, flush_every)
        rows_of = _curation_rows(references)
        if path == "disk":
            cur, summary = run_scaled(
                con,
                db,
                name,
                config,
                scale,
                benchmarks,
                rows_of,
                log_for,
                not resume,
                progress,
                spark,
            )
            summary = {**summary, "benchmarks": list(benchmark_files), "name": name}
            _write_decisions(con, name, cur.decisions(), cur.prompt_stats(), summary)
            finish_scaled(con, db, name, cur, scale)
            reused, new = cur.reused, cur.new
            chunks = {s: (cur.chunks_before[s], cur.chunks_run[s]) for s in cur.chunks_run}
        else:
            discard_scaled(con, db, name, scale)  # a killed disk-path run's work, if any
            rows = [r for batch in iter_completions(con, 100_000) for r in rows_of(batch)]
            log = log_for(None)
            try:
                result = curate_rows(
                    rows,
                    config,
                    benchmarks,
                    cached_verdict=log.lookup if log else None,
                    on_verdict=log.record if log else None,
                )
            finally:
                if log is not None:
                    log.flush()
            rates = [p.pass_rate for p in result.prompt_stats.values()]
            summary = result.summary() | {
                "benchmarks": list(benchmark_files),
                "name": name,
                "mean_pass_rate": sum(rates) / len(rates) if rates else None,
                "prompts_all_fail": sum(r == 0 for r in rates),
                "prompts_all_pass": sum(r == 1 for r in rates),
            }
            decisions, prompts = _tables(name, result)
            _write_decisions(con, name, decisions, prompts, summary)
            reused, new = (log.reused, log.new) if log else (0, 0)
            chunks = {}
    finally:
        store.close()
    return StoreCuration(
        name, summary["rows"], summary["kept"], summary, digest, reused, new, path, chunks
    )


def _verdict_logs(con: Any, config: CurateConfig, flush_every: int):
    """``log_for(keys)``: a :class:`_VerdictLog` for the run's verifier (None without one)."""
    from stillroom.curate._registry import get_verifier

    if config.verifier is None:
        return lambda keys: None
    verifier = get_verifier(config.verifier, **config.verifier_options)
    # what makes verdicts the same: the options, or the verifier's own say (a judge's
    # endpoint and prompt, not its rate limits or acceptance)
    identity = getattr(verifier, "identity", lambda: config.verifier_options)()
    return lambda keys: _VerdictLog(
        con, verifier.name, verifier.version, identity, flush_every, keys
    )


def _tables(name: str, result: Any) -> tuple[Any, Any]:
    """An in-memory result's decisions and prompt stats as Arrow tables."""
    import pyarrow as pa

    ds = result.decisions
    decisions = pa.table(
        {
            "idempotency_key": [d.row_id for d in ds],
            "keep": [d.keep for d in ds],
            "stage": [d.drop.stage if d.drop else None for d in ds],
            "reason": [d.drop.reason if d.drop else "kept" for d in ds],
            "matched": [d.drop.matched if d.drop else None for d in ds],
            "score": pa.array([d.drop.score if d.drop else None for d in ds], pa.float64()),
        }
    )
    stats = list(result.prompt_stats.values())
    prompts = pa.table(
        {
            "prompt_key": [p.prompt_key for p in stats],
            "samples": pa.array([p.samples for p in stats], pa.int32()),
            "passed": pa.array([p.passed for p in stats], pa.int32()),
            "pass_rate": pa.array([p.pass_rate for p in stats], pa.float64()),
            "pass_at": [json.dumps(p.pass_at) for p in stats],
        }
    )
    return decisions, prompts


def _write_decisions(con: Any, name: str, decisions: Any, prompts: Any, summary: dict) -> None:
    """Replace set ``name``'s decisions and prompt stats (Arrow tables or readers) and mark it
    complete, in one transaction."""
    from stillroom.harvest._store import utcnow

    con.execute("BEGIN")
    con.execute("DELETE FROM curation_decisions WHERE curation = ?", [name])
    con.execute("DELETE FROM curation_prompts WHERE curation = ?", [name])
    for table, source in (("curation_decisions", decisions), ("curation_prompts", prompts)):
        con.register("new_rows", source)
        con.execute(f"INSERT INTO {table} SELECT ?, * FROM new_rows", [name])
        con.unregister("new_rows")
    con.execute(
        "UPDATE curations SET status = 'complete', finished_at = ?, summary = ? WHERE name = ?",
        [utcnow(), json.dumps(summary), name],
    )
    con.execute("COMMIT")


@dataclass(frozen=True)
class CuratedSet:
    """A finished curated set, as train reads it."""

    name: str
    kept_keys: frozenset[str]
    summary: dict[str, Any]
    config: dict[str, Any]
    benchmarks: list[str]
    store_rows: int
    store_fingerprint: str
    grown_by: int | None  # answers added since curation (None: the store changed otherwise)
    changed: bool

    def card(self) -> dict[str, Any]:
        """What the dataset and model cards record."""
        return {
            "name": self.name,
            "summary": self.summary,
            "benchmarks": self.benchmarks,
            "verifier": self.config.get("verifier"),
            "thresholds": {
                "prompt_dedup": (self.config.get("prompt_dedup") or {}).get("near_threshold"),
                "answer_dedup": (self.config.get("answer_dedup") or {}).get("near_threshold"),
                "decontam_ngram": (self.config.get("decontam") or {}).get("ngram"),
                "decontam_minhash": (self.config.get("decontam") or {}).get("near_threshold"),
            },
            "sampling": self.config.get("sampling"),
            "store_rows": self.store_rows,
            "store_fingerprint": self.store_fingerprint,
            "store_changed_since": self.changed,
        }


def read_curated(db: str | Path, name: str) -> CuratedSet:
    """The kept answers of curated set ``name`` and whether the store changed since."""
    from stillroom.harvest._completions import connect

    db = Path(db)
    con = connect(db, read_only=True)
    try:
        try:
            found = con.execute(
                "SELECT status, config, benchmarks, store_rows, store_fingerprint, summary "
                "FROM curations WHERE name = ?",
                [name],
            ).fetchone()
        except Exception as exc:  # no curations table: never curated
            raise CurateError(f"{db}: no curated sets (run `stillroom curate run` first)") from exc
        if found is None:
            names = [
                n for (n,) in con.execute("SELECT name FROM curations ORDER BY name").fetchall()
            ]
            raise CurateError(f"{db}: no curated set {name!r} (have: {', '.join(names) or 'none'})")
        status, config, benchmarks, rows, digest, summary = found
        if status != "complete":
            raise CurateError(f"{db}: curated set {name!r} is {status} (re-run it to finish)")
        kept = frozenset(
            k for (k,) in con.execute(
                "SELECT idempotency_key FROM curation_decisions WHERE curation = ? AND keep", [name]
            ).fetchall()
        )  # fmt: skip
        count, now = store_fingerprint(con)
    finally:
        con.close()
    changed = now != digest
    grown = count - int(rows) if changed and count > int(rows) else None
    return CuratedSet(
        name,
        kept,
        json.loads(summary),
        json.loads(config),
        json.loads(benchmarks),
        int(rows),
        digest,
        grown,
        changed,
    )
