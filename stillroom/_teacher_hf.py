"""The teacher's transformers backend: a Hugging Face model directory behind the same API.

``stillroom teacher serve --backend transformers --model DIR`` runs this in the teacher's
server process (see :mod:`stillroom._teacher_app`), so a merged student can be a teacher:

- ``GET /v1/models``: the one model, with its tokenizer's fingerprint (``vocab_sha256``);
- ``POST /v1/chat/completions``: ``generate`` over the tokenizer's chat template
  (``messages``, ``max_tokens``, ``temperature`` (0 = greedy), ``top_p``, ``seed``, and
  ``logprobs`` + ``top_logprobs`` (0..20) in OpenAI's shape, see
  :func:`~stillroom._teacher_scoring.chat_logprobs`; not with ``stream``);
- ``POST /v1/completions`` with ``echo`` + ``logprobs``: the scoring route, one forward pass;
- ``GET /v1/tokenizer``: the tokenizer's identity (as the llama.cpp backend answers it).

Torch and transformers are imported here only, in the server process.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

from stillroom._core import byte_decoder
from stillroom._teacher_routes import (
    ASGIApp,
    DefaultSystemPrompt,
    Receive,
    Scope,
    ScoringRoutes,
    Send,
    error_body,
    read_body,
    send_json,
)
from stillroom._teacher_scoring import (
    MAX_TOP_LOGPROBS,
    ScoreRequest,
    chat_logprobs,
    hf_tokenizer_fingerprint,
    score_completion,
)


class HFScorer:
    """The scoring backend over a transformers causal LM and its tokenizer."""

    def __init__(self, model: Any, tokenizer: Any, n_ctx: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.vocab_size = len(tokenizer)
        self.n_ctx = n_ctx
        decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
        self._byte_level = type(decoder).__name__ == "ByteLevel"
        self._special = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
        self._ends = _end_ids(model, tokenizer)

    def tokenize(self, text: str) -> tuple[list[int], bool]:
        ids = self.tokenizer(text, add_special_tokens=True)["input_ids"]
        bare = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids, len(ids) == len(bare) + 1 and ids[0] == self.tokenizer.bos_token_id

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.model(input_ids=torch.tensor([list(ids)], dtype=torch.long))
        return out.logits[0].float().numpy()

    def piece(self, token_id: int) -> bytes:
        token = self.tokenizer.convert_ids_to_tokens(token_id)
        if token_id in self._special:
            return token.encode()
        if not self._byte_level:
            return self.tokenizer.decode([token_id]).encode()
        decoder = byte_decoder()
        return bytes(decoder[c] for c in token)

    def is_end(self, token_id: int) -> bool:
        return token_id in self._ends

    @cached_property
    def tokenizer_info(self) -> dict[str, Any]:
        return {
            "backend": "transformers",
            "vocab_size": self.vocab_size,
            "vocab_sha256": hf_tokenizer_fingerprint(self.tokenizer),
            "bos_token_id": self.tokenizer.bos_token_id,
            "eos_token_id": self.tokenizer.eos_token_id,
        }


def _end_ids(model: Any, tokenizer: Any) -> set[int]:
    ends = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    found = set(ends if isinstance(ends, list) else [ends]) | {tokenizer.eos_token_id}
    return {i for i in found if i is not None}


def _top_logprobs(body: dict[str, Any]) -> int | None:
    """The ``top_logprobs`` a chat request asks for (None: no ``logprobs``)."""
    if not body.get("logprobs"):
        return None
    value = body.get("top_logprobs")
    value = 0 if value is None else value
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOP_LOGPROBS:
        raise ValueError(f"top_logprobs: an integer in 0..{MAX_TOP_LOGPROBS}, got {value!r}")
    return value


def chat_completion(scorer: HFScorer, body: dict[str, Any], alias: str) -> dict[str, Any]:
    """OpenAI chat completion by ``generate`` over the tokenizer's chat template."""
    import torch

    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages: a non-empty list of {role, content} is required")
    if body.get("stream"):
        raise ValueError("stream: not supported by the transformers backend's chat route")
    top_n = _top_logprobs(body)
    max_tokens = body.get("max_tokens") or 256
    temperature = float(body.get("temperature", 1.0) if body.get("temperature") is not None else 1)
    tok = scorer.tokenizer
    inputs = tok.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    if body.get("seed") is not None:
        torch.manual_seed(int(body["seed"]))
    sampling = {"do_sample": temperature > 0}
    if temperature > 0:
        sampling |= {"temperature": temperature, "top_p": float(body.get("top_p") or 1.0)}
    with torch.no_grad():
        out = scorer.model.generate(
            **inputs, max_new_tokens=int(max_tokens), top_k=None, pad_token_id=tok.eos_token_id,
            **sampling,
        )  # fmt: skip
    prompt_len = inputs["input_ids"].shape[1]
    new = out[0, prompt_len:].tolist()
    ended = bool(new) and new[-1] in scorer._ends
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": alias,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": tok.decode(new, skip_special_tokens=True),
                },
                "logprobs": None
                if top_n is None
                else chat_logprobs(scorer, out[0].tolist(), prompt_len, top_n),
                "finish_reason": "stop" if ended else "length",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_len,
            "completion_tokens": len(new),
            "total_tokens": prompt_len + len(new),
        },
    }


