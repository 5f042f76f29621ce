"""Matching a request to one policy, and the refusals harvest relies on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stillroom.policies import (
    Limits,
    PolicyAmbiguous,
    PolicyMismatch,
    PolicyNeedsAcceptance,
    PolicyNotFound,
    PolicyRefused,
    host_of,
    match_policies,
    resolve_for_harvest,
)

LOCAL = "http://127.0.0.1:8080/v1"


@pytest.mark.parametrize(
    ("base_url", "model", "expected"),
    [
        ("https://api.openai.com/v1", "gpt-4o-mini", ["openai"]),
        ("https://api.openai.com/v1", "anything-they-serve", ["openai"]),
        ("https://openrouter.ai/api/v1", "openai/gpt-4o", ["openai"]),
        ("https://api.anthropic.com/v1/", "claude-sonnet-4-20250514", ["anthropic"]),
        (
            "https://generativelanguage.googleapis.com/v1beta/openai/",
            "gemini-2.5-flash",
            ["gemini"],
        ),
        ("https://generativelanguage.googleapis.com/v1beta/openai/", "gemma-3-27b-it", ["gemma"]),
        (LOCAL, "meta-llama/Llama-3.1-8B-Instruct", ["llama-3.1"]),
        (LOCAL, "llama3.3:70b", ["llama-3.3"]),
        (LOCAL, "deepseek-ai/DeepSeek-R1-Distill-Llama-70B", ["llama-3.3"]),
        (LOCAL, "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", ["deepseek-r1"]),
        (LOCAL, "deepseek-ai/DeepSeek-R1", ["deepseek-r1"]),
        (LOCAL, "Qwen/Qwen2.5-7B-Instruct", ["qwen2.5"]),
        (LOCAL, "Qwen/Qwen2.5-Coder-32B-Instruct", ["qwen2.5"]),
        (LOCAL, "Qwen/Qwen2.5-72B-Instruct", ["qwen2.5-qwen-license"]),
        (LOCAL, "qwen2.5:3b", ["qwen2.5-qwen-research"]),
        (LOCAL, "Qwen/Qwen3-8B", ["qwen3"]),
        (LOCAL, "mistralai/Mistral-7B-Instruct-v0.3", ["mistral-apache"]),
        (LOCAL, "mistralai/Mistral-Large-Instruct-2411", ["mistral-research"]),
        (LOCAL, "mistralai/Ministral-8B-Instruct-2410", ["mistral-research"]),
        (LOCAL, "HuggingFaceTB/SmolLM2-135M-Instruct", ["smollm2"]),
        (LOCAL, "google/gemma-4-31B-it", []),  # Gemma 4 is Apache-2.0, not the Gemma terms
        (LOCAL, "gpt-oss-20b", []),
        (LOCAL, "my-own-model", []),
        (LOCAL, "deepseek-r1:8b", ["deepseek-r1", "llama-3.1"]),  # the tag has meant both
    ],
)
def test_match(base_url: str, model: str, expected: list[str]) -> None:
    assert [p.id for p in match_policies(base_url, model)] == expected


def test_host_of() -> None:
    assert host_of("https://API.OpenAI.com/v1") == "api.openai.com"
    assert host_of("localhost:8000/v1") == "localhost"


def test_single_match_resolves_without_policy_id() -> None:
    rp = resolve_for_harvest(policy_id=None, base_url=LOCAL, model="SmolLM2-135M-Instruct")
    assert (rp.id, rp.accepted, rp.record()["resolved_by"]) == ("smollm2", False, "matched")
    assert len(rp.file_hash) == 64


def test_no_match_refuses_listing_candidates_and_how_to_add() -> None:
    with pytest.raises(PolicyNotFound) as err:
        resolve_for_harvest(policy_id=None, base_url=LOCAL, model="my-own-model")
    msg = str(err.value)
    assert "no policy covers model 'my-own-model' at 127.0.0.1" in msg
    assert "self-hosted" in msg and "llama-3.1" in msg and "gemma" in msg
    assert "STILLROOM_POLICY_PATH" in msg and "policies check" in msg


def test_several_matches_refuse_listing_them() -> None:
    with pytest.raises(PolicyAmbiguous) as err:
        resolve_for_harvest(policy_id=None, base_url=LOCAL, model="deepseek-r1:8b")
    msg = str(err.value)
    assert "deepseek-r1 (" in msg and "llama-3.1 (" in msg and "--policy" in msg


def test_unknown_policy_id() -> None:
    with pytest.raises(PolicyNotFound, match="unknown policy 'nope'; known: anthropic"):
        resolve_for_harvest(policy_id="nope", base_url=LOCAL, model="x")


NON_COMPETE = [
    ("https://api.openai.com/v1", "gpt-4o", "openai", "What you cannot do", "compete with OpenAI"),
    (
        "https://api.anthropic.com/v1",
        "claude-3-5-haiku-latest",
        "anthropic",
        "D.4",
        "train competing AI models",
    ),
    (
        "https://generativelanguage.googleapis.com/v1beta/openai",
        "gemini-2.0-flash",
        "gemini",
        "Use Restrictions",
        "compete",
    ),
]


@pytest.mark.parametrize(("base_url", "model", "pid", "section", "words"), NON_COMPETE)
def test_non_compete_refuses_without_accept_quoting_the_clause(
    base_url: str, model: str, pid: str, section: str, words: str
) -> None:
    """Terms that forbid only competing models are ``conditional`` on ``non_compete``
    (docs/policies.md): without ``--accept`` the run is refused, quoting the clause."""
    with pytest.raises(PolicyNeedsAcceptance) as err:
        resolve_for_harvest(policy_id=None, base_url=base_url, model=model)
    assert isinstance(err.value, PolicyRefused)  # a refusal, as a forbidden verdict is
    msg = str(err.value)
    assert section in msg and words in msg and f"--accept {pid}" in msg


@pytest.mark.parametrize(("base_url", "model", "pid", "section", "words"), NON_COMPETE)
def test_non_compete_accept_needs_a_declared_purpose(
    base_url: str, model: str, pid: str, section: str, words: str
) -> None:
    kwargs = dict(policy_id=None, base_url=base_url, model=model, accept=[pid])
    for purpose in (None, "   "):
        with pytest.raises(PolicyNeedsAcceptance) as err:
            resolve_for_harvest(**kwargs, purpose=purpose)
        assert "--purpose" in str(err.value) and words in str(err.value)
    now = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    rp = resolve_for_harvest(**kwargs, purpose="a ticket classifier", now=now, user="ada")
    record = rp.record()
    assert (record["policy_id"], record["verdict"], record["accepted"]) == (
        pid,
        "conditional",
        True,
    )
    assert (record["purpose"], record["user"]) == ("a ticket classifier", "ada")
    assert record["accepted_at"] == "2026-12-01T09:30:00+00:00"
    assert section in record["clause"]
    assert record["accepted_conditions"] == [
        "The student may not compete with the provider's models or services."
    ]


def test_forbidden_refuses_quoting_the_clause(user_dir: Path, policy_file) -> None:
    """A ``forbidden`` verdict (a ban on training for every purpose) refuses even with
    ``--accept`` and a purpose; no shipped file has it, so this one is the user's."""
    clause = "You may not use outputs to train or improve any machine learning model."
    policy_file(
        user_dir, "no-training", verdict="forbidden", clause=clause,
        extra='[[covers]]\nmodels = ["walled-*"]\n',
    )  # fmt: skip
    with pytest.raises(PolicyRefused) as err:
        resolve_for_harvest(
            policy_id=None, base_url=LOCAL, model="walled-7b", accept=["no-training"], purpose="x"
        )
    assert not isinstance(err.value, PolicyNeedsAcceptance)
    assert "1.2" in str(err.value) and clause in str(err.value)


