"""Incremental scans: ten daily folds flag as one scan of the ten days; late rows fold in any
order as one scan of all the files, every partial table equal; a file folds once (by content);
late rows older than ``late_days`` are refused; a crash mid-fold leaves the store as it was,
old days age out, migrations are numbered (an old rows-store becomes partials), the median
gap from the histograms is within 1%."""

from __future__ import annotations

import json
import re
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from stillroom.cli import app
from stillroom.detect import ConfigError, LateRowsError, scan, simulate
from stillroom.detect._engine import DuckDBEngine
from stillroom.detect._ingest import ingest_logs
from stillroom.detect._partials import (
    PARTIALS,
    SAMPLE_ONLY_COLUMN,
    UNREAD_COLUMNS,
    build_partials,
    partial_sql,
)
from stillroom.detect._state import MIGRATIONS, StateStore

DAYS = 10


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A simulated 14-day log (seed 5, scale 0.3: 53k rows)."""
    return simulate(tmp_path_factory.mktemp("incremental") / "all.parquet", seed=5, scale=0.3)


@pytest.fixture(scope="module")
def day_files(sim):
    """The simulated log split into one Parquet file per UTC day (the first ten)."""
    root = sim.traffic_path.parent
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    days = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT CAST(timestamp AS DATE) FROM '{sim.traffic_path}' ORDER BY 1"
        ).fetchall()
    ][:DAYS]
    files = []
    for day in days:
        path = root / f"{day}.parquet"
        con.execute(
            f"COPY (SELECT * FROM '{sim.traffic_path}' WHERE CAST(timestamp AS DATE) = '{day}') "
            f"TO '{path}' (FORMAT parquet)"
        )
        files.append(path)
    return files


def _campaigns(result) -> set[frozenset]:
    return {frozenset(c["accounts"]) for c in result.report["campaigns"]}


def test_ten_daily_scans_flag_as_one_scan_of_the_ten_days(day_files, tmp_path):
    state = tmp_path / "state.duckdb"
    for path in day_files:
        daily = scan([path], state=state, window_days=DAYS)
    once = scan(day_files)
    a, b = once.accounts, daily.accounts
    assert daily.report["summary"]["rows"] == once.report["summary"]["rows"]
    assert len(daily.report["summary"]["state"]["days"]) == DAYS
    assert list(a.index) == list(b.index)
    assert a["flagged"].sum() > 20
    assert set(a.index[a["flagged"]]) == set(b.index[b["flagged"]])
    assert _campaigns(once) == _campaigns(daily)
    numeric = [c for c in a.columns if a[c].dtype.kind in "fiub"]
    assert len(numeric) > 30
    for col in numeric:
        x, y = a[col].astype(float).to_numpy(), b[col].astype(float).to_numpy()
        close = np.isclose(x, y, rtol=1e-9, atol=1e-12, equal_nan=True)
        assert close.all(), (col, x[~close][:3], y[~close][:3])
    flagged_at = {frozenset(c["accounts"]): c["flagged_at"] for c in once.report["campaigns"]}
    for c in daily.report["campaigns"]:
        # the store remembers the earliest crossing of any daily scan; never later than one scan's
        assert c["flagged_at"] <= flagged_at[frozenset(c["accounts"])]
    # the median gap comes from log-binned histograms: within 1% of the rows' exact median
    exact = _exact_median_gaps(day_files).reindex(a.index)
    rel = (a["gap_median_s"] - exact).abs() / exact
    assert rel.notna().sum() > 300 and rel.max() <= 0.01, rel.max()


def _exact_median_gaps(paths) -> pd.Series:
    files = ", ".join(f"'{p}'" for p in paths)
    ts = duckdb.sql(f"SELECT account_id, timestamp FROM read_parquet([{files}])").df()
    ts = ts.sort_values(["account_id", "timestamp"])
    gaps = ts.groupby("account_id")["timestamp"].diff().dt.total_seconds()
    return gaps.groupby(ts["account_id"]).median()


def _store_contents(con) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    parts = {n: con.execute(f"SELECT * FROM state.{n} ORDER BY ALL").df() for n in PARTIALS}
    days = con.execute("SELECT * EXCLUDE (folded_at) FROM state.days ORDER BY day").df()
    return parts, days


def _store_tables(path) -> dict[str, pd.DataFrame]:
    """Every table of a state store (partials, days, kept rows, files), less fold times."""
    con = duckdb.connect(str(path), read_only=True)
    names = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
    tables = {}
    for name in names:
        cols = [c for c in con.execute(f"SELECT * FROM {name} LIMIT 0").df().columns]
        keep = ", ".join(f'"{c}"' for c in cols if not c.endswith("_at"))
        tables[name] = con.execute(f"SELECT {keep} FROM {name} ORDER BY ALL").df()
    con.close()
    return tables


def _assert_same_partials(got: dict, want: dict) -> None:
    assert set(got) == set(want) == set(PARTIALS)
    for name in PARTIALS:
        pd.testing.assert_frame_equal(got[name], want[name], obj=name)


def _ingested(paths):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con, ingest_logs(con, paths)


def test_folding_a_day_twice_or_after_a_crash_leaves_one_fold(day_files, tmp_path):
    store = StateStore(tmp_path / "state.duckdb", window_days=DAYS)
    con, stats = _ingested(day_files[:2])
    store.attach(con)
    build_partials(DuckDBEngine(con), sample_cap=24, bucket_s=60)
    store.fold(con, stats)
    once = _store_contents(con)
    assert len(once[1]) == 2 and once[0]["part_totals"]["day"].nunique() == 2
    assert all(len(frame) for frame in once[0].values())
    store.fold(con, stats)
    _assert_same_partials(_store_contents(con)[0], once[0])
    pd.testing.assert_frame_equal(_store_contents(con)[1], once[1])

    def crash():
        raise KeyboardInterrupt("killed mid-fold")

    with pytest.raises(KeyboardInterrupt):
        store.fold(con, stats, fault=crash)
    _assert_same_partials(_store_contents(con)[0], once[0])
    store.fold(con, stats)  # the rerun after the crash
    _assert_same_partials(_store_contents(con)[0], once[0])
    applied = con.execute("SELECT version FROM state.schema_migrations ORDER BY 1").fetchall()
    assert [v for (v,) in applied] == [v for v, _ in MIGRATIONS]
    con.close()
    # reopening applies no migration twice and keeps the partials
    con, _ = _ingested(day_files[:1])
    store.attach(con)
    _assert_same_partials(_store_contents(con)[0], once[0])


def test_old_days_age_out_of_the_window(day_files, tmp_path):
    store = StateStore(tmp_path / "state.duckdb", window_days=3)
    for path in day_files[:5]:
        con, stats = _ingested([path])
        store.attach(con)
        build_partials(DuckDBEngine(con), sample_cap=24, bucket_s=60)
        store.fold(con, stats)
        kept = store.window_days_kept(con)
        con.close()
    assert kept == [p.stem for p in day_files[2:5]]


def test_cli_incremental_scan(day_files, tmp_path):
    state, out = tmp_path / "state.duckdb", tmp_path / "r.json"
    for path in day_files[:2]:
        args = ["detect", "scan", str(path), "--state", str(state), "--window-days", "7"]
        result = CliRunner().invoke(app, [*args, "--late-days", "0", "--out", str(out)])
        assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())["summary"]
    assert summary["state"]["days"] == [p.stem for p in day_files[:2]]
    assert summary["state"]["window_days"] == 7 and summary["state"]["late_days"] == 0
    assert summary["state"]["already_folded"] == []
    result = CliRunner().invoke(app, [*args, "--out", str(out)])  # the same file again
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())["summary"]
    assert summary["state"]["already_folded"] == [str(day_files[1])]
    assert summary["state"]["folded_days"] == []
    result = CliRunner().invoke(app, [*args, "--window-days", "0", "--out", str(out)])
    assert result.exit_code != 0 and "window_days" in result.output
    late = tmp_path / "late.parquet"  # ten more rows of day 0, whose rows the store dropped
    duckdb.execute(f"COPY (FROM '{day_files[0]}' LIMIT 10) TO '{late}' (FORMAT parquet)")
    args = ["detect", "scan", str(late), "--state", str(state), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert f"{late}: 10 row(s) fall on {day_files[0].stem}" in result.output


def test_an_incremental_scan_on_spark_is_refused(day_files, tmp_path):
    with pytest.raises(ConfigError, match="DuckDB, not Spark"):
        scan([day_files[0]], state=tmp_path / "s.duckdb", spark=object())


def _old_rows_store(path, paths) -> None:
    """A store as migrations 1-2 left it: the days' ingested rows, kept whole."""
    con, stats = _ingested(paths)
    con.execute(f"ATTACH '{path}' AS state")
    con.execute(
        "CREATE TABLE state.schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)"
    )
    store = StateStore(path)
    for version, migrate in MIGRATIONS[:2]:
        migrate(con, store)
        con.execute("INSERT INTO state.schema_migrations VALUES (?, now())", [version])
    con.execute("INSERT INTO state.day_rows SELECT CAST(ts AS DATE), * FROM traffic")
    con.execute(
        "INSERT INTO state.days SELECT CAST(ts AS DATE), count(*), ?, ?, now() FROM traffic "
        "GROUP BY 1",
        [",".join(stats.files), ",".join(sorted(stats.columns_present))],
    )
    return con


