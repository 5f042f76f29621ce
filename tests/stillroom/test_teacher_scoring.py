"""The teacher's scoring route: wire format, maths, bad requests, and both real backends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import httpx
import numpy as np
import pytest

from stillroom._teacher_routes import ScoringRoutes
from stillroom._teacher_scoring import (
    CHUNK_ROWS,
    ScoringRequestError,
    chat_logprobs,
    parse_score_request,
    score_choice,
    sequence_logprobs,
    vocab_fingerprint,
)
from tests.stillroom.conftest import HAS_TEACHER, needs_teacher, needs_train

TEXT = "<|im_start|>user\nCafé 日本 sums: 2+3=5.<|im_end|>\n"


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return (
        x
        - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))
        - x.max(-1, keepdims=True)
    )


def test_sequence_logprobs_match_a_plain_log_softmax_across_chunks():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(CHUNK_ROWS + 3, 50)).astype(np.float32) * 4
    targets = rng.integers(0, 50, size=CHUNK_ROWS + 3)
    chosen, top_ids, top_lps = sequence_logprobs(logits, targets, top_n=3)
    ref = _log_softmax(logits)
    np.testing.assert_allclose(chosen, ref[np.arange(len(targets)), targets], atol=1e-5)
    np.testing.assert_array_equal(top_ids, np.argsort(-ref, axis=1)[:, :3])
    np.testing.assert_allclose(top_lps, np.sort(ref, axis=1)[:, ::-1][:, :3], atol=1e-5)


class ToyScorer:
    """A 6-token vocabulary: BOS, 'a', 'é' split over two byte tokens, 'b', END."""

    PIECES = (b"<s>", b"a", b"\xc3", b"\xa9", b"b", b"</s>")
    vocab_size = 6
    n_ctx = 16

    def __init__(self, add_bos: bool = False) -> None:
        self.add_bos = add_bos
        self.logits_seen: list[list[int]] = []
        self.table = np.random.default_rng(1).normal(size=(6, 6)).astype(np.float32)

    def tokenize(self, text: str) -> tuple[list[int], bool]:
        ids, data = [], text.encode()
        for byte in data:
            ids.append(self.PIECES.index(bytes([byte])))
        return ([0, *ids], True) if self.add_bos else (ids, False)

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        self.logits_seen.append(list(ids))
        return self.table[list(ids)]  # row i depends on token i only: enough for a toy

    def piece(self, token_id: int) -> bytes:
        return self.PIECES[token_id]

    def is_end(self, token_id: int) -> bool:
        return token_id == 5


def test_choice_scores_every_token_after_the_first_and_keeps_offsets_on_the_text():
    scorer = ToyScorer()
    choice = score_choice(scorer, "aéb", top_n=2, max_tokens=0)
    lp = choice["logprobs"]
    ids = [1, 2, 3, 4]
    assert choice["prompt_token_ids"] == ids and scorer.logits_seen == [ids]
    assert choice["text"] == "aéb" and choice["token_ids"] == []
    assert lp["tokens"] == ["a", "", "", "b"]  # a split character decodes to "" per part
    assert lp["text_offset"] == [0, 1, 1, 2]
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    ref = _log_softmax(scorer.table[ids])
    want = [ref[i, ids[i + 1]] for i in range(3)]
    np.testing.assert_allclose(lp["token_logprobs"][1:], want, atol=1e-6)
    assert all(2 <= len(top) <= 3 for top in lp["top_logprobs"][1:])


def test_chat_logprobs_cover_the_answer_with_raw_bytes_and_leave_out_the_end_token():
    scorer = ToyScorer()
    ids = [1, 4, 2, 3, 5]  # prompt "a", answer "bé" then END
    content = chat_logprobs(scorer, ids, start=1, top_n=2)["content"]
    assert scorer.logits_seen == [ids[:4]]  # one forward pass, the end token not scored
    assert [e["bytes"] for e in content] == [[ord("b")], [0xC3], [0xA9]]
    assert [e["token"] for e in content] == ["b", "", ""]  # a split character: bytes hold it
    ref = _log_softmax(scorer.table[ids[:4]])
    for row, entry in enumerate(content):
        assert entry["logprob"] == pytest.approx(ref[row, ids[row + 1]], abs=1e-6)
        best = np.argsort(-ref[row])[:2]
        assert [a["bytes"] for a in entry["top_logprobs"]] == [
            list(ToyScorer.PIECES[i]) for i in best
        ]
        np.testing.assert_allclose([a["logprob"] for a in entry["top_logprobs"]], ref[row, best])
    assert chat_logprobs(scorer, [1, 5], start=1, top_n=2) == {"content": []}


@pytest.mark.parametrize("bad", [21, -1, "3", True, 2.0])
def test_chat_top_logprobs_out_of_range_is_refused_naming_the_field(bad):
    from stillroom._teacher_hf import _top_logprobs

    assert _top_logprobs({"top_logprobs": 5}) is None  # no logprobs asked: none returned
    assert _top_logprobs({"logprobs": True}) == 0
    with pytest.raises(ValueError, match=r"top_logprobs: an integer in 0\.\.20"):
        _top_logprobs({"logprobs": True, "top_logprobs": bad})


def test_a_bos_the_server_added_is_left_out_and_max_tokens_1_appends_the_greedy_token():
    scorer = ToyScorer(add_bos=True)
    choice = score_choice(scorer, "ab", top_n=0, max_tokens=1)
    greedy = int(np.argmax(scorer.table[4]))
    lp = choice["logprobs"]
    assert choice["prompt_token_ids"] == [0, 1, 4]
    assert lp["tokens"][:2] == ["a", "b"] and lp["text_offset"][:2] == [0, 1]
    assert lp["token_logprobs"][0] is None
    if greedy == 5:  # the end of the turn is not appended, as llama-cpp-python does
        assert choice["finish_reason"] == "stop" and choice["token_ids"] == []
    else:
        assert choice["finish_reason"] == "length" and choice["token_ids"] == [greedy]
        assert len(lp["tokens"]) == 3


def test_token_id_prompts_are_scored_as_sent_and_unknown_ids_refused():
    scorer = ToyScorer(add_bos=True)
    choice = score_choice(scorer, (0, 1, 4), top_n=0, max_tokens=0)
    assert choice["prompt_token_ids"] == [0, 1, 4] and choice["logprobs"]["tokens"][0] == "<s>"
    with pytest.raises(ScoringRequestError, match="token id 9 is not in the vocabulary"):
        score_choice(scorer, (1, 9), top_n=0, max_tokens=0)
    with pytest.raises(ScoringRequestError, match="do not fit the context of 16"):
        score_choice(scorer, (1,) * 16, top_n=0, max_tokens=1)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"prompt": 3}, "prompt"),
        ({"prompt": [1, True]}, "prompt"),
        ({"prompt": [1.5, 2]}, "prompt"),
        ({"prompt": ["ok", ""]}, "prompt"),
        ({"prompt": "x", "logprobs": "5"}, "logprobs"),
        ({"prompt": "x", "logprobs": 21}, "logprobs"),
        ({"prompt": "x", "max_tokens": 16}, "max_tokens"),
        ({"prompt": "x", "stream": True}, "stream"),
        ({"prompt": "x", "model": 3}, "model"),
    ],
)
def test_bad_requests_name_the_field(body, param):
    with pytest.raises(ScoringRequestError) as caught:
        parse_score_request({"echo": True, "logprobs": 1, **body})
    assert caught.value.param == param and param in str(caught.value)


def test_batches_of_texts_and_of_id_lists_are_accepted():
    assert parse_score_request({"prompt": ["a", "b"]}).prompts == ("a", "b")
    assert parse_score_request({"prompt": [[1, 2], [3]]}).prompts == ((1, 2), (3,))
    assert parse_score_request({"prompt": [1, 2]}).prompts == ((1, 2),)


async def _inner(scope, receive, send):  # the wrapped app (llama.cpp's in the teacher)
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    data = json.dumps({"passed_through": json.loads(body or b"null")}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": data})


def test_routes_answer_scoring_and_tokenizer_and_pass_the_rest_through():
    async def score(request):
        return {"scored": list(request.prompts)}

    app = ScoringRoutes(_inner, score, {"vocab_sha256": "abc"})

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return [
                await c.post("/v1/completions", json={"prompt": "hi", "echo": True, "logprobs": 0}),
                await c.post("/v1/completions", json={"prompt": "hi", "max_tokens": 3}),
                await c.post("/v1/chat/completions", json={"messages": []}),
                await c.post("/v1/completions", json={"prompt": "", "echo": True, "logprobs": 0}),
                await c.get("/v1/tokenizer"),
            ]

    scored, plain, chat, bad, tok = asyncio.run(run())
    assert scored.json() == {"scored": ["hi"]}
    assert plain.json()["passed_through"]["max_tokens"] == 3
    assert chat.json()["passed_through"] == {"messages": []}
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "prompt"
    assert tok.json() == {"vocab_sha256": "abc"}


def test_vocab_fingerprint_is_order_and_boundary_sensitive():
    assert vocab_fingerprint(["ab", "c"]) != vocab_fingerprint(["a", "bc"])
    assert vocab_fingerprint(["a", "b"]) != vocab_fingerprint(["b", "a"])


# --- real backends ------------------------------------------------------------------------


def _score(base_url: str, prompt, top_n: int = 2, max_tokens: int = 1) -> dict:
    body = {
        "model": "m",
        "prompt": prompt,
        "echo": True,
        "logprobs": top_n,
        "max_tokens": max_tokens,
    }
    response = httpx.post(f"{base_url}/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def _check_wire(answer: dict, ids: list[int]) -> np.ndarray:
    """The choice scores exactly ``ids``; offsets index the text; returns logprobs[1:]."""
    choice = answer["choices"][0]
    lp = choice["logprobs"]
    assert choice["prompt_token_ids"] == ids
    assert answer["usage"]["prompt_tokens"] == len(ids)
    assert answer["usage"]["completion_tokens"] == len(choice["token_ids"]) <= 1
    assert len(lp["tokens"]) == len(ids) + len(choice["token_ids"])
    assert lp["token_logprobs"][0] is None
    for token, offset in zip(lp["tokens"], lp["text_offset"], strict=True):
        assert choice["text"][offset : offset + len(token)] == token
    return np.array(lp["token_logprobs"][1 : len(ids)], dtype=np.float64)


@needs_teacher
@pytest.mark.slow
@pytest.mark.teacher
def test_llama_cpp_route_equals_llama_eval_and_chat_still_works(teacher):
    import llama_cpp

    from stillroom.teacher import default_gguf, default_threads

    answer = _score(teacher.base_url, TEXT)
    ids = answer["choices"][0]["prompt_token_ids"]
    assert answer["choices"][0]["text"].startswith(TEXT)
    llama = llama_cpp.Llama(
        str(default_gguf()), logits_all=True, n_ctx=256, n_threads=default_threads(), verbose=False
    )
    assert llama.tokenize(TEXT.encode(), add_bos=True, special=True) == ids
    llama.eval(ids)
    ref = llama_cpp.Llama.logits_to_logprobs(llama.scores[: len(ids)])
    want = ref[np.arange(len(ids) - 1), ids[1:]]
    np.testing.assert_allclose(_check_wire(answer, ids), want, atol=1e-4)
    by_ids = _score(teacher.base_url, ids, top_n=0, max_tokens=0)  # ids in == ids scored
    np.testing.assert_allclose(_check_wire(by_ids, ids), want, atol=1e-4)

    bad = httpx.post(
        f"{teacher.base_url}/completions",
        json={"prompt": "", "echo": True, "logprobs": 1, "max_tokens": 1},
        timeout=30,
    )
    assert bad.status_code == 400 and "prompt" in bad.json()["error"]["message"]
    chat = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "temperature": 0}
    assert httpx.post(f"{teacher.base_url}/chat/completions", json=chat, timeout=60).is_success
    tokenizer = httpx.get(f"{teacher.base_url}/tokenizer", timeout=30).json()
    assert tokenizer["backend"] == "llama.cpp" and tokenizer["vocab_size"] == llama.n_vocab()
    assert tokenizer["vocab_sha256"] == _gguf_fingerprint()


def _gguf_fingerprint() -> str:
    """The GGUF's vocabulary fingerprint, read in this process (vocabulary only)."""
    import llama_cpp

    from stillroom.teacher import default_gguf

    llama = llama_cpp.Llama(str(default_gguf()), vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    return vocab_fingerprint(
        [llama_cpp.llama_vocab_get_text(vocab, i).decode() for i in range(llama.n_vocab())]
    )


def _check_chat_logprobs(model, tokenizer, messages: list[dict], content: list[dict]) -> None:
    """Chat logprobs (OpenAI's shape, as harvest stored them) are those of the model's own
    forward pass over prompt + the answer's tokens; greedy, so each token is its top one."""
    import torch

    from stillroom._core import byte_decoder

    encoder = {byte: char for char, byte in byte_decoder().items()}

    def token_id(entry: dict) -> int:
        return tokenizer.convert_tokens_to_ids("".join(encoder[b] for b in entry["bytes"]))

    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
    answer = [token_id(e) for e in content]
    ids = [*prompt["input_ids"], *answer]
    with torch.no_grad():
        logp = model(torch.tensor([ids])).logits.log_softmax(-1)[0, -len(answer) - 1 : -1]
    top = logp.topk(len(content[0]["top_logprobs"]), dim=-1)
    for row, entry in enumerate(content):
        assert entry["logprob"] == pytest.approx(float(logp[row, answer[row]]), abs=1e-4)
        assert [token_id(a) for a in entry["top_logprobs"]] == top.indices[row].tolist()
        np.testing.assert_allclose([a["logprob"] for a in entry["top_logprobs"]],
                                   top.values[row].numpy(), atol=1e-4)  # fmt: skip
        assert top.indices[row, 0] == answer[row]  # greedy


@needs_train
@pytest.mark.slow
def test_transformers_backend_scores_like_its_own_forward_pass(base_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from stillroom.teacher import TeacherConfig, hf_tokenizer_fingerprint, serve_teacher

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
    ids = tokenizer(TEXT)["input_ids"]
    with torch.no_grad():
        logp = model(torch.tensor([ids])).logits.log_softmax(-1)[0]
    want = logp[:-1].gather(-1, torch.tensor(ids[1:])[:, None])[:, 0].numpy()

    config = TeacherConfig(backend="transformers", model_dir=base_dir, n_threads=1, n_ctx=256)
    with serve_teacher(config) as teacher:
        answer = _score(teacher.base_url, ids)
        by_text = _score(teacher.base_url, TEXT, top_n=0, max_tokens=0)
        tokenizer_info = httpx.get(f"{teacher.base_url}/tokenizer", timeout=30).json()
        models = httpx.get(f"{teacher.base_url}/models", timeout=30).json()
        chat = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "temperature": 0}
        reply = httpx.post(f"{teacher.base_url}/chat/completions", json=chat, timeout=120)
        # chat logprobs through harvest's OpenAI dialect, stored as top-k rows
        stored = _harvest_with_logprobs(teacher, tmp_path / "h.duckdb", chat["messages"])
    assert len(stored) == 5 and all(len(e["top_logprobs"]) == 3 for e in stored)
    _check_chat_logprobs(model, tokenizer, chat["messages"], stored)
    np.testing.assert_allclose(_check_wire(answer, ids), want, atol=1e-4)
    np.testing.assert_allclose(_check_wire(by_text, ids), want, atol=1e-4)
    assert by_text["choices"][0]["text"] == TEXT
    assert answer["model"] == base_dir.name == models["data"][0]["id"]
    assert tokenizer_info["vocab_sha256"] == hf_tokenizer_fingerprint(tokenizer)
    if HAS_TEACHER:  # the same tokenizer gets the same fingerprint from both backends
        assert tokenizer_info["vocab_sha256"] == _gguf_fingerprint()
    assert models["data"][0]["vocab_sha256"] == tokenizer_info["vocab_sha256"]
    assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] <= 3


