"""Agreement metrics and the model card (pure Python)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stillroom.policies import Obligations
from stillroom.train._card import apply_name_prefix, write_card
from stillroom.train._metrics import (
    exact_match,
    format_adherence,
    length_ratio,
    mean_scores,
    rouge_l,
    score,
    token_f1,
)


def test_token_f1_and_exact_match() -> None:
    assert token_f1("The capital is Paris.", "the capital is paris") == 1.0
    assert exact_match("The capital is Paris.", "capital is Paris") == 1.0  # articles dropped
    assert token_f1("Paris", "Rome") == 0.0
    assert token_f1("Paris is nice", "Paris") == pytest.approx(0.5)


def test_rouge_l_uses_the_longest_common_subsequence() -> None:
    assert rouge_l("a b c d", "a b c d") == 1.0
    # LCS("a x b y", "a b") = 2: precision 2/4, recall 2/2
    assert rouge_l("a x b y", "a b") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert rouge_l("", "a") == 0.0


def test_length_ratio() -> None:
    # split_think's cases moved to tests/harvest/test_harvest_answer.py (its owner)
    assert length_ratio("one two", "one two three four") == 0.5
    assert length_ratio("x", "") is None


def test_format_adherence_follows_the_target_format() -> None:
    target = "<think>\nwhy\n</think>\n\nAnswer."
    assert format_adherence("<think>ok</think> Answer!", target) == 1.0
    assert format_adherence("Answer!", target) == 0.0
    assert format_adherence("<think>never closed", target) == 0.0
    assert format_adherence("Answer!", "Plain.") == 1.0
    assert format_adherence("<think>x</think>Answer!", "Plain.") == 0.0


def test_score_compares_answers_without_the_reasoning() -> None:
    s = score("<think>long musing</think> Paris.", "<think>other</think>\n\nParis.")
    assert s["token_f1"] == 1.0 and s["exact_match"] == 1.0 and s["format_adherence"] == 1.0
    means = mean_scores([s, score("Rome.", "Paris.")])
    assert means["token_f1"] == 0.5


def test_name_prefix() -> None:
    assert apply_name_prefix("my-student", "Llama") == "Llama-my-student"
    assert apply_name_prefix("llama-student", "Llama") == "llama-student"
    assert apply_name_prefix("s", "Built-with-") == "Built-with-s"
    assert apply_name_prefix("s", None) == "s"


def test_card_and_notice_carry_the_obligations(tmp_path: Path) -> None:
    ob = Obligations(
        policy_ids=("llama-3.1",),
        name_prefix="Llama",
        notices=("Llama 3.1 is licensed under the Llama 3.1 Community License.",),
        attributions=("Built with Llama",),
        conflicts=("Teacher A requires X; teacher B forbids X.",),
    )
    card, notice = write_card(
        tmp_path,
        name="Llama-student",
        base="SmolLM2",
        base_dir=tmp_path,
        db=tmp_path / "h.duckdb",
        data_summary={"teacher_models": ["llama-3.1-8b"], "policy_ids": ["llama-3.1"], "rows": 3},
        metrics={"loss_masking": "completion-only", "train_loss": 0.5},
        config={"reasoning": "think", "drop_system": True, "kd_alpha": 0.0},
        obligations=ob,
    )
    text = card.read_text()
    assert "# Llama-student" in text and "`llama-3.1`" in text
    assert "Name prefix required" in text and "teacher B forbids X" in text
    assert "context distillation" in text and "h.duckdb" in text
    assert notice is not None
    assert "Community License" in notice.read_text() and "Built with Llama" in notice.read_text()


def test_card_and_notice_carry_each_obligation_once(tmp_path: Path) -> None:
    ob = Obligations(
        policy_ids=("llama-3.1",),
        name_prefix="Llama",
        notices=("Llama 3.1 is licensed under the Llama 3.1 Community License.",),
        attributions=("Built with Llama",),
        conflicts=("Teacher A requires X; teacher B forbids X.",),
    )
    card, notice = write_card(
        tmp_path,
        name="Llama-student",
        base="SmolLM2",
        base_dir=tmp_path,
        db=tmp_path / "h.duckdb",
        data_summary={},
        metrics={},
        config={},
        obligations=ob,
    )
    assert notice is not None
    assert notice.read_text() == (
        "This model was trained on outputs of other models, whose terms require:\n"
        "\n"
        "Built with Llama\n"
        "\n"
        "Llama 3.1 is licensed under the Llama 3.1 Community License.\n"
    )
    text = card.read_text()
    assert text.count("Conflicts") == 1
    assert text.count("teacher B forbids X") == 1
    assert text.count("Built with Llama") <= 1


def test_real_obligations_reach_card_and_notice_once(tmp_path: Path) -> None:
    from stillroom.policies import obligations

    ob = obligations(["gemma", "qwen2.5-qwen-research"])
    assert ob.conflicts and ob.attributions  # the pair this test is about
    card, notice = write_card(
        tmp_path,
        name="s",
        base="SmolLM2",
        base_dir=tmp_path,
        db=tmp_path / "h.duckdb",
        data_summary={},
        metrics={},
        config={},
        obligations=ob,
    )
    text = card.read_text()
    assert text.count("### Conflicts") == 1
    for conflict in ob.conflicts:
        assert text.count(conflict) == 1
    assert notice is not None and notice.read_text() == ob.notice_text()
    for attribution in ob.attributions:
        assert notice.read_text().count(attribution) == 1


def test_task_scores_give_each_verifier_the_question(tmp_path: Path, monkeypatch) -> None:
    from dataclasses import dataclass

    from stillroom.curate import VERIFIERS, Verdict
    from stillroom.train._data import Example
    from stillroom.train._evaluate import EvalConfig, task_scores

    seen: list[str] = []

    @dataclass(frozen=True)
    class AsksTheQuestion:
        name: str = "asks"
        version: str = "1"

        def verify(self, prompt: str, answer: str, reference) -> Verdict:
            seen.append(prompt)
            return Verdict(answer.strip() == str(reference), self.name, self.version)

    monkeypatch.setitem(VERIFIERS, "asks", AsksTheQuestion)
    refs = tmp_path / "refs.jsonl"
    refs.write_text('{"id": "p1", "answer": "4"}\n{"id": "p2", "answer": "9"}\n')
    system = {"role": "system", "content": "Be terse."}
    examples = [
        Example(pid, 0, [system, {"role": "user", "content": q}], [], pid, t, None, None, None)
        for pid, q, t in (("p1", "2 + 2?", "4"), ("p2", "3 * 3?", "6"))
    ]
    config = EvalConfig(db=tmp_path / "h.duckdb", adapter=tmp_path, out=tmp_path / "e.json",
                        task="asks", references=refs)  # fmt: skip
    report = task_scores(config, examples, ["4", "9"], ["5", "9"])
    assert seen[:2] == ["2 + 2?", "3 * 3?"] and len(seen) == 6
    assert [report["models"][m]["correct"] for m in ("base", "student", "teacher")] == [2, 1, 1]