def test_an_old_rows_store_migrates_to_the_same_partials(day_files, tmp_path):
    _old_rows_store(tmp_path / "old.duckdb", day_files[:2]).close()
    fresh = StateStore(tmp_path / "fresh.duckdb")
    con, stats = _ingested(day_files[:2])
    fresh.attach(con)
    build_partials(DuckDBEngine(con), sample_cap=24, bucket_s=60)
    fresh.fold(con, stats)
    want = _store_contents(con)
    con.close()
    con, _ = _ingested(day_files[:1])
    StateStore(tmp_path / "old.duckdb").attach(con)
    got = _store_contents(con)
    _assert_same_partials(got[0], want[0])
    pd.testing.assert_frame_equal(got[1], want[1])
    tables = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'state'"
        ).fetchall()
    }
    assert "day_rows" not in tables


def test_an_old_store_with_another_row_schema_is_refused_unchanged(day_files, tmp_path):
    con = _old_rows_store(tmp_path / "state.duckdb", day_files[:1])
    con.execute("ALTER TABLE state.day_rows DROP COLUMN is_grading")
    kept = con.execute("SELECT count(*) FROM state.day_rows").fetchone()[0]
    con.close()
    con, _ = _ingested(day_files[:1])
    with pytest.raises(ConfigError, match=r"state.duckdb.*missing \['is_grading'\].*Rescan"):
        StateStore(tmp_path / "state.duckdb").attach(con)
    con.close()
    con = duckdb.connect(str(tmp_path / "state.duckdb"))
    assert con.execute("SELECT count(*) FROM day_rows").fetchone()[0] == kept


