"""Read traffic logs (schema v1) from Parquet, JSONL (plain or gzip) and CSV into DuckDB.

Every file is read by DuckDB's own readers, renamed with the user's column map, cast to the
schema-v1 types and appended to one ``traffic`` table.  Rows with a missing required field or
an unparseable timestamp are counted, a few are kept as examples (file, row, reason), and the
rest of the scan goes on.  Per-row derived columns that later stages need (prompt hashes,
template keys, intent flags, /24 prefixes) are computed here, in SQL, once.
"""

from __future__ import annotations

import glob
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from stillroom.detect._engine import DUCKDB_MACROS
from stillroom.detect._lexicon import (
    GRADING_REGEX,
    REASONING_DEMAND_REGEX,
    REASONING_OBJECT_REGEX,
    REASONING_REGEX,
)
from stillroom.detect.errors import ColumnMapError, LogFormatError, LogNotFoundError, SchemaError

REQUIRED_COLUMNS = ("timestamp", "account_id", "prompt")
OPTIONAL_COLUMNS = {
    "request_id": "VARCHAR",
    "ip": "VARCHAR",
    "user_agent": "VARCHAR",
    "model": "VARCHAR",
    "system_prompt": "VARCHAR",
    "max_tokens": "INTEGER",
    "temperature": "DOUBLE",
    "top_logprobs": "INTEGER",
    "prompt_tokens": "INTEGER",
    "completion_tokens": "INTEGER",
    "org_id": "VARCHAR",
    "payment_id": "VARCHAR",
}
SCHEMA_V1 = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
_SUFFIXES = {
    ".parquet": "parquet",
    ".jsonl": "json",
    ".ndjson": "json",
    ".json": "json",
    ".jsonl.gz": "json",
    ".ndjson.gz": "json",
    ".json.gz": "json",
    ".csv": "csv",
    ".csv.gz": "csv",
}
MAX_SKIPPED_EXAMPLES = 10
VALID_ROW = "ts IS NOT NULL AND account_id IS NOT NULL AND prompt IS NOT NULL"
SKIP_REASON = """CASE WHEN account_id IS NULL THEN 'missing account_id'
                 WHEN prompt IS NULL THEN 'missing prompt'
                 WHEN raw_ts IS NULL THEN 'missing timestamp'
                 WHEN ts IS NULL THEN 'unparseable timestamp' END"""


@dataclass
class IngestStats:
    """What ingestion read: files, rows kept, rows skipped (with reasons and examples)."""

    files: list[str] = field(default_factory=list)
    rows: int = 0
    rows_skipped: int = 0
    skipped_by_reason: Counter = field(default_factory=Counter)
    skipped_examples: list[dict] = field(default_factory=list)
    columns_present: set[str] = field(default_factory=set)


def parse_column_map(entries: list[str] | dict[str, str] | None) -> dict[str, str]:
    """Turn ``["src=dst", ...]`` (or a dict) into ``{src: dst}``; ``dst`` must be a v1 column."""
    if not entries:
        return {}
    pairs = entries.items() if isinstance(entries, dict) else [_split_map(e) for e in entries]
    mapping: dict[str, str] = {}
    for src, dst in pairs:
        if dst not in SCHEMA_V1:
            raise ColumnMapError(
                f"--map {src}={dst}: {dst!r} is not a schema-v1 column "
                f"(one of: {', '.join(SCHEMA_V1)})"
            )
        mapping[src] = dst
    return mapping


def _split_map(entry: str) -> tuple[str, str]:
    src, sep, dst = entry.partition("=")
    if not sep or not src.strip() or not dst.strip():
        raise ColumnMapError(f"--map {entry!r}: expected SRC=DST, e.g. user=account_id")
    return src.strip(), dst.strip()