class TransformersApp:
    """The raw ASGI app of the transformers backend: models and chat (scoring is in front)."""

    def __init__(self, scorer: HFScorer, alias: str, lock: threading.Lock) -> None:
        self.scorer = scorer
        self.alias = alias
        self.lock = lock

    def models(self) -> dict[str, Any]:
        entry = {"id": self.alias, "object": "model", "owned_by": "me", "permissions": []}
        entry["vocab_sha256"] = self.scorer.tokenizer_info["vocab_sha256"]
        return {"object": "list", "data": [entry]}

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return chat_completion(self.scorer, body, self.alias)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        import anyio

        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        route = (scope["method"], scope["path"])
        if route == ("GET", "/v1/models"):
            await send_json(send, 200, self.models())
        elif route == ("POST", "/v1/chat/completions"):
            try:
                body = json.loads(await read_body(receive))
                if not isinstance(body, dict):
                    raise ValueError("the request body must be a JSON object")
                answer = await anyio.to_thread.run_sync(self._chat, body)
            except ValueError as exc:
                await send_json(send, 400, error_body(str(exc)))
                return
            await send_json(send, 200, answer)
        elif route == ("POST", "/v1/completions"):
            message = "the transformers backend serves /v1/completions for scoring only"
            await send_json(send, 400, error_body(f"{message}: send echo: true and logprobs"))
        else:
            await send_json(send, 404, error_body(f"no route {scope['method']} {scope['path']}"))


def load_scorer(settings: dict[str, Any]) -> HFScorer:
    """The model directory in ``settings["model"]`` loaded for CPU inference."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_settings = settings["model"]
    torch.set_num_threads(int(model_settings.get("n_threads") or 1))
    directory = model_settings["model"]
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    return HFScorer(model, tokenizer, int(model_settings.get("n_ctx", 2048)))


def build_app(settings: dict[str, Any]) -> ASGIApp:
    """The transformers backend's app: scoring and tokenizer routes in front of chat."""
    import anyio

    scorer = load_scorer(settings)
    alias = settings["model"]["model_alias"]
    lock = threading.Lock()

    def score_locked(request: ScoreRequest) -> dict[str, Any]:
        with lock:
            return score_completion(scorer, request, alias)

    async def score(request: ScoreRequest) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(score_locked, request)

    app: ASGIApp = ScoringRoutes(TransformersApp(scorer, alias, lock), score, scorer.tokenizer_info)
    if settings.get("system"):
        return DefaultSystemPrompt(app, settings["system"])
    return app
