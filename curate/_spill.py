"""Out-of-core dedup: MinHash signatures and LSH band keys spilled to a DuckDB file, candidate
pairs from a band-key self-join in SQL, only the candidates verified.

Rows arrive in chunks (:meth:`SpilledDedup.add`); each chunk is tokenized, sketched by rensa
(the same signatures as the in-memory :class:`~stillroom.curate._minhash.MinHashIndex`, so the
estimated Jaccard of every pair is the same number), cut into the same bands, and written to
DuckDB with its fingerprints and ids; only one chunk is held in Python at a time. At the end:

1. exact duplicates: rows whose fingerprint an earlier row has (SQL ``GROUP BY``);
2. candidates: per band, rows sharing a band key (a self-join), exact duplicates left out;
3. verification: each candidate pair's estimated Jaccard from the two stored signatures;
4. decisions: pairs at or above the threshold, read in row order: a row is dropped naming the
   first earlier row it matches that was kept. This is the in-memory path's rule, so a chain
   A~B, B~C (A not ~C) drops B and keeps C there and here.

DuckDB runs under ``memory_limit`` with its spill files beside the database, so the peak is
one chunk in Python plus what DuckDB is allowed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stillroom.curate._dedup import DedupConfig
from stillroom.curate._dedup_sql import (
    DROPS_SQL,
    EXACT_SQL,
    VERIFY_SQL,
    band_keys_sql,
    candidate_sql,
    first_kept,
    scores,
    to_drop,
)
from stillroom.curate._drop import Drop
from stillroom.curate._minhash import optimal_bands
from stillroom.curate._sketch import Sketch, SketchSpec, sketch_chunk
from stillroom.curate.errors import ConfigError

# Bytes a row costs on the in-memory path, per byte of its text (5.1 GB for 476 MB at 1M rows).
MEMORY_PATH_BYTES_PER_TEXT_BYTE = 11
# Bytes one row of a chunk costs while it is tokenized and sketched (shingles, digests).
CHUNK_BYTES_PER_ROW = 16_384
# (band, key) rows one candidate query groups at most (its hash table stays small)
BAND_ROWS_PER_QUERY = 2_000_000


@dataclass(frozen=True)
class ScaleConfig:
    """How dedup runs past memory. ``path``: ``auto`` (in memory when the input's text is small
    enough for ``memory_gb``, else spilled), ``memory`` or ``disk``. ``chunk_rows`` defaults to
    what ``memory_gb`` allows; DuckDB gets half of ``memory_gb``. ``spill_dir``: where the DuckDB
    file goes (a temporary folder by default). ``workers``: processes that sketch chunks."""

    memory_gb: float = 2.0
    path: str = "auto"
    chunk_rows: int | None = None
    spill_dir: str | None = None
    workers: int = 1

    def __post_init__(self) -> None:
        if self.memory_gb <= 0:
            raise ConfigError(f"memory_gb must be > 0, got {self.memory_gb}")
        if self.path not in ("auto", "memory", "disk"):
            raise ConfigError(f"path must be auto, memory or disk, got {self.path!r}")
        if self.chunk_rows is not None and self.chunk_rows < 1:
            raise ConfigError(f"chunk_rows must be >= 1, got {self.chunk_rows}")

    @property
    def chunk(self) -> int:
        budget = int(self.memory_gb * 2**30 / 8 / CHUNK_BYTES_PER_ROW)
        return self.chunk_rows or max(1_000, min(100_000, budget))

    @property
    def duckdb_limit(self) -> str:
        return f"{max(128, int(self.memory_gb * 1024 / 2))}MB"

    def choose(self, text_bytes: int) -> str:
        """``memory`` or ``disk`` for an input of ``text_bytes`` bytes of text."""
        if self.path != "auto":
            return self.path
        fits = text_bytes * MEMORY_PATH_BYTES_PER_TEXT_BYTE <= self.memory_gb * 2**30 / 2
        return "memory" if fits else "disk"


def connect_spill(scale: ScaleConfig, folder: str) -> Any:
    import duckdb

    con = duckdb.connect(str(Path(folder) / "spill.duckdb"))
    con.execute(f"SET memory_limit = '{scale.duckdb_limit}'")
    con.execute(f"SET temp_directory = '{Path(folder) / 'tmp'}'")
    con.execute("SET preserve_insertion_order = false")
    # signatures and band keys are random bits: DuckDB's compression analysis at each checkpoint
    # cost 4x the rest of the spill (8.2 against 1.9 CPU s for 200k rows) and saved nothing
    con.execute("SET force_compression = 'uncompressed'")
    return con


def _blob_matrix(column: Any, num_perm: int) -> np.ndarray:
    """A column of equal-length signature BLOBs (pyarrow) as a ``(rows, num_perm)`` matrix."""
    import pyarrow as pa

    arr = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    arr = arr.cast(pa.large_binary())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[
        arr.offset : arr.offset + len(arr) + 1
    ]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data.view(np.uint32).reshape(len(arr), num_perm)


class SpilledDedup:
    """Dedup of a stream of rows through a DuckDB file; use as a context manager.

    ``folder``: keep the file there (it is reopened, with the rows it holds, by the next
    ``SpilledDedup`` on that folder: a resumable curation); by default a temporary folder."""

    def __init__(
        self,
        config: DedupConfig | None = None,
        scale: ScaleConfig | None = None,
        what: str = "prompt",
        folder: str | Path | None = None,
    ) -> None:
        self.config = config or DedupConfig()
        self.scale = scale or ScaleConfig()
        self.what = what
        self.bands = (
            optimal_bands(self.config.near_threshold, self.config.num_perm)
            if self.config.near_threshold is not None
            else 0
        )
        self.spec = SketchSpec(
            self.config.shingle_words, self.config.num_perm, self.config.seed, self.bands
        )
        self._tmp = None
        if folder is None:
            self._tmp = tempfile.TemporaryDirectory(
                prefix="stillroom-dedup-", dir=self.scale.spill_dir
            )
            folder = self._tmp.name
        self.folder = Path(folder)
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.con = connect_spill(self.scale, str(folder))
        cols = ", ".join(f"b{j} BIGINT" for j in range(self.bands))
        for table in ("ids (row INTEGER, id VARCHAR)", "fps (row INTEGER, f1 UBIGINT, f2 UBIGINT)",
                      "sigs (row INTEGER, sig BLOB)", f"keys (row INTEGER{', ' + cols if cols else ''})"):  # fmt: skip
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {table}")
        # rows seen so far: the next row's number
        self.rows = self.con.execute("SELECT coalesce(max(row) + 1, 0) FROM ids").fetchall()[0][0]
        self._finished = False

    def __enter__(self) -> SpilledDedup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def truncate(self, first_row: int) -> None:
        """Forget rows from ``first_row`` on (a chunk written but never recorded as done)."""
        for table in ("ids", "fps", "sigs", "keys"):
            self.con.execute(f"DELETE FROM {table} WHERE row >= ?", [first_row])
        self.rows = first_row

    def discard(self, rows: np.ndarray) -> None:
        """Leave ``rows`` out of the dedup (rows an earlier stage dropped); ids stay."""
        import pyarrow as pa

        self.con.register("gone", pa.table({"row": np.asarray(rows, dtype=np.int32)}))
        for table in ("fps", "sigs", "keys"):
            self.con.execute(f"DELETE FROM {table} WHERE row IN (SELECT row FROM gone)")
        self.con.unregister("gone")

    def add(self, texts: Sequence[str], ids: Sequence[str]) -> None:
        """The next chunk of rows, in input order."""
        if len(texts) != len(ids):
            raise ConfigError(f"{len(texts)} texts but {len(ids)} ids")
        self.add_sketch(ids, sketch_chunk(texts, self.spec))

    def add_sketch(
        self,
        ids: Sequence[str],
        sketch: Sketch,
        rows: np.ndarray | None = None,
        salt: np.ndarray | None = None,
    ) -> None:
        """The next chunk, already sketched (by :func:`sketch_stream`, perhaps in workers).
        ``rows``: the rows' numbers (default: the next ``len(ids)``); ``salt``: a uint64 per
        row mixed into its fingerprint and band keys, so that only rows of equal salt (one
        prompt's answers) can match."""
        import pyarrow as pa

        if rows is None:
            rows = np.arange(self.rows, self.rows + len(ids), dtype=np.int32)
        rows = np.asarray(rows, dtype=np.int32)
        f1, keys = sketch.f1, sketch.keys
        if salt is not None:
            f1 = f1 ^ salt
            keys = keys ^ salt[sketch.live].view(np.int64)[:, None]
        self.con.execute("BEGIN")  # one commit per chunk
        self._put("ids", pa.table({"row": rows, "id": pa.array(list(ids), pa.string())}))
        self._put("fps", pa.table({"row": rows, "f1": f1, "f2": sketch.f2}))
        self.rows = max(self.rows, int(rows[-1]) + 1) if len(rows) else self.rows
        if self.bands and len(sketch.sig):
            live = rows[sketch.live]
            sig = np.ascontiguousarray(sketch.sig)
            blobs = pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(sig.shape[1] * 4), len(sig), [None, pa.py_buffer(sig.tobytes())]
            )
            self._put("sigs", pa.table({"row": live, "sig": blobs.cast(pa.binary())}))
            self._put(
                "keys", pa.table({"row": live} | {f"b{j}": keys[:, j] for j in range(self.bands)})
            )
        self.con.execute("COMMIT")

    def _put(self, table: str, frame: Any) -> None:
        self.con.register("chunk_in", frame)
        self.con.execute(f"INSERT INTO {table} SELECT * FROM chunk_in")
        self.con.unregister("chunk_in")

    def _read(self, sql: str, batch: int) -> Any:
        """Arrow batches of ``sql`` from a second cursor, so inserts can go on meanwhile."""
        return self.con.cursor().sql(sql).to_arrow_reader(batch)

    def finish(self) -> None:
        """Exact duplicates, candidate pairs, verification and decisions (once)."""
        if self._finished:
            return
        self._finished = True
        con = self.con
        con.execute(f"CREATE OR REPLACE TABLE exact AS {EXACT_SQL}")
        con.execute("CREATE OR REPLACE TABLE near (row INTEGER, kept INTEGER, score DOUBLE)")
        if not self.bands:
            return
        con.execute("DELETE FROM keys WHERE row IN (SELECT row FROM exact)")
        con.execute("CREATE OR REPLACE TABLE pairs (k INTEGER, i INTEGER)")
        # a few bands per query: all of them for small inputs, one for millions of rows
        step = max(1, min(self.bands, BAND_ROWS_PER_QUERY // max(1, self.rows)))
        for j in range(0, self.bands, step):
            bands = range(j, min(j + step, self.bands))
            con.execute(f"INSERT INTO pairs {candidate_sql(band_keys_sql(bands))}")
        self._verify()
        self._decide()

    def _verify(self) -> None:
        """Each distinct candidate pair's estimated Jaccard, kept where it meets the threshold."""
        import pyarrow as pa

        threshold, num_perm = self.config.near_threshold, self.config.num_perm
        self.con.execute("CREATE OR REPLACE TABLE edges (i INTEGER, k INTEGER, score DOUBLE)")
        for batch in self._read(VERIFY_SQL, 200_000):
            if not batch.num_rows:
                continue
            score = scores(
                _blob_matrix(batch.column("si"), num_perm),
                _blob_matrix(batch.column("sk"), num_perm),
            )
            hit = score >= threshold
            edges = pa.table({
                "i": batch.column("i").to_numpy()[hit],
                "k": batch.column("k").to_numpy()[hit],
                "score": score[hit],
            })  # fmt: skip
            self._put("edges", edges)

    def _decide(self) -> None:
        import pyarrow as pa

        batches = (
            tuple(b.column(c).to_numpy() for c in ("i", "k", "score"))
            for b in self._read("SELECT i, k, score FROM edges ORDER BY i, k", 500_000)
        )
        decided = list(first_kept(batches, self.rows))
        self._put("near", pa.table({
            "row": np.array([d[0] for d in decided], dtype=np.int32),
            "kept": np.array([d[1] for d in decided], dtype=np.int32),
            "score": np.array([d[2] for d in decided], dtype=np.float64),
        }))  # fmt: skip

    def counts(self) -> dict[str, int]:
        self.finish()
        exact = self.con.execute("SELECT count(*) FROM exact").fetchall()[0][0]
        near = self.con.execute("SELECT count(*) FROM near").fetchall()[0][0]
        return {"rows": self.rows, "exact": exact, "near": near, "kept": self.rows - exact - near}

    def drops(self) -> Iterator[tuple[int, str, Drop]]:
        """``(row, row id, Drop)`` for every dropped row, in row order."""
        self.finish()
        for batch in self._read(DROPS_SQL, 100_000):
            for row, rid, matched, score in zip(
                *(c.to_pylist() for c in batch.columns), strict=True
            ):
                yield row, rid, to_drop(self.what, self.config.near_threshold, matched, score)
