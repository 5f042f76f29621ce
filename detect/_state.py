"""Incremental daily scans: a DuckDB state store of per-day partials, scored on a window.

``scan(paths, state="STATE.duckdb", window_days=30)`` computes the per-(account, UTC day)
partials of the rows it ingests (:mod:`stillroom.detect._partials`, the same tables a one-shot scan
computes and merges), folds them into the state store, then merges the window (the latest
``window_days`` days in the store) into the features, without re-reading old logs.

* **Files are folded once, keyed by content.**  ``ingest`` hashes each input file
  (SHA-256 of its bytes) and reads only those whose hash ``folded_files`` lacks, so
  refolding a file (or a copy of it) is a no-op.
* **Fold = recompute each day the new rows touch, from all of its rows.**  Gap moments and
  bins, sync buckets and the sample of a day cannot be added up from parts of its rows, so
  the store keeps the row-level inputs (``recent_rows``) of its latest days: from the latest
  day less ``late_days`` on.  A day that gets late rows is recomputed from its kept rows and
  the new ones; its partials, its bookkeeping and its kept rows are replaced in one
  transaction with the recording of the files' hashes, the aging-out of days that left the
  window and the dropping of rows older than ``late_days``.  A crash mid-fold rolls back to
  the store before it.  Rows for a day the store folded but keeps no rows of any more are
  refused (:class:`~stillroom.detect.errors.LateRowsError`, naming the file and the day)
  before anything changes; rows for a day it never saw are folded as a new day.
* **What the store holds.**  Partials: counts, sums, gap moments and histograms, hourly
  counts, value multiplicities (hashes where values are only compared) and each account-day's
  first ``sample_per_account`` prompts in the sampling order.  Rows only for the latest
  ``late_days`` + 1 days, without the columns no partial reads, and with the prompt only
  where it is in its day's sample.
* **``flagged_at``** is kept per account in ``flags``: the earliest time any scan saw its
  campaign's evidence cross the line, so it survives the evidence's days aging out.
* **Migrations** are numbered; ``schema_migrations`` records the ones applied.  ``3`` turns
  an old store's day rows (migrations 1-2) into partials and drops the rows; ``4`` adds
  ``recent_rows`` and ``folded_files`` (an older store's days keep no rows: late rows for
  them are refused); ``5`` adds the sentence keys to kept rows and their token sums to
  ``part_totals`` (NULL where folded before).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from stillroom.detect._fold_files import FileFold, ingest_new_files
from stillroom.detect._ingest import IngestStats, create_traffic_table
from stillroom.detect._partials import PARTIALS, SAMPLE_ONLY_COLUMN, UNREAD_COLUMNS, partial_sql
from stillroom.detect._report import iso
from stillroom.detect.errors import ConfigError, LateRowsError


def _m1_day_partitions(con: duckdb.DuckDBPyConnection, store: StateStore) -> None:
    # the row schema is the ingest module's own ``traffic`` table, one owner
    con.execute(
        "CREATE TABLE state.day_rows AS SELECT CAST(NULL AS DATE) AS day, * FROM traffic WHERE false"
    )
    con.execute(
        "CREATE TABLE state.days (day DATE PRIMARY KEY, rows BIGINT, files VARCHAR, "
        "columns_present VARCHAR, folded_at TIMESTAMP)"
    )


def _m2_flagged_at(con: duckdb.DuckDBPyConnection, store: StateStore) -> None:
    con.execute(
        "CREATE TABLE state.flags (account_id VARCHAR PRIMARY KEY, flagged_at TIMESTAMP, "
        "campaign_accounts INTEGER)"
    )


def _m3_partials(con: duckdb.DuckDBPyConnection, store: StateStore) -> None:
    """Per-day partials in place of rows: an old store's kept rows are turned into partials
    (by the same SQL a scan runs on its log), then the rows are dropped."""
    store.check_row_schema(con)
    rows = "(SELECT * EXCLUDE (day) FROM state.day_rows)"
    for name in PARTIALS:
        sql = partial_sql(name, sample_cap=store.sample_cap, bucket_s=store.bucket_s, source=rows)
        con.execute(f"CREATE TABLE state.{name} AS {sql}")
    con.execute("DROP TABLE state.day_rows")
    con.execute("CREATE TABLE state.partial_params (sample_cap INTEGER, bucket_s INTEGER)")
    con.execute(
        "INSERT INTO state.partial_params VALUES (?, ?)", [store.sample_cap, store.bucket_s]
    )


def _m4_recent_rows(con: duckdb.DuckDBPyConnection, store: StateStore) -> None:
    """The latest days' row-level inputs (late rows recompute a day) and the files folded."""
    con.execute(
        "CREATE TABLE state.recent_rows AS SELECT CAST(NULL AS DATE) AS day, * FROM traffic "
        "WHERE false"
    )
    con.execute(
        "CREATE TABLE state.folded_files (sha256 VARCHAR PRIMARY KEY, file VARCHAR, "
        "rows BIGINT, days VARCHAR, folded_at TIMESTAMP)"
    )


