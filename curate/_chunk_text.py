"""A chunk of texts as one UTF-8 buffer in numpy: the hashes of its rows' word shingles.

The out-of-core sketch's hot path. :mod:`._text` cuts one text at a time into Python strings
(words, n-grams), which cost most of the sketch's time. Here a chunk is one byte array: a table
built from ``_text``'s own word regex says which bytes are word characters, the words are laid
out once with one space between them, and each shingle is a byte span of that buffer, hashed by
:func:`._rensa_hash.token_hashes`. The bytes hashed are those of :func:`._text.ngrams` (checked
in ``tests/curate/test_curate_fast_sketch.py``). A shingle repeated in a row is hashed twice,
which cannot change a MinHash minimum.
"""

from __future__ import annotations

import functools

import numpy as np

from stillroom.curate._rensa_hash import PAD, token_hashes
from stillroom.curate._text import _WORD

ROWS_AT_ONCE = 1024


@functools.cache
def word_table() -> np.ndarray:
    """``table[code point]``: whether ``_text``'s word regex matches that character."""
    table = np.zeros(0x110000, dtype=bool)
    for match in _WORD.finditer("".join(map(chr, range(0x110000)))):
        table[match.start() : match.end()] = True
    return table


def word_bytes(raw: np.ndarray) -> np.ndarray:
    """Which bytes of UTF-8 ``raw`` are part of a word character."""
    table = word_table()
    is_word = table[:256][raw]  # right for ASCII bytes; the rest is mended below
    lead = np.flatnonzero(raw >= 0xC0)
    if not len(lead):
        return is_word
    b = [raw[np.minimum(lead + k, len(raw) - 1)].astype(np.int64) & 0x3F for k in range(4)]
    head = raw[lead].astype(np.int64)
    size = 2 + (head >= 0xE0) + (head >= 0xF0).astype(np.int64)
    point = np.select(
        [size == 2, size == 3],
        [(head & 0x1F) << 6 | b[1], (head & 0x0F) << 12 | b[1] << 6 | b[2]],
        (head & 0x07) << 18 | b[1] << 12 | b[2] << 6 | b[3],
    )
    is_word[raw >= 0x80] = np.repeat(table[point], size)
    return is_word


def shingle_hashes(lowered: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(hashes, counts)`` of texts already NFKC-normalised and lower-cased: the token hashes
    of every row's word ``n``-grams, row after row, and how many grams each row has (0 without
    words; one gram of all its words under ``n`` words)."""
    if not lowered:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    # a few hundred KB at a time, so that numpy's temporaries stay in the CPU's cache
    parts = [_piece(lowered[k : k + ROWS_AT_ONCE], n) for k in range(0, len(lowered), ROWS_AT_ONCE)]
    return np.concatenate([h for h, _ in parts]), np.concatenate([c for _, c in parts])


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


def _piece(lowered: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    text = " ".join(lowered) + " "  # a non-word character after every row
    raw = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    is_word = word_bytes(raw)
    sizes = [len(t) if t.isascii() else len(t.encode("utf-8", "surrogatepass")) for t in lowered]
    row_end = np.cumsum(np.array(sizes, dtype=np.int64) + 1)
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
