"""Dedup on Spark: the same sketches, the same SQL, the same decisions as the DuckDB spill.

Spark reads the file itself (Parquet or JSONL) and numbers its rows in file order; the rows are
sketched in Spark's Python workers by ``mapInPandas`` calling :func:`~._sketch.sketch_chunk`
(one hashing implementation, so the signatures and band keys are the same bytes as DuckDB's);
the exact-duplicate, candidate and drop SQL of :mod:`._dedup_sql` runs through detect's engine
layer (SQLGlot to Spark SQL); pairs are verified in the workers. Only the verified pairs (about
one per duplicate) and the drops come back to the driver, where the first-kept rule is applied.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stillroom.curate._chunk_runs import DedupRun, peak_rss_mb
from stillroom.curate._dedup import DedupConfig
from stillroom.curate._dedup_sql import (
    DROPS_SQL,
    EXACT_SQL,
    VERIFY_SQL,
    band_keys_sql,
    blob_matrix,
    candidate_sql,
    first_kept,
    scores,
    to_drop,
)
from stillroom.curate._minhash import optimal_bands
from stillroom.curate._sketch import SketchSpec, sketch_chunk
from stillroom.curate.errors import InputFormatError


def _numbered_rows(spark: Any, path: Path, field: str) -> Any:
    """``(row, id, text)`` in file order: ``row`` from 0; ``id`` the row's, else ``row-N``."""
    if not path.exists():
        raise InputFormatError(f"{path}: file not found")
    frame = (
        spark.read.parquet(str(path)) if path.suffix == ".parquet" else spark.read.json(str(path))
    )
    if field not in frame.columns:
        raise InputFormatError(f"{path}: no field '{field}' (fields: {', '.join(frame.columns)})")
    has_id = "id" in frame.columns
    picked = frame.select(field, "id") if has_id else frame.select(field)
    numbered = picked.rdd.zipWithIndex().map(
        lambda pair: (pair[1], str(pair[0][1]) if has_id else f"row-{pair[1] + 1}", pair[0][0])
    )
    return spark.createDataFrame(numbered, "row long, id string, text string")


def _sketcher(spec: SketchSpec):
    def run(batches):
        for batch in batches:
            sketch = sketch_chunk([t or "" for t in batch["text"]], spec)
            n, live = len(batch), sketch.live
            out = {"row": batch["row"].to_numpy(), "f1": sketch.f1.view(np.int64),
                   "f2": sketch.f2.view(np.int64), "live": live}  # fmt: skip
            sigs: list[bytes | None] = [None] * n
            for pos, sig in zip(np.flatnonzero(live).tolist(), sketch.sig, strict=True):
                sigs[pos] = sig.tobytes()
            out["sig"] = sigs
            for j in range(spec.bands):
                column = np.zeros(n, dtype=np.int64)
                column[live] = sketch.keys[:, j]
                out[f"b{j}"] = column
            yield pd.DataFrame(out)

    return run


def _verifier(threshold: float, num_perm: int):
    def run(batches):
        for batch in batches:
            si, sk = blob_matrix(batch["si"], num_perm), blob_matrix(batch["sk"], num_perm)
            score = scores(si, sk) if len(batch) else np.zeros(0)
            hit = score >= threshold
            yield pd.DataFrame(
                {
                    "i": batch["i"].to_numpy()[hit],
                    "k": batch["k"].to_numpy()[hit],
                    "score": score[hit],
                }
            )

    return run


def _local_python(spark: Any) -> None:
    if "PYSPARK_PYTHON" not in os.environ and spark.sparkContext.master.startswith("local"):
        spark.sparkContext.pythonExec = sys.executable  # local workers need this venv's rensa


