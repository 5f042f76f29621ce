"""The teacher's scoring route: the log-probability of every token of a text, one forward pass.

Wire format: OpenAI's legacy ``POST /v1/completions`` with ``echo: true`` and ``logprobs: N``
(what llama-cpp-python's server and vLLM answer), computed from one evaluation of the whole
text instead of llama-cpp-python's per-token Python sort of the vocabulary. Request:

    {"prompt": "text" | [token ids] | ["text", ...] | [[ids], ...],
     "echo": true, "logprobs": N (0..20), "max_tokens": 0 | 1}

Each prompt becomes one choice (``index`` in order) with ``text`` (the scored text, plus the
generated token if any), ``logprobs.tokens`` / ``token_logprobs`` / ``top_logprobs`` /
``text_offset`` (one entry per scored token; entry 0 is null, as OpenAI and vLLM do; a BOS
the server added to a text prompt itself is left out, as llama-cpp-python does), and vLLM's
``prompt_token_ids`` / ``token_ids``. ``max_tokens: 1`` appends the greedy next token (not
when it ends the turn, then ``finish_reason`` is ``"stop"``), as llama-cpp-python appends one
sampled token; ``max_tokens: 0`` (or none) scores only, as vLLM's ``echo`` does. Token
strings are the token's bytes decoded with ``errors="ignore"`` (a token that holds part of
a UTF-8 character is ""), so align by ``text_offset``. Log-probabilities are of the raw
logits: ``temperature`` and penalties do not change them.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

MAX_TOP_LOGPROBS = 20
#: Rows log-softmaxed at a time: bounds the extra memory to CHUNK_ROWS x vocab floats.
CHUNK_ROWS = 128


class ScoringRequestError(ValueError):
    """A scoring request the server refuses (HTTP 400); ``param`` names the field."""

    def __init__(self, param: str | None, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ScoreRequest:
    """A validated scoring request: prompts (texts or token-id lists), top N, tokens to add."""

    prompts: tuple[str | tuple[int, ...], ...]
    top_n: int
    max_tokens: int
    model: str | None = None


class Scorer(Protocol):
    """What a backend provides for scoring (llama.cpp or transformers)."""

    vocab_size: int
    n_ctx: int

    def tokenize(self, text: str) -> tuple[list[int], bool]:
        """Token ids of ``text`` (special tokens parsed) and whether a BOS was added."""

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """Logits [len(ids), vocab]: row i is the distribution of the token after ids[:i+1]."""

    def piece(self, token_id: int) -> bytes:
        """The bytes token ``token_id`` stands for (special tokens as their text)."""

    def is_end(self, token_id: int) -> bool:
        """Whether the token ends a turn (EOS, end of turn)."""


def is_scoring_request(body: Any) -> bool:
    """A completions request asking for echoed logprobs: the scoring route answers it."""
    return isinstance(body, dict) and body.get("echo") is True and body.get("logprobs") is not None


def _int_field(body: dict, name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ScoringRequestError(
            name, f"{name} must be an integer in {low}..{high}, got {value!r}"
        )
    return value


def _one_prompt(value: Any, where: str) -> str | tuple[int, ...]:
    if isinstance(value, str):
        if not value:
            raise ScoringRequestError("prompt", f"{where} is an empty string: nothing to score")
        return value
    if isinstance(value, list) and value and all(_is_token_id(v) for v in value):
        return tuple(value)
    if isinstance(value, list) and not value:
        raise ScoringRequestError("prompt", f"{where} is an empty list: nothing to score")
    raise ScoringRequestError(
        "prompt", f"{where} must be a string or a list of token ids (non-negative integers)"
    )


def _is_token_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_score_request(body: Any) -> ScoreRequest:
    """Validate a scoring request body; :class:`ScoringRequestError` names the bad field."""
    if not isinstance(body, dict):
        raise ScoringRequestError(None, "the request body must be a JSON object")
    if body.get("stream"):
        raise ScoringRequestError("stream", "stream is not supported with echo + logprobs")
    prompt = body.get("prompt")
    if prompt is None:
        raise ScoringRequestError("prompt", "prompt is required")
    if isinstance(prompt, list) and prompt and all(isinstance(p, (str, list)) for p in prompt):
        prompts = tuple(_one_prompt(p, f"prompt[{i}]") for i, p in enumerate(prompt))
    else:
        prompts = (_one_prompt(prompt, "prompt"),)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise ScoringRequestError("model", f"model must be a string, got {model!r}")
    return ScoreRequest(
        prompts=prompts,
        top_n=_int_field(body, "logprobs", 0, 0, MAX_TOP_LOGPROBS),
        max_tokens=_int_field(body, "max_tokens", 0, 0, 1),
        model=model,
    )


def sequence_logprobs(
    logits: np.ndarray, targets: Sequence[int], top_n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-softmax of each logits row, vectorised, CHUNK_ROWS rows at a time.

    Returns the log-probability of ``targets[i]`` under row i, and the ids and
    log-probabilities of each row's ``top_n`` most likely tokens (most likely first).
    """
    rows = len(targets)
    target_ids = np.asarray(targets, dtype=np.int64)
    chosen = np.empty(rows, dtype=np.float32)
    top_ids = np.empty((rows, top_n), dtype=np.int64)
    top_lps = np.empty((rows, top_n), dtype=np.float32)
    for start in range(0, rows, CHUNK_ROWS):
        stop = min(rows, start + CHUNK_ROWS)
        block = np.array(logits[start:stop], dtype=np.float32)  # a copy: logits stay as they are
        block -= block.max(axis=1, keepdims=True)
        block -= np.log(np.exp(block).sum(axis=1, keepdims=True))
        chosen[start:stop] = block[np.arange(stop - start), target_ids[start:stop]]
        if top_n:
            part = np.argpartition(block, -top_n, axis=1)[:, -top_n:]
            vals = np.take_along_axis(block, part, axis=1)
            order = np.argsort(-vals, axis=1, kind="stable")
            top_ids[start:stop] = np.take_along_axis(part, order, axis=1)
            top_lps[start:stop] = np.take_along_axis(vals, order, axis=1)
    return chosen, top_ids, top_lps