def _harvest_with_logprobs(teacher, db, messages: list[dict]) -> list[dict]:
    from stillroom.harvest import HarvestConfig, read_completions, run_harvest

    result = run_harvest(HarvestConfig(
        prompts=[{"id": "p0", "prompt": messages[-1]["content"]}], db=db,
        base_url=teacher.base_url, model=teacher.model, policy=teacher.policy_id,
        purpose="test", max_tokens=5, temperature=0.0, top_logprobs=3, concurrency=1,
    ), progress=False)  # fmt: skip
    assert result.failed == 0, result.message
    (row,) = read_completions(db)
    return json.loads(row.top_logprobs)


def test_backend_config_errors_name_the_option(tmp_path):
    from stillroom.teacher import TeacherConfig, TeacherError

    with pytest.raises(TeacherError, match=r"backend must be one of llama\.cpp, transformers"):
        TeacherConfig(backend="vllm")
    with pytest.raises(TeacherError, match=r"model_dir \(--model\) must be a Hugging Face"):
        TeacherConfig(backend="transformers", model_dir=tmp_path)
    with pytest.raises(TeacherError, match=r"model_dir \(--model\) is for --backend transformers"):
        TeacherConfig(model_dir=tmp_path)
    (tmp_path / "config.json").write_text("{}")
    config = TeacherConfig(backend="transformers", model_dir=tmp_path, n_threads=1)
    assert config.model_alias == tmp_path.name
    assert config.model_settings()["model"] == str(tmp_path)
