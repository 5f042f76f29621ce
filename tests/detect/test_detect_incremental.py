"""Incremental scans: ten daily folds flag as one scan of the ten days; folds are idempotent,
a crash mid-fold leaves the store as it was, old days age out, migrations are numbered (an
old rows-store becomes partials), the median gap from the histograms is within 1%."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from stillroom.cli import app
from stillroom.detect import ConfigError, scan, simulate
from stillroom.detect._engine import DuckDBEngine
from stillroom.detect._ingest import ingest_logs
from stillroom.detect._partials import PARTIALS, build_partials
from stillroom.detect._state import MIGRATIONS, StateStore

DAYS = 10


@pytest.fixture(scope="module")
def day_files(tmp_path_factory):
    """A simulated 14-day log split into one Parquet file per UTC day (the first ten)."""
    root = tmp_path_factory.mktemp("incremental")
    sim = simulate(root / "all.parquet", seed=5, scale=0.3)
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
        result = CliRunner().invoke(app, [*args, "--out", str(out)])
        assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())["summary"]
    assert summary["state"]["days"] == [p.stem for p in day_files[:2]]
    assert summary["state"]["window_days"] == 7
    result = CliRunner().invoke(app, [*args, "--window-days", "0", "--out", str(out)])
    assert result.exit_code != 0 and "window_days" in result.output


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
