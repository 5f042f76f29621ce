"""The math verifier on real GSM8K items (the shipped prompts' references) and edge cases."""

import json
from pathlib import Path

import pytest

from stillroom.curate import ConfigError, MathVerifier, extract_final_answer, parse_number

ROOT = Path(__file__).resolve().parents[2]
V = MathVerifier()


def _refs() -> dict[str, str]:
    lines = (ROOT / "stillroom/data/references.jsonl").read_text().splitlines()
    return {row["id"]: row["answer"] for row in map(json.loads, lines)}


def test_references_cover_every_shipped_gsm8k_prompt():
    prompts = [
        json.loads(x) for x in (ROOT / "stillroom/data/prompts.jsonl").read_text().splitlines()
    ]
    gsm = {p["id"] for p in prompts if p["source"] == "gsm8k/train"}
    assert gsm == set(_refs())


def test_real_gsm8k_solution_format():
    # GSM8K's own solution to its first training item, calculator annotations and all.
    gold = (
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
        "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"
    )
    assert V.verify("", gold, _refs()["gsm8k-001"]).passed
    assert (
        V.verify("", gold.replace("#### 72", "#### 24"), "72").reason
        == "expected 72, got 24 (hashes)"
    )
    # The reference may itself be a full GSM8K solution.
    assert V.verify("", "The answer is 72.", gold).passed


@pytest.mark.parametrize(
    ("response", "reference", "ok"),
    [
        ("#### 1,250", "1250", True),
        ("The final answer is $1,250.00.", "1250", True),
        ("#### 12,50", "1250", False),  # not a well-formed thousands separator
        ("The answer is 5 hours.", "5", True),
        ("The answer is 300 minutes.", "5", False),
        ("\\boxed{-5}", "-5", True),
        ("The balance is \u221212.", "-12", True),
        ("#### -3", "3", False),
        ("#### 3/4", "0.75", True),
        ("\\boxed{\\frac{3}{4}}", "3/4", True),
        ("\\boxed{\\dfrac34}", "0.75", True),
        ("\\boxed{\\frac{4}{3}}", "3/4", False),
        ("#### 2 1/2", "2.5", True),
        ("The answer is 75%.", "75", True),
        ("#### 27", "72", False),  # shares digits
        ("#### 720", "72", False),
        ("#### 7.2", "72", False),
        ("#### 72 or 24", "72", False),  # a hedge is not an answer
        ("#### 72\nWait, that is wrong.\n#### 96", "72", False),  # the last answer counts
        ("48 + 24 = 72, so the answer is 96.", "72", False),  # reference as a step
        ("So she sold 72 clips.", "72", True),  # last-number fallback
        ("\\boxed{42 \\text{ apples}}", "42", True),
        ("The answer is \\boxed{", "5", False),  # cut off
        ("", "5", False),
    ],
)
def test_edge_cases(response, reference, ok):
    verdict = V.verify("", response, reference)
    assert verdict.passed is ok, verdict
    assert verdict.verifier == "math" and verdict.version == "1"
    assert bool(verdict.reason) is (not ok)


def test_tolerance_is_configurable():
    assert not V.verify("", "#### 33.33", "100/3").passed
    assert MathVerifier(rel_tol=1e-3).verify("", "#### 33.33", "100/3").passed
    with pytest.raises(ConfigError):
        MathVerifier(rel_tol=-1)


def test_no_fallback_means_an_explicit_answer_is_needed():
    strict = MathVerifier(last_number_fallback=False)
    assert strict.verify("", "So she sold 72 clips.", "72").reason == "no final answer found"
    assert extract_final_answer("x \\boxed{7} y") == ("7", "boxed")


def test_parse_number_refuses_several_numbers():
    assert parse_number("72 or 24") is None
    assert parse_number("$1,000,000") == 1_000_000


def test_math_verify_backend_handles_symbolic_answers():
    pytest.importorskip("math_verify")
    mv = MathVerifier(backend="math-verify")
    assert mv.verify("", "\\boxed{\\sqrt{2}/2}", "\\frac{\\sqrt{2}}{2}").passed
    assert not mv.verify("", "\\boxed{\\sqrt{3}/2}", "\\frac{\\sqrt{2}}{2}").passed
    assert not V.verify(
        "", "\\boxed{\\sqrt{2}/2}", "\\frac{\\sqrt{2}}{2}"
    ).passed  # builtin: numbers only


def test_rates_on_the_labelled_set():
    """False-accept and false-reject rates on the 280-row labelled set (see docs/curate.md).

    False accepts poison training data, so they are held to zero; false rejects only cost
    data, and the set includes families the verifier is known to reject (a trailing number
    after the answer, a spelled-out number): the bound records today's figure.
    """
    rows = [json.loads(x) for x in (Path(__file__).parent / "data/math_labelled.jsonl").open()]
    assert len(rows) >= 200 and sum(not r["label"] for r in rows) >= 0.45 * len(rows)
    fa = sum(V.verify("", r["response"], r["reference"]).passed for r in rows if not r["label"])
    fr = sum(not V.verify("", r["response"], r["reference"]).passed for r in rows if r["label"])
    assert fa == 0
    assert fr <= 24
