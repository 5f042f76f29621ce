"""Where the out-of-core sketch's CPU goes: microseconds per row by part, the numpy sketch
(``curate/_chunk_text.py``) against the string sketch it replaced (``sketch_chunk_reference``),
in one process on the same rows (``bench/curate_scale.py``'s synthetic answers, 16,384-row
chunks as the disk path cuts them). CPU time (``time.process_time``), so a busy machine shifts
it less than wall time; the two whole sketches are timed twice, alternating, and their bytes
compared.

    nice -n 10 .venv/bin/python bench/curate_sketch_profile.py --rows 50000 --corpora ../shared/corpora
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from itertools import chain
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _corpora import add_corpora_option
from curate_scale import answer_chunks
from curate_speed import _vocab_and_bench

from stillroom.curate._chunk_text import ROWS_AT_ONCE, _laid_out, _runs, word_bytes, word_table
from stillroom.curate._minhash import _rensa
from stillroom.curate._rensa_hash import token_hashes
from stillroom.curate._sketch import (
    SketchSpec,
    band_keys,
    sketch_chunk,
    sketch_chunk_reference,
)
from stillroom.curate._text import _WORD, fingerprint_digest, lowered, ngrams

CHUNK = 16_384


class Parts:
    """CPU seconds by part, added up across calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._at = time.process_time()

    def start(self) -> None:
        self._at = time.process_time()

    def __call__(self, name: str) -> None:
        now = time.process_time()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._at
        self._at = now

    def show(self, title: str, rows: int) -> None:
        print(title)
        for name, s in self.seconds.items():
            print(f"  {name:44s} {s / rows * 1e6:6.1f} us/row")
        print(f"  {'sum':44s} {sum(self.seconds.values()) / rows * 1e6:6.1f} us/row")


def _lowered_and_fingerprinted(chunk: list[str], part: Parts) -> list[str]:
    """The parts both sketches share: normalise each row, then its exact fingerprint."""
    part.start()
    lows = [lowered(t) for t in chunk]
    part("NFKC + lower case")
    [fingerprint_digest(low) for low in lows]
    part("fingerprint (split, join, blake2b)")
    return lows


def numpy_parts(chunk: list[str], part: Parts) -> None:
    rensa = _rensa().RMinHash
    lows = _lowered_and_fingerprinted(chunk, part)
    hashes, counts = [], []
    for k in range(0, len(lows), ROWS_AT_ONCE):
        piece = lows[k : k + ROWS_AT_ONCE]
        raw = np.frombuffer((" ".join(piece) + " ").encode("utf-8", "surrogatepass"), np.uint8)
        is_word = word_bytes(raw)
        part("one UTF-8 buffer, word bytes")
        sizes = [len(t) if t.isascii() else len(t.encode("utf-8", "surrogatepass")) for t in piece]
        row_end = np.cumsum(np.array(sizes, dtype=np.int64) + 1)
        first, end = _runs(is_word)
        words = np.diff(np.searchsorted(first, row_end), prepend=0)
        buf, word_first = _laid_out(raw, is_word, end - first)
        n = 3
        count = np.where(words >= n, words - n + 1, (words > 0).astype(np.int64))
        offset = np.cumsum(count) - count
        gram = np.arange(int(count.sum())) - np.repeat(offset - (np.cumsum(words) - words), count)
        last = gram + np.repeat(np.minimum(words, n), count) - 1
        start = word_first[gram]
        length = word_first[last] + (end - first)[last] - start
        part("words laid out, shingle spans")
        hashes.append(token_hashes(buf, start, length))
        counts.append(count)
        part("shingle hashes (rensa's hash in numpy)")
    count = np.concatenate(counts)
    offsets = np.concatenate(([0], np.cumsum(count[count > 0]))).astype(np.uint64)
    matrix = rensa.digest_matrix_from_flat_token_hashes(np.concatenate(hashes), offsets, 128, 0)
    part("rensa MinHash of the hashes")
    _minhash_out(matrix, part)


def string_parts(chunk: list[str], part: Parts) -> None:
    rensa = _rensa().RMinHash
    lows = _lowered_and_fingerprinted(chunk, part)
    words = [_WORD.findall(low) for low in lows]
    part("word regex (findall)")
    grams = [ngrams(w, 3) for w in words]
    part("3-gram strings")
    sets = [list(dict.fromkeys(g)) for g in grams]
    part("grams deduplicated")
    matrix = rensa.digest_matrix_from_token_sets([s for s in sets if s], 128, 0)
    part("rensa hash + MinHash of the strings")
    _minhash_out(matrix, part)


def _minhash_out(matrix, part: Parts) -> None:
    rows = matrix.to_rows()
    part("rensa to_rows (Python ints)")
    sig = np.fromiter(chain.from_iterable(rows), dtype=np.uint32, count=len(rows) * 128)
    part("to numpy")
    band_keys(sig.reshape(-1, 128), 32)
    part("band keys")


def whole(fn: Callable, texts: list[str]) -> tuple[float, list]:
    start, out = time.process_time(), []
    for c in range(0, len(texts), CHUNK):
        out.append(fn(texts[c : c + CHUNK], SketchSpec()))
    return (time.process_time() - start) / len(texts) * 1e6, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    add_corpora_option(parser)
    args = parser.parse_args()
    vocab, _ = _vocab_and_bench(args.corpora)
    texts = [
        t for chunk, _ in answer_chunks(args.rows, vocab, CHUNK, np.zeros(args.rows)) for t in chunk
    ]
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"{len(texts):,} answers, {sum(map(len, texts)) / len(texts):.0f} characters a row, "
          f"{sum(not t.isascii() for t in texts):,} not ASCII; load average {load}")  # fmt: skip
    start = time.process_time()
    word_table()
    print(f"word table (once a process): {time.process_time() - start:.2f} CPU s")
    for title, fn in (("numpy sketch", numpy_parts), ("string sketch", string_parts)):
        part = Parts()
        for c in range(0, len(texts), CHUNK):
            fn(texts[c : c + CHUNK], part)
        part.show(title, len(texts))
    for _ in range(2):
        fast, fast_out = whole(sketch_chunk, texts)
        slow, slow_out = whole(sketch_chunk_reference, texts)
        same = all(
            getattr(a, f).tobytes() == getattr(b, f).tobytes()
            for a, b in zip(fast_out, slow_out, strict=True)
            for f in ("f1", "f2", "live", "sig", "keys")
        )
        print(f"sketch_chunk {fast:.1f} CPU us/row, sketch_chunk_reference {slow:.1f}: "
              f"{slow / fast:.2f}x; bytes {'identical' if same else 'DIFFER'}")  # fmt: skip
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"load average at the end {load}")


if __name__ == "__main__":
    main()
