"""The numpy sketch (shingle hashes without Python strings) equals the string sketch byte for byte:
rensa's token hash, the word table, and whole chunks of varied text (unicode, empty, short, long)."""

import random

import numpy as np
import pytest

from stillroom.curate import _chunk_text
from stillroom.curate._chunk_text import shingle_hashes, word_bytes, word_table
from stillroom.curate._minhash import _rensa
from stillroom.curate._rensa_hash import token_hashes
from stillroom.curate._sketch import SketchSpec, sketch_chunk, sketch_chunk_reference
from stillroom.curate._text import _WORD, lowered, ngrams

ALPHABET = "abcxyz019 _-.,'\t\n\x1c\x85\u2028\u00e9\u00df\u03a9\u0130\ufb01\u2019\u00a0\u0663\u6f22\U0001f600\u3000"


def _random_texts(rng: random.Random, n: int) -> list[str]:
    words = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 24))) for _ in range(300)]
    texts = ["", " ", "...", "a", "A b", "one two three", "x" * 70, "  Ünïcode ,  Straße  "]
    while len(texts) < n:
        texts.append(" ".join(rng.choice(words) for _ in range(rng.choice([1, 2, 3, 5, 40, 200]))))
    return texts


def test_token_hashes_are_rensas_for_every_length():
    rng = random.Random(0)
    tokens = [""] + ["".join(rng.choice(ALPHABET) for _ in range(k)) for k in range(1, 90)] * 3
    raw = [t.encode() for t in tokens]
    buf = np.frombuffer(b"".join(raw) + b"\0" * 16, dtype=np.uint8)
    length = np.array([len(r) for r in raw], dtype=np.int64)
    start = np.cumsum(length) - length
    expected = np.array(_rensa().RMinHash.hash_token_sets([tokens])[0], dtype=np.uint64)
    assert np.array_equal(token_hashes(buf, start, length), expected)


def test_word_bytes_follow_the_word_regex_for_every_code_point():
    points = np.r_[0:0xD800, 0xE000:0x110000].astype(np.uint32)
    text = points.tobytes().decode("utf-32-le")
    got = word_bytes(np.frombuffer(text.encode(), np.uint8))
    table = word_table()
    assert [table[ord(c)] for c in "a\u00e9\u0663_\u2019 \u3000"] == [True] * 3 + [False] * 4
    assert table[0x10000:].sum() > 0 and not table[0x10FFFF]
    size = 1 + (points >= 0x80) + (points >= 0x800) + (points >= 0x10000).astype(np.int64)
    expected = np.repeat(table[points], size)
    assert np.array_equal(got, expected)


def test_shingle_hashes_are_the_hashes_of_the_string_shingles():
    texts = [lowered(t) for t in _random_texts(random.Random(1), 300)]
    hashes, counts = shingle_hashes(texts, 3)
    grams = [ngrams(_WORD.findall(t), 3) for t in texts]
    assert counts.tolist() == [len(g) for g in grams]
    flat = [g for gs in grams for g in gs]
    assert np.array_equal(hashes, np.array(_rensa().RMinHash.hash_token_sets([flat])[0], np.uint64))


@pytest.mark.parametrize(
    ("spec", "rows_at_once"),
    [(SketchSpec(), 1024), (SketchSpec(shingle_words=5, num_perm=64, seed=3, bands=16), 7)],
)
def test_sketch_chunk_equals_the_reference_sketch(spec, rows_at_once, monkeypatch):
    monkeypatch.setattr(_chunk_text, "ROWS_AT_ONCE", rows_at_once)  # 7: many pieces, joined
    texts = _random_texts(random.Random(2), 400)
    fast, reference = sketch_chunk(texts, spec), sketch_chunk_reference(texts, spec)
    for field in ("f1", "f2", "live", "sig", "keys"):
        mine, theirs = getattr(fast, field), getattr(reference, field)
        assert mine.dtype == theirs.dtype and mine.tobytes() == theirs.tobytes(), field
    assert 0 < fast.live.sum() < len(texts)


def test_sketch_chunk_of_no_rows_and_of_rows_without_words():
    for texts in ([], ["", " .. ", "_"]):
        fast, reference = (
            sketch_chunk(texts, SketchSpec()),
            sketch_chunk_reference(texts, SketchSpec()),
        )
        assert fast.f1.tobytes() == reference.f1.tobytes() and not fast.live.any()
        assert fast.sig.shape == reference.sig.shape == (0, 128)
