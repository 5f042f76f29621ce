"""Wilson intervals, exact McNemar, and a task report scoring several models alike."""

import pytest

from stillroom.curate import MathVerifier, mcnemar_exact, task_report, wilson_interval


def test_wilson_interval_known_values():
    low, high = wilson_interval(3, 48)  # the teacher figure: 3 of 48
    assert low == pytest.approx(0.0215, abs=1e-3) and high == pytest.approx(0.1685, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_mcnemar_exact():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 1024)
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)


def test_task_report_scores_every_model_with_the_same_verifier():
    refs = ["4", "6", "8", "10"]
    report = task_report(
        ["2 + 2?", "3 + 3?", "4 + 4?", "5 + 5?"],
        {
            "base": ["#### 4", "#### 5", "#### 7", "#### 1"],
            "student": ["#### 4", "#### 6", "#### 8", "#### 1"],
        },
        refs,
        MathVerifier(),
        notes={"student": "greedy"},
    )
    assert report["verifier"] == "math@1"
    assert (
        report["models"]["base"]["correct"] == 1 and report["models"]["student"]["accuracy"] == 0.75
    )
    pair = report["paired"][0]
    assert (pair["a"], pair["b"], pair["only_a"], pair["only_b"]) == ("base", "student", 0, 2)
    assert pair["mcnemar_p"] == pytest.approx(0.5)
    assert report["verdicts"]["base"][1]["reason"] == "expected 6, got 5 (hashes)"
