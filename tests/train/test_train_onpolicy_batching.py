"""What makes ``train onpolicy`` affordable on CPU, checked against the slow, plain way:
batched sampling (left padding), log-probabilities at completion positions only, several
samples per scoring request, and the bounded held-out reverse-KL metric."""

from __future__ import annotations

import json

import httpx
import pytest

from stillroom.train._onpolicy_metric import heldout_for_metric, reverse_kl_summary
from stillroom.train._scoring import ScoringClient, batch_key, scoring_key

URL = "http://127.0.0.1:9/v1"


@pytest.fixture(scope="module")
def model_tok(base_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(base_dir).eval(), AutoTokenizer.from_pretrained(
        base_dir
    )


def _prompts(tok, texts):
    from stillroom.train._onpolicy_model import render_student

    return [render_student(tok, [{"role": "user", "content": t}]) for t in texts]


def test_completion_logprobs_equal_each_sequences_own_forward(model_tok):
    import torch

    from stillroom.train._onpolicy_model import completion_logprobs

    model, tok = model_tok
    prompts = _prompts(tok, ["Hi.", "Name three rivers of Europe, please, with their lengths."])
    seqs = [(prompts[0], [504, 3020, 28]), (prompts[1], [504]), (prompts[0], [1059, 314, 7, 9])]
    got = completion_logprobs(model, tok.pad_token_id, seqs)
    for (p, c), values in zip(seqs, got, strict=True):
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([p + c])).logits[0], -1)
        want = [float(logp[len(p) - 1 + j, t]) for j, t in enumerate(c)]
        assert len(values) == len(c)
        assert values == pytest.approx(want, abs=1e-4)


def test_batched_sampling_left_pads_like_one_prompt_at_a_time(model_tok):
    import torch

    from stillroom.train._onpolicy_model import sample_batch

    model, tok = model_tok
    prompts = _prompts(
        tok, ["Name one colour.", "What is the capital of France? Answer in a word."]
    )
    # temperature -> 0 is greedy: padding that leaked into attention or positions would show
    got = sample_batch(model, tok, prompts, k=2, max_new_tokens=5, temperature=1e-6, seed=0)
    for p, completions in zip(prompts, got, strict=True):
        with torch.no_grad():
            ref = model.generate(input_ids=torch.tensor([p]), max_new_tokens=5, do_sample=False,
                                 pad_token_id=tok.pad_token_id)[0, len(p):].tolist()  # fmt: skip
        eos = tok.eos_token_id
        ref = ref[: ref.index(eos) + 1] if eos in ref else ref
        assert completions == [ref, ref]
    again = sample_batch(model, tok, prompts, k=2, max_new_tokens=5, temperature=1.0, seed=3)
    assert again == sample_batch(model, tok, prompts, k=2, max_new_tokens=5, temperature=1.0,
                                 seed=3)  # fmt: skip


def test_reverse_kl_summary_is_a_mean_over_prompts_of_sample_means():
    student = [[-1.0, -2.0], [-1.0], [-0.5, -0.5, -0.5]]
    teacher = [[-1.5, None], [-3.0], [-1.0, -1.0, -2.0]]
    got = reverse_kl_summary(["a", "a", "b"], student, teacher, seed=0)
    # a: samples (0.5) and (2.0) -> 1.25; b: (0.5 + 0.5 + 1.5) / 3 = 0.8333; mean over prompts
    assert got["mean"] == pytest.approx((1.25 + 2.5 / 3) / 2)
    assert got["prompts"] == 2
    lo, hi = got["ci95"]
    assert 2.5 / 3 <= lo <= got["mean"] <= hi <= 1.25
    assert reverse_kl_summary(["a"], [[-1.0]], [[None]], seed=0)["mean"] is None


def test_heldout_metric_prompts_are_a_bounded_fixed_choice():
    from types import SimpleNamespace

    held = [SimpleNamespace(prompt_key=f"k{i}") for i in range(20)]
    chosen = heldout_for_metric(held, 8, seed=0)
    assert len(chosen) == 8
    assert [e.prompt_key for e in heldout_for_metric(held[::-1], 8, seed=0)] == [
        e.prompt_key for e in chosen
    ]  # the input's order does not matter
    assert {e.prompt_key for e in heldout_for_metric(held, 8, seed=1)} != {
        e.prompt_key for e in chosen
    }
    assert len(heldout_for_metric(held, None, seed=0)) == 20


def _echo(ids: list[int], index: int) -> dict:
    values = [None] + [-0.1 * t for t in ids[1:]]
    return {"index": index, "logprobs": {"token_logprobs": [*values, -9.0],
            "text_offset": list(range(len(ids) + 1))}, "prompt_token_ids": ids}  # fmt: skip


def test_score_many_sends_one_request_and_reads_choices_by_index():
    seen: list[tuple[dict, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((body, request.headers["Idempotency-Key"]))
        prompts = body["prompt"] if isinstance(body["prompt"][0], list) else [body["prompt"]]
        choices = [_echo(p, i) for i, p in enumerate(prompts)][::-1]  # out of order
        n = sum(map(len, prompts))
        return httpx.Response(200, json={"choices": choices, "usage": {"prompt_tokens": n}})

    client = ScoringClient(URL, "m", http=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    client.accepts_ids = True
    items = [("", [1, 2], [3, 4]), ("", [5], [6]), ("", [7, 8, 9], [10])]
    got = client.score_many(None, items)
    assert len(seen) == 1 and seen[0][0]["prompt"] == [[1, 2, 3, 4], [5, 6], [7, 8, 9, 10]]
    keys = [scoring_key(client.teacher, [*p, *c]) for _, p, c in items]
    assert seen[0][1] == batch_key(keys) and [k for _, k in got] == keys
    assert [s["logprobs"] for s, _ in got] == [
        pytest.approx([-0.3, -0.4]),
        pytest.approx([-0.6]),
        pytest.approx([-1.0]),
    ]
    assert [s["prompt_tokens"] for s, _ in got] == [4, 2, 4] and client.prompt_tokens == 10
    single = client.score_many(None, items[:1])  # one sample: a plain id list, its own key
    assert seen[1][0]["prompt"] == [1, 2, 3, 4] and seen[1][1] == keys[0] == single[0][1]
    client.close()
