"""Where row-level SQL runs: embedded DuckDB (default) or Spark, from one definition.

Every row-level stage (ingest's derived columns, per-account features, artifacts, pairs, sync
edges, the sample, the campaign timeline) is written once, in DuckDB SQL, and run through an
:class:`Engine`: four verbs (``table``, ``frame``, ``scalar``, ``put``) over named temp
tables.  :class:`DuckDBEngine` runs the SQL as written; :class:`SparkEngine` transpiles it to
Spark SQL with SQLGlot and runs it on a ``SparkSession``.  Nothing is written twice by hand.

Functions whose two engines' built-ins differ are *portable functions*, spelled the same in
the SQL and expanded per engine (a DuckDB macro, a SQLGlot rewrite for Spark):

* ``stable_hash(x)``: the first 60 bits of ``md5(CAST(x AS text))`` as a BIGINT.  DuckDB's
  and Spark's ``hash()`` differ, so prompt hashes, template keys, sampling order and the sync
  MinHash all use this one.
* ``epoch_us(ts)``: microseconds since the epoch (UTC), a BIGINT.
"""

from __future__ import annotations

import duckdb
import pandas as pd

DUCKDB_MACROS = (
    "CREATE OR REPLACE MACRO stable_hash(x) AS "
    "CAST(('0x' || substr(md5(CAST(x AS VARCHAR)), 1, 15)) AS BIGINT)",
)
SPARK_FUNCTIONS = {
    "stable_hash": "CAST(CONV(SUBSTRING(MD5(CAST({0} AS STRING)), 1, 15), 16, 10) AS BIGINT)",
    "epoch_us": "UNIX_MICROS(CAST({0} AS TIMESTAMP))",
}


class Engine:
    """Runs DuckDB-dialect SQL over named temp tables."""

    name = "engine"

    def table(self, name: str, sql: str) -> None:
        """Create (or replace) temp table ``name`` as the result of ``sql``."""
        raise NotImplementedError

    def frame(self, sql: str) -> pd.DataFrame:
        raise NotImplementedError

    def scalar(self, sql: str):
        return self.frame(sql).iloc[0, 0]

    def put(self, name: str, frame: pd.DataFrame) -> None:
        """A pandas frame as temp table ``name``."""
        raise NotImplementedError

    def drop(self, name: str) -> None:
        raise NotImplementedError

    def materialize(self, names) -> None:
        """Compute temp tables ``names`` now (an engine with lazy tables must, before the
        tables they read are dropped); a no-op where tables are computed when created."""

    def limit_memory(self, limit: str) -> None:
        """Hold the engine's own memory (buffers, cached tables) to ``limit`` (``"1.5GB"``)
        from now on, spilling beyond it; a no-op where the engine runs in another process."""


class DuckDBEngine(Engine):
    name = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        for macro in DUCKDB_MACROS:
            con.execute(macro)

    def table(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")

    def frame(self, sql: str) -> pd.DataFrame:
        return self.con.execute(sql).df()

    def scalar(self, sql: str):
        return self.con.execute(sql).fetchone()[0]

    def put(self, name: str, frame: pd.DataFrame) -> None:
        self.con.register(f"{name}_df", frame)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_df")
        self.con.unregister(f"{name}_df")

    def drop(self, name: str) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {name}")

    def limit_memory(self, limit: str) -> None:
        self.con.execute(f"SET memory_limit = '{limit}'")

    def ingest(self, paths, column_map):
        from stillroom.detect._ingest import ingest_logs

        return ingest_logs(self.con, paths, column_map)


_UNITS = {"": 1, "b": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def memory_bytes(text: str) -> int | None:
    """Bytes in a size as DuckDB reads it (``"3GB"`` = 3e9, ``"3GiB"`` = 3 * 2**30,
    ``"500 MB"``); None for anything else (a percentage, say)."""
    import re

    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?)(b?)(?:ytes?)?\s*", text.lower())
    if match is None:
        return None
    number, unit, binary, _ = match.groups()
    scale = 1024 ** "kmgt".index(unit) * 1024 if binary and unit else _UNITS[unit]
    return int(float(number) * scale)


def to_spark_sql(sql: str) -> str:
    """DuckDB SQL -> Spark SQL (SQLGlot), the portable functions expanded."""
    import sqlglot
    from sqlglot import exp

    def expand(node):
        if isinstance(node, exp.Anonymous) and node.name.lower() in SPARK_FUNCTIONS:
            args = [a.transform(expand).sql(dialect="spark") for a in node.expressions]
            return sqlglot.parse_one(SPARK_FUNCTIONS[node.name.lower()].format(*args), read="spark")
        # DuckDB reads 1.5 as a DOUBLE, Spark as a DECIMAL (which then rounds divisions)
        if isinstance(node, exp.Literal) and not node.is_string and "." in node.this:
            return exp.cast(node.copy(), "double")
        return node

    tree = sqlglot.parse_one(sql, read="duckdb").transform(expand)
    return tree.sql(dialect="spark")