def _spark_drops(spark: Any, total: int, config: DedupConfig, what: str) -> list:
    """The drops ``(row, id, Drop)`` from the views ``ids``, ``fps``, ``sigs`` and
    ``live_keys`` (band keys of rows with a signature): exact duplicates, candidates, their
    verification in the workers, the first-kept rule on the driver."""
    from stillroom.detect import SparkEngine, to_spark_sql

    engine, t = SparkEngine(spark), config.near_threshold
    engine.table("exact", EXACT_SQL)
    near = pd.DataFrame({"row": np.zeros(0, np.int64), "kept": np.zeros(0, np.int64),
                         "score": np.zeros(0, np.float64)})  # fmt: skip
    bands = optimal_bands(t, config.num_perm) if t is not None else 0
    if bands:
        engine.table("keys", "SELECT * FROM live_keys WHERE row NOT IN (SELECT row FROM exact)")
        engine.table("pairs", candidate_sql(band_keys_sql(range(bands))))
        edges = (
            spark.sql(to_spark_sql(VERIFY_SQL))
            .mapInPandas(_verifier(t, config.num_perm), "i long, k long, score double")
            .toPandas()
            .sort_values(["i", "k"])
        )
        decided = list(
            first_kept(
                [(edges["i"].to_numpy(), edges["k"].to_numpy(), edges["score"].to_numpy())], total
            )
        )
        if decided:
            near = pd.DataFrame(decided, columns=["row", "kept", "score"])
    engine.put("near", near)
    found = engine.frame(DROPS_SQL)
    for name in ("near", "pairs", "keys", "exact"):
        engine.drop(name)
    return [
        (int(r), str(i), to_drop(what, t, str(m), None if pd.isna(s) else float(s)))
        for r, i, m, s in zip(
            found["row"], found["id"], found["matched"], found["score"], strict=True
        )
    ]


def spark_dedup(
    spark: Any,
    path: str | Path,
    field: str,
    config: DedupConfig | None = None,
    what: str = "prompt",
) -> tuple[DedupRun, list]:
    """Dedup ``field`` of a Parquet or JSONL file on ``spark``: the run and its drops
    ``(row, id, Drop)`` in row order, as :func:`~._chunk_runs.dedup_chunks` gives them."""
    config, start = config or DedupConfig(), time.perf_counter()
    _local_python(spark)
    t = config.near_threshold
    bands = optimal_bands(t, config.num_perm) if t is not None else 0
    spec = SketchSpec(config.shingle_words, config.num_perm, config.seed, bands)
    schema = "row long, f1 long, f2 long, live boolean, sig binary" + "".join(
        f", b{j} long" for j in range(bands)
    )
    rows = _numbered_rows(spark, Path(path), field)
    sketched = rows.mapInPandas(_sketcher(spec), schema).persist()
    sketched.createOrReplaceTempView("sketched")
    total = sketched.count()  # sketches every row once, into the cache
    rows.select("row", "id").createOrReplaceTempView("ids")
    spark.sql("SELECT row, f1, f2 FROM sketched").createOrReplaceTempView("fps")
    spark.sql("SELECT row, sig FROM sketched WHERE live").createOrReplaceTempView("sigs")
    cols = "".join(f", b{j}" for j in range(bands))
    spark.sql(f"SELECT row{cols} FROM sketched WHERE live").createOrReplaceTempView("live_keys")
    drops = _spark_drops(spark, total, config, what)
    sketched.unpersist()
    exact = sum(1 for *_, d in drops if d.reason.startswith("exact"))
    run = DedupRun(
        total, exact, len(drops) - exact, total - len(drops), "spark",
        round(time.perf_counter() - start, 3), round(peak_rss_mb(), 1),
    )  # fmt: skip
    return run, drops


def spill_on_spark(spark: Any, spill: Any) -> list:
    """A :class:`~._spill.SpilledDedup`'s drops, decided by Spark from its spilled sketches
    (exported to Parquet beside them): the same SQL and the same drops as ``spill.drops()``,
    the join and the verification on the cluster."""
    _local_python(spark)
    out = spill.folder / "parquet"
    out.mkdir(exist_ok=True)
    for table, view in (("ids", "ids"), ("fps", "fps"), ("sigs", "sigs"), ("keys", "live_keys")):
        target = out / f"{table}.parquet"
        spill.con.execute(f"COPY {table} TO '{target}' (FORMAT parquet)")
        spark.read.parquet(str(target)).createOrReplaceTempView(view)
    return _spark_drops(spark, spill.rows, spill.config, spill.what)
