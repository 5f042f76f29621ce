"""``curate run`` past memory: the harvest store streamed in chunks through the out-of-core
dedup, resumable chunk by chunk, with the decisions of the in-memory path.

The stages are those of :func:`~stillroom.curate._pipeline.curate_rows`, in its order, with
only one chunk of rows in Python at a time:

1. ``sketch`` (per chunk): each row's prompt leak check (a row-independent lookup), its
   prompt's and answer's MinHash sketches spilled (:class:`~._spill.SpilledDedup`), and its
   key, prompt key and leak written to a work DuckDB file;
2. ``prompts`` (once): prompt dedup over the first row of each prompt that does not leak;
3. ``verify`` (per chunk): the live rows verified, stored verdicts reused;
4. sampling, per prompt, from the work file in prompt order; answer dedup over the rows still
   live (per prompt: the prompt key is mixed into each answer's keys); the decisions written.

Each chunk of a per-chunk stage is recorded in the store's ``curation_chunks`` (migration 7)
after its rows are in the work files, so a run killed at any point and run again redoes only
the chunks it had not recorded (the rows of a half-written chunk are removed first). The work
files sit beside the store (``<db>.curate-<name>/``) and are removed when the set is complete.

With a SparkSession, the two dedup joins (exact groups, band-key self-join, verification) run
on Spark from the spilled sketches (:func:`~._spark_dedup.spill_on_spark`): the same SQL.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from stillroom.curate._chunk_log import ChunkLog, Progress, work_folder
from stillroom.curate._decontam import BenchmarkItem, Decontaminator
from stillroom.curate._drop import Drop
from stillroom.curate._pipeline import CurateConfig, CurationRow, _verify
from stillroom.curate._sketch import sketch_chunk
from stillroom.curate._spill import ScaleConfig, SpilledDedup

_STATE = (
    "CREATE TABLE IF NOT EXISTS state (row INTEGER, id VARCHAR, prompt_key VARCHAR, "
    "stage VARCHAR, reason VARCHAR, matched VARCHAR, score DOUBLE)"
)
_VERIFIED = (
    "CREATE TABLE IF NOT EXISTS verified (row INTEGER, passed BOOLEAN, reason VARCHAR, who VARCHAR)"
)
_DROP_COLUMNS = "(row INTEGER, stage VARCHAR, reason VARCHAR, matched VARCHAR, score DOUBLE)"


def _key_salt(prompt_keys: Sequence[str]) -> np.ndarray:
    """A uint64 per row from its prompt key (a sha256 hex): rows of one prompt share it."""
    return np.array([int(k[:16], 16) for k in prompt_keys], dtype=np.uint64)


class ScaledCuration:
    """One resumable curation of a store too large for memory; see the module docstring."""

    def __init__(self, con, folder: Path, config: CurateConfig, scale: ScaleConfig, log: ChunkLog):
        self.con, self.config, self.scale, self.log = con, config, scale, log
        import duckdb

        folder.mkdir(parents=True, exist_ok=True)
        self.work = duckdb.connect(str(folder / "work.duckdb"))
        self.work.execute(_STATE)
        self.work.execute(_VERIFIED)
        self.prompts = self.answers = None
        if config.prompt_dedup is not None:
            self.prompts = SpilledDedup(config.prompt_dedup, scale, "prompt", folder / "prompts")
        if config.answer_dedup is not None:
            self.answers = SpilledDedup(config.answer_dedup, scale, "answer", folder / "answers")
        self.spark = None  # a SparkSession: the dedup joins run there (``engine spark``)
        self.chunks_run = {"sketch": 0, "verify": 0}
        self.chunks_before = {"sketch": 0, "verify": 0}
        self.reused = self.new = 0

    def close(self) -> None:
        for spill in (self.prompts, self.answers):
            if spill is not None:
                spill.close()
        self.work.close()

    def _put(self, table: str, columns: dict[str, Any]) -> None:
        import pyarrow as pa

        self.work.register("chunk_in", pa.table(columns))
        self.work.execute(f"INSERT INTO {table} SELECT * FROM chunk_in")
        self.work.unregister("chunk_in")

    def _chunks(self, stage: str, rows_of) -> Iterator[tuple[int, int, list[CurationRow]]]:
        """``(chunk, first_row, rows)`` of ``stage`` not recorded yet, after removing what a
        killed run wrote past the last recorded chunk."""
        from stillroom.harvest import iter_completions

        chunk, start = self.log.done(stage)
        self.chunks_before[stage] = chunk
        self._truncate(stage, start)
        seen = 0
        for batch in iter_completions(self.con, self.scale.chunk):
            first, seen = seen, seen + len(batch)
            if seen <= start:
                continue
            rows = rows_of(batch[max(0, start - first) :])
            yield chunk, max(first, start), rows
            self.log.record(stage, chunk, max(first, start), len(rows))
            self.chunks_run[stage] += 1
            chunk += 1

    def _truncate(self, stage: str, start: int) -> None:
        if stage == "sketch":
            self.work.execute("DELETE FROM state WHERE row >= ?", [start])
            for spill in (self.prompts, self.answers):
                if spill is not None:
                    spill.truncate(start)
        else:
            self.work.execute("DELETE FROM verified WHERE row >= ?", [start])

    def sketch(self, rows_of, benchmarks: Sequence[BenchmarkItem]) -> None:
        import pyarrow as pa

        decon = Decontaminator(benchmarks, self.config.decontam) if benchmarks else None
        for _, first, rows in self._chunks("sketch", rows_of):
            numbers = np.arange(first, first + len(rows), dtype=np.int32)
            leaks = self._leaks(rows, decon)
            self._put("state", {
                "row": numbers, "id": [r.row_id for r in rows],
                "prompt_key": [r.prompt_key for r in rows],
                "stage": [d.stage if d else None for d in leaks],
                "reason": [d.reason if d else None for d in leaks],
                "matched": [d.matched if d else None for d in leaks],
                "score": pa.array([d.score if d else None for d in leaks], pa.float64()),
            })  # fmt: skip
            if self.prompts is not None:
                firsts = list({r.prompt_key: i for i, r in reversed(list(enumerate(rows)))
                               if leaks[i] is None}.values())[::-1]  # fmt: skip
                firsts.sort()
                sketch = sketch_chunk([rows[i].prompt for i in firsts], self.prompts.spec)
                self.prompts.add_sketch(
                    [rows[i].prompt_key for i in firsts], sketch, numbers[firsts]
                )
            if self.answers is not None:
                salt = None
                if self.config.answer_dedup_scope == "prompt":
                    salt = _key_salt([r.prompt_key for r in rows])
                sketch = sketch_chunk([r.answer for r in rows], self.answers.spec)
                self.answers.add_sketch([r.row_id for r in rows], sketch, numbers, salt)

    def _leaks(self, rows: list[CurationRow], decon: Decontaminator | None) -> list[Drop | None]:
        if decon is None:
            return [None] * len(rows)
        text = {r.prompt_key: r.prompt for r in rows}
        hits = dict(zip(text, decon.check(list(text.values())), strict=True))
        return [hits[r.prompt_key] for r in rows]

    def dedup_prompts(self) -> None:
        """Prompt dedup over each prompt's first row that does not leak (the in-memory
        path's distinct prompt keys, in first-occurrence order)."""
        self.work.execute(f"CREATE OR REPLACE TABLE pdrop {_DROP_COLUMNS}")
        self.work.execute("ALTER TABLE pdrop ADD COLUMN prompt_key VARCHAR")
        if self.prompts is None:
            return
        later = self.prompts.con.execute(
            "SELECT row FROM ids WHERE row NOT IN (SELECT min(row) FROM ids GROUP BY id)"
        ).fetchnumpy()["row"]
        self.prompts.discard(later)
        self._put_drops("pdrop", self._drops(self.prompts), with_key=True)

    def _put_drops(self, table: str, drops, with_key: bool = False) -> None:
        """Write ``(row, id, Drop)`` items to ``table``, 100,000 at a time."""
        import pyarrow as pa

        drops = iter(drops)
        while batch := list(islice(drops, 100_000)):
            columns = {
                "row": np.array([r for r, _, _ in batch], dtype=np.int32),
                "stage": [d.stage for *_, d in batch], "reason": [d.reason for *_, d in batch],
                "matched": [d.matched for *_, d in batch],
                "score": pa.array([d.score for *_, d in batch], pa.float64()),
            }  # fmt: skip
            if with_key:
                columns["prompt_key"] = [rid for _, rid, _ in batch]
            self._put(table, columns)

    def verify(self, rows_of, log_for) -> None:
        """Verify each chunk's live rows (stored verdicts reused through ``log_for(keys)``)."""
        if self.config.verifier is None:
            return
        for _, first, rows in self._chunks("verify", rows_of):
            dropped = self.work.execute(
                "SELECT s.stage IS NOT NULL OR p.prompt_key IS NOT NULL AS gone FROM state s "
                "LEFT JOIN (SELECT DISTINCT prompt_key FROM pdrop) p USING (prompt_key) "
                "WHERE s.row >= ? AND s.row < ? ORDER BY s.row",
                [first, first + len(rows)],
            ).fetchnumpy()["gone"]
            drops: dict[int, Drop | None] = dict.fromkeys(np.flatnonzero(dropped).tolist())
            log = log_for([r.row_id for r in rows])
            try:
                verdicts = _verify(rows, self.config, drops, log.lookup, log.record)
            finally:
                log.flush()
            self.reused, self.new = self.reused + log.reused, self.new + log.new
            found = [
                (i, v.passed, v.reason, f"{v.verifier}@{v.version}") for i, v in verdicts.items()
            ]
            found += [(i, None, d.reason, None) for i, d in drops.items() if d is not None]
            self._put("verified", {
                "row": np.array([first + f[0] for f in found], dtype=np.int32),
                "passed": [f[1] for f in found], "reason": [f[2] for f in found],
                "who": [f[3] for f in found],
            })  # fmt: skip

    def sample(self) -> None:
        """Rejection sampling per prompt over the live rows, read in prompt order."""
        self.work.execute(f"CREATE OR REPLACE TABLE sdrop {_DROP_COLUMNS}")
        self.work.execute(
            "CREATE OR REPLACE TABLE stats (prompt_key VARCHAR, samples INTEGER, passed INTEGER, "
            "pass_rate DOUBLE, pass_at VARCHAR)"
        )
        live = self.work.cursor().execute(
            "SELECT s.row, s.id, s.prompt_key, coalesce(v.passed, true), v.reason FROM state s "
            "LEFT JOIN verified v USING (row) WHERE s.stage IS NULL AND NOT (v.row IS NOT NULL "
            "AND v.passed IS NULL) AND s.prompt_key NOT IN (SELECT prompt_key FROM pdrop) "
            "ORDER BY s.prompt_key, s.row"
        )
        group: list[tuple] = []
        while records := live.fetchmany(100_000):
            for record in records:
                if group and record[2] != group[-1][2] and len(group) >= 50_000:
                    self._select(group)
                    group = []
                group.append(record)
        if group:
            self._select(group)

    def _select(self, group: list[tuple]) -> None:
        """:func:`select_samples` on whole prompts (each prompt's rows are independent)."""
        from stillroom.curate._sampling import select_samples

        chosen, stats = select_samples(
            [g[2] for g in group], [bool(g[3]) for g in group], self.config.sampling,
            [g[1] for g in group],
        )  # fmt: skip
        drops = []
        for pos, drop in sorted(chosen.items()):
            if drop.stage == "verify" and group[pos][4] is not None:
                drop = Drop("verify", group[pos][4] or "failed verification", None, None)
            drops.append((group[pos][0], group[pos][1], drop))
        self._put_drops("sdrop", drops)
        rows = list(stats.values())
        self._put("stats", {
            "prompt_key": [p.prompt_key for p in rows], "samples": [p.samples for p in rows],
            "passed": [p.passed for p in rows], "pass_rate": [p.pass_rate for p in rows],
            "pass_at": [json.dumps(p.pass_at) for p in rows],
        })  # fmt: skip

    def dedup_answers(self) -> None:
        """Answer dedup over the rows every earlier stage kept."""
        self.work.execute(f"CREATE OR REPLACE TABLE adrop {_DROP_COLUMNS}")
        if self.answers is None:
            return
        gone = self.work.execute(
            "SELECT row FROM state WHERE stage IS NOT NULL OR prompt_key IN "
            "(SELECT prompt_key FROM pdrop) UNION SELECT row FROM verified WHERE passed IS NULL "
            "OR NOT passed UNION SELECT row FROM sdrop"
        ).fetchnumpy()["row"]
        self.answers.discard(gone)
        self._put_drops("adrop", self._drops(self.answers))

    def _drops(self, spill: SpilledDedup):
        if self.spark is None:
            return spill.drops()
        from stillroom.curate._spark_dedup import spill_on_spark

        return spill_on_spark(self.spark, spill)

    def decisions(self) -> Any:
        """An Arrow reader of every row's decision, in row order (the in-memory path's
        precedence: a leak, a duplicate prompt, no reference, verification or sampling, a
        duplicate answer)."""

        def struct(t: str, stage: str = "", matched: str = "", score: str = "") -> str:
            return (f"{{'stage': {stage or t + '.stage'}, 'reason': {t}.reason, "
                    f"'matched': {matched or t + '.matched'}, 'score': {score or t + '.score'}}}")  # fmt: skip

        no_reference = struct("v", "'verify'", "NULL::VARCHAR", "NULL::DOUBLE")
        case = (
            f"WHEN s.stage IS NOT NULL THEN {struct('s')} "
            f"WHEN p.prompt_key IS NOT NULL THEN {struct('p')} "
            "WHEN v.row IS NOT NULL AND v.passed IS NULL THEN "
            f"{no_reference} "
            f"WHEN d.row IS NOT NULL THEN {struct('d')} WHEN a.row IS NOT NULL THEN {struct('a')}"
        )
        self.work.execute(
            f"CREATE OR REPLACE VIEW decided AS SELECT s.row, s.id, CASE {case} END AS dropped "
            "FROM state s LEFT JOIN pdrop p USING (prompt_key) "
            "LEFT JOIN verified v ON v.row = s.row LEFT JOIN sdrop d ON d.row = s.row "
            "LEFT JOIN adrop a ON a.row = s.row"
        )
        return (
            self.work.cursor()
            .sql(
                "SELECT id AS idempotency_key, dropped IS NULL AS keep, dropped.stage AS stage, "
                "coalesce(dropped.reason, 'kept') AS reason, dropped.matched AS matched, "
                "dropped.score AS score FROM decided ORDER BY row"
            )
            .to_arrow_reader(100_000)
        )

    def summary(self) -> dict[str, Any]:
        """:meth:`CurationResult.summary`'s counts, from the work file."""
        w = self.work
        by_stage = dict(w.execute(
            "SELECT coalesce(dropped.stage, 'kept'), count(*) FROM decided GROUP BY 1 ORDER BY 1"
        ).fetchall())  # fmt: skip
        rows, kept = w.execute(
            "SELECT count(*), count(*) FILTER (dropped IS NULL) FROM decided"
        ).fetchall()[0]
        verified, passed = w.execute(
            "SELECT count(*), count(*) FILTER (passed) FROM verified WHERE passed IS NOT NULL"
        ).fetchall()[0]
        who = [
            x
            for (x,) in w.execute(
                "SELECT DISTINCT who FROM verified WHERE who IS NOT NULL ORDER BY 1"
            ).fetchall()
        ]
        prompts, mean, none, every = w.execute(
            "SELECT count(*), avg(pass_rate), count(*) FILTER (pass_rate = 0), "
            "count(*) FILTER (pass_rate = 1) FROM stats"
        ).fetchall()[0]
        return {
            "rows": rows, "kept": kept, "by_stage": by_stage, "verifiers": who,
            "verified": verified, "verified_passed": passed, "prompts": prompts,
            "mean_pass_rate": mean, "prompts_all_fail": none, "prompts_all_pass": every,
        }  # fmt: skip

    def prompt_stats(self) -> Any:
        return (
            self.work.cursor()
            .sql("SELECT prompt_key, samples, passed, pass_rate, pass_at FROM stats")
            .to_arrow_reader(100_000)
        )