def test_conditional_refuses_without_accept() -> None:
    with pytest.raises(PolicyNeedsAcceptance) as err:
        resolve_for_harvest(policy_id=None, base_url=LOCAL, model="gemma-3-4b-it")
    msg = str(err.value)
    assert "--accept gemma" in msg and "1.1(e)" in msg and "distillation" in msg


def test_accept_is_recorded_with_time_purpose_and_user() -> None:
    now = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    rp = resolve_for_harvest(
        policy_id="llama-3.1",
        base_url=LOCAL,
        model="meta-llama/Llama-3.1-8B-Instruct",
        accept=["llama-3.1"],
        purpose="distil a support bot",
        now=now,
        user="ada",
    )
    record = json.loads(json.dumps(rp.record()))  # JSON-able
    assert record["accepted"] is True
    assert record["accepted_at"] == "2026-11-25T05:00:00+00:00"
    assert (record["purpose"], record["user"]) == ("distil a support bot", "ada")
    assert record["conditions"]["name_prefix"] == "Llama"
    assert any("Llama" in s for s in record["accepted_conditions"])
    assert record["policy_hash"] == rp.file_hash and record["verdict"] == "conditional"


def test_research_only_policy_needs_a_declared_purpose() -> None:
    kwargs = dict(policy_id=None, base_url=LOCAL, model="mistralai/Ministral-8B-Instruct-2410")
    with pytest.raises(PolicyNeedsAcceptance, match="--purpose"):
        resolve_for_harvest(**kwargs, accept=["mistral-research"])
    rp = resolve_for_harvest(**kwargs, accept=["mistral-research"], purpose="academic study")
    assert rp.record()["purpose"] == "academic study"


