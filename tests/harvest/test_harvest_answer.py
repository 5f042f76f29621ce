"""Parsing one chat-completion body: think blocks, reasoning fields, logprobs, bad bodies."""

from __future__ import annotations

import json

import pytest

from stillroom.harvest import split_think
from stillroom.harvest._answer import decode_body
from stillroom.harvest._dialect_chat import DIALECT
from stillroom.harvest._retry import TransientError


def parse_answer(raw: bytes, request_id: str | None):
    return DIALECT.parse(decode_body(raw), request_id)


@pytest.mark.parametrize(
    ("text", "content", "reasoning"),
    [
        ("<think>\nstep 1\n</think>\n\nAnswer", "Answer", "step 1"),
        ("  <think>cut off while thinking", "", "cut off while thinking"),
        ("only the close</think> Answer", "Answer", "only the close"),
        ("<think></think>Answer", "Answer", None),
        ("Plain answer with <think> later", "Plain answer with <think> later", None),
        # moved from train's removed copy (which returned (reasoning, answer)), same cases
        ("<think>\nhm\n</think>\n\nYes.", "Yes.", "hm"),
        ("Yes.", "Yes.", None),
    ],
)
def test_split_think(text, content, reasoning):
    assert split_think(text) == (content, reasoning)


def body(message: dict, **extra) -> bytes:
    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "length"}
    return json.dumps({"model": "served", "choices": [choice], **extra}).encode()


def test_reasoning_field_wins_over_a_think_block_and_usage_is_read():
    usage = {
        "prompt_tokens": 3,
        "completion_tokens": 9,
        "completion_tokens_details": {"reasoning_tokens": 6},
    }
    a = parse_answer(
        body({"content": "<think>t</think>A", "reasoning_content": "R"}, usage=usage), "req_1"
    )
    assert (a.content, a.reasoning, a.finish_reason) == ("A", "R", "length")
    assert (a.prompt_tokens, a.completion_tokens, a.reasoning_tokens) == (3, 9, 6)
    assert (a.teacher_model, a.request_id, a.top_logprobs) == ("served", "req_1", None)
    assert parse_answer(body({"content": "A", "reasoning": "R2"}), None).reasoning == "R2"


@pytest.mark.parametrize(
    "raw", [b'{"choices": [{"mess', b"<html>502</html>", b'{"choices": []}', b"null"]
)
def test_bodies_that_are_not_completions_are_transient(raw):
    with pytest.raises(TransientError, match="unparseable body"):
        parse_answer(raw, None)
