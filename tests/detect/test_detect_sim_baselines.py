"""PRADA- and SEAT-style per-account baselines behave as estimators and detect what they should."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from stillroom.detect._baselines import PradaDetector, SeatDetector
from stillroom.detect.errors import DetectError

WORDS = [f"w{i}" for i in range(60)]


def _traffic(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    # natural users: each query a fresh random sentence
    for a in range(6):
        for i in range(60):
            rows.append((f"user{a}", " ".join(rng.choice(WORDS, rng.integers(5, 15))), i))
    # a template app: one template, one slot -> many near-duplicate pairs
    for i in range(80):
        rows.append(
            (
                "templater",
                "Translate the following customer review into French and keep the tone of the original "
                f"author exactly as written, then return only the translation: {rng.choice(WORDS)}",
                i,
            )
        )
    # an extractor alternating exact repeats and far-apart probes: bimodal nearest distances
    probes = [" ".join(rng.choice(WORDS, 12)) for _ in range(40)]
    for i in range(80):
        rows.append(("extractor", probes[i // 2], i))
    frame = pd.DataFrame(rows, columns=["account_id", "prompt", "minute"])
    frame["timestamp"] = pd.Timestamp("2026-01-05", tz="UTC") + pd.to_timedelta(
        frame.pop("minute"), unit="min"
    )
    return frame.sample(frac=1.0, random_state=seed)  # row order must not matter


def test_seat_counts_near_duplicate_pairs_and_flags_the_template_app():
    X = _traffic()
    seat = SeatDetector(pair_threshold=50).fit(X)
    pairs = seat.similar_pairs(X)
    assert pairs["templater"] >= 50 * 79 / 2 * 0.5
    assert pairs["extractor"] == 40  # one exact repeat per probe
    assert (pairs[[f"user{a}" for a in range(6)]] == 0).all()
    flagged = seat.predict(X)
    assert flagged["templater"] and not flagged["user0"] and not flagged["extractor"]
    assert flagged.index.name == "account_id" and flagged.dtype == bool


def test_prada_flags_non_normal_distance_streams_only():
    X = _traffic()
    prada = PradaDetector(delta=0.9, min_queries=20).fit(X)
    scores = prada.decision_function(X)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert scores["extractor"] > max(scores[f"user{a}"] for a in range(6))
    flagged = prada.predict(X)
    assert flagged["extractor"]
    assert flagged[[f"user{a}" for a in range(6)]].sum() <= 1


def test_min_queries_protects_small_accounts():
    X = _traffic()
    few = pd.concat(
        [X, pd.DataFrame({"account_id": ["tiny"] * 3, "prompt": ["a b", "a b", "a b"]})]
    )
    assert PradaDetector().fit(few).predict(few)["tiny"] == False  # noqa: E712
    assert SeatDetector(min_queries=5, pair_threshold=1).fit(few).predict(few)["tiny"] == False  # noqa: E712


@pytest.mark.parametrize("cls", [PradaDetector, SeatDetector])
def test_estimator_conventions(cls):
    X = _traffic(1)
    det = cls()
    assert det.fit(X) is det
    assert hasattr(det, "tfidf_") and not hasattr(cls(), "tfidf_")
    copy = clone(det)
    assert copy.get_params() == det.get_params()
    pipe = Pipeline([("detector", cls())]).fit(X)
    pd.testing.assert_series_equal(pipe.predict(X), det.predict(X))


@pytest.mark.parametrize("cls", [PradaDetector, SeatDetector])
def test_bad_input_names_the_missing_column(cls):
    with pytest.raises(DetectError, match="prompt"):
        cls().fit(pd.DataFrame({"account_id": ["a"]}))
    with pytest.raises(DetectError, match="DataFrame"):
        cls().fit([["a", "b"]])
