"""Scoring dialect: a teacher's log-probability of every token of a given text.

One request shape, the OpenAI legacy ``POST /v1/completions`` with ``echo: true``,
``logprobs: 0`` and ``max_tokens: 1`` (``max_tokens: 0`` means "until the context is full" on
llama-cpp-python). ``prompt`` is a list of token ids where the server accepts them (vLLM,
stillroom's embedded teacher), else the rendered text, aligned back onto the student's tokens
by ``choices[0].logprobs.text_offset`` (never by token strings: a token that ends inside a
multibyte character decodes to an empty or replacement string). The first echoed logprob is
null.

Every request goes through harvest's public machinery: the caller resolves the policy first
(:func:`stillroom.policies.resolve_for_harvest`), and :class:`ScoringClient` paces with
:class:`~stillroom.harvest.RateLimiter` (learning from the teacher's headers), retries with
:func:`~stillroom.harvest.retrying`, stops at :class:`~stillroom.harvest.Caps` and sends an
``Idempotency-Key`` over (teacher, rendered text). The module is shaped as one more dialect
(build a body, parse a reply) for when harvest's dialect interface lands.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from stillroom.harvest import (
    Caps,
    PermanentError,
    RateLimiter,
    TransientError,
    retry_after_seconds,
    retrying,
)
from stillroom.train.errors import (
    TeacherNoLogprobs,
    TeacherScoringError,
    TeacherTokenizerMismatch,
)

PROBE_TEXT = "Ahoy! Naïve café, 東京 — 42 ✓ «quoted»\n"


def scoring_key(teacher: str, rendered: str | Sequence[int]) -> str:
    """The idempotency key of one scoring request: sha256 over (teacher, rendered text or ids)."""
    body = rendered if isinstance(rendered, str) else ",".join(map(str, rendered))
    return hashlib.sha256(f"{teacher}\n{body}".encode()).hexdigest()


def scoring_body(model: str, prompt: str | Sequence[int]) -> dict[str, Any]:
    """The request body: echo the prompt with per-token logprobs, generate one token."""
    return {
        "model": model,
        "prompt": prompt if isinstance(prompt, str) else list(prompt),
        "echo": True,
        "logprobs": 0,
        "max_tokens": 1,
        "temperature": 0.0,
    }


@dataclass(frozen=True)
class Echo:
    """The parsed reply: parallel lists over the echoed tokens (prompt, then any generated)."""

    token_logprobs: list[float | None]
    text_offset: list[int]
    prompt_tokens: int


def parse_echo(reply: Any, where: str) -> Echo:
    """``choices[0].logprobs`` of a reply, or :class:`TeacherNoLogprobs` naming what lacks."""
    try:
        lp = reply["choices"][0]["logprobs"]
    except (KeyError, IndexError, TypeError):
        lp = None
    if not isinstance(lp, dict) or not isinstance(lp.get("token_logprobs"), list):
        raise TeacherNoLogprobs(
            f"{where}: the reply has no choices[0].logprobs.token_logprobs; this teacher returns "
            "no log-probabilities of a given text (closed APIs never do), so it cannot score "
            "the student's samples"
        )
    values = lp["token_logprobs"]
    if not any(isinstance(v, int | float) for v in values[1:]):
        raise TeacherNoLogprobs(f"{where}: every echoed prompt logprob is null")
    offsets = lp.get("text_offset") or []
    usage = reply.get("usage") or {}
    return Echo(list(values), list(offsets), int(usage.get("prompt_tokens") or len(values)))


def align_by_offset(echo: Echo, starts: Sequence[int], end: int) -> tuple[list[float | None], int]:
    """Teacher logprobs for the tokens spanning ``starts[j]`` to ``starts[j+1]`` (``end`` for
    the last), character offsets into the scored text.

    A token is scored where the teacher has an entry at its start whose next entry starts
    where the token ends (the same span of text, so the same token); characters split over
    several tokens give several entries at one offset, matched in order. Any other token is
    ``None`` and counts as a mismatch. Entries at or past ``end`` (the generated one) are ignored.
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


