"""Schema v1 ingestion: formats, globs, directories, --map, and skipped-row reporting."""

from __future__ import annotations

import gzip
import json

import duckdb
import pandas as pd
import pytest

from stillroom.detect import ColumnMapError, LogNotFoundError, SchemaError, parse_column_map
from stillroom.detect._ingest import ingest_logs, resolve_log_paths

ROWS = [
    {
        "timestamp": "2026-01-05T10:00:00Z",
        "account_id": "a1",
        "prompt": "hello there",
        "ip": "10.1.2.3",
        "top_logprobs": 0,
    },
    {
        "timestamp": "2026-01-05T11:00:00+02:00",
        "account_id": "a2",
        "prompt": "what is 2+2",
        "ip": "10.1.2.4",
        "top_logprobs": 5,
    },
    {"timestamp": "not a time", "account_id": "a3", "prompt": "bad timestamp"},
    {"timestamp": "2026-01-05T12:00:00Z", "account_id": "", "prompt": "no account"},
    {"timestamp": "2026-01-05T13:00:00Z", "account_id": "a4", "prompt": None},
]


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def _write_jsonl(path, rows, gz=False):
    opener = gzip.open if gz else open
    with opener(path, "wt") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "csv", "parquet"])
def test_every_format_keeps_valid_rows_and_reports_skipped_ones(tmp_path, fmt):
    path = tmp_path / f"log.{fmt}"
    if fmt.startswith("jsonl"):
        _write_jsonl(path, ROWS, gz=fmt.endswith("gz"))
    elif fmt == "csv":
        pd.DataFrame(ROWS).to_csv(path, index=False)
    else:
        pd.DataFrame(ROWS).to_parquet(path)
    con = _con()
    stats = ingest_logs(con, [path])
    assert stats.rows == 2
    assert stats.rows_skipped == 3
    assert stats.skipped_by_reason == {
        "unparseable timestamp": 1,
        "missing account_id": 1,
        "missing prompt": 1,
    }
    reasons = {e["reason"]: e for e in stats.skipped_examples}
    bad_ts = reasons["unparseable timestamp"]
    assert bad_ts["file"] == str(path)
    assert bad_ts.get("line", bad_ts.get("row")) == (4 if fmt == "csv" else 3)
    assert bad_ts["value"] == "not a time"
    got = con.execute("SELECT account_id, ts, top_logprobs FROM traffic ORDER BY ts").fetchall()
    assert [r[0] for r in got] == ["a2", "a1"]  # 11:00+02:00 is 09:00 UTC
    assert str(got[0][1]) == "2026-01-05 09:00:00"
    assert got[0][2] == 5


@pytest.mark.parametrize("gz", [False, True], ids=["jsonl", "jsonl.gz"])
def test_malformed_json_lines_are_skipped_and_named_not_fatal(tmp_path, gz):
    good = [json.dumps(r) for r in ROWS[:2]]
    lines = [good[0], '{"timestamp": "2026-01-05T10:30:00Z", "account_id": "a9", "prom', "{}",
             good[1], '{"timestamp": "2026-01-05T12:00:00Z", "account_id": "cut off']  # fmt: skip
    path = tmp_path / ("log.jsonl.gz" if gz else "log.jsonl")
    with (gzip.open if gz else open)(path, "wt") as fh:
        fh.write("\n".join(lines))  # the last line is cut off mid-write, with no newline
    con = _con()
    stats = ingest_logs(con, [path])
    assert (stats.rows, stats.rows_skipped) == (2, 3)
    assert stats.skipped_by_reason == {"malformed JSON": 2, "missing account_id": 1}
    named = sorted((e["line"], e["reason"]) for e in stats.skipped_examples)
    assert named == [(2, "malformed JSON"), (3, "missing account_id"), (5, "malformed JSON")]
    assert all(e["file"] == str(path) for e in stats.skipped_examples)
    kept = con.execute("SELECT account_id FROM traffic ORDER BY account_id").fetchall()
    assert kept == [("a1",), ("a2",)]


def test_map_renames_columns_and_rejects_unknown_targets(tmp_path):
    rows = [{"when": "2026-01-05T10:00:00Z", "user": "u1", "text": "hi"}]
    path = _write_jsonl(tmp_path / "x.jsonl", rows)
    stats = ingest_logs(_con(), [path], ["when=timestamp", "user=account_id", "text=prompt"])
    assert stats.rows == 1
    with pytest.raises(ColumnMapError, match="not a schema-v1 column"):
        parse_column_map(["user=acount"])
    with pytest.raises(ColumnMapError, match="SRC=DST"):
        parse_column_map(["user"])


def test_missing_required_column_names_the_file_and_column(tmp_path):
    path = _write_jsonl(tmp_path / "x.jsonl", [{"timestamp": "2026-01-05", "user": "u"}])
    with pytest.raises(SchemaError, match=r"x\.jsonl: missing required column\(s\) account_id"):
        ingest_logs(_con(), [path])


def test_globs_directories_and_several_files(tmp_path):
    (tmp_path / "d").mkdir()
    _write_jsonl(tmp_path / "d" / "a.jsonl", ROWS[:1])
    _write_jsonl(tmp_path / "d" / "b.jsonl.gz", ROWS[1:2], gz=True)
    (tmp_path / "d" / "s.truth.csv").write_text("account_id,label\n")
    (tmp_path / "d" / "notes.txt").write_text("ignored")
    assert len(resolve_log_paths([tmp_path / "d"])) == 2
    assert len(resolve_log_paths([str(tmp_path / "d" / "*.jsonl*")])) == 2
    stats = ingest_logs(_con(), [tmp_path / "d" / "a.jsonl", tmp_path / "d" / "b.jsonl.gz"])
    assert stats.rows == 2 and len(stats.files) == 2
    with pytest.raises(LogNotFoundError):
        resolve_log_paths([tmp_path / "nope.jsonl"])
    with pytest.raises(LogNotFoundError):
        resolve_log_paths([str(tmp_path / "*.parquet")])
