"""The scoring client and the up-front refusals (fake transports; no model forward)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from stillroom.harvest import ScoringEcho, dialect_for
from stillroom.policies import PolicyRefused
from stillroom.train import (
    OnPolicyConfig,
    TeacherNoLogprobs,
    TeacherTokenizerMismatch,
    TrainConfigError,
    train_onpolicy,
)
from stillroom.train._scoring import ScoringClient, scoring_key
from tests.policies.conftest import write_policy

URL = "http://127.0.0.1:9/v1"


def _prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    rows = [{"id": f"p{i}", "prompt": f"Name fruit number {i}."} for i in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _config(tmp_path: Path, base_dir: Path, **kw) -> OnPolicyConfig:
    fields = dict(
        prompts=_prompts(tmp_path),
        db=tmp_path / "s.duckdb",
        out=tmp_path / "run",
        teacher_base_url=URL,
        teacher_model="test-teacher",
        policy="self-hosted",
        base=str(base_dir),
        steps=1,
    )
    return OnPolicyConfig(**(fields | kw))


def _recording(handler):
    seen: list[dict] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return handler(request)

    return seen, httpx.AsyncClient(transport=httpx.MockTransport(record))


def test_teacher_without_prompt_logprobs_is_refused_after_one_probe(tmp_path, base_dir):
    seen, http = _recording(
        lambda r: httpx.Response(200, json={"choices": [{"text": "x", "logprobs": None}]})
    )
    with pytest.raises(TeacherNoLogprobs, match="closed APIs"):
        train_onpolicy(_config(tmp_path, base_dir), http=http)
    assert len(seen) == 1 and seen[0]["echo"] is True and seen[0]["max_tokens"] == 1
    assert not (tmp_path / "run" / "adapter").exists()


def test_closed_api_404_is_refused_as_no_logprobs(tmp_path, base_dir):
    seen, http = _recording(lambda r: httpx.Response(404, json={"error": "no such route"}))
    with pytest.raises(TeacherNoLogprobs, match="HTTP 404"):
        train_onpolicy(_config(tmp_path, base_dir), http=http)
    assert len(seen) == 1


def test_teacher_with_another_tokenizer_is_refused_before_scoring(tmp_path, base_dir):
    def chars(request: httpx.Request) -> httpx.Response:
        text = json.loads(request.content)["prompt"]
        lp = {"tokens": list(text), "token_logprobs": [None] + [-1.0] * (len(text) - 1)}
        lp["text_offset"] = list(range(len(text)))
        return httpx.Response(200, json={"choices": [{"logprobs": lp}], "usage": {}})

    seen, http = _recording(chars)
    with pytest.raises(TeacherTokenizerMismatch, match="token boundaries differ"):
        train_onpolicy(_config(tmp_path, base_dir), http=http)
    assert len(seen) == 1


def test_forbidding_policy_is_refused_before_any_request(tmp_path, base_dir, monkeypatch):
    policies = tmp_path / "policies"
    policies.mkdir()
    monkeypatch.setenv("STILLROOM_POLICY_PATH", str(policies))
    clause = "You may not use outputs to train any machine learning model."
    write_policy(policies, "walled", verdict="forbidden", clause=clause)
    seen, http = _recording(lambda r: httpx.Response(500))
    with pytest.raises(PolicyRefused) as err:
        train_onpolicy(_config(tmp_path, base_dir, policy="walled"), http=http)
    assert clause in str(err.value)
    assert seen == []


def test_config_is_validated():
    with pytest.raises(TrainConfigError, match="steps"):
        OnPolicyConfig("p", "d", "o", URL, "m", steps=0)
    with pytest.raises(TrainConfigError, match="teacher_base_url"):
        OnPolicyConfig("p", "d", "o", "localhost:8080", "m")
    with pytest.raises(TrainConfigError, match="temperature"):
        OnPolicyConfig("p", "d", "o", URL, "m", temperature=0)


def test_align_by_offset_uses_offsets_not_token_strings():
    # text "aéb": "é" split over two byte tokens, which both start at offset 1 and decode
    # to "" each; the generated entry at offset 3 is ignored
    align = dialect_for("scoring").align
    echo = ScoringEcho([None, -0.5, -0.25, -0.125, -3.0], [0, 1, 1, 2, 3], 5)
    values, missing = align(echo, [1, 1, 2], end=3)
    assert values == [-0.5, -0.25, -0.125] and missing == 0
    # the student tokenised "éb" as one token: no teacher token spans it
    values, missing = align(echo, [0, 1], end=3)
    assert values == [None, None] and missing == 2


def test_retries_429_with_the_servers_hint_and_sends_the_idempotency_key():
    replies = [
        httpx.Response(429, headers={"retry-after": "3"}, json={}),
        httpx.Response(200, json={"choices": [{"logprobs": {}}], "usage": {"prompt_tokens": 4}}),
    ]
    keys, waits = [], []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotency-Key"])
        return replies.pop(0)

    async def sleep(s: float) -> None:
        waits.append(s)

    client = ScoringClient(
        URL, "m", http=httpx.AsyncClient(transport=httpx.MockTransport(handler)), sleep=sleep
    )
    key = scoring_key(client.teacher, "hello")
    client.request("hello", key)
    client.close()
    assert keys == [key, key] and 3.0 in waits
    assert client.requests == 2 and client.prompt_tokens == 4