def decode_starts(tokenizer: Any, ids: Sequence[int], offset: int = 0) -> list[int]:
    """Each token's character start, as servers compute ``text_offset``: the length of the
    decoded text before it (a trailing partial UTF-8 character does not count, as with
    llama-cpp-python's ``errors="ignore"``)."""
    out = []
    for i in range(len(ids)):
        before = tokenizer.decode(list(ids[:i]), skip_special_tokens=False)
        out.append(offset + len(before.rstrip("\ufffd")))
    return out


def token_starts(tokenizer: Any, text: str) -> tuple[list[int], list[int]]:
    """The student's own tokenisation of ``text``: ids and each token's character start."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return ids, decode_starts(tokenizer, ids)


class ScoringClient:
    """Scores texts or token ids at one teacher; counts requests and prompt tokens.

    ``http`` is an ``httpx.AsyncClient`` (inject a transport in tests); ``sleep`` and ``rng``
    drive the retry waits (tests never sleep). Synchronous methods run on a private loop.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        http: httpx.AsyncClient | None = None,
        limiter: RateLimiter | None = None,
        caps: Caps | None = None,
        api_key: str | None = None,
        max_attempts: int = 5,
        max_wait: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.teacher = f"{self.base_url}|{model}"
        self._loop = asyncio.new_event_loop()
        self.http = http or httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=10.0))
        self.limiter = limiter or RateLimiter(sleep=sleep)
        self.caps = caps
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.max_attempts, self.max_wait, self.sleep = max_attempts, max_wait, sleep
        self.rng = rng or random.Random(0)
        self.requests = 0
        self.prompt_tokens = 0
        self.accepts_ids: bool | None = None

    def close(self) -> None:
        self._loop.run_until_complete(self.http.aclose())
        self._loop.close()

    # -- one request --------------------------------------------------------------------
    def request(self, prompt: str | Sequence[int], key: str) -> Any:
        return self._loop.run_until_complete(self._request(prompt, key))

    async def _request(self, prompt: str | Sequence[int], key: str) -> Any:
        if self.caps is not None and self.caps.daily_cap_reached():
            raise TeacherScoringError(self.caps.daily_cap_message())
        body = scoring_body(self.model, prompt)
        cost = len(prompt) if not isinstance(prompt, str) else len(prompt) / 4
        async for attempt in retrying(
            max_attempts=self.max_attempts, max_wait=self.max_wait, sleep=self.sleep, rng=self.rng
        ):
            with attempt:
                reply = await self._send(body, key, cost)
        if self.caps is not None:
            self.caps.requests_today += 1
            self.caps.settle(0.0, int((reply.get("usage") or {}).get("prompt_tokens") or 0), 1)
        return reply

    async def _send(self, body: dict[str, Any], key: str, cost: float) -> Any:
        ticket = await self.limiter.acquire(cost)
        try:
            resp = await self.http.post(
                f"{self.base_url}/completions",
                json=body,
                headers={**self.headers, "Idempotency-Key": key},
            )
        except httpx.TransportError as exc:
            self.limiter.observe(ticket, {})
            raise TransientError(f"connection: {type(exc).__name__}: {exc}") from exc
        self.limiter.observe(ticket, resp.headers)
        self.requests += 1
        status = resp.status_code
        if status == 429:
            hint = retry_after_seconds(resp.headers)
            self.limiter.rate_limited(hint)
            raise TransientError("HTTP 429", status, hint)
        if status >= 500 or status in (408, 409):
            raise TransientError(f"HTTP {status}", status, retry_after_seconds(resp.headers))
        if status in (401, 403):
            raise TeacherScoringError(
                f"{self.base_url}: the teacher refused the key (HTTP {status})"
            )
        if status >= 400:
            raise PermanentError(f"HTTP {status}: {resp.text[:300]}", status)
        reply = resp.json()
        self.prompt_tokens += int((reply.get("usage") or {}).get("prompt_tokens") or 0)
        return reply

    # -- the up-front checks ---------------------------------------------------------------
    def probe(self, tokenizer: Any) -> dict[str, Any]:
        """Refuse a teacher without prompt logprobs or with another tokenizer; learn whether
        it takes token ids. Two requests; raises before any scoring request."""
        ids, starts = token_starts(tokenizer, PROBE_TEXT)
        where = f"teacher {self.model!r} at {self.base_url}"
        try:
            reply = self.request(PROBE_TEXT, scoring_key(self.teacher, PROBE_TEXT))
        except PermanentError as exc:
            raise TeacherNoLogprobs(
                f"{where} refused a /v1/completions echo+logprobs probe ({exc.reason}); closed "
                "APIs return no log-probabilities of a given text"
            ) from exc
        echo = parse_echo(reply, where)
        theirs = [o for o in echo.text_offset if o < len(PROBE_TEXT)]
        mismatches = sum(a != b for a, b in zip(theirs, starts, strict=False)) + abs(
            len(theirs) - len(starts)
        )
        if mismatches:
            raise TeacherTokenizerMismatch(
                f"{where} tokenises the probe text {PROBE_TEXT!r} into {len(theirs)} tokens, the "
                f"student into {len(starts)} ({mismatches} token boundaries differ); on-policy "
                "distillation needs the same tokenizer (cross-tokenizer is not supported yet)"
            )
        try:
            by_ids = parse_echo(self.request(ids, scoring_key(self.teacher, ids)), where)
            self.accepts_ids = len(by_ids.token_logprobs) >= len(ids)
        except (PermanentError, TeacherNoLogprobs):
            self.accepts_ids = False
        return {"probe_tokens": len(ids), "mismatches": mismatches, "ids": self.accepts_ids}

    # -- scoring ---------------------------------------------------------------------------
    def rendered(
        self, tokenizer: Any, prompt_text: str, prompt_ids: Sequence[int], completion: Sequence[int]
    ) -> str | list[int]:
        """What one scoring request sends: token ids where accepted, else the text."""
        if self.accepts_ids:
            return [*prompt_ids, *completion]
        return prompt_text + tokenizer.decode(list(completion), skip_special_tokens=False)

    def key_for(
        self, tokenizer: Any, prompt_text: str, prompt_ids: Sequence[int], completion: Sequence[int]
    ) -> str:
        """The idempotency key of scoring this sample (look it up before asking)."""
        return scoring_key(
            self.teacher, self.rendered(tokenizer, prompt_text, prompt_ids, completion)
        )

    def score(
        self, tokenizer: Any, prompt_text: str, prompt_ids: Sequence[int], completion: Sequence[int]
    ) -> tuple[dict[str, Any], str]:
        """Teacher logprobs of ``completion`` after the teacher's rendered prompt.

        Returns (``{"logprobs": [...], "mismatches": n, "prompt_tokens": n}``, key).
        """
        if self.accepts_ids is None:
            raise TeacherScoringError("probe() the teacher before scoring")
        if self.accepts_ids:
            ids = [*prompt_ids, *completion]
            key = scoring_key(self.teacher, ids)
            echo = parse_echo(self.request(ids, key), self.base_url)
            values = echo.token_logprobs[len(prompt_ids) : len(ids)]
            return {"logprobs": values, "mismatches": 0, "prompt_tokens": echo.prompt_tokens}, key
        text = self.rendered(tokenizer, prompt_text, prompt_ids, completion)
        assert isinstance(text, str)
        key = scoring_key(self.teacher, text)
        echo = parse_echo(self.request(text, key), self.base_url)
        starts = decode_starts(tokenizer, completion, offset=len(prompt_text))
        values, missing = align_by_offset(echo, starts, len(text))
        return {"logprobs": values, "mismatches": missing, "prompt_tokens": echo.prompt_tokens}, key
