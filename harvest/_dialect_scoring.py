"""``scoring``: a teacher's log-probability of every token of a given text.

One request shape, the OpenAI legacy ``POST {base_url}/completions`` with ``echo: true``,
``logprobs: 0`` and ``max_tokens: 1`` (``max_tokens: 0`` means "until the context is full" on
llama-cpp-python; the one generated token is dropped). It is what vLLM, llama-cpp-python's
server (with ``logits_all``) and stillroom's embedded teacher answer; closed APIs do not.

- ``build``: ``messages`` is one message whose ``content`` is the text to score, a list of
  token ids, or a list of token-id lists (several sequences in one request, one choice each,
  by ``index``) where the server takes them (vLLM, the embedded teacher); ``temperature`` is
  always 0 and ``max_tokens`` always 1 (neither changes the logprobs).
- ``parse`` answers with a :class:`ScoringEcho` of the first choice (parallel lists over the
  echoed tokens: the prompt, then any generated one), ``parse_all`` with one per choice in
  ``index`` order (a batched request), not an :class:`~stillroom.harvest._answer.Answer`: this
  dialect is not one of ``--api``'s (:data:`~stillroom.harvest._dialect.API_NAMES`), harvest's
  engine never runs it; ``train onpolicy``'s scoring client does, with harvest's public
  limiter, retry policy and caps. A reply without per-token logprobs raises
  :class:`~stillroom.harvest.errors.NoPromptLogprobs`. The first echoed logprob is null.
- ``align``: the teacher's values onto another tokenisation of the same text, by
  ``text_offset`` spans, never by token strings (a token ending inside a multibyte character
  decodes to an empty or replacement string).
- ``key``: the idempotency key, sha256 over (teacher, rendered text or ids).
- ``classify``/``limits``: the common parts (:func:`~stillroom.harvest._dialect.classify_http`,
  the OpenAI header profile).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stillroom.harvest._dialect import (
    LimitSnapshot,
    RequestOptions,
    Verdict,
    WireRequest,
    classify_http,
    read_limits,
)
from stillroom.harvest.errors import HarvestConfigError, NoPromptLogprobs

PATH = "/completions"


@dataclass(frozen=True)
class ScoringEcho:
    """A parsed scoring reply: parallel lists over the echoed tokens (prompt, then any
    generated), and the prompt tokens the teacher's usage reports (its prefill)."""

    token_logprobs: list[float | None]
    text_offset: list[int]
    prompt_tokens: int


class ScoringDialect:
    name = "scoring"
    key_env = "OPENAI_API_KEY"
    request_id_header = "x-request-id"
    limits_profile = "openai"
    batch_url = None

    def build(
        self, model: str, messages: Sequence[Mapping[str, Any]], options: RequestOptions
    ) -> WireRequest:
        if len(messages) != 1:
            raise HarvestConfigError(
                f"scoring: one text (or token-id list) per request, got {len(messages)} messages"
            )
        prompt = messages[0].get("content")
        if (
            not isinstance(prompt, str)
            and not _ids(prompt)
            and not (isinstance(prompt, Sequence) and prompt and all(_ids(p) for p in prompt))
        ):
            raise HarvestConfigError(
                "scoring: content must be a text, a list of token ids or a list of such lists"
            )
        body = {
            "model": model,
            "prompt": prompt if isinstance(prompt, str) else _plain(prompt),
            "echo": True,
            "logprobs": 0,
            "max_tokens": 1,
            "temperature": 0.0,
        }
        return WireRequest(PATH, body)

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def parse(
        self, data: Any, request_id: str | None = None, where: str = "teacher"
    ) -> ScoringEcho:
        """``choices[0].logprobs`` of a reply; :class:`NoPromptLogprobs` naming what lacks."""
        try:
            choice = data["choices"][0]
        except (KeyError, IndexError, TypeError):
            choice = None
        usage = (data.get("usage") if isinstance(data, dict) else None) or {}
        return _echo(choice, usage.get("prompt_tokens"), where)

    def parse_all(self, data: Any, n: int, where: str = "teacher") -> list[ScoringEcho]:
        """Every choice of a batched reply, in ``index`` order; it must hold ``n``. Each
        echo's ``prompt_tokens`` is its own prefill (the usage counts the whole request)."""
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or len(choices) != n:
            got = len(choices) if isinstance(choices, list) else "no"
            raise NoPromptLogprobs(f"{where}: {got} choices for {n} sequences scored at once")
        ordered = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
        return [_echo(c, None, f"{where} (choice {i})") for i, c in enumerate(ordered)]

    def classify(self, status: int, body: bytes, headers: Mapping[str, str]) -> Verdict:
        return classify_http(status, body, headers)

    def limits(self, headers: Mapping[str, str], profile: Any) -> LimitSnapshot:
        return read_limits(headers, profile)

    @staticmethod
    def key(teacher: str, rendered: str | Sequence[int]) -> str:
        """The idempotency key of one scoring request: sha256 over (teacher, text or ids)."""
        body = rendered if isinstance(rendered, str) else ",".join(map(str, rendered))
        return hashlib.sha256(f"{teacher}\n{body}".encode()).hexdigest()

    @staticmethod
    def align(echo: ScoringEcho, starts: Sequence[int], end: int) -> tuple[list[float | None], int]:
        """Teacher logprobs for the tokens spanning ``starts[j]`` to ``starts[j+1]`` (``end``
        for the last), character offsets into the scored text; and the count of misses.

        A token is scored where the teacher has an entry at its start whose next entry starts
        where the token ends (the same span of text, so the same token); characters split
        over several tokens give several entries at one offset, matched in order. Any other
        token is ``None`` (a miss). Entries at or past ``end`` (the generated one) are ignored.
        """
        spans: dict[tuple[int, int], list[float | None]] = {}
        offsets = [o for o in echo.text_offset if o < end]
        nexts = [*offsets[1:], end]
        for value, a, b in zip(echo.token_logprobs, offsets, nexts, strict=False):
            spans.setdefault((a, b), []).append(value)
        out: list[float | None] = []
        for j, a in enumerate(starts):
            b = starts[j + 1] if j + 1 < len(starts) else end
            queue = spans.get((a, b))
            out.append(queue.pop(0) if queue else None)
        return out, sum(v is None for v in out)


def _ids(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
    )


def _plain(prompt: Sequence[Any]) -> list[Any]:
    return [list(p) for p in prompt] if _ids(prompt[0]) else list(prompt)


def _echo(choice: Any, usage_tokens: Any, where: str) -> ScoringEcho:
    lp = choice.get("logprobs") if isinstance(choice, dict) else None
    if not isinstance(lp, dict) or not isinstance(lp.get("token_logprobs"), list):
        raise NoPromptLogprobs(
            f"{where}: the reply has no choices[0].logprobs.token_logprobs; this teacher "
            "returns no log-probabilities of a given text (closed APIs never do)"
        )
    values = lp["token_logprobs"]
    if not any(isinstance(v, int | float) for v in values[1:]):
        raise NoPromptLogprobs(f"{where}: every echoed prompt logprob is null")
    offsets = lp.get("text_offset") or []
    ids = choice.get("prompt_token_ids")
    tokens = usage_tokens or (len(ids) if isinstance(ids, list) else 0) or len(values)
    return ScoringEcho(list(values), list(offsets), int(tokens))


DIALECT = ScoringDialect()
