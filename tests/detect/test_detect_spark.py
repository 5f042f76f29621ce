"""The Spark engine: the same scan as DuckDB on the same log (Spark local mode), and its errors.

One session-scoped SparkSession (local[2], 2g driver, 4 shuffle partitions) serves every test.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from typer.testing import CliRunner

from stillroom.cli import app
from stillroom.detect import scan
from stillroom.detect._engine import to_spark_sql
from stillroom.detect._spark import java_version, require_spark, spark_session
from stillroom.detect.errors import EngineError

PARITY_SCALE = 1.3  # ~200k rows (the size); this file runs in about 2 min on 2 cores
FLOAT_TOLERANCE = 1e-6


@pytest.fixture(scope="session")
def spark():
    pytest.importorskip("pyspark")
    session = spark_session("local[2]", driver_memory="2g", shuffle_partitions=4)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def parity_log(tmp_path_factory):
    from stillroom.detect.simulator import simulate

    out = tmp_path_factory.mktemp("spark") / "traffic.parquet"
    simulate(out, seed=11, scale=PARITY_SCALE)
    return out


def _campaigns(result) -> set[frozenset]:
    return {frozenset(c["accounts"]) for c in result.report["campaigns"]}


def test_spark_and_duckdb_scans_agree(spark, parity_log):
    started = time.perf_counter()
    on_duckdb = scan(parity_log)
    duckdb_s = time.perf_counter() - started
    on_spark = scan(parity_log, spark=spark)
    spark_s = time.perf_counter() - started - duckdb_s
    print(f"duckdb {duckdb_s:.1f} s, spark local[2] {spark_s:.1f} s")
    a, b = on_duckdb.accounts, on_spark.accounts
    assert on_duckdb.report["summary"]["rows"] > 190_000
    assert on_duckdb.report["summary"]["rows"] == on_spark.report["summary"]["rows"]
    assert list(a.index) == list(b.index)
    assert a["flagged"].sum() > 50
    assert set(a.index[a["flagged"]]) == set(b.index[b["flagged"]])
    assert _campaigns(on_duckdb) == _campaigns(on_spark)
    numeric = [c for c in a.columns if a[c].dtype.kind in "fiub"]
    assert len(numeric) > 30
    for col in numeric:
        x, y = a[col].astype(float).to_numpy(), b[col].astype(float).to_numpy()
        close = np.isclose(x, y, rtol=FLOAT_TOLERANCE, atol=1e-9, equal_nan=True)
        assert close.all(), (col, x[~close][:3], y[~close][:3])


def test_portable_functions_are_expanded_for_spark():
    sql = to_spark_sql("SELECT stable_hash(concat_ws('|', a, CAST(epoch_us(ts) AS VARCHAR))), 1.5")
    assert "MD5" in sql and "UNIX_MICROS" in sql and "CONV" in sql
    assert "stable_hash" not in sql.lower() and "EPOCH_US" not in sql.upper()
    assert "CAST(1.5 AS DOUBLE)" in sql


def test_cli_scan_on_spark(spark, tmp_path):
    from stillroom.detect.simulator import simulate

    log = tmp_path / "small.parquet"
    simulate(log, seed=5, scale=0.1)
    out = tmp_path / "r.json"
    # a URI goes to Spark's reader as given (s3a://, hdfs://, file://)
    args = ["detect", "scan", f"file://{log}", "--out", str(out), "--engine", "spark"]
    result = CliRunner().invoke(app, [*args, "--master", "local[2]"])
    assert result.exit_code == 0, result.output
    assert out.exists() and "rows" in result.output


def test_an_old_java_is_named(tmp_path, monkeypatch):
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.21\" 2023-10-17' >&2\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    assert java_version() == (11, str(java))
    pytest.importorskip("pyspark")
    with pytest.raises(EngineError, match=r"needs Java 17\+, found Java 11 at .*openjdk-17"):
        require_spark()


def test_no_java_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    assert java_version()[0] is None
    pytest.importorskip("pyspark")
    with pytest.raises(EngineError, match="needs Java 17"):
        require_spark()


def test_missing_pyspark_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(EngineError, match=r"stillroom\[spark\]"):
        require_spark()


def test_ci_installs_java_17_on_a_machine_without_it(tmp_path):
    """``.ci/run`` on a PATH with no java: it asks apt for openjdk-17, then runs make test."""
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for tool in ("bash", "sed", "head", "dirname", "cat"):
        (bin_ / tool).symlink_to(shutil.which(tool))
    log = tmp_path / "calls.log"
    fake_java = "#!/bin/sh\\necho 'openjdk version \\\"17.0.15\\\" 2025-04-15' >&2\\n"
    (bin_ / "apt-get").write_text(
        f'#!/bin/sh\necho "apt-get $*" >> {log}\n'
        f'case "$*" in *openjdk-17*) printf "{fake_java}" > {bin_}/java; chmod +x {bin_}/java;; esac\n'
    )
    (bin_ / "make").write_text(f'#!/bin/sh\necho "make $*" >> {log}\n')
    for tool in ("apt-get", "make"):
        (bin_ / tool).chmod(0o755)
    (bin_ / "chmod").symlink_to(shutil.which("chmod"))
    (bin_ / "printf").symlink_to(shutil.which("printf"))
    done = subprocess.run(
        ["bash", str(root / ".ci" / "run")],
        env={"PATH": str(bin_)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    calls = log.read_text().splitlines()
    assert any("install" in c and "openjdk-17-jre-headless" in c for c in calls), calls
    assert calls[-1] == "make test"