def test_a_store_folded_with_other_partial_settings_is_refused(day_files, tmp_path):
    con, _ = _ingested(day_files[:1])
    StateStore(tmp_path / "state.duckdb").attach(con, sample_cap=24, bucket_s=60)
    con.close()
    con, _ = _ingested(day_files[:1])
    with pytest.raises(ConfigError, match=r"sync_bucket_s=60.*new state file"):
        StateStore(tmp_path / "state.duckdb").attach(con, sample_cap=24, bucket_s=30)


@pytest.fixture(scope="module")
def late_files(sim):
    """The issue's split of a week: A = days 0-3 and 80% of day 4; B = the other 20% of day
    4 (every fifth row by a hash, so spread over the whole day), then days 5-6."""
    root, log = sim.traffic_path.parent, sim.traffic_path
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    first = con.execute(f"SELECT min(CAST(timestamp AS DATE)) FROM '{log}'").fetchone()[0]
    day = f"datediff('day', DATE '{first}', CAST(timestamp AS DATE))"
    late = "hash(account_id || CAST(timestamp AS VARCHAR) || prompt) % 5 = 0"
    where = {
        "a": f"{day} BETWEEN 0 AND 3 OR ({day} = 4 AND NOT {late})",
        "b": f"({day} = 4 AND {late}) OR {day} IN (5, 6)",
    }
    for name, cond in where.items():
        con.execute(
            f"COPY (SELECT * FROM '{log}' WHERE {cond}) TO '{root / name}.parquet' (FORMAT parquet)"
        )
    a, b = root / "a.parquet", root / "b.parquet"
    hours = con.execute(
        f"SELECT count(DISTINCT hour(timestamp)), count(*) FROM '{b}' WHERE {day} = 4"
    ).fetchone()
    assert hours[0] == 24 and hours[1] > 500, hours  # B's late rows cover the whole day
    return a, b


def _fold(state, files, *, late_days: int = 2) -> StateStore:
    """One fold of ``files`` into ``state`` through the store's own ingest."""
    store = StateStore(state, window_days=DAYS, late_days=late_days)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        stats = store.ingest(con, files)
        build_partials(DuckDBEngine(con), sample_cap=24, bucket_s=60)
        store.fold(con, stats)
    finally:
        con.close()
    return store


def _one_scan_partials(files) -> dict[str, pd.DataFrame]:
    con, _ = _ingested(files)
    build_partials(DuckDBEngine(con), sample_cap=24, bucket_s=60)
    parts = {n: con.execute(f"SELECT * FROM {n} ORDER BY ALL").df() for n in PARTIALS}
    days = "SELECT day, CAST(sum(requests) AS BIGINT) AS rows FROM part_totals GROUP BY 1"
    parts["days"] = con.execute(f"{days} ORDER BY 1").df()
    con.close()
    return parts