def run_scaled(
    con,
    db: Path,
    name: str,
    config: CurateConfig,
    scale: ScaleConfig,
    benchmarks: Sequence[BenchmarkItem],
    rows_of,
    log_for,
    fresh: bool,
    progress: Progress | None = None,
    spark: Any = None,
) -> tuple:
    """Every stage of a scaled curation (resuming unless ``fresh``): ``(ScaledCuration,
    summary)``, the decisions still to be read from it."""
    folder, log = work_folder(db, name, scale), ChunkLog(con, name, progress)
    if fresh:
        log.clear()
        shutil.rmtree(folder, ignore_errors=True)
    cur = ScaledCuration(con, folder, config, scale, log)
    cur.spark = spark
    cur.sketch(rows_of, benchmarks)
    cur.dedup_prompts()
    cur.verify(rows_of, log_for)
    cur.sample()
    cur.dedup_answers()
    cur.decisions()
    return cur, cur.summary()


def finish_scaled(con, db: Path, name: str, cur: ScaledCuration, scale: ScaleConfig) -> None:
    """The work folder and the chunk records go once the decisions are in the store."""
    cur.close()
    discard_scaled(con, db, name, scale)


def discard_scaled(con, db: Path, name: str, scale: ScaleConfig) -> None:
    ChunkLog(con, name).clear()
    shutil.rmtree(work_folder(db, name, scale), ignore_errors=True)
