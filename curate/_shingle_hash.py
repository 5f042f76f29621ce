"""Word-shingle hashes of a chunk of texts in numpy, without a Python object per shingle.

The out-of-core sketch's hot path. :func:`~stillroom.curate._text.shingles` cuts a text into
word n-grams as Python strings and rensa hashes each string's UTF-8 bytes; building those
strings cost most of the sketch's time. Here a whole chunk is one code-point array: a table says
which code points are word characters (built from ``_text``'s word regex itself, so the words
are the same), the words are laid out once as UTF-8 bytes with one space between them, and each
shingle is a byte span of that buffer, hashed by :func:`token_hashes`, a numpy copy of rensa's
token hash (``RMinHash.ALGORITHM_VERSION`` 2). The hashes then go to rensa's
``digest_matrix_from_flat_token_hashes``: the same signatures as hashing the strings
(``tests/curate/test_curate_fast_sketch.py`` checks it byte for byte against the string path).
A shingle repeated in a row is hashed twice, which cannot change a minimum.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import as_strided

from stillroom.curate._text import _WORD

RENSA_HASH_VERSION = 2
_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_SEED1 = np.uint64(0x243F6A8885A308D3)
_SEED2 = np.uint64(0x13198A2E03707344)
_ZERO_GUARD = np.uint64(0xA4093822299F31D0)
_K = np.uint64(0xF1357AEA2E62A9C5)
_PAD = 16


@functools.cache
def word_table() -> np.ndarray:
    """``table[code point]``: whether ``_text``'s word regex matches that character."""
    table = np.zeros(0x110000, dtype=bool)
    for match in _WORD.finditer("".join(map(chr, range(0x110000)))):
        table[match.start() : match.end()] = True
    return table


def _mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The low and high halves of the 128-bit product ``x * y``, xor-ed (rensa's multiply_mix)."""
    x0, x1, y0, y1 = x & _M32, x >> _S32, y & _M32, y >> _S32
    p00, p01, p10 = x0 * y0, x0 * y1, x1 * y0
    mid = (p00 >> _S32) + (p01 & _M32) + (p10 & _M32)
    high = x1 * y1 + (p01 >> _S32) + (p10 >> _S32) + (mid >> _S32)
    return (x * y) ^ high


def _u64_at(buf: np.ndarray) -> np.ndarray:
    """A uint64 view of ``buf`` at every byte offset (unaligned, little-endian, no copy)."""
    whole = np.frombuffer(buf, dtype="<u8", count=len(buf) // 8)
    return as_strided(whole, shape=(len(buf) - 8,), strides=(1,), writeable=False)


def token_hashes(buf: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """rensa's 64-bit hash of each byte span ``buf[start:start + length]`` (``buf`` is uint8 with
    at least 16 bytes after the last span)."""
    u64 = _u64_at(buf)
    with np.errstate(over="ignore"):
        s0, s1 = np.full(len(start), _SEED1), np.full(len(start), _SEED2)
        i = np.flatnonzero((length >= 8) & (length <= 16))
        s0[i] ^= u64[start[i]]
        s1[i] ^= u64[start[i] + length[i] - 8]
        i = np.flatnonzero((length >= 4) & (length < 8))
        s0[i] ^= u64[start[i]] & _M32
        s1[i] ^= u64[start[i] + length[i] - 4] & _M32
        i = np.flatnonzero((length > 0) & (length < 4))
        s0[i] ^= buf[start[i]].astype(np.uint64)
        last, mid = buf[start[i] + length[i] - 1], buf[start[i] + length[i] // 2]
        s1[i] ^= (last.astype(np.uint64) << np.uint64(8)) | mid
        i = np.flatnonzero(length > 16)
        s0[i], s1[i] = _long_spans(u64, start[i], length[i], s0[i], s1[i])
        h = (_mix(s0, s1) ^ length.astype(np.uint64)) * _K
        return (h << np.uint64(26)) | (h >> np.uint64(38))


def _long_spans(u64, start, length, s0, s1) -> tuple[np.ndarray, np.ndarray]:
    """Spans over 16 bytes: 16-byte blocks folded in, then the last 16 bytes."""
    block = 0
    while len(on := np.flatnonzero(16 * block < length - 16)):
        at = start[on] + 16 * block
        t = _mix(s0[on] ^ u64[at], _ZERO_GUARD ^ u64[at + 8])
        s0[on], s1[on] = s1[on], t
        block += 1
    return s0 ^ u64[start + length - 16], s1 ^ u64[start + length - 8]


def shingle_hashes(lowered: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(hashes, counts)``: the token hashes of every row's word ``n``-grams, row after row,
    and how many each row has (0 for a row without words; one gram of all its words for a row
    of fewer than ``n``). ``lowered`` are texts already NFKC-normalised and lower-cased."""
    text = " ".join(lowered) + " "  # a non-word character after every row
    raw = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    is_word = _word_bytes(raw)
    edges = np.diff(is_word.view(np.int8), prepend=np.int8(0))
    first, end = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    sizes = [len(t) if t.isascii() else len(t.encode("utf-8", "surrogatepass")) for t in lowered]
    row_end = np.cumsum(np.array(sizes, dtype=np.int64) + 1)
    words = np.diff(np.searchsorted(first, row_end), prepend=0)
    buf, word_first = _words_spaced(raw, is_word, end - first)
    counts = np.where(words >= n, words - n + 1, (words > 0).astype(np.int64))
    # the first word of each gram, and its last
    offset = np.cumsum(counts) - counts
    gram = np.arange(int(counts.sum())) - np.repeat(offset - (np.cumsum(words) - words), counts)
    last = gram + np.repeat(np.minimum(words, n), counts) - 1
    start = word_first[gram]
    return token_hashes(buf, start, word_first[last] + (end - first)[last] - start), counts


def _word_bytes(raw: np.ndarray) -> np.ndarray:
    """Which bytes of UTF-8 ``raw`` belong to a word character."""
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


def _words_spaced(raw: np.ndarray, is_word: np.ndarray, lengths: np.ndarray):
    """The words, each followed by one space, as padded UTF-8 bytes, and each word's first byte."""
    keep = is_word.copy()
    keep[np.flatnonzero(is_word[:-1] & ~is_word[1:]) + 1] = True  # the byte after each word
    laid = np.where(is_word, raw, np.uint8(32))[keep]
    buf = np.concatenate((laid, np.zeros(_PAD, dtype=np.uint8)))
    return buf, np.cumsum(lengths + 1) - (lengths + 1)
