"""The union of obligations carried to datasets and students, with conflicts flagged."""

from __future__ import annotations

from pathlib import Path

import pytest

from stillroom.policies import PolicyNotFound, obligations


def test_single_permissive_teacher_owes_nothing() -> None:
    ob = obligations(["smollm2"])
    assert ob.policy_ids == ("smollm2",)
    assert (ob.name_prefix, ob.notices, ob.attributions, ob.conflicts) == (None, (), (), ())
    assert ob.training_forbidden == frozenset()
    assert ob.notice_text() == ""
    card = ob.card_markdown()
    assert "`smollm2`" in card and "allowed" in card and "not legal advice" in card


def test_union_of_llama_and_gemma() -> None:
    ob = obligations(["gemma", "llama-3.1", "gemma"])  # duplicates collapse
    assert ob.policy_ids == ("gemma", "llama-3.1")
    assert ob.name_prefix == "Llama"
    assert ob.attributions == ("Built with Llama",)
    assert len(ob.notices) == 2
    assert any("Gemma Terms of Use" in n for n in ob.notices)
    assert any("Llama 3.1 Community License" in n for n in ob.notices)
    assert ob.propagating == ("gemma",)
    assert ob.conflicts == ()  # no research-only source, one prefix
    notice = ob.notice_text()
    for text in (*ob.notices, "Built with Llama", "https://ai.google.dev/gemma/terms"):
        assert text in notice


def test_gemma_with_a_research_only_source_is_a_conflict() -> None:
    ob = obligations(["gemma", "mistral-research"])
    assert ob.non_commercial
    assert len(ob.conflicts) == 1
    assert "gemma" in ob.conflicts[0] and "mistral-research" in ob.conflicts[0]
    assert "### Conflicts" in ob.card_markdown()


def test_two_name_prefixes_are_a_conflict(user_dir: Path, policy_file) -> None:
    policy_file(
        user_dir, "acme", verdict="conditional", extra='[conditions]\nname_prefix = "Acme"\n'
    )
    ob = obligations(["acme", "llama-3.3"])
    assert ob.name_prefix == "Acme"  # first in id order; the disagreement is flagged
    assert any("Name prefixes disagree" in c and "Acme" in c and "Llama" in c for c in ob.conflicts)


def test_same_prefix_from_two_llama_versions_is_not_a_conflict() -> None:
    ob = obligations(["llama-3.1", "llama-3.3"])
    assert ob.name_prefix == "Llama" and ob.conflicts == ()
    assert ob.attributions == ("Built with Llama",)  # deduplicated
    assert len(ob.notices) == 2


def test_training_forbidden_lists_forbidden_teachers(user_dir: Path, policy_file) -> None:
    clause = "You may not use outputs to train any machine learning model."
    for pid in ("no-train-a", "no-train-b"):
        policy_file(user_dir, pid, verdict="forbidden", clause=clause)
    ob = obligations(["no-train-b", "smollm2", "no-train-a", "openai"])
    assert ob.training_forbidden == frozenset({"no-train-a", "no-train-b"})
    card = ob.card_markdown()
    assert "Do not train on rows from no-train-a, no-train-b" in card
    assert clause in card
    assert "compete with OpenAI" in card  # openai's rows are kept, its clause still shown
    assert "It may not compete with the providers of openai." in card


def test_card_lists_each_teacher_with_terms_conditions_and_notices() -> None:
    ob = obligations(["qwen2.5-qwen-license", "gemma"])
    card = ob.card_markdown()
    assert card.startswith("## Teachers and obligations")
    for needle in (
        "| `gemma` | [Gemma Terms of Use](https://ai.google.dev/gemma/terms) | conditional |",
        "| `qwen2.5-qwen-license` | [Qwen LICENSE AGREEMENT]",
        "Built with Qwen",
        "100,000,000 monthly active users",
        "Gemma is provided under and subject to the Gemma Terms of Use",
        "Clause 1.1(e)",
        "Clause 5.b",
        ob.policies[0].file_hash,
    ):
        assert needle in card


def test_empty_set() -> None:
    ob = obligations([])
    assert ob.policy_ids == () and "No teacher policies" in ob.card_markdown()


def test_unknown_id_raises_with_hint() -> None:
    with pytest.raises(PolicyNotFound, match="STILLROOM_POLICY_PATH"):
        obligations(["smollm2", "gone-teacher"])


def test_changed_policy_file_since_harvest_is_reported() -> None:
    from stillroom.policies import get_policy

    now = get_policy("gemma").file_hash
    same = obligations(["gemma"], recorded_hashes={"gemma": {now}})
    assert same.changed_since_harvest == ()
    old = obligations(["gemma", "smollm2"], recorded_hashes={"gemma": {now, "ab" * 32}})
    assert len(old.changed_since_harvest) == 1
    assert (
        "abababababab" in old.changed_since_harvest[0] and now[:12] in old.changed_since_harvest[0]
    )
    assert "### Policy files changed since harvest" in old.card_markdown()
