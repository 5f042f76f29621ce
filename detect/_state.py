"""Incremental daily scans: a DuckDB state store of per-day partitions, scored on a window.

``scan(paths, state="STATE.duckdb", window_days=30)`` folds the rows it ingests into the state
store, one partition per UTC day, then scores the whole window (the latest ``window_days``
days in the store) from the store, without re-reading the old days' logs.

* **Fold = replace the day.**  Each UTC day the new rows fall in is deleted and re-inserted in
  one transaction, together with the day's bookkeeping and the aging-out of days that left
  the window.  Folding the same day twice leaves the store as one fold did, and a crash
  mid-fold rolls back to the store before it.  A day's rows must therefore arrive in one
  fold (pass all of a day's files together).
* **What a partition holds.**  The day's ingested rows with their derived columns (hashes,
  template keys, flags), the prompt text included.  This is the fallback the issue allows
  ("a per-account per-day sample of rows") taken without a cap: every feature is then
  computed over the window by the one feature SQL in :mod:`detect._features`, and the daily
  and the one-shot scans agree exactly.  Additive per-account partials (counts, sums,
  sketches) are not built; see ``docs/detect.md``.
* **``flagged_at``** is kept per account in ``flags``: the earliest time any scan saw its
  campaign's evidence cross the line, so it survives the evidence's days aging out.
* **Migrations** are numbered; ``schema_migrations`` records the ones applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from detect._ingest import IngestStats
from detect._report import iso
from detect.errors import ConfigError


def _m1_day_partitions(con: duckdb.DuckDBPyConnection) -> None:
    # the row schema is the ingest module's own ``traffic`` table, one owner
    con.execute(
        "CREATE TABLE state.day_rows AS SELECT CAST(NULL AS DATE) AS day, * FROM traffic WHERE false"
    )
    con.execute(
        "CREATE TABLE state.days (day DATE PRIMARY KEY, rows BIGINT, files VARCHAR, "
        "columns_present VARCHAR, folded_at TIMESTAMP)"
    )


def _m2_flagged_at(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE state.flags (account_id VARCHAR PRIMARY KEY, flagged_at TIMESTAMP, "
        "campaign_accounts INTEGER)"
    )


MIGRATIONS: tuple[tuple[int, Callable[[duckdb.DuckDBPyConnection], None]], ...] = (
    (1, _m1_day_partitions),
    (2, _m2_flagged_at),
)


@dataclass
class StateStore:
    """A state file and the window scored from it (the latest ``window_days`` days)."""

    path: Path
    window_days: int = 30

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if int(self.window_days) < 1:
            raise ConfigError(f"window_days must be >= 1, got {self.window_days}")

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        """Attach the store as ``state`` and apply the migrations it lacks, in order."""
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
            migrate(con)
            con.execute("INSERT INTO state.schema_migrations VALUES (?, now())", [version])
            con.execute("COMMIT")
        self._check_row_schema(con)

    def _check_row_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        """The partitions' columns must be ingest's; a changed row schema needs a migration."""
        kept = con.execute("SELECT * EXCLUDE (day) FROM state.day_rows LIMIT 0").df().columns
        now = con.execute("SELECT * FROM traffic LIMIT 0").df().columns
        if list(kept) != list(now):
            missing, extra = sorted(set(now) - set(kept)), sorted(set(kept) - set(now))
            raise ConfigError(
                f"{self.path}: its day partitions have another row schema than this version's "
                f"ingest (missing {missing}, extra {extra}); add a numbered migration in "
                "detect/_state.py"
            )

    def fold(
        self,
        con: duckdb.DuckDBPyConnection,
        stats: IngestStats,
        *,
        fault: Callable[[], None] | None = None,
    ) -> list[date]:
        """Replace each day ``traffic`` covers with its rows, age out old days; one transaction.

        ``fault`` (tests) is called mid-transaction, after the old partitions are deleted."""
        days = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT CAST(ts AS DATE) FROM traffic ORDER BY 1"
            ).fetchall()
        ]
        files, present = ",".join(stats.files), ",".join(sorted(stats.columns_present))
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                "DELETE FROM state.day_rows WHERE day IN (SELECT CAST(ts AS DATE) FROM traffic)"
            )
            con.execute(
                "DELETE FROM state.days WHERE day IN (SELECT CAST(ts AS DATE) FROM traffic)"
            )
            if fault is not None:
                fault()
            con.execute("INSERT INTO state.day_rows SELECT CAST(ts AS DATE) AS day, * FROM traffic")
            con.execute(
                "INSERT INTO state.days SELECT CAST(ts AS DATE), count(*), ?, ?, now() "
                "FROM traffic GROUP BY 1",
                [files, present],
            )
            start = self._window_start(con)
            con.execute("DELETE FROM state.day_rows WHERE day < ?", [start])
            con.execute("DELETE FROM state.days WHERE day < ?", [start])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return days

    def _window_start(self, con: duckdb.DuckDBPyConnection) -> date:
        last = con.execute("SELECT max(day) FROM state.days").fetchone()[0]
        return last - timedelta(days=int(self.window_days) - 1)

    def load_window(self, con: duckdb.DuckDBPyConnection, folded: IngestStats) -> IngestStats:
        """Make ``traffic`` the window's rows, from the store; the window's ingest stats."""
        con.execute(
            "CREATE OR REPLACE TABLE traffic AS SELECT * EXCLUDE (day) FROM state.day_rows "
            "WHERE day >= ? ORDER BY ts, account_id",
            [self._window_start(con)],
        )
        days = con.execute("SELECT day, files, columns_present FROM state.days ORDER BY day").df()
        files = list(dict.fromkeys(f for fs in days["files"] for f in fs.split(",") if f))
        present = {c for cs in days["columns_present"] for c in cs.split(",") if c}
        rows = con.execute("SELECT count(*) FROM traffic").fetchone()[0]
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
