"""A chunk of texts as one UTF-8 buffer in numpy: its rows' fingerprints and shingle hashes.

The out-of-core sketch's hot path. :mod:`._text` cuts one text at a time into Python strings
(words, n-grams), which cost most of the sketch's time. Here a chunk is one byte array. A table
built from ``_text``'s own definitions (its word regex, and ``re``'s ``\\s``, which is where
``str.split()`` splits) says which bytes are word characters and which are whitespace; the words
(or the whitespace-separated tokens) are laid out once with one space between them; each word
shingle is then a byte span of that buffer, hashed by :func:`._rensa_hash.token_hashes`, and
each row's fingerprint is the blake2b of its span of tokens. The bytes are those of
:func:`._text.fingerprint_digest` and :func:`._text.ngrams` (checked in
``tests/curate/test_curate_fast_sketch.py``). A shingle repeated in a row is hashed twice, which
cannot change a MinHash minimum.
"""

from __future__ import annotations

import functools
import hashlib
import re

import numpy as np

from stillroom.curate._rensa_hash import PAD, token_hashes
from stillroom.curate._text import _WORD

WORD, SPACE = 1, 2
ROWS_AT_ONCE = 1024
_SPACE = re.compile(r"\s+")


@functools.cache
def char_table() -> np.ndarray:
    """``table[code point]``: ``WORD`` where ``_text``'s word regex matches the character,
    ``SPACE`` where ``str.split()`` splits at it, else 0."""
    table = np.zeros(0x110000, dtype=np.uint8)
    every = "".join(map(chr, range(0x110000)))
    for kind, pattern in ((WORD, _WORD), (SPACE, _SPACE)):
        for match in pattern.finditer(every):
            table[match.start() : match.end()] = kind
    return table


def byte_classes(raw: np.ndarray) -> np.ndarray:
    """Each byte of UTF-8 ``raw``: the :func:`char_table` class of the character it is part of."""
    table = char_table()
    classes = table[:256][raw]  # right for ASCII bytes; the rest is mended below
    lead = np.flatnonzero(raw >= 0xC0)
    if not len(lead):
        return classes
    b = [raw[np.minimum(lead + k, len(raw) - 1)].astype(np.int64) & 0x3F for k in range(4)]
    head = raw[lead].astype(np.int64)
    size = 2 + (head >= 0xE0) + (head >= 0xF0).astype(np.int64)
    point = np.select(
        [size == 2, size == 3],
        [(head & 0x1F) << 6 | b[1], (head & 0x0F) << 12 | b[1] << 6 | b[2]],
        (head & 0x07) << 18 | b[1] << 12 | b[2] << 6 | b[3],
    )
    classes[raw >= 0x80] = np.repeat(table[point], size)
    return classes


def chunk_hashes(lowered: list[str], n: int) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """``(digests, hashes, counts)`` of texts already NFKC-normalised and lower-cased: each row's
    fingerprint (16 bytes), the token hashes of every row's word ``n``-grams row after row, and
    how many grams each row has (0 without words; one gram of all words under ``n`` words).
    ``n=0``: fingerprints only."""
    if not lowered:
        return [], np.zeros(0, np.uint64), np.zeros(0, np.int64)
    # a few hundred KB at a time, so that numpy's temporaries stay in the CPU's cache
    parts = [
        _rows_hashes(lowered[k : k + ROWS_AT_ONCE], n) for k in range(0, len(lowered), ROWS_AT_ONCE)
    ]
    digests = [d for part in parts for d in part[0]]
    return digests, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])


def _rows_hashes(lowered: list[str], n: int) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    text = " ".join(lowered) + " "  # whitespace after every row
    raw = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    classes = byte_classes(raw)
    sizes = [len(t) if t.isascii() else len(t.encode("utf-8", "surrogatepass")) for t in lowered]
    row_end = np.cumsum(np.array(sizes, dtype=np.int64) + 1)
    digests = _fingerprints(raw, classes != SPACE, row_end)
    if not n:
        return digests, np.zeros(0, np.uint64), np.zeros(len(lowered), np.int64)
    return (digests, *_shingle_hashes(raw, classes == WORD, row_end, n))


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and end (exclusive) index of each run of True (``mask`` ends in False)."""
    edges = np.diff(mask.view(np.int8), prepend=np.int8(0))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _laid_out(raw: np.ndarray, mask: np.ndarray, lengths: np.ndarray):
    """The runs of ``mask``, each followed by one space, as padded bytes, and each run's start."""
    keep = mask.copy()
    keep[np.flatnonzero(mask[:-1] & ~mask[1:]) + 1] = True  # the byte after each run
    laid = np.where(mask, raw, np.uint8(32))[keep]
    buf = np.concatenate((laid, np.zeros(PAD, dtype=np.uint8)))
    return buf, np.cumsum(lengths + 1) - (lengths + 1)


def _fingerprints(raw: np.ndarray, is_token: np.ndarray, row_end: np.ndarray) -> list[bytes]:
    """blake2b of each row's whitespace-separated tokens joined by one space."""
    first, end = _runs(is_token)
    buf, token_first = _laid_out(raw, is_token, end - first)
    upto = np.searchsorted(first, row_end)  # tokens in the rows up to each one
    before = np.append(0, upto[:-1])
    begin = np.append(token_first, 0)[before]
    stop = np.append(0, token_first + (end - first))[upto]
    stop[upto == before] = begin[upto == before]  # rows without tokens: b""
    data = memoryview(buf.tobytes())
    return [
        hashlib.blake2b(data[a:b], digest_size=16).digest()
        for a, b in zip(begin.tolist(), stop.tolist(), strict=True)
    ]


def _shingle_hashes(
    raw: np.ndarray, is_word: np.ndarray, row_end: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    first, end = _runs(is_word)
    words = np.diff(np.searchsorted(first, row_end), prepend=0)
    buf, word_first = _laid_out(raw, is_word, end - first)
    counts = np.where(words >= n, words - n + 1, (words > 0).astype(np.int64))
    # the first word of each gram, and its last
    offset = np.cumsum(counts) - counts
    gram = np.arange(int(counts.sum())) - np.repeat(offset - (np.cumsum(words) - words), counts)
    last = gram + np.repeat(np.minimum(words, n), counts) - 1
    start = word_first[gram]
    return token_hashes(buf, start, word_first[last] + (end - first)[last] - start), counts
