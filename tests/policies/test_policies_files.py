"""Every shipped policy file validates and states what the issue asks of it."""

from __future__ import annotations

import re
import tomllib
from datetime import date
from pathlib import Path

import pytest

from stillroom.policies import load_policies, load_policy_file, shipped_policy_files

REQUIRED_IDS = {
    "openai",
    "anthropic",
    "gemini",
    "llama-3.1",
    "llama-3.3",
    "gemma",
    "qwen2.5",
    "qwen2.5-qwen-license",
    "qwen3",
    "deepseek-r1",
    "mistral-apache",
    "mistral-research",
    "smollm2",
    "self-hosted",
}
SHIPPED = shipped_policy_files()


def test_all_required_policies_are_shipped() -> None:
    assert {p.stem for p in SHIPPED} >= REQUIRED_IDS
    assert set(load_policies()) >= REQUIRED_IDS


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_file_validates_and_is_complete(path) -> None:
    policy = load_policy_file(path, shipped=True)
    assert policy.id == path.stem
    assert policy.name and policy.summary
    assert policy.terms.title
    date.fromisoformat(policy.terms.read)
    assert all(c.section and len(c.text) > 20 for c in policy.clauses)
    assert len(policy.file_hash) == 64
    if policy.id != "self-hosted":
        assert policy.terms.url.startswith("https://")
        assert policy.covers, "every teacher family must say which endpoints/models it covers"
    # the file is plain TOML a user can copy
    assert tomllib.loads(path.read_text(encoding="utf-8"))["id"] == policy.id


@pytest.mark.parametrize(
    ("policy_id", "verdict"),
    [
        ("openai", "conditional"),
        ("anthropic", "conditional"),
        ("gemini", "conditional"),
        ("llama-3.1", "conditional"),
        ("llama-3.3", "conditional"),
        ("gemma", "conditional"),
        ("qwen2.5-qwen-license", "conditional"),
        ("mistral-research", "conditional"),
        ("qwen2.5", "allowed"),
        ("qwen3", "allowed"),
        ("deepseek-r1", "allowed"),
        ("mistral-apache", "allowed"),
        ("smollm2", "allowed"),
        ("self-hosted", "allowed"),
    ],
)
def test_verdicts(policy_id: str, verdict: str) -> None:
    """Each shipped file's verdict under the criterion in docs/policies.md.

    ``forbidden`` only where the terms forbid training on the outputs for every purpose;
    where they forbid only competing models or services (OpenAI, Anthropic, Gemini), the
    verdict is ``conditional`` on ``non_compete``, and the run needs ``--accept`` and a
    declared ``--purpose``. ``conditional`` for other conditions (attribution, name prefix,
    research only, propagating terms); ``allowed`` where nothing restricts training.
    """
    assert load_policies()[policy_id].verdict == verdict


@pytest.mark.parametrize("policy_id", ["openai", "anthropic", "gemini"])
def test_non_compete_readings_need_a_declared_purpose(policy_id: str) -> None:
    """The criterion's second case: only competing use is forbidden, so the one condition is
    non-compete, which limits a use and so needs ``--purpose``; no shipped file is forbidden."""
    policy = load_policies()[policy_id]
    assert policy.conditions.non_compete and policy.conditions.needs_purpose
    assert "compet" in policy.clause
    assert "docs/policies.md" in policy.summary  # the reading names the criterion it applies
    assert not [p.id for p in load_policies().values() if p.verdict == "forbidden"]


def test_key_conditions_and_clauses() -> None:
    ps = load_policies()
    assert "compete with OpenAI" in ps["openai"].clause
    assert ps["anthropic"].clauses[0].section == "D.4"
    assert "train competing AI models" in ps["anthropic"].clause
    assert "develop models that compete" in ps["gemini"].clause
    help_center = ps["anthropic"].clauses[2]  # Anthropic's own reading of its terms
    assert "train models that don't compete" in help_center.text
    assert help_center.url.startswith("https://support.claude.com/")
    for v in ("3.1", "3.3"):
        c = ps[f"llama-{v}"].conditions
        assert (c.name_prefix, c.attribution, c.mau_limit) == (
            "Llama",
            "Built with Llama",
            700_000_000,
        )
        assert c.notice.startswith(f"Llama {v} is licensed under the Llama {v} Community License")
        assert ps[f"llama-{v}"].clauses[0].section == "1.b.i"
    gemma = ps["gemma"]
    assert gemma.conditions.license_propagates
    assert "distillation" in gemma.clause
    assert "ai.google.dev/gemma/terms" in gemma.conditions.notice
    qwen = ps["qwen2.5-qwen-license"].conditions
    assert (qwen.attribution, qwen.mau_limit) == ("Built with Qwen", 100_000_000)
    assert "distillation for training other LLMs" in ps["deepseek-r1"].clause
    mrl = ps["mistral-research"].conditions
    assert mrl.research_only and mrl.non_commercial


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_doc_a_policy_file_names_exists(path) -> None:
    root = Path(__file__).resolve().parents[2]
    named = re.findall(r"\bdocs/[\w./-]+\.md\b", path.read_text(encoding="utf-8"))
    assert named, f"{path.name} points to no doc"
    missing = [doc for doc in named if not (root / doc).is_file()]
    assert not missing, f"{path.name} names docs that do not exist: {missing}"
