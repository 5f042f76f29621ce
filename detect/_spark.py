"""The Spark engine: the same row-level SQL as DuckDB, transpiled by SQLGlot, on a SparkSession.

``pyspark`` is imported only here and only when asked for (``--engine spark`` or
``scan(..., spark=session)``), so ``import stillroom.cli`` never loads it.  Spark reads the
logs (Parquet) itself, so the rows never pass through this process; what comes back is the
per-account table, the edges, the capped sample and the campaign timeline.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pandas as pd

from stillroom.detect._engine import Engine, to_spark_sql
from stillroom.detect._ingest import (
    DERIVED,
    SKIP_REASON,
    VALID_ROW,
    IngestStats,
    log_format,
    map_columns,
    parse_column_map,
    resolve_log_paths,
    typed_select,
)
from stillroom.detect.errors import EngineError, LogFormatError

MIN_JAVA = 17
INSTALL_HINT = "pip install 'stillroom[spark]'"
JAVA_HINT = "on Debian: apt-get install -y openjdk-17-jre-headless, or set JAVA_HOME"


def java_version() -> tuple[int | None, str]:
    """``(major version, java binary)`` of the Java Spark would start; ``(None, why)`` if none."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        return None, "no java on PATH and JAVA_HOME unset" if not home else f"{java} not found"
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        return None, f"{java}: {exc}"
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None, f"{java}: cannot read its version"
    major = int(match.group(1))
    return (int(match.group(2)) if major == 1 else major), java


def require_spark() -> None:
    """Raise :class:`EngineError` naming the fix when pyspark or Java 17+ is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise EngineError(f"the Spark engine needs pyspark: {INSTALL_HINT}") from exc
    major, where = java_version()
    if major is None:
        raise EngineError(f"the Spark engine needs Java {MIN_JAVA}+: {where} ({JAVA_HINT})")
    if major < MIN_JAVA:
        raise EngineError(
            f"the Spark engine needs Java {MIN_JAVA}+, found Java {major} at {where} ({JAVA_HINT})"
        )


def spark_session(
    master: str = "local[2]", *, driver_memory: str = "2g", shuffle_partitions: int = 4
):
    """A SparkSession for ``master`` (``local[2]``, ``spark://host:7077``, ``yarn``...)."""
    require_spark()
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master(master)
        .appName("stillroom-detect")
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


_SPARK_TYPES = {
    "TimestampType": "TIMESTAMP",
    "TimestampNTZType": "TIMESTAMP",
    "DateType": "DATE",
    "LongType": "BIGINT",
    "IntegerType": "INTEGER",
    "ShortType": "INTEGER",
    "DoubleType": "DOUBLE",
    "FloatType": "DOUBLE",
}


class SparkEngine(Engine):
    """Runs the row-level SQL on ``spark`` (a SparkSession); temp tables are cached views."""

    name = "spark"

    def __init__(self, spark) -> None:
        self.spark = spark
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        spark.conf.set("spark.sql.ansi.enabled", "false")  # x / 0 is NULL, as in DuckDB
        spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
        self._cached: dict[str, object] = {}

    def _view(self, name: str, df) -> None:
        old = self._cached.pop(name, None)
        df = df.persist()
        df.createOrReplaceTempView(name)
        self._cached[name] = df
        if old is not None:
            old.unpersist()

    def table(self, name: str, sql: str) -> None:
        self._view(name, self.spark.sql(to_spark_sql(sql)))

    def frame(self, sql: str) -> pd.DataFrame:
        frame = self.spark.sql(to_spark_sql(sql)).toPandas()
        for col in frame.columns:  # Spark's DECIMAL results arrive as Decimal objects
            if frame[col].dtype == object:
                first = frame[col].dropna().head(1)
                if len(first) and type(first.iloc[0]).__name__ == "Decimal":
                    frame[col] = frame[col].astype(float)
        return frame

    def put(self, name: str, frame: pd.DataFrame) -> None:
        from pyspark.sql import types as T

        kinds = {"i": T.LongType(), "u": T.LongType(), "f": T.DoubleType(), "b": T.BooleanType()}
        fields = [
            T.StructField(str(c), kinds.get(frame[c].dtype.kind, T.StringType()), True)
            for c in frame.columns
        ]
        rows = [tuple(r) for r in frame.itertuples(index=False, name=None)]
        self._view(name, self.spark.createDataFrame(rows, T.StructType(fields)))

    def materialize(self, names) -> None:
        for name in names:
            self._cached[name].count()  # fills the cache while what it reads is still cached

    def drop(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)
        old = self._cached.pop(name, None)
        if old is not None:
            old.unpersist()

    def ingest(self, paths, column_map) -> IngestStats:
        """Parquet logs -> the ``traffic`` view (the same derived columns as DuckDB's)."""
        mapping = parse_column_map(column_map)
        # URIs (s3a://, hdfs://, with globs) go to Spark as given; local paths are expanded
        remote = [str(p) for p in paths if "://" in str(p)]
        files = (
            resolve_log_paths([p for p in paths if "://" not in str(p)])
            if len(remote) < len(paths)
            else []
        )
        for path in files:
            if log_format(path) != "parquet":
                raise LogFormatError(
                    f"{path}: the Spark engine reads Parquet logs; convert it or use --engine duckdb"
                )
        files = [*files, *remote]
        raw = self.spark.read.parquet(*[str(p) for p in files])
        types = {f.name: _SPARK_TYPES.get(type(f.dataType).__name__, "VARCHAR") for f in raw.schema}
        present = map_columns(files[0], list(types), mapping)
        raw.createOrReplaceTempView("raw_logs")
        typed = f"SELECT {typed_select(present, types, raw_ts=True)} FROM raw_logs"
        self.table("typed_logs", typed)
        self.table("traffic", f"SELECT {DERIVED} FROM typed_logs WHERE {VALID_ROW}")
        stats = IngestStats(files=[str(p) for p in files], columns_present=set(present))
        stats.rows = int(self.scalar("SELECT count(*) FROM traffic"))
        reasons = self.frame(
            f"SELECT {SKIP_REASON} AS reason, count(*) AS n FROM typed_logs "
            f"WHERE NOT ({VALID_ROW}) GROUP BY 1"
        )
        for reason, n in zip(reasons["reason"], reasons["n"], strict=True):
            stats.skipped_by_reason[str(reason)] += int(n)
            stats.rows_skipped += int(n)
        self.drop("typed_logs")
        return stats
