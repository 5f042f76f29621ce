"""Every shipped policy file validates and states what the issue asks of it."""

from __future__ import annotations

import tomllib
from datetime import date

import pytest

from policies import load_policies, load_policy_file, shipped_policy_files

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
        ("openai", "forbidden"),
        ("anthropic", "forbidden"),
        ("gemini", "forbidden"),
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
    assert load_policies()[policy_id].verdict == verdict


def test_key_conditions_and_clauses() -> None:
    ps = load_policies()
    assert "compete with OpenAI" in ps["openai"].clause
    assert ps["anthropic"].clauses[0].section == "D.4"
    assert "train competing AI models" in ps["anthropic"].clause
    assert "develop models that compete" in ps["gemini"].clause
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