def test_late_rows_fold_in_any_order_as_one_scan_of_both_files(late_files, tmp_path):
    a, b = late_files
    want = _one_scan_partials([a, b])
    only_a = _one_scan_partials([a])
    for order in ([a], [b]), ([b], [a]), ([a], [a], [b]):
        state = tmp_path / ("-".join(f[0].stem for f in order) + ".duckdb")
        for files in order:
            _fold(state, files)
        got = _store_tables(state)
        label = " then ".join(f[0].name for f in order)
        for name in PARTIALS:
            assert len(want[name]) > 100, name
            pd.testing.assert_frame_equal(got[name], want[name], obj=f"{label}: {name}")
        pd.testing.assert_frame_equal(got["days"][["day", "rows"]], want["days"], obj=label)
        assert set(got["folded_files"]["file"]) == {str(a), str(b)}
        # rows kept: the latest day and the two before it, prompts only where sampled
        kept = got["recent_rows"]
        assert sorted(kept["day"].unique()) == list(want["days"]["day"][-3:])
        assert len(kept) == want["days"]["rows"][-3:].sum()  # each row kept once
        assert kept[list(UNREAD_COLUMNS)].isna().all().all()
        sampled = kept[SAMPLE_ONLY_COLUMN].notna()
        assert 0 < sampled.sum() < len(kept)
    # the late rows change every kind of partial of day 4, so the comparison above can fail
    day4 = want["days"]["day"].iloc[4]
    for name in PARTIALS:
        before = only_a[name][only_a[name]["day"] == day4].reset_index(drop=True)
        after = want[name][want[name]["day"] == day4].reset_index(drop=True)
        assert not before.equals(after), name


def test_two_late_folds_keep_every_request_and_account(late_files, tmp_path):
    """The issue's measurement: A then B by ``scan(state=)`` vs one scan of both."""
    a, b = late_files
    state = tmp_path / "state.duckdb"
    scan([a], state=state, window_days=DAYS)
    folded = scan([b], state=state, window_days=DAYS)
    once = scan([a, b])
    assert folded.report["summary"]["rows"] == once.report["summary"]["rows"]
    got, want = folded.accounts, once.accounts
    assert list(got.index) == list(want.index)
    assert (got["requests"] == want["requests"]).all()
    assert set(got.index[got["flagged"]]) == set(want.index[want["flagged"]])
    assert _campaigns(folded) == _campaigns(once)
    state_summary = folded.report["summary"]["state"]
    assert state_summary["late_days"] == 2 and len(state_summary["folded_days"]) == 3


def test_refolding_a_file_is_a_no_op(late_files, tmp_path):
    a, _ = late_files
    state = tmp_path / "state.duckdb"
    _fold(state, [a])
    once = _store_tables(state)
    copy = tmp_path / "renamed-copy.parquet"
    shutil.copy(a, copy)
    store = _fold(state, [a, copy])
    assert store.already_folded == [str(a), str(copy)]
    again = _store_tables(state)
    assert set(again) == set(once) >= {*PARTIALS, "days", "recent_rows", "folded_files"}
    for name, frame in once.items():
        pd.testing.assert_frame_equal(again[name], frame, obj=name)


def test_late_rows_older_than_late_days_are_refused_unchanged(late_files, tmp_path):
    a, b = late_files
    state = tmp_path / "state.duckdb"
    _fold(state, [b], late_days=1)  # latest day 6: keeps the rows of days 5 and 6
    before = _store_tables(state)
    day4 = before["days"]["day"].min().date()
    with pytest.raises(
        LateRowsError, match=rf"{re.escape(str(a))}: .* fall on {day4}.*--late-days"
    ):
        _fold(state, [a], late_days=1)
    after = _store_tables(state)
    for name, frame in before.items():
        pd.testing.assert_frame_equal(after[name], frame, obj=name)
    with pytest.raises(LateRowsError, match=str(day4)):
        _fold(state, [a], late_days=7)  # a larger --late-days cannot bring back dropped rows


def test_partials_read_no_column_the_store_drops():
    """Kept rows lack ``UNREAD_COLUMNS`` and most prompts: no partial may read them."""
    for name in PARTIALS:
        sql = partial_sql(name, sample_cap=24, bucket_s=60, source="traffic")
        sql = re.sub(r"'[^']*'", "''", sql)  # a kind named 'system_prompt' reads no column
        for column in UNREAD_COLUMNS:
            assert not re.search(rf"\b{column}\b", sql), (name, column)
        reads_prompt = re.search(rf"\b{SAMPLE_ONLY_COLUMN}\b", sql) is not None
        assert reads_prompt == (name == "part_sample"), name
