"""Exact, regex, multiple-choice and judge verifiers, and the registry."""

import pytest

from stillroom.curate import (
    ChoiceVerifier,
    ConfigError,
    ExactVerifier,
    JudgeVerifier,
    RegexVerifier,
    UnknownVerifierError,
    get_verifier,
)


def test_exact():
    v = ExactVerifier()
    assert v.verify("", "The answer is Paris.", "paris").passed
    assert v.verify("", "  PARIS ", "Paris").passed
    verdict = v.verify("", "The answer is Lyon.", "Paris")
    assert not verdict.passed and "expected 'paris'" in verdict.reason


def test_regex():
    v = RegexVerifier()
    assert v.verify("", "#### 2024-01-05", r"\d{4}-\d{2}-\d{2}").passed
    assert not v.verify("", "#### Jan 5", r"\d{4}-\d{2}-\d{2}").passed
    assert not RegexVerifier(fullmatch=True).verify("", "yes and no", "yes").passed
    with pytest.raises(ConfigError):
        v.verify("", "x", "(")


@pytest.mark.parametrize(
    ("response", "ok"),
    [
        ("The answer is (B).", True),
        ("Answer: B", True),
        ("\\boxed{B}", True),
        ("Let me think.\nB", True),
        ("The answer is (C).", False),
        ("I first thought A, but the answer is B.", True),
        ("Bananas are yellow.", False),  # a word starting with B is no choice
    ],
)
def test_choice(response, ok):
    assert ChoiceVerifier().verify("", response, "B").passed is ok


def test_choice_rejects_a_bad_reference():
    with pytest.raises(ConfigError):
        ChoiceVerifier().verify("", "A", "banana")


def test_judge_parses_the_verdict_and_fails_closed():
    prompts = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return (
            "Matches the reference.\nVERDICT: PASS"
            if "Paris" in prompt.split("grade:")[1]
            else "nope"
        )

    judge = JudgeVerifier(ask=ask, judge_model="fake")
    question = "What is the capital of France?"
    assert judge.verify(question, "Paris", "Paris").passed
    verdict = judge.verify(question, "Lyon", "Paris")
    assert not verdict.passed and "no VERDICT line" in verdict.reason
    assert "Reference answer:\nParis" in prompts[0]
    assert f"Question:\n{question}" in prompts[0]


def test_registry():
    assert get_verifier("math", rel_tol=1e-3).rel_tol == 1e-3
    with pytest.raises(UnknownVerifierError, match="known: choice, code"):
        get_verifier("nope")
