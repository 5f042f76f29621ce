"""Sketching rows for the out-of-core dedup: the one hashing implementation every engine uses.

A chunk of texts becomes a :class:`Sketch`: each row's exact-duplicate fingerprint (two
uint64 halves of :func:`~stillroom.curate._text.fingerprint`), its MinHash signature (rensa,
the same numbers the in-memory :class:`~stillroom.curate._minhash.MinHashIndex` computes) and
its LSH band keys (numpy). Everything here is a pure function of the texts, so chunks can be
sketched in worker processes (:func:`sketch_stream`) or in Spark's Python workers and give the
same bytes.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import chain

import numpy as np

from stillroom.curate._chunk_text import shingle_hashes
from stillroom.curate._minhash import _rensa
from stillroom.curate._rensa_hash import RENSA_HASH_VERSION
from stillroom.curate._text import fingerprint_and_shingles, fingerprint_digest, lowered

_MIX = np.uint64(0x9E3779B97F4A7C15)


def signatures(token_sets: Sequence[list[str]], num_perm: int, seed: int) -> np.ndarray:
    """``(rows, num_perm)`` uint32 MinHash signatures, as rensa computes them."""
    matrix = _rensa().RMinHash.digest_matrix_from_token_sets(token_sets, num_perm, seed)
    return _to_array(matrix.to_rows(), num_perm)


def _to_array(rows: list[list[int]], num_perm: int) -> np.ndarray:
    flat = np.fromiter(chain.from_iterable(rows), dtype=np.uint32, count=len(rows) * num_perm)
    return flat.reshape(len(rows), num_perm)


def band_keys(sigs: np.ndarray, bands: int) -> np.ndarray:
    """``(rows, bands)`` int64 keys: each band's ``num_perm / bands`` values mixed into 64 bits."""
    n, num_perm = sigs.shape
    per = sigs.reshape(n, bands, num_perm // bands).astype(np.uint64)
    key = np.zeros((n, bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(per.shape[2]):
            key = (key ^ per[:, :, j]) * _MIX
            key ^= key >> np.uint64(29)
    return key.view(np.int64)


@dataclass(frozen=True)
class Sketch:
    """One chunk, sketched: ``f1``/``f2`` per row; ``sig`` and ``keys`` per ``live`` row (one
    with at least one shingle; rows without never match, as in memory)."""

    f1: np.ndarray
    f2: np.ndarray
    live: np.ndarray
    sig: np.ndarray
    keys: np.ndarray


@dataclass(frozen=True)
class SketchSpec:
    """What to compute: ``bands=0`` for exact duplicates only."""

    shingle_words: int = 3
    num_perm: int = 128
    seed: int = 0
    bands: int = 32


def sketch_chunk(texts: Sequence[str], spec: SketchSpec) -> Sketch:
    """Sketch ``texts``: the shingles are hashed in numpy (:mod:`._chunk_text`) when the
    installed rensa hashes tokens as that module does, else as strings by rensa
    (:func:`sketch_chunk_reference`); both give the same bytes."""
    if spec.bands and not _numpy_hash_is_rensas():
        return sketch_chunk_reference(texts, spec)
    lows = [lowered(t) for t in texts]
    f1, f2 = _fingerprints([fingerprint_digest(low) for low in lows])
    if not spec.bands:
        return _exact_only(f1, f2, spec)
    hashes, counts = shingle_hashes(lows, spec.shingle_words)
    live = counts > 0
    if not live.any():
        return _no_live(f1, f2, live, spec)
    offsets = np.concatenate(([0], np.cumsum(counts[live]))).astype(np.uint64)
    rensa = _rensa().RMinHash
    matrix = rensa.digest_matrix_from_flat_token_hashes(hashes, offsets, spec.num_perm, spec.seed)
    sig = _to_array(matrix.to_rows(), spec.num_perm)
    return Sketch(f1, f2, live, sig, band_keys(sig, spec.bands))


def _numpy_hash_is_rensas() -> bool:
    rensa = _rensa().RMinHash
    return getattr(rensa, "ALGORITHM_VERSION", None) == RENSA_HASH_VERSION and hasattr(
        rensa, "digest_matrix_from_flat_token_hashes"
    )


def sketch_chunk_reference(texts: Sequence[str], spec: SketchSpec) -> Sketch:
    """The sketch with every shingle a Python string, hashed by rensa: the reference
    :func:`sketch_chunk` equals, and its path where rensa's token hash is not the numpy one."""
    pairs = [fingerprint_and_shingles(t, spec.shingle_words) for t in texts]
    f1, f2 = _fingerprints([d for d, _ in pairs])
    if not spec.bands:
        return _exact_only(f1, f2, spec)
    sets = [s for _, s in pairs]
    live = np.array([bool(s) for s in sets], dtype=bool)
    kept = [s for s in sets if s]
    if not kept:
        return _no_live(f1, f2, live, spec)
    sig = signatures(kept, spec.num_perm, spec.seed)
    return Sketch(f1, f2, live, sig, band_keys(sig, spec.bands))


def _fingerprints(digests: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """The fingerprints' two big-endian halves: int(hex[:16], 16) and int(hex[16:], 16)."""
    if not digests:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    halves = np.frombuffer(b"".join(digests), dtype=">u8").reshape(-1, 2)
    return halves[:, 0].astype(np.uint64), halves[:, 1].astype(np.uint64)


def _exact_only(f1: np.ndarray, f2: np.ndarray, spec: SketchSpec) -> Sketch:
    none = np.zeros(len(f1), dtype=bool)
    return Sketch(f1, f2, none, np.zeros((0, spec.num_perm), np.uint32), np.zeros((0, 0)))


def _no_live(f1: np.ndarray, f2: np.ndarray, live: np.ndarray, spec: SketchSpec) -> Sketch:
    empty = np.zeros((0, spec.num_perm), dtype=np.uint32)
    return Sketch(f1, f2, live, empty, np.zeros((0, spec.bands), dtype=np.int64))


def sketch_stream(
    chunks: Iterable[tuple[list[str], list[str]]], spec: SketchSpec, workers: int = 1
) -> Iterator[tuple[list[str], Sketch]]:
    """``(ids, Sketch)`` per chunk, in order; ``workers > 1`` sketches that many chunks at once
    in worker processes, with at most ``workers + 1`` chunks in flight (memory stays bounded)."""
    if workers <= 1:
        for texts, ids in chunks:
            yield ids, sketch_chunk(texts, spec)
        return
    # forkserver: workers fork from a clean server, not from a process with DuckDB's threads
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        pending: deque = deque()
        for texts, ids in chunks:
            pending.append((ids, pool.submit(sketch_chunk, texts, spec)))
            if len(pending) > workers:
                done_ids, future = pending.popleft()
                yield done_ids, future.result()
        while pending:
            done_ids, future = pending.popleft()
            yield done_ids, future.result()