def _text(piece: bytes) -> str:
    return piece.decode("utf-8", errors="ignore")


def score_choice(scorer: Scorer, prompt: str | tuple[int, ...], top_n: int, max_tokens: int,
                 index: int = 0) -> dict[str, Any]:  # fmt: skip
    """One choice of the completions response: the scored prompt, plus a greedy token."""
    if isinstance(prompt, str):
        ids, bos_added = scorer.tokenize(prompt)
    else:
        ids, bos_added = list(prompt), False
    where = "prompt" if index == 0 else f"prompt[{index}]"
    if max(ids) >= scorer.vocab_size:
        raise ScoringRequestError("prompt", f"{where}: token id {max(ids)} is not in the "
                                  f"vocabulary (size {scorer.vocab_size})")  # fmt: skip
    if len(ids) + max_tokens > scorer.n_ctx:
        raise ScoringRequestError("prompt", f"{where}: {len(ids)} tokens (+{max_tokens}) do not "
                                  f"fit the context of {scorer.n_ctx}")  # fmt: skip
    logits = scorer.logits(ids)
    targets = list(ids[1:])
    if max_tokens:
        targets.append(int(np.argmax(logits[len(ids) - 1])))
    chosen, top_ids, top_lps = sequence_logprobs(logits, targets, top_n)
    completion: list[int] = []
    finish = "length"
    if max_tokens and scorer.is_end(targets[-1]):
        finish = "stop"
    elif max_tokens:
        completion = [targets[-1]]
    scored = ids + completion
    skip = 1 if bos_added else 0
    pieces = [scorer.piece(t) for t in scored]
    tokens, offsets, token_lps, tops = [], [], [], []
    so_far = b""
    for pos in range(skip, len(scored)):
        offsets.append(len(_text(so_far)))
        so_far += pieces[pos]
        tokens.append(_text(pieces[pos]))
        if pos == skip:
            token_lps.append(None)
            tops.append(None)
            continue
        row = pos - 1
        pairs = zip(top_ids[row], top_lps[row], strict=True)
        top = {_text(scorer.piece(int(t))): float(v) for t, v in pairs}
        top.setdefault(tokens[-1], float(chosen[row]))
        token_lps.append(float(chosen[row]))
        tops.append(top)
    return {
        "index": index,
        "text": _text(so_far),
        "logprobs": {
            "tokens": tokens,
            "token_logprobs": token_lps,
            "top_logprobs": tops,
            "text_offset": offsets,
        },
        "finish_reason": finish,
        "prompt_token_ids": ids,
        "token_ids": completion,
    }


def chat_logprobs(
    scorer: Scorer, ids: Sequence[int], start: int, top_n: int
) -> dict[str, list[dict[str, Any]]]:
    """``choices[0].logprobs`` of a chat completion (OpenAI's shape) for ``ids[start:]``.

    One forward pass over the whole sequence (prompt + generated): each generated token's
    log-probability and its ``top_n`` alternatives, of the raw logits as the scoring route
    reports them (temperature does not change them, as llama-cpp-python and vLLM report
    chat logprobs). Entries: ``{token, logprob, bytes, top_logprobs: [{token, logprob,
    bytes}]}``; a token ending the turn is left out, as the content leaves it out.
    """
    targets = [int(t) for t in ids[start:]]
    while targets and scorer.is_end(targets[-1]):
        targets.pop()
    if not targets:
        return {"content": []}
    logits = scorer.logits(ids[: start + len(targets)])[start - 1 : -1]
    chosen, top_ids, top_lps = sequence_logprobs(logits, targets, top_n)

    def entry(token_id: int, logprob: float) -> dict[str, Any]:
        piece = scorer.piece(token_id)
        return {"token": _text(piece), "logprob": logprob, "bytes": list(piece)}

    content = []
    for row, token_id in enumerate(targets):
        alts = zip(top_ids[row], top_lps[row], strict=True)
        item = entry(token_id, float(chosen[row]))
        item["top_logprobs"] = [entry(int(t), float(v)) for t, v in alts]
        content.append(item)
    return {"content": content}


def score_completion(scorer: Scorer, request: ScoreRequest, model: str) -> dict[str, Any]:
    """The whole ``/v1/completions`` response for a scoring request."""
    choices = [
        score_choice(scorer, prompt, request.top_n, request.max_tokens, index=i)
        for i, prompt in enumerate(request.prompts)
    ]
    prompt_tokens = sum(len(c["prompt_token_ids"]) for c in choices)
    completion_tokens = sum(len(c["token_ids"]) for c in choices)
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def vocab_fingerprint(tokens: Sequence[str]) -> str:
    """sha256 of a vocabulary: each token's text as the tokenizer stores it (GGUF
    ``tokenizer.ggml.tokens``, Hugging Face ``convert_ids_to_tokens``), in id order, each
    UTF-8 encoded and prefixed by its byte length (4 bytes, little-endian)."""
    digest = hashlib.sha256()
    for token in tokens:
        data = token.encode("utf-8", errors="surrogatepass")
        digest.update(len(data).to_bytes(4, "little") + data)
    return digest.hexdigest()


def hf_tokenizer_fingerprint(tokenizer: Any) -> str:
    """:func:`vocab_fingerprint` of a Hugging Face tokenizer (every id, added tokens too)."""
    return vocab_fingerprint(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))))
