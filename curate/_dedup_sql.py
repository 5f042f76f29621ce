"""The out-of-core dedup's SQL and decision rule, written once for every engine (DuckDB as
written, Spark through the shared SQLGlot transpiler), over four tables: ``ids(row, id)``,
``fps(row, f1, f2)``, ``sigs(row, sig)`` and ``keys(row, b0..bN)`` (see ``_sketch``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from stillroom.curate._drop import Drop

# exact duplicates: every row whose fingerprint an earlier row has, with that first row
EXACT_SQL = (
    "SELECT f.row, m.first FROM fps f JOIN ("
    "SELECT f1, f2, min(row) AS first FROM fps GROUP BY f1, f2 HAVING count(*) > 1"
    ") m ON f.f1 = m.f1 AND f.f2 = m.f2 WHERE f.row > m.first"
)
# each distinct candidate pair with both signatures (k < i)
VERIFY_SQL = (
    "SELECT p.i, p.k, a.sig AS si, b.sig AS sk FROM (SELECT DISTINCT k, i FROM pairs) p "
    "JOIN sigs a ON a.row = p.i JOIN sigs b ON b.row = p.k"
)
# every drop, exact and near, with its id and the id of the row it names
DROPS_SQL = (
    "SELECT d.row, r.id, m.id AS matched, d.score FROM ("
    "SELECT row, first AS kept, CAST(NULL AS DOUBLE) AS score FROM exact "
    "UNION ALL SELECT row, kept, score FROM near) d "
    "JOIN ids r ON r.row = d.row JOIN ids m ON m.row = d.kept ORDER BY d.row"
)


def band_keys_sql(bands: range) -> str:
    """``keys``'s band columns as rows ``(row, band, key)``, for the bands given."""
    return " UNION ALL ".join(f"SELECT row, {j} AS band, b{j} AS key FROM keys" for j in bands)


def candidate_sql(band_keys: str) -> str:
    """Pairs ``(k < i)`` of rows that share a key in some band: a self-join on the ``(band,
    key)`` held by more than one row. DuckDB runs it one band at a time (small hash tables);
    Spark all bands in one job."""
    return (
        f"WITH b AS ({band_keys}), "
        "shared AS (SELECT band, key FROM b GROUP BY band, key HAVING count(*) > 1), "
        "m AS (SELECT b.row, b.band, b.key FROM b JOIN shared s ON b.band = s.band AND b.key = s.key) "
        "SELECT a.row AS k, c.row AS i FROM m a JOIN m c "
        "ON a.band = c.band AND a.key = c.key AND a.row < c.row"
    )


def blob_matrix(blobs: Iterable[bytes], num_perm: int) -> np.ndarray:
    """Signature BLOBs (equal length, from Spark's pandas batches) as a ``(rows, num_perm)``
    uint32 matrix (DuckDB's Arrow batches are read without a copy, ``_spill._blob_matrix``)."""
    joined = b"".join(blobs)
    return np.frombuffer(joined, dtype=np.uint32).reshape(-1, num_perm)


def scores(si: np.ndarray, sk: np.ndarray) -> np.ndarray:
    """Estimated Jaccard of each pair of signature rows: the share of equal values (rensa's)."""
    return (si == sk).sum(axis=1) / si.shape[1]


def first_kept(
    edges: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], rows: int
) -> Iterator[tuple[int, int, float]]:
    """The decisions, from verified pairs ``(i, k, score)`` in batches sorted by ``(i, k)``: a
    row drops naming the first earlier row it matches that is itself kept (the in-memory
    rule, so a chain A~B~C drops B and keeps C when A is not ~C)."""
    dropped = np.zeros(rows, dtype=bool)
    for i_col, k_col, s_col in edges:
        for i, k, s in zip(i_col.tolist(), k_col.tolist(), s_col.tolist(), strict=True):
            if not dropped[i] and not dropped[k]:
                dropped[i] = True
                yield i, k, s


def to_drop(what: str, threshold: float | None, matched: str, score: float | None) -> Drop:
    """The :class:`Drop` for a row found by SQL (``score`` None: an exact duplicate)."""
    stage = f"dedup-{what}"
    if score is None:
        return Drop(stage, f"exact duplicate {what}", matched, 1.0)
    reason = f"near-duplicate {what} (estimated Jaccard {score:.2f} >= {threshold})"
    return Drop(stage, reason, matched, round(score, 4))
