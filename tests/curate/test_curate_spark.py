"""curate's dedup on Spark (local mode) gives the DuckDB spill's decisions, from the same
sketches and the same SQL; the 200k-row parity is a bench (``bench/curate_scale.py --spark``),
as it takes minutes on 2 cores."""

import pyarrow as pa
import pyarrow.parquet as pq

from stillroom.curate import DedupConfig
from stillroom.curate._inputs import read_field_chunks
from stillroom.curate._spark_dedup import spark_dedup
from stillroom.curate._spill import ScaleConfig, dedup_chunks
from tests.curate.test_curate_spill import _rows


def test_spark_and_duckdb_dedup_agree(spark, tmp_path):
    texts = _rows(600, seed=8)
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(len(texts))], "answer": texts}), path)
    on_spark, spark_drops = spark_dedup(spark, path, "answer", DedupConfig(), "answer")
    on_duckdb, duck_drops = dedup_chunks(
        read_field_chunks(path, "answer", 300), DedupConfig(), ScaleConfig(), "answer", "disk"
    )
    assert spark_drops == duck_drops  # rows, ids, the row each names, the estimated Jaccard
    assert on_spark.near > 20 and on_spark.exact > 20 and on_spark.path == "spark"
    assert (on_spark.rows, on_spark.kept) == (on_duckdb.rows, on_duckdb.kept)
