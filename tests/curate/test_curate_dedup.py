"""Dedup of prompts and answers: exact and near duplicates, each drop naming the row kept."""

import json
from pathlib import Path

import pytest

from stillroom.curate import ConfigError, DedupConfig, MinHashIndex, find_duplicates, optimal_bands
from stillroom.curate._text import shingles

ROOT = Path(__file__).resolve().parents[2]
BASE = "Tom has 12 red apples and 7 green apples in a basket. He gives 5 apples to his sister. How many apples are left?"


def test_exact_duplicates_ignore_case_and_whitespace():
    texts = [BASE, "  " + BASE.upper().replace(" ", "  "), "Something else entirely, about trains."]
    drops = find_duplicates(texts, ["a", "b", "c"], DedupConfig(near_threshold=None))
    assert list(drops) == [1]
    assert (drops[1].stage, drops[1].reason, drops[1].matched) == (
        "dedup-prompt",
        "exact duplicate prompt",
        "a",
    )


def test_near_duplicates_name_the_kept_row():
    near = BASE.replace("his sister", "his little sister")
    other = "Write a short poem about autumn leaves falling on a quiet street."
    drops = find_duplicates(
        [BASE, other, near, near + " Explain."], ["p1", "p2", "p3", "p4"], what="answer"
    )
    assert set(drops) == {2, 3}
    assert drops[2].stage == "dedup-answer" and drops[2].matched == "p1"
    assert drops[3].matched == "p1"  # named the kept row, not the dropped p3
    assert drops[2].score >= 0.7


def test_threshold_is_configurable():
    edited = BASE.replace("12 red", "15 red").replace("7 green", "9 green")
    assert find_duplicates([BASE, edited], ["a", "b"], DedupConfig(near_threshold=0.5))
    assert not find_duplicates([BASE, edited], ["a", "b"], DedupConfig(near_threshold=0.9))
    with pytest.raises(ConfigError):
        DedupConfig(near_threshold=1.5)


def test_the_shipped_prompt_set():
    """Figures in docs/curate.md: no exact duplicates; at 0.5 three Vicuna Fermi questions pair
    with vicuna-042 through their shared instructions; none at the default 0.7."""
    rows = [json.loads(x) for x in (ROOT / "stillroom/data/prompts.jsonl").read_text().splitlines()]
    texts, ids = [r["prompt"] for r in rows], [r["id"] for r in rows]
    assert find_duplicates(texts, ids, DedupConfig(near_threshold=None)) == {}
    assert find_duplicates(texts, ids) == {}
    loose = find_duplicates(texts, ids, DedupConfig(near_threshold=0.5))
    assert {ids[i]: d.matched for i, d in loose.items()} == {
        "vicuna-043": "vicuna-042",
        "vicuna-046": "vicuna-042",
        "vicuna-047": "vicuna-042",
    }


def test_minhash_estimate_tracks_true_jaccard():
    edited = BASE.replace("basket", "box")
    a, b = set(shingles(BASE, 3)), set(shingles(edited, 3))
    true = len(a & b) / len(a | b)
    index = MinHashIndex(0.5, num_perm=256)
    hit = index.matches([BASE], [edited], lambda t: shingles(t, 3))[0]
    assert hit is not None and abs(hit[1] - true) < 0.15
    assert 256 % optimal_bands(0.5, 256) == 0
