"""The input files of an incremental fold: read each once, keyed by its content.

:func:`ingest_new_files` hashes every traffic file under the paths (SHA-256 of its bytes),
skips those whose hash the state store has folded (or that repeat one read in this call),
and appends the rest to ``traffic`` one file at a time, so each file's rows per UTC day are
known (a late row is refused by file and day).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from stillroom.detect._ingest import (
    MAX_SKIPPED_EXAMPLES,
    IngestStats,
    create_traffic_table,
    ingest_logs,
    resolve_log_paths,
)


@dataclass
class FileFold:
    """One input file of a fold: its content hash and its rows per UTC day."""

    path: str
    sha256: str
    days: dict[date, int]


def ingest_new_files(
    con: duckdb.DuckDBPyConnection,
    paths: list[str | Path],
    column_map: list[str] | dict[str, str] | None,
    folded: set[str],
) -> tuple[IngestStats, list[FileFold], list[str]]:
    """``traffic`` from the files under ``paths`` whose hash is not in ``folded``; their
    stats, one :class:`FileFold` each, and the paths skipped as folded before."""
    create_traffic_table(con)
    con.execute("CREATE OR REPLACE TEMP TABLE fold_rows AS FROM traffic")
    seen, stats, new, skipped = set(folded), IngestStats(), [], []
    for path in resolve_log_paths(paths):
        digest = file_sha256(path)
        if digest in seen:
            skipped.append(str(path))
            continue
        seen.add(digest)
        add_stats(stats, ingest_logs(con, [path], column_map))
        days = "SELECT CAST(ts AS DATE), count(*) FROM traffic GROUP BY 1 ORDER BY 1"
        new.append(FileFold(str(path), digest, dict(con.execute(days).fetchall())))
        con.execute("INSERT INTO fold_rows FROM traffic")
    con.execute("CREATE OR REPLACE TABLE traffic AS FROM fold_rows")
    con.execute("DROP TABLE fold_rows")
    return stats, new, skipped


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def add_stats(total: IngestStats, part: IngestStats) -> None:
    """Add one file's ingest stats to ``total`` (examples capped as ingest caps them)."""
    total.files += part.files
    total.rows += part.rows
    total.rows_skipped += part.rows_skipped
    total.skipped_by_reason.update(part.skipped_by_reason)
    room = MAX_SKIPPED_EXAMPLES - len(total.skipped_examples)
    total.skipped_examples += part.skipped_examples[: max(room, 0)]
    total.columns_present |= part.columns_present