def log_format(path: Path) -> str | None:
    """``parquet``, ``json`` or ``csv`` from the file name, or None for anything else."""
    name = path.name.lower()
    for suffix, fmt in sorted(_SUFFIXES.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(suffix):
            return fmt
    return None


def resolve_log_paths(paths: list[str | Path]) -> list[Path]:
    """Expand files, globs and directories into traffic files, in a stable order.

    Directories are searched recursively for known extensions; simulator ground-truth files
    (``*.truth.csv``) found that way are left out.  Anything that matches nothing raises.
    """
    found: list[Path] = []
    for raw in paths:
        text = str(raw)
        if any(ch in text for ch in "*?["):
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            matches = [m for m in matches if m.is_file()]
        elif Path(text).is_dir():
            matches = [
                p
                for p in sorted(Path(text).rglob("*"))
                if p.is_file() and log_format(p) and not p.name.endswith(".truth.csv")
            ]
        elif Path(text).is_file():
            matches = [Path(text)]
        else:
            raise LogNotFoundError(f"{text}: no such file, directory or glob match")
        if not matches:
            raise LogNotFoundError(
                f"{text}: matched no traffic files (.parquet, .jsonl[.gz], .csv)"
            )
        for match in matches:
            if log_format(match) is None:
                raise LogFormatError(
                    f"{match}: unknown log format; expected .parquet, .jsonl, .jsonl.gz or .csv"
                )
            if match not in found:
                found.append(match)
    return found


def _reader_sql(fmt: str, columns: list[str] | None = None) -> str:
    if fmt == "parquet":
        return "read_parquet(?)"
    if fmt == "csv":
        return "read_csv(?, all_varchar=true, header=true)"
    # A malformed line (a log cut off mid-write, say) reads as a row of NULLs, counted and
    # reported by _record_skipped, instead of stopping the scan.
    if columns is None:
        return "read_json(?, format='newline_delimited', ignore_errors=true)"
    spec = ", ".join(f"'{_sql_str(c)}': 'VARCHAR'" for c in columns)
    return f"read_json(?, format='newline_delimited', ignore_errors=true, columns={{{spec}}})"


def _sql_str(text: str) -> str:
    return text.replace("'", "''")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source_columns(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> dict[str, str]:
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {_reader_sql(fmt)}", [str(path)]).fetchall()
    except duckdb.Error as exc:
        raise LogFormatError(f"{path}: cannot read as {fmt}: {exc}") from exc
    return {r[0]: str(r[1]).upper() for r in rows}


def _timestamp_expr(col: str, typ: str) -> str:
    if typ.startswith("TIMESTAMP") or typ == "DATE":
        return f"TRY_CAST({col} AS TIMESTAMP)"
    if typ in ("BIGINT", "INTEGER", "DOUBLE", "FLOAT", "HUGEINT", "UBIGINT", "DECIMAL"):
        return f"TRY_CAST(to_timestamp(TRY_CAST({col} AS DOUBLE)) AS TIMESTAMP)"
    text = f"CAST({col} AS VARCHAR)"
    return (
        f"COALESCE(TRY_CAST(TRY_CAST({text} AS TIMESTAMPTZ) AS TIMESTAMP), "
        f"CASE WHEN regexp_full_match({text}, '[0-9]{{9,10}}(\\.[0-9]+)?') "
        f"THEN TRY_CAST(to_timestamp(TRY_CAST({text} AS DOUBLE)) AS TIMESTAMP) END)"
    )


def typed_select(present: dict[str, str], types: dict[str, str], *, raw_ts: bool = False) -> str:
    """SELECT list casting source columns (``present``: v1 name -> source name) to v1 types."""
    ts_src = _ident(present["timestamp"])
    parts = [f"{_timestamp_expr(ts_src, types.get(present['timestamp'], 'VARCHAR'))} AS ts"]
    if raw_ts:
        parts.append(f"CAST({ts_src} AS VARCHAR) AS raw_ts")
    for name in ("account_id", "prompt"):
        src = f"CAST({_ident(present[name])} AS VARCHAR)"
        empty = f"trim({src}) = ''" if name == "account_id" else f"{src} = ''"
        parts.append(f"CASE WHEN {empty} THEN NULL ELSE {src} END AS {name}")
    for name, typ in OPTIONAL_COLUMNS.items():
        if name in present:
            src = _ident(present[name])
            expr = f"TRY_CAST({src} AS {typ})"
            if typ == "VARCHAR":
                expr = f"NULLIF(CAST({src} AS VARCHAR), '')"
            parts.append(f"{expr} AS {name}")
        else:
            parts.append(f"CAST(NULL AS {typ}) AS {name}")
    return ", ".join(parts)


def map_columns(path: Path, columns: list[str], mapping: dict[str, str]) -> dict[str, str]:
    present: dict[str, str] = {}
    for col in columns:
        dst = mapping.get(col, col if col not in mapping.values() else None)
        if dst in SCHEMA_V1 and dst not in present:
            present[dst] = col
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if missing:
        raise SchemaError(
            f"{path}: missing required column(s) {', '.join(missing)}; it has "
            f"{', '.join(columns) or 'no columns'} (rename with --map SRC=DST)"
        )
    return present


_WS = "[ \t\r\n]"  # the characters themselves (no backslash escapes for any SQL dialect)
_STOP = f"(?:[.?!\u3002\uff1f\uff01]{_WS}|\n)"  # a sentence's end in any script, or a line's
_HEAD_SEGMENT = f"(?s)^{_WS}*(.*?){_STOP}"
_TAIL_SEGMENT = f"(?s)^(.*){_STOP}{_WS}*(.+?){_WS}*$"


def _segment_keys(min_chars: int = 16) -> str:
    """SQL: ``seg_head`` / ``seg_tail``, the key of a prompt's first / last sentence or line
    where it stands beside ``min_chars`` characters of the prompt's own (else NULL) and is
    an instruction's size (``min_chars`` characters or four words): the every-row form of
    :func:`stillroom.detect._intent.wrapped_asks`'s segments."""

    def sized(seg: str) -> str:
        return f"(length({seg}) >= {min_chars} OR length({seg}) - length(replace({seg}, ' ', '')) >= 3)"

    head = f"trim(regexp_extract(prompt, '{_HEAD_SEGMENT}', 1))"
    head_rest = f"length(prompt) - length(regexp_extract(prompt, '{_HEAD_SEGMENT}', 0))"
    tail = f"regexp_extract(prompt, '{_TAIL_SEGMENT}', 2)"
    tail_rest = f"length(trim(regexp_extract(prompt, '{_TAIL_SEGMENT}', 1)))"
    return (
        f"CASE WHEN {head_rest} >= {min_chars} AND {sized(head)} "
        f"THEN stable_hash(lower({head})) END AS seg_head,\n    "
        f"CASE WHEN {tail_rest} >= {min_chars} AND {sized(tail)} "
        f"THEN stable_hash(lower({tail})) END AS seg_tail"
    )


# derived columns that depend on the prompt alone: computed once per distinct prompt
PROMPT_DERIVED = f"""
    stable_hash(prompt) AS phash,
    stable_hash(lower(left(prompt, 40))) AS tkey_head,
    stable_hash(lower(right(prompt, 40))) AS tkey_tail,
    length(prompt) AS prompt_chars,
    (regexp_matches(prompt, '(?i){_sql_str(REASONING_REGEX)}')
     OR (regexp_matches(prompt, '(?i){_sql_str(REASONING_OBJECT_REGEX)}')
         AND regexp_matches(prompt, '(?i){_sql_str(REASONING_DEMAND_REGEX)}'))) AS is_reasoning,
    regexp_matches(prompt, '(?i){_sql_str(GRADING_REGEX)}') AS is_grading,
    {_segment_keys()}
"""
ROW_DERIVED = """
    ts, account_id, prompt, request_id, ip, user_agent, model, system_prompt, max_tokens,
    temperature, top_logprobs, prompt_tokens, completion_tokens, org_id, payment_id,
    CASE WHEN system_prompt IS NULL THEN NULL ELSE stable_hash(system_prompt) END AS sys_hash,
    CASE WHEN ip LIKE '%.%.%.%' THEN regexp_extract(ip, '^(.*)[.]', 1) END AS ip24
"""
DERIVED = f"{ROW_DERIVED}, {PROMPT_DERIVED}"


def derived_sql(typed: str) -> str:
    """``SELECT`` of the ``traffic`` columns (by name) from the valid rows of ``typed``; the
    prompt's own columns are computed once per distinct prompt (prompts repeat: templates,
    retries, accounts sending the same task) and joined back."""
    return f"""
    WITH r AS (SELECT * FROM ({typed}) WHERE {VALID_ROW}),
    p AS (SELECT prompt AS p_prompt, {PROMPT_DERIVED} FROM (SELECT DISTINCT prompt FROM r))
    SELECT {ROW_DERIVED}, p.* EXCLUDE (p_prompt) FROM r JOIN p ON r.prompt = p.p_prompt
    """


def create_traffic_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create the empty ``traffic`` table every file is appended to."""
    for macro in DUCKDB_MACROS:
        con.execute(macro)
    typed = typed_select({c: c for c in SCHEMA_V1}, {})
    con.execute(
        f"CREATE OR REPLACE TABLE traffic AS SELECT {DERIVED} FROM "
        f"(SELECT {typed} FROM (SELECT {', '.join(f'NULL AS {c}' for c in SCHEMA_V1)})) "
        "WHERE false"
    )


def ingest_logs(
    con: duckdb.DuckDBPyConnection,
    paths: list[str | Path],
    column_map: list[str] | dict[str, str] | None = None,
) -> IngestStats:
    """Append every traffic file under ``paths`` to the ``traffic`` table; return the stats."""
    mapping = parse_column_map(column_map)
    files = resolve_log_paths(paths)
    create_traffic_table(con)
    stats = IngestStats()
    for path in files:
        _ingest_file(con, path, mapping, stats)
    return stats


def _ingest_file(
    con: duckdb.DuckDBPyConnection, path: Path, mapping: dict[str, str], stats: IngestStats
) -> None:
    fmt = log_format(path) or ""
    types = _source_columns(con, path, fmt)
    present = map_columns(path, list(types), mapping)
    reader = _reader_sql(fmt, list(present.values()) if fmt == "json" else None)
    try:
        before = con.execute("SELECT count(*) FROM traffic").fetchone()[0]
        con.execute(
            "INSERT INTO traffic BY NAME "
            + derived_sql(f"SELECT {typed_select(present, types)} FROM {reader}"),
            [str(path)],
        )
        kept = con.execute("SELECT count(*) FROM traffic").fetchone()[0] - before
        total = _row_count(con, path, fmt, reader)
    except duckdb.Error as exc:
        raise LogFormatError(f"{path}: cannot read as {fmt}: {exc}") from exc
    stats.files.append(str(path))
    stats.rows += kept
    stats.columns_present |= set(present)
    if total > kept:
        typed = f"SELECT {typed_select(present, types, raw_ts=True)} FROM {reader}"
        _record_skipped(con, path, typed, fmt, total - kept, stats)


def _row_count(con: duckdb.DuckDBPyConnection, path: Path, fmt: str, reader: str) -> int:
    if fmt == "parquet":
        sql = "SELECT sum(num_rows) FROM parquet_file_metadata(?)"
        return int(con.execute(sql, [str(path)]).fetchone()[0] or 0)
    return int(con.execute(f"SELECT count(*) FROM {reader}", [str(path)]).fetchone()[0])


def _record_skipped(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    typed: str,
    fmt: str,
    count: int,
    stats: IngestStats,
) -> None:
    stats.rows_skipped += count
    reasons = con.execute(
        f"""
        SELECT row_no, reason, raw_ts FROM (
          SELECT row_number() OVER () AS row_no, ts, account_id, prompt, raw_ts,
            {SKIP_REASON} AS reason
          FROM ({typed})
        ) WHERE reason IS NOT NULL
        """,
        [str(path)],
    ).fetchall()
    line_offset = 1 if fmt == "csv" else 0
    unit = "row" if fmt == "parquet" else "line"
    malformed = _malformed_json_lines(con, path) if fmt == "json" else set()
    for row_no, reason, raw_ts in reasons:
        if row_no in malformed:
            reason = "malformed JSON"
        stats.skipped_by_reason[reason] += 1
        if len(stats.skipped_examples) < MAX_SKIPPED_EXAMPLES:
            example = {"file": str(path), unit: int(row_no) + line_offset, "reason": reason}
            if reason == "unparseable timestamp":
                example["value"] = str(raw_ts)[:80]
            stats.skipped_examples.append(example)


def _malformed_json_lines(con: duckdb.DuckDBPyConnection, path: Path) -> set[int]:
    """Numbers of the records of a JSONL file that do not parse (numbered as ``read_json``)."""
    rows = con.execute(
        "SELECT n FROM (SELECT row_number() OVER () AS n, json "
        "FROM read_ndjson_objects(?, ignore_errors=true)) WHERE json IS NULL",
        [str(path)],
    ).fetchall()
    return {int(n) for (n,) in rows}