def _m5_segment_keys(con: duckdb.DuckDBPyConnection, store: StateStore) -> None:
    """Ingest's first / last sentence keys on the kept rows and their token sums on the
    day partials: NULL where kept or folded before (the prompt is gone), so an old day
    reads no segments."""
    for table, names, kind in (
        ("recent_rows", ("seg_head", "seg_tail"), "BIGINT"),
        ("part_totals", ("seg_completion_tokens", "seg_prompt_tokens"), "HUGEINT"),
    ):
        kept = set(con.execute(f"SELECT * FROM state.{table} LIMIT 0").df().columns)
        for name in names:  # a store made by this version has them from migrations 3-4
            if name not in kept:
                con.execute(f"ALTER TABLE state.{table} ADD COLUMN {name} {kind}")


MIGRATIONS: tuple[tuple[int, Callable[[duckdb.DuckDBPyConnection, StateStore], None]], ...] = (
    (1, _m1_day_partitions),
    (2, _m2_flagged_at),
    (3, _m3_partials),
    (4, _m4_recent_rows),
    (5, _m5_segment_keys),
)


@dataclass
class StateStore:
    """A state file and the window scored from it (the latest ``window_days`` days).

    ``late_days``: rows up to this many days older than the store's latest day may still
    arrive; the rows of those days are kept so a late row's day is recomputed exactly."""

    path: Path
    window_days: int = 30
    late_days: int = 2
    sample_cap: int = 24
    bucket_s: int = 60
    pending: list[FileFold] = field(default_factory=list, init=False, repr=False)
    already_folded: list[str] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if int(self.window_days) < 1:
            raise ConfigError(f"window_days must be >= 1, got {self.window_days}")
        if int(self.late_days) < 0:
            raise ConfigError(f"late_days must be >= 0, got {self.late_days}")

    def attach(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        sample_cap: int | None = None,
        bucket_s: int | None = None,
    ) -> None:
        """Attach the store as ``state`` and apply the migrations it lacks, in order.

        ``sample_cap`` / ``bucket_s`` are the scan's ``sample_per_account`` and
        ``sync_bucket_s``; a store folded with others is refused (its partials would not mix)."""
        self.sample_cap = int(sample_cap or self.sample_cap)
        self.bucket_s = int(bucket_s or self.bucket_s)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con.execute(f"ATTACH '{_sql_path(self.path)}' AS state")
        except duckdb.Error as exc:
            raise ConfigError(f"{self.path}: cannot open as a DuckDB state store: {exc}") from exc
        con.execute(
            "CREATE TABLE IF NOT EXISTS state.schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at TIMESTAMP)"
        )
        done = {r[0] for r in con.execute("SELECT version FROM state.schema_migrations").fetchall()}
        for version, migrate in MIGRATIONS:
            if version in done:
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                migrate(con, self)
                con.execute("INSERT INTO state.schema_migrations VALUES (?, now())", [version])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                con.execute("DETACH state")
                raise
        self._check_params(con)

    def ingest(
        self,
        con: duckdb.DuckDBPyConnection,
        paths: list[str | Path],
        column_map: list[str] | dict[str, str] | None = None,
        *,
        sample_cap: int | None = None,
        bucket_s: int | None = None,
    ) -> IngestStats:
        """Attach the store; read into ``traffic`` the files under ``paths`` it has not folded
        (by content hash), then the kept rows of the days they touch, so ``traffic`` holds
        every row of each day the fold recomputes.  Late rows for a day it keeps no rows of
        raise :class:`LateRowsError` (nothing changed).  Returns the new files' stats."""
        create_traffic_table(con)  # the migrations read its row schema
        self.attach(con, sample_cap=sample_cap, bucket_s=bucket_s)
        self._check_schemas(con, ("recent_rows",))
        folded = {r[0] for r in con.execute("SELECT sha256 FROM state.folded_files").fetchall()}
        stats, self.pending, self.already_folded = ingest_new_files(con, paths, column_map, folded)
        self._refuse_late_rows(con)
        con.execute(
            "INSERT INTO traffic BY NAME SELECT * EXCLUDE (day) FROM state.recent_rows "
            f"WHERE day IN ({_NEW_DAYS.format(table='traffic')})"
        )
        return stats

    def _refuse_late_rows(self, con: duckdb.DuckDBPyConnection) -> None:
        folded = dict(con.execute("SELECT day, files FROM state.days").fetchall())
        kept = {r[0] for r in con.execute("SELECT DISTINCT day FROM state.recent_rows").fetchall()}
        for fold in self.pending:
            for day, rows in fold.days.items():
                if day in folded and day not in kept:
                    latest = max(folded)
                    raise LateRowsError(
                        f"{fold.path}: {rows:,} row(s) fall on {day}, a day the state store "
                        f"{self.path} folded before (from {folded[day] or 'an older version'}) "
                        f"and keeps no rows of: it keeps the rows of its latest day ({latest}) "
                        f"and the {self.late_days} before it (--late-days). Adding them to the "
                        "day's partials would not be exact, so nothing was folded. Fold a day's "
                        "late rows within --late-days of it (raise it for late logs), or "
                        "rescan the window's logs into a new state file"
                    )

    def check_row_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        """An old store's kept rows must have ingest's columns to be turned into partials."""
        kept = con.execute("SELECT * EXCLUDE (day) FROM state.day_rows LIMIT 0").df().columns
        now = con.execute("SELECT * FROM traffic LIMIT 0").df().columns
        if list(kept) != list(now):
            missing, extra = sorted(set(now) - set(kept)), sorted(set(kept) - set(now))
            raise ConfigError(
                f"{self.path}: its kept day rows have another row schema than this version's "
                f"ingest (missing {missing}, extra {extra}), so migration 3 cannot turn them "
                "into partials; nothing was changed. Rescan the window's logs into a new "
                "state file, or add a numbered migration in detect/_state.py"
            )

    def _check_params(self, con: duckdb.DuckDBPyConnection) -> None:
        kept = con.execute("SELECT sample_cap, bucket_s FROM state.partial_params").fetchone()
        if tuple(kept) != (self.sample_cap, self.bucket_s):
            con.execute("DETACH state")
            raise ConfigError(
                f"{self.path}: its partials were folded with sample_per_account={kept[0]}, "
                f"sync_bucket_s={kept[1]}; this scan asks for {self.sample_cap}, "
                f"{self.bucket_s}. Use the same settings or a new state file"
            )

    def _check_schemas(self, con: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> None:
        """The store's tables ``names`` have this version's columns (``recent_rows``:
        ``traffic``'s after ``day``)."""
        for name in names:
            kept_table, now_table = f"state.{name}", "traffic" if name == "recent_rows" else name
            kept = list(con.execute(f"SELECT * FROM {kept_table} LIMIT 0").df().columns)
            now = list(con.execute(f"SELECT * FROM {now_table} LIMIT 0").df().columns)
            if now_table == "traffic":
                now = ["day", *now]
            if kept != now:
                raise ConfigError(
                    f"{self.path}: its {kept_table} has columns {kept}, this version computes "
                    f"{now}; add a numbered migration in detect/_state.py"
                )

    def fold(
        self,
        con: duckdb.DuckDBPyConnection,
        stats: IngestStats,
        *,
        fault: Callable[[], None] | None = None,
    ) -> list[date]:
        """Replace the partials, bookkeeping and kept rows of each day ``traffic`` covers (its
        every row: see :meth:`ingest`), record the files, age out old days; one transaction.

        ``fault`` (tests) is called mid-transaction, after the old partials are deleted."""
        self._check_schemas(con, (*PARTIALS, "recent_rows"))
        new_days = "SELECT DISTINCT day FROM part_totals"
        days = [r[0] for r in con.execute(f"{new_days} ORDER BY 1").fetchall()]
        if not days and not self.pending:
            return []  # every file was folded before
        before = con.execute(
            f"SELECT day, files, columns_present FROM state.days WHERE day IN ({new_days})"
        ).fetchall()
        con.execute("BEGIN TRANSACTION")
        try:
            for name in (*PARTIALS, "days", "recent_rows"):
                con.execute(f"DELETE FROM state.{name} WHERE day IN ({new_days})")
            if fault is not None:
                fault()
            for name in PARTIALS:
                con.execute(f"INSERT INTO state.{name} SELECT * FROM {name}")
            self._insert_days(con, stats, before)
            self._keep_rows(con)
            self._record_files(con)
            start = self._window_start(con)
            for name in (*PARTIALS, "days", "recent_rows"):
                con.execute(f"DELETE FROM state.{name} WHERE day < ?", [start])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        self.pending = []
        return days

    def _insert_days(self, con: duckdb.DuckDBPyConnection, stats: IngestStats, before) -> None:
        """Each day's rows, files (those folded before, then the new ones) and columns."""
        old = {day: (files, present) for day, files, present in before}
        totals = con.execute("SELECT day, sum(requests) FROM part_totals GROUP BY day").fetchall()
        rows = []
        for day, requests in totals:
            files, present = old.get(day, ("", ""))
            new = [f.path for f in self.pending if day in f.days] or stats.files
            files = [f for f in dict.fromkeys([*files.split(","), *new]) if f]
            present = sorted({c for c in present.split(",") if c} | stats.columns_present)
            rows.append((day, int(requests), ",".join(files), ",".join(present)))
        con.executemany("INSERT INTO state.days VALUES (?, ?, ?, ?, now())", rows)

    def _keep_rows(self, con: duckdb.DuckDBPyConnection) -> None:
        """Keep ``traffic``'s rows of the latest ``late_days`` + 1 days: without the columns
        no partial reads, the prompt only where it is in its day's sample."""
        latest = con.execute("SELECT max(day) FROM state.days").fetchone()[0]
        if latest is None:
            return
        start = latest - timedelta(days=int(self.late_days))
        nulls = ", ".join(f"NULL AS {c}" for c in UNREAD_COLUMNS)
        prompt = SAMPLE_ONLY_COLUMN
        con.execute(
            f"""
            INSERT INTO state.recent_rows BY NAME
            SELECT CAST(t.ts AS DATE) AS day,
                   t.* REPLACE (CASE WHEN s.phash IS NOT NULL THEN t.{prompt} END AS {prompt}),
                   {nulls}
            FROM (SELECT * EXCLUDE ({", ".join(UNREAD_COLUMNS)}) FROM traffic) t
            LEFT JOIN (SELECT DISTINCT day, account_id, phash FROM part_sample) s
              ON s.day = CAST(t.ts AS DATE) AND s.account_id = t.account_id AND s.phash = t.phash
            WHERE CAST(t.ts AS DATE) >= ?
            """,
            [start],
        )
        con.execute("DELETE FROM state.recent_rows WHERE day < ?", [start])

    def _record_files(self, con: duckdb.DuckDBPyConnection) -> None:
        for fold in self.pending:
            days = ",".join(str(d) for d in fold.days)
            con.execute(
                "INSERT INTO state.folded_files VALUES (?, ?, ?, ?, now())",
                [fold.sha256, fold.path, sum(fold.days.values()), days],
            )

    def _window_start(self, con: duckdb.DuckDBPyConnection) -> date:
        last = con.execute("SELECT max(day) FROM state.days").fetchone()[0]
        if last is None:
            return date.min
        return last - timedelta(days=int(self.window_days) - 1)

    def load_window(self, con: duckdb.DuckDBPyConnection, folded: IngestStats) -> IngestStats:
        """Make each partial table the window's, from the store; the window's ingest stats."""
        start = self._window_start(con)
        for name in PARTIALS:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM state.{name} "
                f"WHERE day >= DATE '{start.isoformat()}'"
            )
        days = con.execute("SELECT day, files, columns_present FROM state.days ORDER BY day").df()
        files = list(dict.fromkeys(f for fs in days["files"] for f in fs.split(",") if f))
        present = {c for cs in days["columns_present"] for c in cs.split(",") if c}
        rows = con.execute("SELECT coalesce(sum(rows), 0) FROM state.days").fetchone()[0]
        return IngestStats(
            files=files,
            rows=int(rows),
            rows_skipped=folded.rows_skipped,
            skipped_by_reason=folded.skipped_by_reason,
            skipped_examples=folded.skipped_examples,
            columns_present=present,
        )

    def window_days_kept(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        return [
            str(r[0]) for r in con.execute("SELECT day FROM state.days ORDER BY day").fetchall()
        ]

    def remember_flags(self, con: duckdb.DuckDBPyConnection, campaigns: list[dict]) -> None:
        """Keep each member's earliest ``flagged_at``; report each campaign's earliest."""
        rows = [
            (a, pd.Timestamp(c["flagged_at"]).tz_convert(None), len(c["accounts"]))
            for c in campaigns
            for a in c["accounts"]
            if c.get("flagged_at")
        ]
        if rows:
            frame = pd.DataFrame(rows, columns=["account_id", "flagged_at", "campaign_accounts"])
            con.register("new_flags", frame)
            con.execute(
                "INSERT INTO state.flags SELECT account_id, flagged_at, campaign_accounts "
                "FROM new_flags ON CONFLICT (account_id) DO UPDATE SET "
                "flagged_at = least(flags.flagged_at, excluded.flagged_at)"
            )
            con.unregister("new_flags")
        kept = con.execute("SELECT account_id, flagged_at FROM state.flags").df()
        first = dict(zip(kept["account_id"], kept["flagged_at"], strict=True))
        for c in campaigns:
            earliest = min((first[a] for a in c["accounts"] if a in first), default=None)
            if earliest is not None:
                c["flagged_at"] = iso(earliest)


_NEW_DAYS = "SELECT DISTINCT CAST(ts AS DATE) FROM {table}"


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
