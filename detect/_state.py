"""Incremental daily scans: a DuckDB state store of per-day partials, scored on a window.

``scan(paths, state="STATE.duckdb", window_days=30)`` computes the per-(account, UTC day)
partials of the rows it ingests (:mod:`stillroom.detect._partials`, the same tables a one-shot scan
computes and merges), folds them into the state store, then merges the window (the latest
``window_days`` days in the store) into the features, without re-reading old logs.

* **Fold = replace the day's partials.**  Each UTC day the new rows fall in has its partials
  deleted and re-inserted in one transaction, together with the day's bookkeeping and the
  aging-out of days that left the window (their partials are deleted).  Folding the same day
  twice leaves the store as one fold did, and a crash mid-fold rolls back to the store
  before it.  A day's rows must therefore arrive in one fold (pass all of a day's files
  together).
* **What the store holds.**  Partials only: counts, sums, gap moments and histograms, hourly
  counts, value multiplicities (hashes where values are only compared) and each account-day's
  first ``sample_per_account`` prompts in the sampling order.  No rows.
* **``flagged_at``** is kept per account in ``flags``: the earliest time any scan saw its
  campaign's evidence cross the line, so it survives the evidence's days aging out.
* **Migrations** are numbered; ``schema_migrations`` records the ones applied.  ``3`` turns
  an old store's day rows (migrations 1-2) into partials and drops the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from stillroom.detect._ingest import IngestStats
from stillroom.detect._partials import PARTIALS, partial_sql
from stillroom.detect._report import iso
from stillroom.detect.errors import ConfigError


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


MIGRATIONS: tuple[tuple[int, Callable[[duckdb.DuckDBPyConnection, StateStore], None]], ...] = (
    (1, _m1_day_partitions),
    (2, _m2_flagged_at),
    (3, _m3_partials),
)


@dataclass
class StateStore:
    """A state file and the window scored from it (the latest ``window_days`` days)."""

    path: Path
    window_days: int = 30
    sample_cap: int = 24
    bucket_s: int = 60

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if int(self.window_days) < 1:
            raise ConfigError(f"window_days must be >= 1, got {self.window_days}")

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

    def _check_partial_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        for name in PARTIALS:
            kept = list(con.execute(f"SELECT * FROM state.{name} LIMIT 0").df().columns)
            now = list(con.execute(f"SELECT * FROM {name} LIMIT 0").df().columns)
            if kept != now:
                raise ConfigError(
                    f"{self.path}: its {name} has columns {kept}, this version computes "
                    f"{now}; add a numbered migration in detect/_state.py"
                )

    def fold(
        self,
        con: duckdb.DuckDBPyConnection,
        stats: IngestStats,
        *,
        fault: Callable[[], None] | None = None,
    ) -> list[date]:
        """Replace each day the new partials cover, age out old days; one transaction.

        ``fault`` (tests) is called mid-transaction, after the old partials are deleted."""
        self._check_partial_schema(con)
        new_days = "SELECT DISTINCT day FROM part_totals"
        days = [r[0] for r in con.execute(f"{new_days} ORDER BY 1").fetchall()]
        files, present = ",".join(stats.files), ",".join(sorted(stats.columns_present))
        con.execute("BEGIN TRANSACTION")
        try:
            for name in (*PARTIALS, "days"):
                con.execute(f"DELETE FROM state.{name} WHERE day IN ({new_days})")
            if fault is not None:
                fault()
            for name in PARTIALS:
                con.execute(f"INSERT INTO state.{name} SELECT * FROM {name}")
            con.execute(
                "INSERT INTO state.days SELECT day, sum(requests), ?, ?, now() "
                "FROM part_totals GROUP BY day",
                [files, present],
            )
            start = self._window_start(con)
            for name in (*PARTIALS, "days"):
                con.execute(f"DELETE FROM state.{name} WHERE day < ?", [start])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return days

    def _window_start(self, con: duckdb.DuckDBPyConnection) -> date:
        last = con.execute("SELECT max(day) FROM state.days").fetchone()[0]
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


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
