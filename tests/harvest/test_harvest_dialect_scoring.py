"""The ``scoring`` dialect: a teacher's logprobs of a given text (``train onpolicy`` sends it)."""

from __future__ import annotations

import pytest

from stillroom.harvest import (
    HarvestConfig,
    HarvestConfigError,
    NoPromptLogprobs,
    RequestOptions,
    ScoringEcho,
    dialect_for,
)

SCORING = dialect_for("scoring")
ECHO = {
    "choices": [{"text": "ab", "logprobs": {"token_logprobs": [None, -0.5, -2.0],
                                             "text_offset": [0, 1, 2], "tokens": ["a", "b", "."]}}],
    "usage": {"prompt_tokens": 2, "completion_tokens": 1},
}  # fmt: skip


def test_build_echoes_text_or_token_ids_and_generates_one_token():
    wire = SCORING.build("m", [{"role": "user", "content": "ab"}], RequestOptions(max_tokens=9))
    assert wire.path == "/completions"
    assert wire.body == {"model": "m", "prompt": "ab", "echo": True, "logprobs": 0,
                         "max_tokens": 1, "temperature": 0.0}  # fmt: skip
    ids = SCORING.build("m", [{"role": "user", "content": (5, 6)}], RequestOptions()).body
    assert ids["prompt"] == [5, 6]
    many = SCORING.build("m", [{"content": [(5, 6), [7]]}], RequestOptions()).body
    assert many["prompt"] == [[5, 6], [7]]  # several sequences, one choice each
    with pytest.raises(HarvestConfigError, match="one text"):
        SCORING.build("m", [{"content": "a"}, {"content": "b"}], RequestOptions())
    with pytest.raises(HarvestConfigError, match="token ids"):
        SCORING.build("m", [{"content": [1.5]}], RequestOptions())


def test_parse_reads_the_echo_and_refuses_a_reply_without_logprobs():
    echo = SCORING.parse(ECHO, None)
    assert echo == ScoringEcho([None, -0.5, -2.0], [0, 1, 2], 2)
    with pytest.raises(NoPromptLogprobs, match="closed APIs"):
        SCORING.parse({"choices": [{"text": "ab", "logprobs": None}]}, None)
    nulls = {"choices": [{"logprobs": {"token_logprobs": [None, None], "text_offset": [0, 1]}}]}
    with pytest.raises(NoPromptLogprobs, match="null"):
        SCORING.parse(nulls, None)
    two = {"choices": [ECHO["choices"][0] | {"index": 1}, ECHO["choices"][0] | {"index": 0}]}
    assert [e.token_logprobs for e in SCORING.parse_all(two, 2)] == [[None, -0.5, -2.0]] * 2
    with pytest.raises(NoPromptLogprobs, match="1 choices for 2"):
        SCORING.parse_all(ECHO, 2)


def test_keys_classify_and_it_is_no_harvest_api(tmp_path):
    assert SCORING.key("t", "ab") != SCORING.key("t", [5, 6]) != SCORING.key("u", [5, 6])
    assert SCORING.key("t", [5, 6]) == SCORING.key("t", (5, 6))
    verdict = SCORING.classify(429, b"{}", {"retry-after": "3"})
    assert (verdict.kind, verdict.retry_after) == ("rate_limited", 3.0)
    assert SCORING.classify(404, b'{"error": {"message": "no route"}}', {}).kind == "permanent"
    with pytest.raises(HarvestConfigError, match="api"):
        HarvestConfig(prompts=[{"prompt": "x"}], db=tmp_path / "h.duckdb",
                      base_url="http://127.0.0.1:9/v1", model="m", api="scoring")  # fmt: skip