def test_accepting_another_id_does_not_accept_this_one() -> None:
    with pytest.raises(PolicyNeedsAcceptance):
        resolve_for_harvest(
            policy_id=None, base_url=LOCAL, model="gemma-2-9b-it", accept=["llama-3.1"]
        )


def test_explicit_policy_may_not_relabel_a_covered_endpoint() -> None:
    with pytest.raises(PolicyMismatch, match="pass --policy openai"):
        resolve_for_harvest(
            policy_id="self-hosted", base_url="https://api.openai.com/v1", model="gpt-4o"
        )
    with pytest.raises(PolicyMismatch, match=r"llama-3\.1"):
        resolve_for_harvest(policy_id="smollm2", base_url=LOCAL, model="llama-3.1-8b-instruct")


def test_explicit_policy_for_an_uncovered_model() -> None:
    rp = resolve_for_harvest(policy_id="self-hosted", base_url=LOCAL, model="my-own-model")
    assert rp.id == "self-hosted" and rp.record()["resolved_by"] == "explicit"


def test_explicit_policy_breaks_a_tie() -> None:
    rp = resolve_for_harvest(policy_id="deepseek-r1", base_url=LOCAL, model="deepseek-r1:8b")
    assert rp.id == "deepseek-r1"


def test_limits_and_prices_from_the_policy(user_dir: Path, policy_file) -> None:
    policy_file(
        user_dir,
        "metered",
        extra=(
            '[[covers]]\nhosts = ["api.metered.test"]\n'
            "[limits]\nrpm = 60\ntpm = 10000\nrpd = 5\nmax_spend_usd = 2.5\n"
            '[[prices]]\nmodels = ["big-*"]\nusd_per_mtok_in = 3\nusd_per_mtok_out = 15\n'
        ),
    )
    big = resolve_for_harvest(policy_id=None, base_url="https://api.metered.test/v1", model="big-1")
    assert big.limits == Limits(
        rpm=60, tpm=10000, rpd=5, max_spend_usd=2.5, usd_per_mtok_in=3.0, usd_per_mtok_out=15.0
    )
    small = resolve_for_harvest(
        policy_id=None, base_url="https://api.metered.test/v1", model="small-1"
    )
    assert small.limits.usd_per_mtok_in is None and small.limits.rpd == 5
    assert big.record()["limits"]["rpd"] == 5


def test_shipped_prices_fill_in_for_the_model() -> None:
    from stillroom.policies import get_policy

    assert get_policy("openai").limits_for("gpt-4o-mini-2024-07-18").usd_per_mtok_in == 0.15
    assert get_policy("openai").limits_for("gpt-4o-2024-08-06").usd_per_mtok_out == 10.0
    assert get_policy("smollm2").limits_for("smollm2") == Limits()
